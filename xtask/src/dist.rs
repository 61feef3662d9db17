//! `cargo xtask dist [--check]`: the release artifacts in `dist/`, from the static build of
//! `cargo xtask release`:
//!
//! - `task-cni-<version>-linux-amd64.tgz`: the five plugins, LICENSE and a short README
//!   (`packaging/README`), flat as the reference plugins' tarball is (`tar -C /opt/cni/bin`);
//! - `task-cni_<version>_amd64.deb`: the plugins in `/opt/cni/bin`, the opt-in ECS names as a
//!   command (`/usr/sbin/task-cni-ecs-names`, from `packaging/`) and a `prerm` that removes
//!   those links when the package is removed; built with `dpkg-deb` (Debian's own tool, already
//!   on the machine: the package needs nothing that `cargo-deb` would add, and it keeps
//!   xtask std-only);
//! - `SHA256SUMS` over both (`sha256sum`'s output format; `sha256sum -c` reads it).
//!
//! `<version>` ([`version_string`]): the workspace version for a build of the tag
//! `v<version>` with clean tracked files, else `<version>+g<shortrev>` (`.dirty` appended
//! when tracked files differ from HEAD): semver build metadata, and a valid Debian version
//! that sorts after `<version>`. The build gets it as `TASK_CNI_VERSION` (cni-spec's build
//! script embeds it), so every binary's `--version` and about line name it. Timestamps come
//! from the commit (`SOURCE_DATE_EPOCH`), so the archives do not change between two runs.
//!
//! `--check` then verifies what was written: the checksums, the tarball's members, the
//! package's control file and file list (`dpkg-deb -c`), and, unpacked (`tar -x`,
//! `dpkg-deb -x`), that every plugin is static and names the version in `--version` and its
//! about line, and that the ECS-name command links, refuses and unlinks as documented.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::release::{self, PLUGINS};
use crate::util::{self, Failure, Res, fail, root};

/// The package (and tarball) name.
const PACKAGE: &str = "task-cni";
/// Where the package installs the plugins.
const CNI_BIN: &str = "opt/cni/bin";
/// The opt-in command for the ECS names.
const ECS_NAMES_CMD: &str = "usr/sbin/task-cni-ecs-names";
const DOC_DIR: &str = "usr/share/doc/task-cni";
/// The names the ECS agent calls, and the plugin each one is.
pub const ECS_NAMES: [(&str, &str); 5] = [
    ("ecs-eni", "eni"),
    ("vpc-eni", "eni"),
    ("vpc-branch-eni", "branch-eni"),
    ("ecs-ipam", "ipam"),
    ("ecs-bridge", "bridge"),
];

pub use crate::version_rule::{GitState, version_string};

/// Whether `v` is a Debian version (deb-version(7)): `[epoch:]upstream[-revision]`, the
/// upstream part starting with a digit and made of alphanumerics and `.+~` (and `-` when there
/// is a revision), the revision of alphanumerics and `.+~`.
pub fn is_debian_version(v: &str) -> bool {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, v),
    };
    if epoch.is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    let ok = |s: &str, extra: &[u8]| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b) || extra.contains(&b))
    };
    upstream.starts_with(|c: char| c.is_ascii_digit())
        && ok(upstream, if revision.is_some() { b"-" } else { b"" })
        && revision.is_none_or(|r| !r.is_empty() && ok(r, b""))
}

pub fn tgz_name(version: &str) -> String {
    format!("{PACKAGE}-{version}-linux-amd64.tgz")
}

pub fn deb_name(version: &str) -> String {
    format!("{PACKAGE}_{version}_amd64.deb")
}

/// The package's `DEBIAN/control`.
pub fn control(version: &str, installed_kib: u64) -> String {
    format!(
        "Package: {PACKAGE}
Version: {version}
Architecture: amd64
Maintainer: task-cni maintainers <task-cni@example.invalid>
Installed-Size: {installed_kib}
Section: net
Priority: optional
Recommends: nftables
Description: CNI plugins for container task networking (ECS awsvpc, bridge)
 Static CNI plugins installed into /opt/cni/bin: loopback, ipam (host-local
 and ecs-ipam stores), bridge, eni and branch-eni; drop-in replacements for
 the CNI reference plugins and Amazon's ECS/VPC plugins, CNI spec 0.3.0 to
 1.1.0.
 .
 The names the ECS agent calls (ecs-eni, vpc-eni, vpc-branch-eni, ecs-ipam,
 ecs-bridge) are not installed, so that the package never shadows Amazon's
 plugins: `task-cni-ecs-names install` links them.
"
    )
}

