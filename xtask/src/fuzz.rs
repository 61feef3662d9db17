//! `cargo xtask fuzz`: libFuzzer campaigns over `fuzz/`, and the generated corpus kept as one
//! archive (`fuzz/corpus.tar.xz`) instead of thousands of tracked files.
//!
//! Layout: `fuzz/corpus/<target>/seed-*` are the hand-made seeds (tracked);
//! `fuzz/regressions/<target>/` the former findings (tracked); everything else a campaign
//! writes under `fuzz/corpus/` is ignored by git and lives in the archive, which
//! `fuzz-replay/tests/replay.rs` unpacks and replays.
//!
//! The toolchain is stable; cargo-fuzz needs nightly-only rustc flags (`-Z...`), which
//! `RUSTC_BOOTSTRAP=1` unlocks. cargo-fuzz is installed with `cargo install cargo-fuzz
//! --locked` when missing; libfuzzer-sys builds libFuzzer with the system C++ compiler.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{self, Failure, Res, fail, root};

const USAGE: &str = "fuzz [run] [--merge] [SECONDS] [TARGET...] | fuzz unpack | fuzz pack";

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

fn archive() -> PathBuf {
    fuzz_dir().join("corpus.tar.xz")
}

/// A committed seed: a hand-made input, kept in the tree (`seed-*`).
pub fn is_seed(name: &str) -> bool {
    name.starts_with("seed-")
}

pub fn run(args: &[String]) -> Res<()> {
    match args.first().map(String::as_str) {
        Some("unpack") if args.len() == 1 => unpack().map(|n| {
            eprintln!("fuzz: {n} inputs unpacked into fuzz/corpus/");
        }),
        Some("pack") if args.len() == 1 => pack(),
        Some("unpack" | "pack") => Err(Failure::Usage(USAGE.into())),
        Some("run") => campaign(&args[1..]),
        _ => campaign(args),
    }
}

/// The target directories of `fuzz/corpus/`, sorted.
fn corpus_targets() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fuzz_dir().join("corpus"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// Unpacks the archive into `fuzz/corpus/` (files already there are kept); returns how many
/// inputs it holds.
fn unpack() -> Res<usize> {
    let a = archive();
    if !a.is_file() {
        return fail(format!("{} is missing", a.display()));
    }
    let mut tar = Command::new("tar");
    tar.arg("-xJf")
        .arg(&a)
        .arg("-C")
        .arg(fuzz_dir())
        .arg("--skip-old-files");
    util::status(&mut tar, "tar -x")?;
    let list = util::output(Command::new("tar").arg("-tJf").arg(&a), "tar -t")?;
    Ok(list.lines().filter(|l| !l.ends_with('/')).count())
}

/// Packs every non-seed file of `fuzz/corpus/<target>/` (and one directory entry per target,
/// so that every target can be extracted by name) into the archive: names sorted, owner,
/// mode and time fixed, `xz -9`, so the same corpus gives the same bytes.
fn pack() -> Res<()> {
    let mut names = Vec::new();
    let mut files = 0;
    for dir in corpus_targets() {
        let Some(t) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        names.push(format!("corpus/{t}/"));
        for f in util::files_in(&dir) {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !is_seed(&name) {
                names.push(format!("corpus/{t}/{name}"));
                files += 1;
            }
        }
    }
    let tmp = fuzz_dir().join("corpus.tar.xz.new");
    let out =
        std::fs::File::create(&tmp).or_else(|e| fail(format!("create {}: {e}", tmp.display())))?;
    let mut tar = Command::new("tar");
    tar.current_dir(fuzz_dir())
        .env("XZ_OPT", "-9 -T1")
        .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0"])
        .args(["--numeric-owner", "--mode=u=rwX,go=rX", "--format=gnu"])
        .args(["--no-recursion", "--null", "-T", "-", "-cJf", "-"])
        .stdin(Stdio::piped())
        .stdout(out);
    let mut child = tar
        .spawn()
        .or_else(|e| fail(format!("cannot run tar: {e}")))?;
    let list: Vec<u8> = names
        .iter()
        .flat_map(|n| [n.as_bytes(), b"\0"])
        .flatten()
        .copied()
        .collect();
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&list)
            .or_else(|e| fail(format!("write to tar: {e}")))?;
    }
    let status = child
        .wait()
        .or_else(|e| fail(format!("wait for tar: {e}")))?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        return fail(format!("tar -c failed ({status})"));
    }
    std::fs::rename(&tmp, archive()).or_else(|e| fail(format!("rename {}: {e}", tmp.display())))?;
    let size = archive().metadata().map(|m| m.len()).unwrap_or(0);
    eprintln!("fuzz: packed {files} inputs into fuzz/corpus.tar.xz ({size} bytes)");
    Ok(())
}

