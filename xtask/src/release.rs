//! `cargo xtask release`: the plugins built statically, each checked to be static, against musl
//! when its Rust target is installed (`rustup target add x86_64-unknown-linux-musl`), else
//! against glibc (`+crt-static`), with a warning. Static: no dynamic loader work at start-up,
//! ~0.25 ms less per exec than a dynamic binary. musl rather than glibc: none of the `cpuid`
//! probing a static glibc does at start, which traps in a virtual machine (~0.15 ms less per
//! exec here), and a third less peak RSS. Both are linked by rust-lld (`--symbol-ordering-file`).
//!
//! The flags go through `CARGO_TARGET_<TRIPLE>_RUSTFLAGS` with an explicit `--target`: with
//! `--target`, cargo does not apply target rustflags to build scripts and proc-macros, which
//! must stay dynamic (rustc cannot load a static proc-macro). `RUSTFLAGS` would override the
//! target variable, so its content is moved into it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::dist::GitState;
use crate::util::{self, Res, fail, root};

/// The plugin binaries: what `release` builds by default and checks.
pub const PLUGINS: [&str; 5] = ["loopback", "ipam", "bridge", "eni", "branch-eni"];

/// A target the release build can take.
struct Target {
    triple: &'static str,
    /// its C library: the directory of its link orders in `packaging/symbol-order/`
    libc: &'static str,
    /// cargo's rustflags variable for it
    rustflags_var: &'static str,
    /// whether `cc` links it with the system's `ld` unless told otherwise ([`Toolchain::lld_flags`])
    system_ld: bool,
}

const MUSL: Target = Target {
    triple: "x86_64-unknown-linux-musl",
    libc: "musl",
    rustflags_var: "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
    system_ld: true,
};

const GNU: Target = Target {
    triple: "x86_64-unknown-linux-gnu",
    libc: "gnu",
    rustflags_var: "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
    system_ld: false,
};

/// What the toolchain in use says of itself: its sysroot and host triple.
struct Toolchain {
    sysroot: PathBuf,
    host: String,
}

impl Toolchain {
    fn probe() -> Res<Toolchain> {
        let rustc = |args: &[&str]| {
            util::output(
                Command::new("rustc").current_dir(root()).args(args),
                "rustc",
            )
        };
        let vv = rustc(&["-vV"])?;
        let Some(host) = vv.lines().find_map(|l| l.strip_prefix("host: ")) else {
            return fail("rustc -vV names no host");
        };
        let sysroot = rustc(&["--print", "sysroot"])?;
        Ok(Toolchain {
            sysroot: PathBuf::from(sysroot.trim()),
            host: host.trim().to_string(),
        })
    }

    fn rustlib(&self, triple: &str) -> PathBuf {
        self.sysroot.join("lib/rustlib").join(triple)
    }

    /// musl when its standard library is installed, else glibc (with a warning).
    fn target(&self) -> &'static Target {
        if self.rustlib(MUSL.triple).join("lib").is_dir() {
            &MUSL
        } else {
            eprintln!(
                "release: WARNING: the Rust target {} is not installed (rustup target add {}): \
                 building against glibc instead ({})",
                MUSL.triple, MUSL.triple, GNU.triple
            );
            &GNU
        }
    }

    /// rustc flags that make `cc` link with the toolchain's rust-lld: its `gcc-ld` directory
    /// (whose `ld.lld` runs rust-lld) first in the linker's search (`-B`), and `-fuse-ld=lld`.
    /// The musl target links with the system's `ld` otherwise, which knows no
    /// `--symbol-ordering-file` (the glibc target uses rust-lld already).
    fn lld_flags(&self) -> Res<String> {
        let dir = self.rustlib(&self.host).join("bin/gcc-ld");
        let dir = dir.to_string_lossy();
        if !Path::new(&*dir).join("ld.lld").is_file() || dir.contains(char::is_whitespace) {
            return fail(format!(
                "no usable rust-lld wrapper {dir}/ld.lld (a toolchain without rust-lld, or a path with spaces)"
            ));
        }
        Ok(format!("-Clink-arg=-B{dir} -Clink-arg=-fuse-ld=lld"))
    }
}

