//! The release version rule, in one place for the two programs that apply it: cni-spec's build
//! script (a plain `cargo build`) and `cargo xtask dist`/`release` (which pass the result to the
//! build as `TASK_CNI_VERSION`). Both include this file with `#[path]`; std only.
//!
//! The version is the workspace version when HEAD is the tag `v<version>` and the tracked files
//! are clean, else `<version>+g<shortrev>`, with `.dirty` when tracked files differ from HEAD
//! (`+nogit` outside a git checkout).

use std::path::Path;
use std::process::Command;

/// What git says about the checkout (all `None`/false outside one).
#[derive(Debug, Default)]
pub struct GitState {
    /// `git rev-parse --short=7 HEAD`
    pub hash: Option<String>,
    /// Tracked files differ from HEAD.
    pub dirty: bool,
    /// HEAD carries the tag `v<workspace version>`.
    pub tagged: bool,
    /// The commit time (seconds since the epoch).
    pub epoch: Option<u64>,
}

/// Reads the checkout at `dir` for the workspace version `workspace`.
pub fn git_state(workspace: &str, dir: &Path) -> GitState {
    let git = |args: &[&str]| -> Option<String> {
        let o = Command::new("git")
            .current_dir(dir)
            .args(args)
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(hash) = git(&["rev-parse", "--short=7", "HEAD"]) else {
        return GitState::default();
    };
    let tag = format!("v{workspace}");
    GitState {
        hash: Some(hash),
        dirty: git(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty()),
        tagged: git(&["tag", "--points-at", "HEAD"])
            .is_some_and(|t| t.lines().any(|l| l.trim() == tag)),
        epoch: git(&["log", "-1", "--format=%ct"]).and_then(|s| s.parse().ok()),
    }
}

/// The release version of `workspace` for the checkout `git` describes.
pub fn version_string(workspace: &str, git: &GitState) -> String {
    match &git.hash {
        None => format!("{workspace}+nogit"),
        Some(_) if git.tagged && !git.dirty => workspace.to_string(),
        Some(h) if git.dirty => format!("{workspace}+g{h}.dirty"),
        Some(h) => format!("{workspace}+g{h}"),
    }
}
