//! Small helpers shared by the commands: errors, paths, running programs.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A failed command: a usage error (exit 2) or anything else (exit 1).
pub enum Failure {
    Usage(String),
    Failed(String),
}

pub type Res<T> = Result<T, Failure>;

pub fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(Failure::Failed(msg.into()))
}

/// The repository root (xtask/ lives directly under it).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `cargo` as cargo itself ran us (`$CARGO`), else from PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cmd` with its output on our stderr (stdout stays for our own result); fails unless
/// it exits 0.
pub fn status(cmd: &mut Command, what: &str) -> Res<()> {
    cmd.stdout(Stdio::from(std::io::stderr()));
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => fail(format!("{what} failed ({s})")),
        Err(e) => fail(format!("cannot run {what}: {e}")),
    }
}

/// Runs `cmd` and returns its stdout; its stderr passes through. Fails unless it exits 0.
pub fn output(cmd: &mut Command, what: &str) -> Res<String> {
    cmd.stderr(Stdio::inherit());
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => fail(format!("{what} failed ({})", o.status)),
        Err(e) => fail(format!("cannot run {what}: {e}")),
    }
}

/// Replaces this process with `cmd` (its exit status becomes ours).
pub fn exec(mut cmd: Command) -> Res<()> {
    let e = cmd.exec();
    fail(format!("cannot run {:?}: {e}", cmd.get_program()))
}

/// Runs `bash scripts/NAME ARGS...` in place of this process.
pub fn run_script(name: &str, args: &[String]) -> Res<()> {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts").join(name)).args(args);
    exec(cmd)
}

/// Whether `prog` is an executable on PATH.
pub fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            d.join(prog).metadata().is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

/// The cargo target directory of the workspace (`cargo metadata` knows about
/// `CARGO_TARGET_DIR` and `build.target-dir`).
pub fn target_dir() -> Res<PathBuf> {
    let mut cmd = cargo();
    cmd.current_dir(root())
        .args(["metadata", "--locked", "--format-version", "1", "--no-deps"]);
    let json = output(&mut cmd, "cargo metadata")?;
    match json_string_field(&json, "target_directory") {
        Some(dir) => Ok(root().join(dir)),
        None => fail("cargo metadata printed no target_directory"),
    }
}

/// The value of the first `"key":"..."` string in a JSON text (enough for cargo's metadata).
pub fn json_string_field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = json[start..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
}

/// The regular files directly in `dir`, sorted by name (none if `dir` does not exist).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field() {
        let j = r#"{"packages":[],"target_directory":"/w/t a\"b\\c","version":1}"#;
        assert_eq!(
            json_string_field(j, "target_directory").as_deref(),
            Some("/w/t a\"b\\c")
        );
        assert_eq!(json_string_field(j, "nope"), None);
    }
}