/// Settings of a campaign, from the environment.
struct Settings {
    secs: u64,
    merge: bool,
    sanitizer: String,
    timeout: String,
    target_dir: PathBuf,
}

fn campaign(args: &[String]) -> Res<()> {
    let mut args = args;
    let merge = args.first().is_some_and(|a| a == "--merge");
    if merge {
        args = &args[1..];
    }
    let mut secs = 60;
    if let Some(first) = args
        .first()
        .filter(|a| a.bytes().all(|b| b.is_ascii_digit()))
    {
        secs = first
            .parse()
            .map_err(|_| Failure::Usage(format!("bad SECONDS {first:?}")))?;
        args = &args[1..];
    }
    if args.iter().any(|a| a.starts_with('-')) {
        return Err(Failure::Usage(USAGE.into()));
    }
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let s = Settings {
        secs,
        merge,
        sanitizer: env("FUZZ_SANITIZER", "none"),
        timeout: env("FUZZ_TIMEOUT", "10"),
        target_dir: PathBuf::from(env("FUZZ_TARGET_DIR", "/tmp/target-fuzz")),
    };
    prepare()?;
    let all = cargo_fuzz_list()?;
    let targets: Vec<String> = if args.is_empty() {
        all.clone()
    } else {
        args.to_vec()
    };
    if let Some(t) = targets.iter().find(|t| !all.contains(t)) {
        return fail(format!("no target {t} (have: {})", all.join(" ")));
    }
    let n = unpack()?;
    eprintln!("fuzz: {n} generated inputs of fuzz/corpus.tar.xz unpacked into fuzz/corpus/");
    let bin = build(&s)?;
    println!(
        "{:<18} {:>8} {:>12} {:>9} {:>8} {:>9}",
        "target", "seconds", "execs", "exec/s", "corpus", "findings"
    );
    let mut lines = Vec::new();
    let mut found_any = false;
    for t in &targets {
        let (line, found) = fuzz_one(&s, &bin, t)?;
        println!("{line}");
        lines.push(line);
        found_any |= found;
    }
    if s.merge {
        pack()?;
        eprintln!("fuzz: fuzz/corpus.tar.xz now holds the merged corpus: commit it");
    }
    if let Some(log) = std::env::var_os("FUZZ_LOG") {
        append_log(Path::new(&log), &s, &lines)?;
    }
    if found_any {
        return fail("a target found a crash or a timeout (see above; fuzz/artifacts/)");
    }
    Ok(())
}

/// cargo-fuzz and a C++ compiler.
fn prepare() -> Res<()> {
    let have_cargo_fuzz = util::cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_cargo_fuzz {
        eprintln!("fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)");
        util::status(
            util::cargo().args(["install", "cargo-fuzz", "--locked"]),
            "cargo install cargo-fuzz",
        )?;
    }
    if !util::on_path("c++") {
        return fail("a C++ compiler is required (apt-get install g++)");
    }
    Ok(())
}

fn cargo_fuzz_list() -> Res<Vec<String>> {
    let mut cmd = util::cargo();
    cmd.current_dir(fuzz_dir())
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "list"]);
    Ok(util::output(&mut cmd, "cargo fuzz list")?
        .lines()
        .map(str::to_string)
        .collect())
}