/// `SHA256SUMS` in `sha256sum`'s format: `<hex>  <name>` (two spaces: binary and text mode
/// are the same on Linux), one line per file, in the given order.
pub fn render_sums(sums: &[(String, String)]) -> String {
    sums.iter()
        .map(|(hex, name)| format!("{hex}  {name}\n"))
        .collect()
}

/// Reads `SHA256SUMS` back: the names, each with its hash; `None` when a line is malformed.
pub fn parse_sums(text: &str) -> Option<BTreeMap<String, String>> {
    text.lines()
        .map(|l| {
            let (hex, name) = l.split_once("  ")?;
            let well_formed = hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                && !name.is_empty()
                && !name.contains('/');
            well_formed.then(|| (name.to_string(), hex.to_string()))
        })
        .collect()
}

/// One entry of an archive: its path, `d` or `-` or `l`, and permission bits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub path: String,
    pub kind: char,
    pub mode: u32,
}

fn entry(path: &str, kind: char, mode: u32) -> Entry {
    Entry {
        path: path.to_string(),
        kind,
        mode,
    }
}

/// The tarball's members (flat, like the reference plugins' tarball).
pub fn tgz_entries() -> Vec<Entry> {
    let mut out: Vec<Entry> = PLUGINS.iter().map(|p| entry(p, '-', 0o755)).collect();
    out.push(entry("LICENSE", '-', 0o644));
    out.push(entry("README", '-', 0o644));
    out.sort();
    out
}

/// The package's data members, as `dpkg-deb -c` lists them (`./`-prefixed, directories with
/// a trailing `/`).
pub fn deb_entries() -> Vec<Entry> {
    let mut out = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    for p in PLUGINS {
        files.push((format!("{CNI_BIN}/{p}"), 0o755));
    }
    files.push((ECS_NAMES_CMD.to_string(), 0o755));
    files.push((format!("{DOC_DIR}/README"), 0o644));
    files.push((format!("{DOC_DIR}/copyright"), 0o644));
    for (f, _) in &files {
        let mut d = Path::new(f).parent();
        while let Some(dir) = d.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(dir.display().to_string());
            d = dir.parent();
        }
    }
    out.push(entry("./", 'd', 0o755));
    for d in dirs {
        out.push(entry(&format!("./{d}/"), 'd', 0o755));
    }
    for (f, mode) in files {
        out.push(entry(&format!("./{f}"), '-', mode));
    }
    out.sort();
    out
}

/// Parses `tar -tv` / `dpkg-deb -c` lines (`-rwxr-xr-x root/root 123 2024-01-01 00:00 name`):
/// each entry, and its owner.
pub fn parse_listing(text: &str) -> Option<Vec<(Entry, String)>> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (perm, owner) = (f.first()?, f.get(1)?);
            let path = f.get(5..)?.join(" ");
            let path = path.split(" -> ").next()?.to_string();
            let kind = perm.chars().next()?;
            let mode = perm.chars().skip(1).try_fold(0u32, |m, c| match c {
                '-' => Some(m << 1),
                'r' | 'w' | 'x' => Some((m << 1) | 1),
                _ => None,
            })?;
            Some((Entry { path, kind, mode }, owner.to_string()))
        })
        .collect()
}

pub fn run(args: &[String]) -> Res<()> {
    let check = match args {
        [] => false,
        [a] if a == "--check" => true,
        _ => return Err(Failure::Usage("dist takes only --check".into())),
    };
    // one reading of git for the binaries' version, the artifacts' names and their dates
    let git = git_state();
    let version = version_string(env!("CARGO_PKG_VERSION"), &git);
    if !is_debian_version(&version) {
        return fail(format!("dist: {version:?} is not a Debian version"));
    }
    let bins = release::build_static(&release::selection(&[])?, &[], &git)?;
    for p in PLUGINS {
        let how = release::check_static(&bins.join(p))?;
        eprintln!("dist: {p}: static ({how})");
    }
    let dist = root().join("dist");
    let artifacts = write_artifacts(&bins, &dist, &version, &git)?;
    for a in &artifacts {
        let size = a.metadata().map(|m| m.len()).unwrap_or(0);
        println!("{}\t{size}", a.display());
    }
    for p in PLUGINS {
        let size = bins.join(p).metadata().map(|m| m.len()).unwrap_or(0);
        eprintln!("dist: {p}: {size} bytes");
    }
    if check {
        check_artifacts(&dist, &version)?;
        println!("dist: {version}: artifacts checked");
    }
    Ok(())
}

