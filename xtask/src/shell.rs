//! `cargo xtask shellcheck`: `shellcheck -S warning` on every tracked shell script (`*.sh`,
//! and files whose first line is a sh/bash shebang), run from the repository root so that
//! `# shellcheck source=benches/lib.sh` directives resolve.

use std::path::Path;
use std::process::Command;

use crate::util::{self, Failure, Res, fail, root};

pub fn run(args: &[String]) -> Res<()> {
    if !args.is_empty() {
        return Err(Failure::Usage("shellcheck takes no arguments".into()));
    }
    if !util::on_path("shellcheck") {
        return fail("shellcheck is not installed (apt-get install shellcheck)");
    }
    let scripts = tracked_scripts()?;
    if scripts.is_empty() {
        return fail("no shell scripts found (is this a git checkout?)");
    }
    let mut cmd = Command::new("shellcheck");
    cmd.current_dir(root())
        .args(["-S", "warning", "-x"])
        .args(&scripts);
    util::status(&mut cmd, "shellcheck -S warning")?;
    println!("shellcheck: {} scripts clean", scripts.len());
    Ok(())
}

/// The tracked shell scripts, relative to the root, sorted.
pub fn tracked_scripts() -> Res<Vec<String>> {
    let list = util::output(
        Command::new("git")
            .current_dir(root())
            .args(["ls-files", "-z"]),
        "git ls-files",
    )?;
    let mut out: Vec<String> = list
        .split('\0')
        .filter(|f| !f.is_empty())
        .filter(|f| f.ends_with(".sh") || has_shell_shebang(&root().join(f)))
        .map(str::to_string)
        .collect();
    out.sort();
    Ok(out)
}

fn has_shell_shebang(path: &Path) -> bool {
    let Ok(text) = std::fs::read(path) else {
        return false;
    };
    let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    first.starts_with("#!")
        && ["/sh", "/bash", "env sh", "env bash"]
            .iter()
            .any(|s| first.trim_end().ends_with(s) || first.contains(&format!("{s} ")))
}
