//! `cargo xtask test TIER`: the test tiers, each runnable on its own (README.md, "Tests").
//!
//! - `unit`: everything that needs no root: the unit tests of every library and binary, the
//!   integration tests beside their crates (golden bytes, stores, dispatcher), the doc tests
//!   and the fuzz replay (`fuzz-replay/`). Runs as any user.
//! - `netns` (root): the black-box tests of the plugins in network namespaces
//!   (`tests/netns/`), and the unit tests marked `#[ignore = "needs root: ..."]` in the
//!   libraries (they enter namespaces).
//! - `system` (root): the plugins under real clients and kernels (`tests/system/`): podman,
//!   cnitool, containerd, the awsvpc demo, install, user-mode-linux.
//! - `all`: the three in that order, stopping at the first failing one.
//!
//! Arguments after the tier go to every `cargo` call (e.g. `--locked`, `--release`); a `--`
//! and what follows go to every test binary (e.g. a name filter).

use std::process::Command;

use crate::util::{self, Failure, Res, root};

/// The packages that hold the namespace and system tiers; the unit tier is the rest.
const NETNS_PKG: &str = "netns-tests";
const SYSTEM_PKG: &str = "system-tests";

pub fn run(args: &[String]) -> Res<()> {
    let Some((tier, rest)) = args.split_first() else {
        return Err(Failure::Usage(
            "test needs a tier: unit | netns | system | all".into(),
        ));
    };
    let (cargo_args, test_args) = match rest.iter().position(|a| a == "--") {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let t = Tiers {
        cargo_args,
        test_args,
    };
    match tier.as_str() {
        "unit" => t.unit(),
        "netns" => t.netns(),
        "system" => t.system(),
        "all" => {
            t.unit()?;
            t.netns()?;
            t.system()
        }
        other => Err(Failure::Usage(format!(
            "unknown test tier {other:?} (unit | netns | system | all)"
        ))),
    }
}

struct Tiers<'a> {
    cargo_args: &'a [String],
    test_args: &'a [String],
}

impl Tiers<'_> {
    fn unit(&self) -> Res<()> {
        say("unit tier (no root needed)");
        self.cargo_test(
            &[
                "--workspace",
                "--exclude",
                NETNS_PKG,
                "--exclude",
                SYSTEM_PKG,
            ],
            &[],
        )
    }

    fn netns(&self) -> Res<()> {
        say("namespace tier (root)");
        require_root("netns")?;
        self.build_plugins()?;
        self.cargo_test(&["-p", NETNS_PKG], &[])?;
        // the library unit tests that enter namespaces: #[ignore]d in the unit tier
        self.cargo_test(
            &[
                "--workspace",
                "--exclude",
                NETNS_PKG,
                "--exclude",
                SYSTEM_PKG,
                "--lib",
            ],
            &["--ignored"],
        )
    }

    fn system(&self) -> Res<()> {
        say("system tier (root: podman, cnitool, containerd, user-mode-linux)");
        require_root("system")?;
        self.build_plugins()?;
        self.cargo_test(&["-p", SYSTEM_PKG], &[])
    }

    /// The black-box tests run the plugin binaries of the same profile.
    fn build_plugins(&self) -> Res<()> {
        let mut cargo = util::cargo();
        cargo
            .current_dir(root())
            .args(["build", "--workspace", "--bins"])
            .args(self.cargo_args);
        util::status(&mut cargo, "cargo build --workspace --bins")
    }

    fn cargo_test(&self, selection: &[&str], harness_args: &[&str]) -> Res<()> {
        let mut cargo = util::cargo();
        cargo
            .current_dir(root())
            .arg("test")
            .args(self.cargo_args)
            .args(selection);
        if !harness_args.is_empty() || !self.test_args.is_empty() {
            cargo.arg("--").args(harness_args).args(self.test_args);
        }
        let what = describe(&cargo);
        eprintln!("xtask test: {what}");
        util::status(&mut cargo, &what)
    }
}

fn say(what: &str) {
    eprintln!("\n==> xtask test: {what}");
}

fn describe(cmd: &Command) -> String {
    std::iter::once("cargo".to_string())
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The namespace and system tiers create network namespaces, mounts and VMs.
fn require_root(tier: &str) -> Res<()> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    match euid {
        Some("0") => Ok(()),
        Some(uid) => util::fail(format!(
            "the {tier} tier needs root (effective uid {uid}); `cargo xtask test unit` does not"
        )),
        None => util::fail("cannot read the effective uid from /proc/self/status"),
    }
}