/// `cargo xtask dist-check`: verifies the artifacts already in `dist/` for the version of the
/// checkout, without building.
pub fn check_only(args: &[String]) -> Res<()> {
    if !args.is_empty() {
        return Err(Failure::Usage("dist-check takes no arguments".into()));
    }
    let version = version_string(env!("CARGO_PKG_VERSION"), &git_state());
    check_artifacts(&root().join("dist"), &version)?;
    println!("dist-check: {version}: artifacts checked");
    Ok(())
}

/// Git's view of the repository ([`crate::version_rule`]).
pub fn git_state() -> GitState {
    crate::version_rule::git_state(env!("CARGO_PKG_VERSION"), &root())
}

/// The variables the release build runs with: the version cni-spec embeds, and the commit
/// time as `SOURCE_DATE_EPOCH` (unless the caller set one).
pub fn build_env(git: &GitState) -> Vec<(String, String)> {
    let mut env = vec![(
        "TASK_CNI_VERSION".to_string(),
        version_string(env!("CARGO_PKG_VERSION"), git),
    )];
    if let Some(e) = source_date_epoch(git) {
        env.push(("SOURCE_DATE_EPOCH".to_string(), e.to_string()));
    }
    env
}

fn source_date_epoch(git: &GitState) -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .or(git.epoch)
}

/// A directory removed when dropped (on failure too).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Res<Self> {
        let dir = util::target_dir()?.join(format!("{name}.{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).or_else(|e| fail(format!("mkdir {}: {e}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn io<T>(r: std::io::Result<T>, what: impl FnOnce() -> String) -> Res<T> {
    r.or_else(|e| fail(format!("{}: {e}", what())))
}

/// Copies `from` to `to` with `mode`, creating the parent directories (0755).
fn put(from: &Path, to: &Path, mode: u32) -> Res<()> {
    if let Some(parent) = to.parent() {
        mkdirs(parent)?;
    }
    io(fs::copy(from, to), || {
        format!("copy {} to {}", from.display(), to.display())
    })?;
    io(
        fs::set_permissions(to, fs::Permissions::from_mode(mode)),
        || format!("chmod {}", to.display()),
    )
}

fn write(to: &Path, text: &str, mode: u32) -> Res<()> {
    if let Some(parent) = to.parent() {
        mkdirs(parent)?;
    }
    io(fs::write(to, text), || format!("write {}", to.display()))?;
    io(
        fs::set_permissions(to, fs::Permissions::from_mode(mode)),
        || format!("chmod {}", to.display()),
    )
}

/// `mkdir -p` with every created directory 0755 whatever the umask.
fn mkdirs(dir: &Path) -> Res<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        mkdirs(parent)?;
    }
    io(fs::create_dir(dir), || format!("mkdir {}", dir.display()))?;
    io(
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)),
        || format!("chmod {}", dir.display()),
    )
}

fn readme(version: &str) -> Res<String> {
    let path = root().join("packaging").join("README");
    let text = io(fs::read_to_string(&path), || {
        format!("read {}", path.display())
    })?;
    Ok(text.replace("@VERSION@", version))
}

/// Writes the tarball, the package and SHA256SUMS into `dist` (replacing earlier artifacts
/// there); returns their paths.
fn write_artifacts(bins: &Path, dist: &Path, version: &str, git: &GitState) -> Res<Vec<PathBuf>> {
    remove_old_artifacts(dist)?;
    let stage = TempDir::new("dist-stage")?;
    let epoch = source_date_epoch(git).unwrap_or(0).to_string();
    let readme = readme(version)?;
    let tgz = write_tarball(bins, dist, &stage.0, version, &readme, &epoch)?;
    let deb = write_package(bins, dist, &stage.0, version, &readme, &epoch)?;
    let sums_path = write_sums(dist, &[&tgz, &deb])?;
    Ok(vec![tgz, deb, sums_path])
}

/// Removes the artifacts an earlier run left in `dist` (and nothing else).
fn remove_old_artifacts(dist: &Path) -> Res<()> {
    mkdirs(dist)?;
    for old in util::files_in(dist) {
        let name = old.file_name().map(|n| n.to_string_lossy().into_owned());
        let ours = name.is_some_and(|n| {
            n == "SHA256SUMS"
                || (n.starts_with("task-cni-") && n.ends_with(".tgz"))
                || (n.starts_with("task-cni_") && n.ends_with(".deb"))
        });
        if ours {
            io(fs::remove_file(&old), || format!("rm {}", old.display()))?;
        }
    }
    Ok(())
}