/// Builds every target (debug assertions on); returns the directory of the binaries.
fn build(s: &Settings) -> Res<PathBuf> {
    let vv = util::output(Command::new("rustc").arg("-vV"), "rustc -vV")?;
    let Some(host) = vv.lines().find_map(|l| l.strip_prefix("host: ")) else {
        return fail("rustc -vV names no host");
    };
    eprintln!(
        "fuzz: building the targets (sanitizer {}, debug assertions on)",
        s.sanitizer
    );
    let out = util::cargo()
        .current_dir(fuzz_dir())
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "build", "-s", &s.sanitizer, "--debug-assertions"])
        .arg("--target-dir")
        .arg(&s.target_dir)
        .output()
        .or_else(|e| fail(format!("cannot run cargo fuzz build: {e}")))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("{}", lines[lines.len().saturating_sub(30)..].join("\n"));
        return fail("cargo fuzz build failed");
    }
    Ok(s.target_dir.join(host).join("release"))
}

fn count_files(dir: &Path) -> usize {
    util::files_in(dir).len()
}

/// Removes the scratch directories (`task-cni-fuzz-PID` in /dev/shm or the temp dir) of fuzz
/// processes that are gone.
fn sweep_scratch() {
    for base in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("task-cni-fuzz-") else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Runs one target for the campaign's time; returns its line of figures and whether it found
/// something.
fn fuzz_one(s: &Settings, bin: &Path, t: &str) -> Res<(String, bool)> {
    let fuzz = fuzz_dir();
    let work = fuzz.join("corpus-work").join(t);
    let art = fuzz.join("artifacts").join(t);
    let corpus = fuzz.join("corpus").join(t);
    for d in [&work, &art, &corpus] {
        std::fs::create_dir_all(d).or_else(|e| fail(format!("mkdir {}: {e}", d.display())))?;
    }
    let before = count_files(&art);
    let mut cmd = Command::new(bin.join(t));
    cmd.arg(format!("-max_total_time={}", s.secs))
        .arg(format!("-timeout={}", s.timeout))
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", art.display()));
    let dict = fuzz.join("dicts").join(format!("{t}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    cmd.arg(&work).arg(&corpus);
    let regressions = fuzz.join("regressions").join(t);
    if regressions.is_dir() {
        cmd.arg(&regressions);
    }
    let t0 = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .or_else(|e| fail(format!("cannot run {t}: {e}")))?;
    let secs = t0.elapsed().as_secs();
    sweep_scratch();
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let execs: u64 = log
        .lines()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .filter_map(|v| v.trim().parse().ok())
        .next_back()
        .unwrap_or(0);
    let rate = execs.checked_div(secs).unwrap_or(0);
    let found = count_files(&art).saturating_sub(before);
    let finding = !out.status.success() || found > 0;
    if finding {
        eprintln!("fuzz: {t} stopped ({}) with a finding; log:", out.status);
        for l in log
            .lines()
            .filter(|l| {
                ["panicked", "ERROR", "SUMMARY", "Test unit written"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .take(8)
        {
            eprintln!("{l}");
        }
    }
    let line = format!(
        "{t:<18} {secs:>8} {execs:>12} {rate:>9} {:>8} {found:>9}",
        count_files(&work)
    );
    if s.merge {
        let merged = Command::new(bin.join(t))
            .arg("-merge=1")
            .arg(format!("-timeout={}", s.timeout))
            .arg(&corpus)
            .arg(&work)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !merged.is_ok_and(|st| st.success()) {
            eprintln!("fuzz: merge of {t} failed");
        }
    }
    Ok((line, finding))
}

fn append_log(log: &Path, s: &Settings, lines: &[String]) -> Res<()> {
    let rev = Command::new("git")
        .current_dir(root())
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut text = format!(
        "# {date} rev {rev} sanitizer {}, {} s per target\n",
        s.sanitizer, s.secs
    );
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .or_else(|e| fail(format!("append to {}: {e}", log.display())))
}