pub fn run(args: &[String]) -> Res<()> {
    let selection = selection(args)?;
    let out = build_static(&selection, &[], &crate::dist::git_state())?;
    let mut found = 0;
    for p in PLUGINS {
        let bin = out.join(p);
        if !bin.is_file() {
            continue;
        }
        found += 1;
        let how = check_static(&bin)?;
        let size = bin.metadata().map(|m| m.len()).unwrap_or(0);
        eprintln!("release: {p}: static ({size} bytes; {how})");
    }
    if found == 0 {
        return fail(format!(
            "no plugin binary ({}) in {}",
            PLUGINS.join(" "),
            out.display()
        ));
    }
    println!("{}", out.display());
    Ok(())
}

/// The cargo selection for plugin names given as `NAME`, `-p NAME` or `--bin NAME` (binaries,
/// not packages: the `ipam` binary's package is `ipam-plugin`, `ipam` is the library); all five
/// when none is given.
pub fn selection(args: &[String]) -> Res<Vec<String>> {
    let names: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "-p" && *a != "--bin")
        .collect();
    let names = if names.is_empty() {
        PLUGINS.to_vec()
    } else {
        names
    };
    let mut sel = Vec::new();
    for n in names {
        if !PLUGINS.contains(&n) {
            return fail(format!(
                "release: {n:?} is not a plugin ({})",
                PLUGINS.join(" ")
            ));
        }
        sel.extend(["--bin".to_string(), n.to_string()]);
    }
    Ok(sel)
}

/// `cargo rustc --locked --release --target <musl or glibc>` for each plugin of SELECTION
/// ([`link_ordered`]; `extra`: more rustc flags for the binaries) with static linking and the
/// release version (`TASK_CNI_VERSION`, `SOURCE_DATE_EPOCH`: see `dist`, so `release` and `dist`
/// share one build); returns the directory holding the binaries.
pub fn build_static(selection: &[String], extra: &[&str], git: &GitState) -> Res<PathBuf> {
    let toolchain = Toolchain::probe()?;
    build_for(&toolchain, toolchain.target(), selection, extra, git)
}

/// [`build_static`] for `target`.
fn build_for(
    toolchain: &Toolchain,
    target: &Target,
    selection: &[String],
    extra: &[&str],
    git: &GitState,
) -> Res<PathBuf> {
    if std::env::consts::ARCH != "x86_64" {
        return fail("only x86_64 hosts are supported");
    }
    if std::env::var_os("CARGO_ENCODED_RUSTFLAGS").is_some_and(|v| !v.is_empty()) {
        return fail(
            "CARGO_ENCODED_RUSTFLAGS is set; it would override the static-linking flag: unset it",
        );
    }
    let var = target.rustflags_var;
    let mut flags = String::new();
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        flags.push_str(&v.to_string_lossy());
        flags.push(' ');
    }
    if let Some(v) = std::env::var_os("RUSTFLAGS").filter(|v| !v.is_empty()) {
        let v = v.to_string_lossy();
        eprintln!("release: moving RUSTFLAGS='{v}' into {var}");
        flags.push_str(&v);
        flags.push(' ');
    }
    // non-PIE: a static-pie relocates itself at start-up, reading all of `.rela.dyn` and
    // dirtying `.data.rel.ro` and the GOT; linked at a fixed address there is nothing to do
    flags.push_str("-C target-feature=+crt-static -C relocation-model=static");
    if target.system_ld {
        flags.push(' ');
        flags.push_str(&toolchain.lld_flags()?);
    }
    let env = crate::dist::build_env(git);
    for bin in selection.iter().filter(|a| PLUGINS.contains(&a.as_str())) {
        link_ordered(target, bin, &flags, extra, &env)?;
    }
    let out = util::target_dir()?.join(target.triple).join("release");
    if !out.is_dir() {
        return fail(format!("no output directory {}", out.display()));
    }
    Ok(out)
}

/// The plugins `symbol-order` profiles (branch-eni is linked as built).
const ORDERED: [&str; 4] = ["loopback", "ipam", "bridge", "eni"];