/// The tarball: the plugins, LICENSE and README, owned by root, dated `epoch`.
fn write_tarball(
    bins: &Path,
    dist: &Path,
    stage: &Path,
    version: &str,
    readme: &str,
    epoch: &str,
) -> Res<PathBuf> {
    let t = stage.join("tgz");
    mkdirs(&t)?;
    for p in PLUGINS {
        put(&bins.join(p), &t.join(p), 0o755)?;
    }
    put(&root().join("LICENSE"), &t.join("LICENSE"), 0o644)?;
    write(&t.join("README"), readme, 0o644)?;
    let tgz = dist.join(tgz_name(version));
    let tar = stage.join("out.tar");
    let members: Vec<String> = tgz_entries().into_iter().map(|e| e.path).collect();
    util::status(
        Command::new("tar")
            .args(["--sort=name", "--owner=root:0", "--group=root:0"])
            .arg(format!("--mtime=@{epoch}"))
            .args(["--format=gnu", "-C"])
            .arg(&t)
            .arg("-cf")
            .arg(&tar)
            .args(&members),
        "tar -c",
    )?;
    util::status(Command::new("gzip").args(["-9nf"]).arg(&tar), "gzip")?;
    let gz = stage.join("out.tar.gz");
    io(fs::rename(&gz, &tgz), || format!("mv to {}", tgz.display()))?;
    Ok(tgz)
}

/// The .deb: the plugins in /opt/cni/bin, the ECS-name command, docs, control and prerm.
fn write_package(
    bins: &Path,
    dist: &Path,
    stage: &Path,
    version: &str,
    readme: &str,
    epoch: &str,
) -> Res<PathBuf> {
    let d = stage.join("deb");
    for p in PLUGINS {
        put(&bins.join(p), &d.join(CNI_BIN).join(p), 0o755)?;
    }
    let pkg = root().join("packaging");
    put(
        &pkg.join("task-cni-ecs-names"),
        &d.join(ECS_NAMES_CMD),
        0o755,
    )?;
    write(&d.join(DOC_DIR).join("README"), readme, 0o644)?;
    put(
        &root().join("LICENSE"),
        &d.join(DOC_DIR).join("copyright"),
        0o644,
    )?;
    let kib: u64 = deb_entries()
        .iter()
        .filter(|e| e.kind == '-')
        .map(|e| {
            let size = d.join(&e.path).metadata().map(|m| m.len()).unwrap_or(0);
            size.div_ceil(1024)
        })
        .sum();
    write(
        &d.join("DEBIAN").join("control"),
        &control(version, kib),
        0o644,
    )?;
    put(
        &pkg.join("deb").join("prerm"),
        &d.join("DEBIAN/prerm"),
        0o755,
    )?;
    let deb = dist.join(deb_name(version));
    util::status(
        Command::new("dpkg-deb")
            .env("SOURCE_DATE_EPOCH", epoch)
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&d)
            .arg(&deb),
        "dpkg-deb --build",
    )?;
    Ok(deb)
}

/// SHA256SUMS over `files`, written into `dist` and read back.
fn write_sums(dist: &Path, files: &[&PathBuf]) -> Res<PathBuf> {
    let mut sums = Vec::new();
    for f in files {
        let out = util::output(Command::new("sha256sum").arg(f), "sha256sum")?;
        let hex = out
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sums.push((hex, name));
    }
    let sums_path = dist.join("SHA256SUMS");
    write(&sums_path, &render_sums(&sums), 0o644)?;
    if parse_sums(&fs::read_to_string(&sums_path).unwrap_or_default()).map(|m| m.len())
        != Some(files.len())
    {
        return fail(format!("{} is malformed", sums_path.display()));
    }
    Ok(sums_path)
}

/// Verifies the artifacts of `version` in `dist` (see the module documentation).
pub fn check_artifacts(dist: &Path, version: &str) -> Res<()> {
    let tgz = dist.join(tgz_name(version));
    let deb = dist.join(deb_name(version));
    check_sums(dist, version)?;
    let work = TempDir::new("dist-check")?;
    check_tarball(&tgz, &work.0, version)?;
    check_package(&deb, &work.0, version)?;
    Ok(())
}

