//! `cargo xtask`: the project's tooling, as one std-only binary of the workspace (the alias is
//! in `.cargo/config.toml`). Every command prints its result (a path, a table) on stdout and
//! its progress and the output of the tools it runs on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool: that is its interface

mod deps;
mod dist;
mod fuzz;
mod release;
mod shell;
mod test;
mod util;
#[path = "../../crates/cni-spec/version_rule.rs"]
mod version_rule;

use std::process::ExitCode;

use util::{Failure, Res, root};

const HELP: &str = "\
cargo xtask COMMAND [ARGS...]: the tooling of task-cni

Build:
  release [CARGO-BUILD-ARGS...]
      static release build (glibc, +crt-static) of the five plugins (loopback ipam bridge eni
      branch-eni; arguments replace that selection, e.g. `-p eni`); checks that every plugin
      binary is static; prints the directory holding them on the last line of stdout
  symbol-order
      regenerate packaging/symbol-order/<musl or gnu>/<plugin>.txt (the link order `release` uses: the
      functions an invocation runs, together): builds the plugins unstripped, runs their verbs
      under valgrind's callgrind in a simulated host (scripts/symbol-order.sh), then rebuilds
      them for release
  dist [--check]
      the release artifacts in dist/ from that build: task-cni-<version>-linux-amd64.tgz (the
      plugins, LICENSE, README), task-cni_<version>_amd64.deb (/opt/cni/bin, the opt-in ECS
      names as task-cni-ecs-names; dpkg-deb) and SHA256SUMS; <version> is the workspace
      version, +g<shortrev> unless HEAD is the tag v<version> (.dirty with local changes);
      prints each artifact and its size. --check then verifies them: checksums, members,
      control file, dpkg-deb -c, and unpacked: static, --version, about line, ECS names
  dist-check
      that verification alone, on the artifacts in dist/ for the checkout's version
  cnitool [DEST_DIR]
      build cnitool from Debian's source package (scripts/build-cnitool.sh); prints its path
  cri-client [DEST_DIR]
      generate the Python CRI API module for tests/system/tests/containerd from Debian's containerd
      source package (scripts/build-cri-client.sh); prints its directory
  ecs-ipam-go [DEST_DIR]
      build the Go double of Amazon's ecs-ipam store (scripts/build-ecs-ipam-go.sh); prints
      its path

Fixtures for scripts (benchmarks, examples):
  fixture ARGS...
      the netns-fixture CLI: simulated hosts in named network namespaces (`up NAME ...`,
      `add`, `spawn`, `show`, `down NAME`, `list`; `cargo xtask fixture help`)
  fixture-bin
      build that CLI and print its path (scripts call it directly afterwards)

Fuzzing (fuzz/README.md):
  fuzz [run] [--merge] [SECONDS] [TARGET...]
      a libFuzzer campaign, SECONDS (default 60) per target, one line of figures per target;
      the generated corpus (fuzz/corpus.tar.xz) is unpacked first; --merge minimises the
      working corpus back into fuzz/corpus/ and repacks the archive
  fuzz unpack
      unpack fuzz/corpus.tar.xz into fuzz/corpus/<target>/ (beside the seeds; git ignores it)
  fuzz pack
      pack every non-seed input of fuzz/corpus/<target>/ into fuzz/corpus.tar.xz (reproducibly)

Tests (README.md, section Tests; tests/run-all.sh runs `test all`):
  test unit | netns | system | all [CARGO-ARGS...] [-- TEST-ARGS...]
      unit: every test that needs no root (libraries, binaries, golden bytes, stores, fuzz
      replay), as any user; netns (root): the plugins in network namespaces (tests/netns)
      and the libraries' root-only unit tests; system (root): podman, cnitool, containerd,
      the demo, install, user-mode-linux (tests/system); all: the three in order

Checks (tests/run-all.sh runs them):
  unused-deps
      fail when a workspace crate declares a dependency its sources never name
  shellcheck
      shellcheck -S warning on every tracked shell script
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &args[..]),
    };
    let result = match cmd {
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        "release" => release::run(rest),
        "symbol-order" => release::symbol_order(rest),
        "dist" => dist::run(rest),
        "dist-check" => dist::check_only(rest),
        "cnitool" => util::run_script("build-cnitool.sh", rest),
        "ecs-ipam-go" => util::run_script("build-ecs-ipam-go.sh", rest),
        "cri-client" => util::run_script("build-cri-client.sh", rest),
        "fixture" => fixture(rest),
        "fixture-bin" => fixture_bin(rest),
        "fuzz" => fuzz::run(rest),
        "unused-deps" => deps::run(rest),
        "shellcheck" => shell::run(rest),
        "test" => test::run(rest),
        other => Err(Failure::Usage(format!("unknown command {other:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("xtask: {msg} (cargo xtask help: the commands)");
            ExitCode::from(2)
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the `netns-fixture` binary (debug profile: it panics on setup failures, and
/// unwinding deletes what it had made) and returns its path.
fn build_fixture() -> Res<std::path::PathBuf> {
    let mut cargo = util::cargo();
    cargo
        .current_dir(root())
        .args(["build", "--quiet", "--locked", "-p", "netns-fixtures"])
        .args(["--bin", "netns-fixture"]);
    util::status(
        &mut cargo,
        "cargo build -p netns-fixtures --bin netns-fixture",
    )?;
    let bin = util::target_dir()?.join("debug").join("netns-fixture");
    if !bin.is_file() {
        return Err(Failure::Failed(format!("{} was not built", bin.display())));
    }
    Ok(bin)
}

fn fixture(args: &[String]) -> Res<()> {
    let bin = build_fixture()?;
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(args);
    util::exec(cmd)
}

fn fixture_bin(args: &[String]) -> Res<()> {
    if !args.is_empty() {
        return Err(Failure::Usage("fixture-bin takes no arguments".into()));
    }
    println!("{}", build_fixture()?.display());
    Ok(())
}
