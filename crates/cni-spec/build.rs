//! Records the suite's version and git revision for `--version` and the "about" line (the ECS
//! agent reads `gitShortHash` and `dirty`).
//!
//! The version (`CNI_SUITE_VERSION`): `TASK_CNI_VERSION` when set (`cargo xtask dist` sets it,
//! so the artifacts' names and every binary agree), else the rule of `version_rule.rs`, which
//! xtask shares (unit-tested there). `SOURCE_DATE_EPOCH`,
//! when set, is the `built` time (reproducible builds).

// A build script reads cargo's environment; the rule against it is for plugin code.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

#[allow(dead_code)] // GitState::epoch: the build script takes its date from SOURCE_DATE_EPOCH
#[path = "version_rule.rs"]
mod version_rule;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=TASK_CNI_VERSION");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
        println!("cargo:rerun-if-changed={dir}/packed-refs");
        println!("cargo:rerun-if-changed={dir}/refs/tags");
    }
    let pkg = env!("CARGO_PKG_VERSION");
    let state = version_rule::git_state(pkg, Path::new(env!("CARGO_MANIFEST_DIR")));
    let version = match std::env::var("TASK_CNI_VERSION") {
        Ok(v) if !v.is_empty() => v,
        _ => version_rule::version_string(pkg, &state),
    };
    let dirty = state.dirty;
    let date = |args: &[&str]| {
        Command::new("date")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let built = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(e) if !e.is_empty() => date(&["-u", "-d", &format!("@{e}"), "+%Y-%m-%dT%H:%M:%SZ"]),
        _ => date(&["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
    };
    let hash = state.hash.unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CNI_SUITE_VERSION={version}");
    println!("cargo:rustc-env=CNI_SUITE_GIT_HASH={hash}");
    println!("cargo:rustc-env=CNI_SUITE_GIT_DIRTY={dirty}");
    println!(
        "cargo:rustc-env=CNI_SUITE_BUILT={}",
        built.unwrap_or_else(|| "unknown".into())
    );
}