/// SHA256SUMS lists exactly both artifacts, and they match.
fn check_sums(dist: &Path, version: &str) -> Res<()> {
    let sums_path = dist.join("SHA256SUMS");
    let text = io(fs::read_to_string(&sums_path), || {
        format!("read {}", sums_path.display())
    })?;
    let names: Vec<String> = parse_sums(&text)
        .ok_or_else(|| Failure::Failed(format!("{} is malformed:\n{text}", sums_path.display())))?
        .into_keys()
        .collect();
    let want = {
        let mut w = vec![tgz_name(version), deb_name(version)];
        w.sort();
        w
    };
    if names != want {
        return fail(format!("SHA256SUMS lists {names:?}, expected {want:?}"));
    }
    util::status(
        Command::new("sha256sum")
            .current_dir(dist)
            .args(["--check", "--strict", "SHA256SUMS"]),
        "sha256sum --check SHA256SUMS",
    )
}

/// The tarball: members, owner, modes; unpacked, the plugins, LICENSE and README.
fn check_tarball(tgz: &Path, work: &Path, version: &str) -> Res<()> {
    let listing = util::output(
        Command::new("tar").env("LC_ALL", "C").arg("-tvzf").arg(tgz),
        "tar -tvzf",
    )?;
    expect_listing("tarball", &listing, &tgz_entries())?;
    let t = work.join("tgz");
    mkdirs(&t)?;
    util::status(
        Command::new("tar").arg("-xzf").arg(tgz).arg("-C").arg(&t),
        "tar -xzf",
    )?;
    check_plugins(&t, version)?;
    same_file(&t.join("LICENSE"), &root().join("LICENSE"))?;
    let readme_text = fs::read_to_string(t.join("README")).unwrap_or_default();
    if !readme_text.contains(&format!("task-cni {version} ")) {
        return fail("the tarball's README does not name the version");
    }
    eprintln!(
        "dist --check: {}: members, modes, plugins ok",
        tgz_name(version)
    );
    Ok(())
}

/// The package: control fields, control file, scripts, file list; unpacked, the plugins and
/// the ECS-name command; installed, upgraded and removed by dpkg in a scratch root.
fn check_package(deb: &Path, work: &Path, version: &str) -> Res<()> {
    check_control(deb, work, version)?;
    let listing = util::output(
        Command::new("dpkg-deb")
            .env("LC_ALL", "C")
            .arg("-c")
            .arg(deb),
        "dpkg-deb -c",
    )?;
    expect_listing("package", &listing, &deb_entries())?;
    let x = work.join("deb");
    util::status(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(&x),
        "dpkg-deb -x",
    )?;
    let bin = x.join(CNI_BIN);
    check_plugins(&bin, version)?;
    check_ecs_names(&x.join(ECS_NAMES_CMD), &bin)?;
    check_dpkg_root(deb, &work.join("root"))?;
    eprintln!(
        "dist --check: {}: control, file list, plugins, ECS names, install/upgrade/remove ok",
        deb_name(version)
    );
    Ok(())
}

/// The package's fields, its whole control file and its prerm.
fn check_control(deb: &Path, work: &Path, version: &str) -> Res<()> {
    let fields = util::output(
        Command::new("dpkg-deb").arg("--field").arg(deb).args([
            "Package",
            "Version",
            "Architecture",
        ]),
        "dpkg-deb --field",
    )?;
    let want_fields = format!("Package: {PACKAGE}\nVersion: {version}\nArchitecture: amd64\n");
    if fields != want_fields {
        return fail(format!(
            "the package's fields:\n{fields}expected:\n{want_fields}"
        ));
    }
    let ctrl = work.join("control");
    util::status(
        Command::new("dpkg-deb").arg("-e").arg(deb).arg(&ctrl),
        "dpkg-deb -e",
    )?;
    let control_text = fs::read_to_string(ctrl.join("control")).unwrap_or_default();
    let kib = control_text
        .lines()
        .find_map(|l| l.strip_prefix("Installed-Size: "))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if control_text != control(version, kib) || kib == 0 {
        return fail(format!(
            "the package's control file differs:\n{control_text}"
        ));
    }
    same_file(&ctrl.join("prerm"), &root().join("packaging/deb/prerm"))
}