/// `cargo xtask symbol-order`: the plugins built unstripped, profiled by
/// `scripts/symbol-order.sh` into `packaging/symbol-order/<libc>/` (the C library the build took:
/// the names of a musl and a glibc build differ), then built again for release.
pub fn symbol_order(args: &[String]) -> Res<()> {
    if !args.is_empty() {
        return Err(util::Failure::Usage(
            "symbol-order takes no arguments".into(),
        ));
    }
    let names: Vec<String> = ORDERED.iter().map(|s| s.to_string()).collect();
    let sel = selection(&names)?;
    let git = crate::dist::git_state();
    let toolchain = Toolchain::probe()?;
    let target = toolchain.target();
    let out = build_for(&toolchain, target, &sel, &["-Cstrip=none"], &git)?;
    let dir = order_dir(target);
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts").join("symbol-order.sh"))
        .arg(&out)
        .arg(&dir);
    util::status(&mut cmd, "scripts/symbol-order.sh")?;
    let out = build_for(&toolchain, target, &sel, &[], &git)?;
    eprintln!(
        "symbol-order: wrote {}; release build in {}",
        dir.display(),
        out.display()
    );
    Ok(())
}

/// Where the link orders of a `target` build are (`cargo xtask symbol-order` writes them): one
/// file per plugin listing its functions in the order an invocation first runs them.
fn order_dir(target: &Target) -> PathBuf {
    root()
        .join("packaging")
        .join("symbol-order")
        .join(target.libc)
}

/// The package holding the `plugin` binary.
fn package_of(plugin: &str) -> &str {
    if plugin == "ipam" {
        "ipam-plugin"
    } else {
        plugin
    }
}

/// Builds `plugin` (`cargo rustc`, one binary at a time), linked with `--symbol-ordering-file`: the functions a run touches first in the
/// text, together, instead of spread over the whole binary. The kernel maps a binary's pages
/// 64 KiB around every page touched ("fault-around"), so touched code spread over the binary
/// makes almost all of it resident; grouped, an ADD's peak RSS is a third smaller and it takes
/// fewer page faults. The flags apply to the binary crate alone, so the libraries, and
/// with them the symbol names the file lists, do not depend on the file. Names no longer in the binary are ignored; without the file the
/// binary is linked as built. `extra` are more rustc flags for the binary
/// (`symbol-order` passes `-C strip=none` to read the names).
fn link_ordered(
    target: &Target,
    plugin: &str,
    flags: &str,
    extra: &[&str],
    env: &[(String, String)],
) -> Res<()> {
    let file = order_dir(target).join(format!("{plugin}.txt"));
    let mut cargo = util::cargo();
    cargo
        .current_dir(root())
        .env_remove("RUSTFLAGS")
        .env(target.rustflags_var, flags)
        .envs(env.iter().cloned())
        .args(["rustc", "--locked", "--release", "--target", target.triple])
        .args(["-p", package_of(plugin), "--bin", plugin, "--"]);
    if file.is_file() {
        cargo.arg(format!(
            "-Clink-arg=-Wl,--symbol-ordering-file={}",
            file.display()
        ));
        cargo.arg("-Clink-arg=-Wl,--no-warn-symbol-ordering");
    }
    cargo.args(extra);
    util::status(&mut cargo, &format!("cargo rustc --bin {plugin}"))
}

/// Checks that `bin` is statically linked: `ldd` must call it static or not dynamic, and
/// `file` (when installed) static(-pie). Returns what they said.
pub fn check_static(bin: &Path) -> Res<String> {
    let ldd = Command::new("ldd")
        .arg(bin)
        .env("LC_ALL", "C")
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.trim().to_string()
        })
        .or_else(|e| fail(format!("cannot run ldd: {e}")))?;
    if !(ldd.contains("not a dynamic executable") || ldd.contains("statically linked")) {
        return fail(format!("{} is dynamically linked:\n{ldd}", bin.display()));
    }
    if !util::on_path("file") {
        return Ok(format!("ldd: {}", ldd.replace('\n', " ")));
    }
    let file = util::output(Command::new("file").arg("-b").arg(bin), "file -b")?;
    let file = file.trim();
    if !(file.contains("static-pie linked") || file.contains("statically linked")) {
        return fail(format!(
            "{} is not static according to file(1): {file}",
            bin.display()
        ));
    }
    Ok(file.split(", BuildID").next().unwrap_or(file).to_string())
}
