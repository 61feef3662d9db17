//! The CI smoke of the fuzz targets: every committed input of a target goes through the same
//! function libFuzzer calls (`fuzz/src/lib.rs`, this crate's `targets`), under plain `cargo test` on the
//! stable toolchain, without libFuzzer. The inputs of `<target>`: the seeds and anything else
//! in `fuzz/corpus/<target>/`, the generated corpus in `fuzz/corpus.tar.xz` (unpacked for the
//! test into a temporary directory with the system `tar`/`xz`; a file of the same name already
//! in `fuzz/corpus/<target>/` is not replayed twice) and `fuzz/regressions/<target>/`. A
//! regression input is a former finding (a panic, a violated property, a hang); it must pass
//! from now on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fuzz_replay::targets;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// `corpus/<target>/` of `fuzz/corpus.tar.xz`, unpacked into a temporary directory that is
/// removed on drop.
struct Unpacked(PathBuf);

impl Unpacked {
    fn new(target: &str) -> Unpacked {
        let archive = fuzz_dir().join("corpus.tar.xz");
        assert!(archive.is_file(), "{} is missing", archive.display());
        let dir = std::env::temp_dir().join(format!(
            "fuzz-replay-{target}-{}-{}",
            std::process::id(),
            netns_fixtures::unique_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = Unpacked(dir);
        let out = Command::new("tar")
            .arg("-xJf")
            .arg(&archive)
            .arg("-C")
            .arg(&tmp.0)
            .arg(format!("corpus/{target}"))
            .stdin(Stdio::null())
            .output()
            .expect("run tar (and xz)");
        assert!(
            out.status.success(),
            "tar -xJf {} corpus/{target}: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        tmp
    }

    fn dir(&self, target: &str) -> PathBuf {
        self.0.join("corpus").join(target)
    }
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The regular files of `dir` (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.path())
        .collect()
}

/// The inputs of `target`: (path, bytes), sorted by path (archived inputs are named by their
/// place in `fuzz/corpus/`).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let corpus = fuzz_dir().join("corpus").join(target);
    let unpacked = Unpacked::new(target);
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for path in files(&corpus) {
        seen.insert(path.file_name().unwrap().to_owned());
        out.push((path.clone(), std::fs::read(&path).unwrap()));
    }
    for path in files(&unpacked.dir(target)) {
        let name = path.file_name().unwrap().to_owned();
        if seen.insert(name.clone()) {
            out.push((corpus.join(&name), std::fs::read(&path).unwrap()));
        }
    }
    for path in files(&fuzz_dir().join("regressions").join(target)) {
        out.push((path.clone(), std::fs::read(&path).unwrap()));
    }
    out.sort();
    out
}

/// Runs every input of `target`, naming the input that fails; returns how many ran.
fn replay(target: &str) -> usize {
    let f = targets::TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .unwrap_or_else(|| panic!("no target {target}"))
        .1;
    let all = inputs(target);
    assert!(
        !all.is_empty(),
        "no committed inputs for {target} under {}",
        fuzz_dir().display()
    );
    let t = Instant::now();
    for (path, bytes) in &all {
        let r = std::panic::catch_unwind(|| f(bytes));
        assert!(
            r.is_ok(),
            "fuzz target {target} fails on {} (replay with: cargo xtask fuzz unpack; cd fuzz \
             && RUSTC_BOOTSTRAP=1 cargo fuzz run {target} -s none {})",
            path.display(),
            path.display()
        );
    }
    eprintln!("{target}: {} inputs in {:?}", all.len(), t.elapsed());
    all.len()
}

#[test]
fn every_fuzz_target_has_a_test_here() {
    let listed: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .flatten()
        .map(|e| e.path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut listed = listed;
    listed.sort();
    let mut ours: Vec<String> = targets::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    ours.sort();
    assert_eq!(listed, ours, "fuzz_targets/ and TARGETS disagree");
    let tested = [
        "cni_args",
        "netconf",
        "result",
        "dispatch",
        "ipam_config",
        "ipam_store_parse",
        "ipam_store",
        "eni_config",
        "bridge_config",
        "branch_eni_config",
        "boltdb",
    ];
    for t in &ours {
        assert!(tested.contains(&t.as_str()), "{t} has no replay test");
    }
}

#[test]
fn replay_cni_args() {
    assert!(replay("cni_args") >= 10);
}

#[test]
fn replay_netconf() {
    assert!(replay("netconf") >= 6);
}

#[test]
fn replay_result() {
    assert!(replay("result") >= 5);
}

#[test]
fn replay_dispatch() {
    assert!(replay("dispatch") >= 50);
}

#[test]
fn replay_ipam_config() {
    assert!(replay("ipam_config") >= 16);
}

#[test]
fn replay_ipam_store_parse() {
    assert!(replay("ipam_store_parse") >= 7);
}

#[test]
fn replay_ipam_store() {
    let t = Instant::now();
    assert!(replay("ipam_store") >= 6);
    assert!(t.elapsed() < Duration::from_secs(120));
}

#[test]
fn replay_eni_config() {
    assert!(replay("eni_config") >= 18);
}

#[test]
fn replay_bridge_config() {
    assert!(replay("bridge_config") >= 9);
}

#[test]
fn replay_branch_eni_config() {
    assert!(replay("branch_eni_config") >= 6);
}

#[test]
fn replay_boltdb() {
    assert!(replay("boltdb") >= 5);
}

/// The fuzz project stays out of the root workspace (it needs nightly flags).
#[test]
fn fuzz_project_is_its_own_workspace() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    let root = std::fs::read_to_string(fuzz_dir().join("../Cargo.toml")).unwrap();
    let members = root
        .lines()
        .find(|l| l.starts_with("members"))
        .expect("root members");
    // (this crate, fuzz-replay, is a member; the fuzz project is not, by name or by glob)
    let entries: Vec<&str> = members.split('"').skip(1).step_by(2).collect();
    assert!(
        !entries.is_empty()
            && entries
                .iter()
                .all(|m| *m != "fuzz" && !m.starts_with("fuzz/") && *m != "*"),
        "{members}"
    );
}