/// The package installed by dpkg into an empty root (`--root`, maintainer scripts run
/// chrootless with `DPKG_ROOT`, never on this machine's /opt/cni/bin): installs, reinstalls
/// over itself keeping the ECS-name links (prerm `upgrade`), and its removal takes the links
/// with it (prerm `remove`) and leaves a foreign file alone.
fn check_dpkg_root(deb: &Path, r: &Path) -> Res<()> {
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        mkdirs(&r.join(d))?;
    }
    write(&r.join("var/lib/dpkg/status"), "", 0o644)?;
    let dpkg = |args: &[&str], what: &str| {
        util::status(
            Command::new("dpkg")
                .arg(format!("--root={}", r.display()))
                .args(["--force-script-chrootless", "--log=/dev/null"])
                .args(args),
            what,
        )
    };
    let deb = deb.display().to_string();
    dpkg(&["-i", &deb], "dpkg --root -i")?;
    let bin = r.join(CNI_BIN);
    let (code, out, err) = run_cmd(
        Command::new(r.join(ECS_NAMES_CMD))
            .arg("install")
            .arg("--dir")
            .arg(&bin),
    )?;
    if code != 0 {
        return fail(format!(
            "task-cni-ecs-names install in the root:\n{out}{err}"
        ));
    }
    io(fs::write(bin.join("ecs-foreign"), "x"), || {
        "write ecs-foreign".into()
    })?;
    dpkg(&["-i", &deb], "dpkg --root -i (again)")?;
    let linked = |n: &str| bin.join(n).symlink_metadata().is_ok();
    if !ECS_NAMES.iter().all(|(n, _)| linked(n)) {
        return fail("reinstalling the package removed the ECS-name links");
    }
    dpkg(&["-r", PACKAGE], "dpkg --root -r")?;
    let left: Vec<String> = util::files_in(&bin)
        .iter()
        .chain(
            ECS_NAMES
                .iter()
                .map(|(n, _)| bin.join(n))
                .collect::<Vec<_>>()
                .iter(),
        )
        .filter(|p| p.symlink_metadata().is_ok())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if left != ["ecs-foreign"] {
        return fail(format!("after dpkg -r, {} holds {left:?}", bin.display()));
    }
    Ok(())
}

