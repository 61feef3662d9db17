//! Records the suite's version and git revision for `--version` and the "about" line (the ECS
//! agent reads `gitShortHash` and `dirty`).
//!
//! The version (`CNI_SUITE_VERSION`): `TASK_CNI_VERSION` when set (`cargo xtask dist` sets it,
//! so the artifacts' names and every binary agree), else the rule of `xtask/src/dist.rs`
//! (`version_string`, unit-tested there): the workspace version when HEAD is the tag
//! `v<version>` and the tracked files are clean, else `<version>+g<shortrev>`, with `.dirty`
//! when tracked files differ from HEAD (`+nogit` outside a git checkout). `SOURCE_DATE_EPOCH`,
//! when set, is the `built` time (reproducible builds).

// A build script reads cargo's environment; the rule against it is for plugin code.
#![allow(clippy::disallowed_methods)]

use std::process::Command;

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
    let hash = git(&["rev-parse", "--short=7", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    let pkg = env!("CARGO_PKG_VERSION");
    let version = match std::env::var("TASK_CNI_VERSION") {
        Ok(v) if !v.is_empty() => v,
        _ => {
            let tag = format!("v{pkg}");
            let tagged = git(&["tag", "--points-at", "HEAD"])
                .is_some_and(|tags| tags.lines().any(|t| t.trim() == tag));
            match &hash {
                None => format!("{pkg}+nogit"),
                Some(_) if tagged && !dirty => pkg.to_owned(),
                Some(h) if dirty => format!("{pkg}+g{h}.dirty"),
                Some(h) => format!("{pkg}+g{h}"),
            }
        }
    };
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
    let hash = hash.unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CNI_SUITE_VERSION={version}");
    println!("cargo:rustc-env=CNI_SUITE_GIT_HASH={hash}");
    println!("cargo:rustc-env=CNI_SUITE_GIT_DIRTY={dirty}");
    println!(
        "cargo:rustc-env=CNI_SUITE_BUILT={}",
        built.unwrap_or_else(|| "unknown".into())
    );
}