fn expect_listing(what: &str, listing: &str, want: &[Entry]) -> Res<()> {
    let got = parse_listing(listing)
        .ok_or_else(|| Failure::Failed(format!("cannot read the {what}'s listing:\n{listing}")))?;
    if let Some((e, owner)) = got.iter().find(|(_, o)| o != "root/root") {
        return fail(format!("{what}: {} is owned by {owner}", e.path));
    }
    let mut got: Vec<Entry> = got.into_iter().map(|(e, _)| e).collect();
    got.sort();
    if got != want {
        let show = |es: &[Entry]| -> String {
            es.iter()
                .map(|e| format!("  {}{:o} {}\n", e.kind, e.mode, e.path))
                .collect()
        };
        return fail(format!(
            "{what} members differ; got:\n{}expected:\n{}",
            show(&got),
            show(want)
        ));
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> Res<()> {
    match (fs::read(a), fs::read(b)) {
        (Ok(x), Ok(y)) if x == y => Ok(()),
        _ => fail(format!("{} differs from {}", a.display(), b.display())),
    }
}

/// Runs `cmd` and returns (exit code, stdout, stderr).
fn run_cmd(cmd: &mut Command) -> Res<(i32, String, String)> {
    let o = io(cmd.output(), || format!("run {:?}", cmd.get_program()))?;
    Ok((
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

/// Every plugin in `dir`: static, `--version` and the about line name `version`, VERSION
/// answers.
fn check_plugins(dir: &Path, version: &str) -> Res<()> {
    for p in PLUGINS {
        let bin = dir.join(p);
        release::check_static(&bin)?;
        let (code, out, _) = run_cmd(Command::new(&bin).arg("--version"))?;
        if code != 0 || util::json_string_field(&out, "version").as_deref() != Some(version) {
            return fail(format!(
                "{}: --version printed {out:?}, expected version {version}",
                bin.display()
            ));
        }
        for key in ["\"gitShortHash\":\"", "\"dirty\":"] {
            if !out.contains(key) {
                return fail(format!("{}: --version lacks {key}: {out}", bin.display()));
            }
        }
        let (code, out, err) = run_cmd(Command::new(&bin).env_remove("CNI_COMMAND"))?;
        let about = format!("CNI {p} plugin {version} (");
        if code != 0 || !out.is_empty() || !err.starts_with(&about) {
            return fail(format!(
                "{}: the about line is {err:?}, expected {about:?}...",
                bin.display()
            ));
        }
        let (code, out, _) = run_cmd(Command::new(&bin).env("CNI_COMMAND", "VERSION"))?;
        if code != 0 || !out.contains("\"supportedVersions\"") {
            return fail(format!("{}: VERSION printed {out:?}", bin.display()));
        }
    }
    Ok(())
}

/// The ECS-name command on an unpacked package: links every name, and each answers as the
/// agent expects; refuses (changing nothing) when a foreign file holds a name; unlinks only
/// its own links.
fn check_ecs_names(cmd: &Path, bin: &Path) -> Res<()> {
    let names = |args: &[&str]| -> Res<(i32, String, String)> {
        run_cmd(Command::new(cmd).args(args).arg("--dir").arg(bin))
    };
    let (code, out, err) = names(&["install"])?;
    if code != 0 {
        return fail(format!("task-cni-ecs-names install failed:\n{out}{err}"));
    }
    for (name, target) in ECS_NAMES {
        let link = bin.join(name);
        if fs::read_link(&link).ok().as_deref() != Some(Path::new(target)) {
            return fail(format!("{} is not a link to {target}", link.display()));
        }
        let (_, caps, _) = run_cmd(Command::new(&link).arg("--capabilities"))?;
        if caps.trim() != r#"{"capabilities":["awsvpc-network-mode"]}"# {
            return fail(format!("{name} --capabilities printed {caps:?}"));
        }
    }
    let (code, ..) = names(&["install"])?;
    if code != 0 {
        return fail("task-cni-ecs-names install is not idempotent");
    }
    let (code, out, err) = names(&["remove"])?;
    let left: Vec<&str> = ECS_NAMES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| bin.join(n).symlink_metadata().is_ok())
        .collect();
    if code != 0 || !left.is_empty() {
        return fail(format!(
            "task-cni-ecs-names remove left {left:?}:\n{out}{err}"
        ));
    }
    // a foreign ecs-ipam (Amazon's, say) and a foreign link: install refuses, changes nothing
    let foreign = bin.join("ecs-ipam");
    io(fs::write(&foreign, "amazon's ecs-ipam\n"), || {
        format!("write {}", foreign.display())
    })?;
    io(symlink("/elsewhere/ecs-eni", bin.join("ecs-eni")), || {
        "symlink ecs-eni".to_string()
    })?;
    let (code, _, err) = names(&["install"])?;
    let created: Vec<&str> = ["vpc-eni", "vpc-branch-eni", "ecs-bridge"]
        .into_iter()
        .filter(|n| bin.join(n).symlink_metadata().is_ok())
        .collect();
    if code != 1
        || !created.is_empty()
        || !err.contains("ecs-ipam is a file")
        || !err.contains("ecs-eni is a link to /elsewhere/ecs-eni")
    {
        return fail(format!(
            "task-cni-ecs-names install over foreign files: exit {code}, created {created:?}:\n{err}"
        ));
    }
    let (code, ..) = names(&["remove"])?;
    let kept = fs::read(&foreign).ok().as_deref() == Some(b"amazon's ecs-ipam\n".as_slice())
        && fs::read_link(bin.join("ecs-eni")).is_ok();
    if code != 0 || !kept {
        return fail("task-cni-ecs-names remove touched files that are not its links");
    }
    let (code, ..) = names(&["install", "--force"])?;
    if code != 0 || fs::read_link(&foreign).ok().as_deref() != Some(Path::new("ipam")) {
        return fail("task-cni-ecs-names install --force did not replace the foreign files");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(hash: Option<&str>, dirty: bool, tagged: bool) -> GitState {
        GitState {
            hash: hash.map(str::to_string),
            dirty,
            tagged,
            epoch: None,
        }
    }

    #[test]
    fn version_of_a_build() {
        let v = |g| version_string("0.1.0", &g);
        assert_eq!(v(git(Some("1a2b3c4"), false, true)), "0.1.0");
        assert_eq!(v(git(Some("1a2b3c4"), false, false)), "0.1.0+g1a2b3c4");
        assert_eq!(v(git(Some("1a2b3c4"), true, false)), "0.1.0+g1a2b3c4.dirty");
        // a tag with local changes is not the release
        assert_eq!(v(git(Some("1a2b3c4"), true, true)), "0.1.0+g1a2b3c4.dirty");
        assert_eq!(v(git(None, false, false)), "0.1.0+nogit");
        for g in [
            git(Some("1a2b3c4"), false, true),
            git(Some("1a2b3c4"), true, false),
            git(None, false, false),
        ] {
            assert!(is_debian_version(&v(g)));
        }
    }

    #[test]
    fn debian_version_syntax() {
        for ok in [
            "0.1.0",
            "0.1.0+g1a2b3c4.dirty",
            "1:2.3~rc1-1",
            "1.0-1+deb12u1",
            "2.0-a-b",
        ] {
            assert!(is_debian_version(ok), "{ok}");
        }
        for bad in [
            "",
            "v0.1.0",
            "0.1.0_1",
            "a:1.0",
            ":1.0",
            "1.0-",
            "1.0 ",
            "0.1.0+g1a2b3c4/x",
        ] {
            assert!(!is_debian_version(bad), "{bad}");
        }
    }

    #[test]
    fn artifact_names() {
        assert_eq!(
            tgz_name("0.1.0+g1a2b3c4"),
            "task-cni-0.1.0+g1a2b3c4-linux-amd64.tgz"
        );
        assert_eq!(deb_name("0.1.0"), "task-cni_0.1.0_amd64.deb");
    }

    #[test]
    fn control_file() {
        let c = control("0.1.0+g1a2b3c4", 4321);
        let fields: Vec<&str> = c
            .lines()
            .filter(|l| !l.starts_with(' '))
            .filter_map(|l| l.split_once(": ").map(|(k, _)| k))
            .collect();
        assert_eq!(
            fields,
            [
                "Package",
                "Version",
                "Architecture",
                "Maintainer",
                "Installed-Size",
                "Section",
                "Priority",
                "Recommends",
                "Description"
            ]
        );
        assert!(c.contains("\nVersion: 0.1.0+g1a2b3c4\n"));
        assert!(c.contains("\nInstalled-Size: 4321\n"));
        assert!(c.ends_with("links them.\n"));
        // the extended description: every line indented, paragraphs separated by " ."
        let desc: Vec<&str> = c
            .lines()
            .skip_while(|l| !l.starts_with("Description:"))
            .collect();
        assert!(desc.len() > 2);
        assert!(
            desc[1..]
                .iter()
                .all(|l| l.starts_with(' ') && l.len() <= 80)
        );
        assert!(desc.contains(&" ."));
        assert!(!c.contains("\n\n"));
    }

    #[test]
    fn sums_format() {
        let a = "a".repeat(64);
        let b = "0123456789abcdef".repeat(4);
        let sums = vec![
            (a.clone(), "task-cni-0.1.0-linux-amd64.tgz".to_string()),
            (b.clone(), "task-cni_0.1.0_amd64.deb".to_string()),
        ];
        let text = render_sums(&sums);
        assert_eq!(
            text,
            format!("{a}  task-cni-0.1.0-linux-amd64.tgz\n{b}  task-cni_0.1.0_amd64.deb\n")
        );
        let back = parse_sums(&text).unwrap_or_default();
        assert_eq!(back.get("task-cni_0.1.0_amd64.deb"), Some(&b));
        assert_eq!(back.len(), 2);
        assert_eq!(parse_sums(&format!("{a} x\n")), None); // one space
        assert_eq!(parse_sums("abc  x\n"), None); // short hash
        assert_eq!(parse_sums(&format!("{}  x\n", a.to_uppercase())), None);
        assert_eq!(parse_sums(&format!("{a}  dir/x\n")), None);
    }

    #[test]
    fn listings() {
        let text = "\
drwxr-xr-x root/root         0 2026-01-01 00:00 ./
drwxr-xr-x root/root         0 2026-01-01 00:00 ./opt/
-rwxr-xr-x root/root   1234567 2026-01-01 00:00 ./opt/cni/bin/loopback
lrwxrwxrwx root/root         0 2026-01-01 00:00 ./x -> y
";
        let got = parse_listing(text).unwrap_or_default();
        assert_eq!(
            got.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
            [
                entry("./", 'd', 0o755),
                entry("./opt/", 'd', 0o755),
                entry("./opt/cni/bin/loopback", '-', 0o755),
                entry("./x", 'l', 0o777),
            ]
        );
        assert!(got.iter().all(|(_, o)| o == "root/root"));
        assert_eq!(parse_listing("-rwxr-xr-x root/root 1"), None);
    }

    #[test]
    fn package_layout() {
        let deb = deb_entries();
        let paths: Vec<&str> = deb.iter().map(|e| e.path.as_str()).collect();
        for p in PLUGINS {
            let path = format!("./opt/cni/bin/{p}");
            assert!(deb.contains(&entry(&path, '-', 0o755)), "{p}");
        }
        for dir in [
            "./",
            "./opt/",
            "./opt/cni/",
            "./opt/cni/bin/",
            "./usr/sbin/",
        ] {
            assert!(deb.contains(&entry(dir, 'd', 0o755)), "{dir}");
        }
        assert!(paths.contains(&"./usr/share/doc/task-cni/copyright"));
        // no ECS name is installed by the package itself
        for (name, _) in ECS_NAMES {
            assert!(
                !paths.iter().any(|p| p.ends_with(&format!("/{name}"))),
                "{name}"
            );
        }
        assert_eq!(tgz_entries().len(), PLUGINS.len() + 2);
    }
}
