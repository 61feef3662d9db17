//! The bodies of the fuzz targets, one `pub fn(&[u8])` each.
//!
//! `fuzz_targets/<name>.rs` hands libFuzzer's input to the function of the same name, and the
//! workspace crate `fuzz-replay` (which compiles this file as its `targets` module)
//! replays every committed input of `fuzz/corpus/<name>/` and `fuzz/regressions/<name>/`
//! through the very same function under plain `cargo test`. A function panics (the finding)
//! when the code under test panics or when one of the properties it checks does not hold;
//! otherwise it returns, whatever the input.
//!
//! Nothing here reads or writes a path taken from the input: file names in configs are
//! replaced by files of our own, and the store target works in a private directory under
//! `/dev/shm` (or the temp dir) that it removes after each input.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cni_spec::gojson::{GoObject, fold_eq};
use cni_spec::{
    CniArgs, CniResult, Command, Env, Error, Invocation, NetConf, Plugin, SpecVersion, Vars,
    is_cni_identifier, run_with, validate_container_id, validate_ifname, version_hint,
};
use ipam_store::{Holder, Owner, RangeSet, RangeSpec, Store, validate_sets};
use serde_json::{Value, json};

/// The body of a fuzz target.
pub type Target = fn(&[u8]);

/// Every target: its name (the file under `fuzz_targets/`, the corpus directory) and body.
pub const TARGETS: &[(&str, Target)] = &[
    ("cni_args", cni_args),
    ("netconf", netconf),
    ("result", result),
    ("dispatch", dispatch),
    ("ipam_config", ipam_config),
    ("ipam_store_parse", ipam_store_parse),
    ("ipam_store", ipam_store),
    ("eni_config", eni_config),
    ("bridge_config", bridge_config),
    ("branch_eni_config", branch_eni_config),
    ("boltdb", boltdb),
];

/// A cursor over the input; reads past the end give zeros and empty slices.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// Up to the next `\n` (consumed, not returned), or the rest.
    fn line(&mut self) -> &'a [u8] {
        match self.0.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let l = &self.0[..i];
                self.0 = &self.0[i + 1..];
                l
            }
            None => std::mem::take(&mut self.0),
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A name that is exactly one path component (what may be joined under a store directory).
fn one_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0'])
}

// ----------------------------------------------------------------------------------------
// cni_args: CNI_ARGS and the identifiers of the environment

/// `CniArgs::parse` and the container-id / ifname / network-name validators.
pub fn cni_args(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match CniArgs::parse(s) {
        Ok(a) => {
            for (k, v) in &a.pairs {
                assert!(
                    !k.contains([';', '=']) && !v.contains([';', '=']),
                    "pair {k:?}={v:?} of {s:?}"
                );
                assert_ne!(k, "IgnoreUnknown", "{s:?}");
            }
            // Printing the pairs back gives the same parse.
            let mut text: Vec<String> = a.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if a.ignore_unknown {
                text.push("IgnoreUnknown=1".into());
            }
            let again = CniArgs::parse(&text.join(";"))
                .unwrap_or_else(|e| panic!("reprinted {text:?} of {s:?} fails: {e}"));
            assert_eq!(again, a, "{s:?}");
            if let Some((k, v)) = a.pairs.last() {
                assert_eq!(a.get(k), Some(v.as_str()), "{s:?}");
            }
            let known: Vec<&str> = a.pairs.iter().map(|(k, _)| k.as_str()).collect();
            assert!(a.check_known(&known).is_ok(), "{s:?}");
            let none_known = a.check_known(&[]);
            assert_eq!(
                none_known.is_ok(),
                a.ignore_unknown || a.pairs.is_empty(),
                "{s:?}"
            );
            if let Err(e) = none_known {
                assert_eq!(e.code(), 4);
            }
        }
        Err(e) => {
            assert_eq!(e.code(), 4, "{s:?}: {e}");
            assert!(e.to_string().contains("CNI_ARGS"), "{e}");
        }
    }
    // Whatever the validators accept can be joined under a directory without escaping it.
    for part in s.split(['\n', ';']) {
        if is_cni_identifier(part) {
            assert!(one_component(part), "identifier {part:?}");
        }
        assert_eq!(validate_container_id(part).is_ok(), is_cni_identifier(part));
        match validate_ifname(part) {
            Ok(()) => assert!(
                one_component(part) && part.len() <= 15 && !part.contains(':'),
                "ifname {part:?} accepted"
            ),
            Err(e) => {
                assert_eq!(e.code(), 4);
                assert!(e.to_string().contains("CNI_IFNAME"), "{e}");
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// netconf / result: the stdin config, prevResult and version conversion

/// `NetConf::from_value` on any JSON, and the result properties on its `prevResult`.
pub fn netconf(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let is_object = v.is_object();
    // libcni decodes cniVersion first: a non-string one (in any spelling Go accepts) is code 6
    let bad_version = v.as_object().is_some_and(|m| {
        GoObject::new(m, &["cniVersion"])
            .get("cniVersion")
            .is_some_and(|(_, v)| !v.is_string())
    });
    match NetConf::from_value(v) {
        Ok(c) => {
            assert!(is_object);
            assert!(c.parse_as::<Value>().is_ok());
            for key in ["ips", "mac", "labels"] {
                let _ = c.args_cni(key);
            }
            if let Some(prev) = &c.prev_result {
                result_properties(prev);
            }
            let _ = c.require_prev_result("CHECK");
            let _ = SpecVersion::parse(&c.cni_version);
        }
        Err(e) => {
            let code = e.code();
            assert!(code == 6 || code == 7, "code {code}: {e}");
            assert_eq!(code == 6, !is_object || bad_version, "{e}");
        }
    }
}

/// `CniResult::from_value` on any JSON, then [`result_properties`].
pub fn result(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match CniResult::from_value(&v) {
        Ok(r) => result_properties(&r),
        Err(e) => assert_eq!(e.code(), 7, "{e}"),
    }
}

/// For every version: what we print we read back, printing that again changes nothing, and
/// printing the newest version then converting down equals converting down directly.
fn result_properties(r: &CniResult) {
    let newest = r.to_json(SpecVersion::LATEST);
    let via_newest = CniResult::from_value(&newest)
        .unwrap_or_else(|e| panic!("our own {newest} does not parse: {e}"));
    for v in SpecVersion::ALL {
        let out = r.to_json(v);
        assert_eq!(out["cniVersion"], json!(v.as_str()), "{out}");
        let back = CniResult::from_value(&out)
            .unwrap_or_else(|e| panic!("our own {v} result {out} does not parse: {e}"));
        assert_eq!(back.to_json(v), out, "{v}: printing twice differs");
        assert_eq!(
            via_newest.to_json(v),
            out,
            "{v}: conversion from 1.1.0 differs"
        );
        for ip in out["ips"].as_array().into_iter().flatten() {
            let addr = ip["address"].as_str().unwrap_or_default();
            let fam = if addr.contains(':') { "6" } else { "4" };
            if v.has_ip_version_field() {
                assert_eq!(ip["version"], json!(fam), "{v}: {ip}");
            } else {
                assert!(ip.get("version").is_none(), "{v}: {ip}");
            }
        }
        // The text form is one line of JSON that parses back to the same value.
        let text = out.to_string();
        assert!(!text.contains('\n'));
    }
}

// ----------------------------------------------------------------------------------------
// dispatch: the whole dispatcher with injected I/O

/// A plugin that does nothing but use the parsed invocation the way real plugins do.
struct Probe;

impl Plugin for Probe {
    type Error = cni_spec::Error;
    const NAME: &'static str = "probe";
    const ABOUT: &'static str = "fuzz probe";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];

    fn add(&self, inv: &Invocation) -> Result<CniResult, Error> {
        inv.env.args.check_known(&["IP", "MAC"])?;
        inv.netns()?;
        Ok(inv.conf.prev_result.clone().unwrap_or_default())
    }

    fn del(&self, inv: &Invocation) -> Result<(), Error> {
        inv.conf.parse_as::<Value>().map(drop)
    }

    fn check(&self, inv: &Invocation) -> Result<(), Error> {
        inv.conf.require_prev_result("CHECK").map(drop)
    }

    fn gc(&self, inv: &Invocation) -> Result<(), Error> {
        let n = inv.conf.valid_attachments.iter().flatten().count();
        if n > 1000 {
            return Err(Error::invalid_config("too many attachments"));
        }
        Ok(())
    }
}

/// `run_with`: input = selector byte, CNI_ARGS line, container-id line, ifname line, stdin.
/// The output is always nothing or one line of JSON; a failure is an error object with a
/// code, a message and a supported version; an ADD answers in the config's version.
pub fn dispatch(data: &[u8]) {
    let mut b = Bytes(data);
    let sel = b.byte();
    let command =
        ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION", "", "add"][usize::from(sel & 7)];
    let argv: Vec<String> = match (sel >> 3) & 3 {
        2 => vec!["/opt/cni/bin/probe".into(), "--version".into()],
        3 => vec!["probe".into(), "--capabilities".into()],
        _ => vec!["probe".into()],
    };
    let mut env: HashMap<&str, String> = HashMap::new();
    env.insert("CNI_COMMAND", command.into());
    if sel & 0x20 != 0 {
        // our own namespace: refused (code 8) unless overridden
        env.insert("CNI_NETNS", "/proc/self/ns/net".into());
    }
    if sel & 0x40 != 0 {
        env.insert("CNI_NETNS_OVERRIDE", "1".into());
    }
    if sel & 0x80 == 0 {
        env.insert("CNI_PATH", "/nonexistent-cni-path".into());
    }
    env.insert("CNI_ARGS", lossy(b.line()));
    env.insert("CNI_CONTAINERID", lossy(b.line()));
    env.insert("CNI_IFNAME", lossy(b.line()));
    let stdin = b.rest();
    let vars: Vars = env.iter().map(|(k, v)| (*k, v.clone())).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = run_with(&Probe, &argv, vars, &mut &stdin[..], &mut out, &mut err);
    assert!(status <= 1, "exit status {status}");
    if out.is_empty() {
        assert_eq!(status, 0, "a failure must print an error object");
        return;
    }
    let text = std::str::from_utf8(&out).expect("stdout is UTF-8");
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "stdout is not one line: {text:?}"
    );
    let v: Value = serde_json::from_str(text).expect("stdout is JSON");
    if status == 1 {
        let code = v["code"].as_u64().expect("error code");
        assert!(code > 0 && code < 1000, "{v}");
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        let ver = v["cniVersion"].as_str().expect("error cniVersion");
        assert!(SpecVersion::parse(ver).is_some(), "{v}");
    } else if command == "ADD" && argv.len() == 1 {
        let conf: Value = serde_json::from_slice(stdin).expect("an ADD that succeeded had JSON");
        // the version as libcni reads it: any spelling of cniVersion, the last one winning
        assert_eq!(v["cniVersion"].as_str(), version_hint(&conf), "{v}");
    }
}

// ----------------------------------------------------------------------------------------
// ipam_config: both dialects of the ipam plugin

/// Where the targets may write: `task-cni-fuzz-<pid>` under `/dev/shm` (else the temp dir),
/// created once per process; those of processes that are gone are removed then.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        for e in fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("task-cni-fuzz-")
                && pid.parse::<u32>().is_ok()
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let d = base.join(format!("task-cni-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("create the scratch directory");
        fs::write(d.join("sentinel"), b"sentinel").expect("write the sentinel");
        fs::write(
            d.join("resolv.conf"),
            b"nameserver 10.0.0.53\nsearch a.example b.example\noptions ndots:2\n",
        )
        .expect("write resolv.conf");
        d
    })
}

/// `ipam::IpamConfig::load` of an invocation's request: input = selector byte, CNI_ARGS line,
/// `IPAM_DB_CONNECTION_TIMEOUT` line, then the config. Errors are config (7) or environment
/// (4) errors; a loaded config has non-overlapping, non-empty range sets.
pub fn ipam_config(data: &[u8]) {
    let mut b = Bytes(data);
    let sel = b.byte();
    let program = if sel & 1 != 0 { "ecs-ipam" } else { "ipam" };
    let Ok(args) = CniArgs::parse(&lossy(b.line())) else {
        return;
    };
    let timeout = lossy(b.line());
    let Ok(mut v) = serde_json::from_slice::<Value>(b.rest()) else {
        return;
    };
    // Never read a file the input names: every spelling Go's rules accept for ipam.resolvConf
    // (keys fold case-insensitively) points at our own file.
    let ours = json!(scratch().join("resolv.conf").to_string_lossy());
    for (k, ipam) in v.as_object_mut().into_iter().flatten() {
        let Some(ipam) = ipam.as_object_mut().filter(|_| fold_eq(k, "ipam")) else {
            continue;
        };
        for (k, file) in ipam.iter_mut() {
            if fold_eq(k, "resolvConf") && file.as_str().is_some_and(|s| !s.is_empty()) {
                *file = ours.clone();
            }
        }
    }
    let Ok(conf) = NetConf::from_value(v) else {
        return;
    };
    let version = SpecVersion::parse(&conf.cni_version).unwrap_or(SpecVersion::LATEST);
    let ifname = if sel & 2 != 0 { "eth0" } else { "ecs-eth0" };
    let db = scratch().join(if sel & 4 != 0 { "sentinel" } else { "db" });
    let inv = Invocation {
        env: Env {
            command: Command::Add,
            container_id: "ctr-fuzz".into(),
            netns_path: None,
            netns: None,
            ifname: ifname.into(),
            args,
            path: Vec::new(),
        },
        vars: Vars::new()
            .with(ipam::DB_PATH_VAR, &db)
            .with(ipam::DB_TIMEOUT_VAR, timeout),
        version,
        conf,
        stdin: Vec::new(),
        program: program.into(),
    };
    match ipam::IpamConfig::load(&ipam::Request::of(&inv)) {
        Ok(cfg) => {
            assert!(!cfg.sets.is_empty());
            assert!(ipam_store::check_sets(&cfg.sets, "sets").is_ok());
            for s in &cfg.sets {
                assert!(!s.ranges().is_empty());
                let _ = (s.capacity(), s.to_string());
                for ip in &cfg.requested {
                    let _ = s.range_for(*ip).map(|r| r.reserved_kind(*ip));
                }
            }
            if let ipam::StoreAt::Bolt { path, .. } = &cfg.store {
                // the ecs store is exactly the file IPAM_DB_PATH names
                assert_eq!(path, &db);
            }
            if let Ok(o) = Owner::new(&cfg.owner_id, ifname) {
                assert!(o.validate().is_ok());
            }
        }
        Err(e) => assert!(matches!(e.code(), 4 | 7), "code {}: {e}", e.code()),
    }
}

// ----------------------------------------------------------------------------------------
// ipam_store_parse: the store's file formats

/// Lease-file content and owner-index lines: parse, print back, parse again.
pub fn ipam_store_parse(data: &[u8]) {
    use ipam_store::__fuzz::{index_line, index_line_of, lease_content, owner_content};
    match lease_content(data) {
        Ok(Holder::Owner(o)) => {
            if o.validate().is_ok() {
                assert_eq!(
                    lease_content(owner_content(&o).as_bytes()),
                    Ok(Holder::Owner(o.clone()))
                );
            }
        }
        Ok(Holder::Legacy(id)) => assert_eq!(id, id.trim()),
        Err(_) => assert!(std::str::from_utf8(data).is_err()),
    }
    let text = String::from_utf8_lossy(data);
    for l in text.lines() {
        if let Some((add, ip, h)) = index_line(l) {
            let printed = index_line_of(add, ip, &h);
            assert!(printed.ends_with('\n') && printed.matches('\n').count() == 1);
            assert_eq!(
                index_line(printed.trim_end_matches('\n')),
                Some((add, ip, h.clone())),
                "{l:?} printed as {printed:?}"
            );
        }
    }
    // The names log: every replayed name prints back to a line that replays to itself, and a
    // stamp line round-trips.
    let (known, _) = ipam_store::__fuzz::names_replay(&text);
    for (name, ino, bucket) in &known {
        let l = ipam_store::__fuzz::names_line_of(name, *ino, *bucket);
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1, "{l:?}");
        let (again, lines) = ipam_store::__fuzz::names_replay(&l);
        assert_eq!(again, [(name.clone(), *ino, *bucket)], "{l:?}");
        assert_eq!(lines, 1);
    }
    if let Some((sec, nsec, live, lines)) = ipam_store::__fuzz::names_stamp(data) {
        assert!((0..1_000_000_000).contains(&nsec));
        let l = ipam_store::__fuzz::names_stamp_line(sec, nsec, live, lines);
        assert_eq!(
            ipam_store::__fuzz::names_stamp(l.as_bytes()),
            Some((sec, nsec, live, lines))
        );
    }
    // An owner made of the input survives both formats unchanged.
    let (id, ifname) = text.split_once('\n').unwrap_or((&text, "eth0"));
    if let Ok(o) = Owner::new(id, ifname) {
        let h = Holder::Owner(o.clone());
        assert_eq!(lease_content(owner_content(&o).as_bytes()), Ok(h.clone()));
        for ip in ["10.0.0.2", "fd00::2"] {
            let ip: IpAddr = ip.parse().expect("literal");
            for add in [true, false] {
                let l = index_line_of(add, ip, &h);
                assert_eq!(
                    index_line(l.trim_end_matches('\n')),
                    Some((add, ip, h.clone())),
                    "{o}"
                );
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// ipam_store: the store over a directory planted with whatever the input says

/// The owners the store target plays with.
const OWNERS: [(&str, &str); 4] = [
    ("c1", "eth0"),
    ("c1", "eth1"),
    ("c2", "eth0"),
    ("0a:1b:2c:3d:4e:5f", "ecs-eth0"),
];

fn owner(i: usize) -> Owner {
    let (id, ifname) = OWNERS[i % OWNERS.len()];
    Owner::new(id, ifname).expect("fixed owners are valid")
}

/// Range sets of the store target: 10.9.0.0/29 (.2-.6) and fd09::/125 (::2-::7).
fn store_sets(sel: u8) -> Vec<RangeSet> {
    let v4 = RangeSpec {
        subnet: "10.9.0.0/29".into(),
        ..Default::default()
    };
    let v6 = RangeSpec {
        subnet: "fd09::/125".into(),
        ..Default::default()
    };
    let raw = match sel % 3 {
        0 => vec![vec![v4]],
        1 => vec![vec![v6]],
        _ => vec![vec![v4], vec![v6]],
    };
    validate_sets(&raw, "ranges").expect("fixed sets are valid")
}

/// An address the target plants or requests: 10.9.0.0-.7, .9 (outside), fd09::0-7.
fn addr(k: u8) -> IpAddr {
    let k = k % 17;
    if k < 8 {
        IpAddr::from([10, 9, 0, k])
    } else if k == 8 {
        IpAddr::from([10, 9, 0, 9])
    } else {
        IpAddr::from([0xfd09, 0, 0, 0, 0, 0, 0, u16::from(k - 9)])
    }
}

fn plant_name(b: &mut Bytes) -> String {
    let k = b.byte();
    match k % 16 {
        0..=5 => addr(b.byte()).to_string(),
        6 => "last_reserved_ip.0".into(),
        7 => "last_reserved_ip.1".into(),
        8 => "lock".into(),
        9 => ".owners".into(),
        10 => ".owners/.complete".into(),
        11 => format!(
            ".owners/{}",
            ipam_store::__fuzz::bucket_name(OWNERS[usize::from(b.byte()) % OWNERS.len()].0)
        ),
        12 => ".owners/names".into(),
        13 => ".tmp-1-1".into(),
        14 => "10.9.0.02".into(),
        _ => {
            let len = usize::from(b.byte() % 16);
            let raw = lossy(b.take(len));
            let n: String = raw.chars().filter(|c| *c != '/' && *c != '\0').collect();
            if one_component(&n) { n } else { "x".into() }
        }
    }
}

/// Plants one entry in the network directory `net`; failures (e.g. a name already taken)
/// are part of the game.
fn plant(b: &mut Bytes, net: &Path, outside: &Path) {
    let name = plant_name(b);
    let path = net.join(&name);
    if name.starts_with(".owners/") {
        let _ = fs::create_dir(net.join(".owners"));
    }
    // Replace what is there without following it (it may be a FIFO or a symlink out).
    let _ = fs::remove_file(&path).or_else(|_| fs::remove_dir(&path));
    match b.byte() % 8 {
        0..=3 => {
            let len = usize::from(b.byte());
            let mut content = b.take(len).to_vec();
            if name == ".owners/.complete" && len & 1 == 0 {
                content = if len & 2 == 0 {
                    b"ipam-store owner index v3, 256 buckets\n".to_vec()
                } else {
                    b"ipam-store owner index v2, 256 buckets\n".to_vec()
                };
            }
            if name == ".owners/names" && len & 1 == 0 {
                // A names log that knows planted names under made-up inodes, and a stamp
                // (never this directory's: only our own operations can produce that).
                let mut log = String::new();
                for k in content.iter().take(8) {
                    log.push_str(&ipam_store::__fuzz::names_line_of(
                        &addr(*k).to_string(),
                        u64::from(*k),
                        Some(*k),
                    ));
                }
                log.push_str(&ipam_store::__fuzz::names_stamp_line(1, 2, 3, 4));
                content = log.into_bytes();
            }
            if let Ok(mut f) = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                let _ = f.write_all(&content);
            }
        }
        4 => {
            let target = if b.byte() & 1 == 0 {
                outside.to_path_buf()
            } else {
                PathBuf::from("10.9.0.3")
            };
            let _ = std::os::unix::fs::symlink(target, &path);
        }
        5 => {
            let _ = fs::create_dir(&path);
        }
        6 => {
            if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
                // SAFETY: mkfifo reads a NUL-terminated path we own.
                unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
            }
        }
        _ => {
            let _ = fs::remove_file(&path);
        }
    }
}

/// The owner index of every regular lease file in `net` whose content is exactly an owner's.
fn leases_on_disk(net: &Path) -> HashMap<IpAddr, usize> {
    let mut out = HashMap::new();
    let Ok(rd) = fs::read_dir(net) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ip) = name.parse::<IpAddr>() else {
            continue;
        };
        if ip.to_string() != name || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(content) = fs::read(e.path()) else {
            continue;
        };
        // Read as the store (and host-local) read a lease file: whitespace-trimmed, so a planted
        // "c1\r\neth1\v\v" is c1/eth1's lease (found by this target: the exact-bytes
        // comparison here was stricter than host-local's format).
        let holder = ipam_store::__fuzz::lease_content(&content);
        if let Some(i) = (0..OWNERS.len())
            .find(|i| matches!(&holder, Ok(ipam_store::Holder::Owner(o)) if *o == owner(*i)))
        {
            out.insert(ip, i);
        }
    }
    out
}

fn check_leases_held(net: &Path, model: &HashMap<IpAddr, usize>, after: &str) {
    let disk = leases_on_disk(net);
    for (ip, o) in model {
        assert_eq!(
            disk.get(ip),
            Some(o),
            "lease {ip} of {} lost after {after}",
            owner(*o)
        );
    }
}

/// `Store` operations over a network directory planted by the input: symlinks, directories,
/// FIFOs, garbage or half-valid lease files, index buckets and markers, and changed between
/// operations as Go host-local changes it (reserve, release). Properties: no
/// operation panics, hangs or follows a symlink out of the store; an address is never leased
/// twice; a lease the store handed out stays on disk until its owner (or GC, or DEL by address)
/// releases it, and a successful release of its owner removes it; a failed ADD leaves the
/// owner's leases as they were.
pub fn ipam_store(data: &[u8]) {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let root = scratch().join(format!("run-{}", RUN.fetch_add(1, Ordering::Relaxed)));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("data/net")).expect("create the run directory");
    let net = root.join("data/net");
    let outside = scratch().join("sentinel");
    store_run(data, &root, &net, &outside);
    assert_eq!(
        fs::read(&outside).ok().as_deref(),
        Some(&b"sentinel"[..]),
        "a file outside the store was changed"
    );
    let names: BTreeSet<String> = fs::read_dir(&root)
        .expect("list the run directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n == "data" || n == "elsewhere"),
        "the store wrote outside its directory: {names:?}"
    );
    fs::remove_dir_all(&root).expect("remove the run directory");
}

fn store_run(data: &[u8], root: &Path, net: &Path, outside: &Path) {
    let mut b = Bytes(data);
    let sel = b.byte();
    let sets = store_sets(sel);
    if sel & 0x80 != 0 {
        // The network directory itself is a symlink: refused, never followed.
        fs::remove_dir(net).expect("remove net");
        fs::create_dir(root.join("elsewhere")).expect("create elsewhere");
        std::os::unix::fs::symlink(root.join("elsewhere"), net).expect("symlink net");
        let r = Store::open(&root.join("data"), "net", Duration::from_millis(50));
        assert!(r.is_err(), "a symlinked network directory was opened");
        assert_eq!(
            fs::read_dir(root.join("elsewhere")).map(|d| d.count()).ok(),
            Some(0)
        );
        return;
    }
    let plants = b.byte() % 12;
    for _ in 0..plants {
        plant(&mut b, net, outside);
    }
    let Ok(store) = Store::open(&root.join("data"), "net", Duration::from_millis(200)) else {
        return;
    };
    let mut model: HashMap<IpAddr, usize> = HashMap::new();
    let mut ops = 0;
    while !b.is_empty() && ops < 16 {
        ops += 1;
        let op = b.byte();
        let oi = usize::from(b.byte()) % OWNERS.len();
        let o = owner(oi);
        match op % 7 {
            0 | 1 => {
                let requested: Vec<IpAddr> = if op & 0x10 != 0 {
                    vec![addr(b.byte())]
                } else {
                    Vec::new()
                };
                let before: HashSet<IpAddr> = leases_on_disk(net)
                    .into_iter()
                    .filter(|(_, i)| *i == oi)
                    .map(|(ip, _)| ip)
                    .collect();
                match store.allocate(&o, &sets, &requested) {
                    Ok(leases) => {
                        assert_eq!(leases.len(), sets.len());
                        let disk = leases_on_disk(net);
                        for (i, l) in leases.iter().enumerate() {
                            assert_eq!(l.set, i);
                            assert!(sets[i].contains(l.address), "{l:?}");
                            assert_eq!(l.range.reserved_kind(l.address), None, "{l:?}");
                            if let Some(prev) = model.get(&l.address) {
                                assert_eq!(
                                    *prev,
                                    oi,
                                    "{} leased to {} and to {o}",
                                    l.address,
                                    owner(*prev)
                                );
                            }
                            assert_eq!(disk.get(&l.address), Some(&oi), "{l:?} not on disk");
                            model.insert(l.address, oi);
                        }
                        for r in &requested {
                            if let Some(i) = sets.iter().position(|s| s.contains(*r)) {
                                assert_eq!(leases[i].address, *r);
                            }
                        }
                    }
                    Err(_) => {
                        let after: HashSet<IpAddr> = leases_on_disk(net)
                            .into_iter()
                            .filter(|(_, i)| *i == oi)
                            .map(|(ip, _)| ip)
                            .collect();
                        assert_eq!(after, before, "a failed ADD of {o} changed its leases");
                    }
                }
            }
            2 => match store.release_by_owner(&o) {
                Ok(released) => {
                    let disk = leases_on_disk(net);
                    for ip in &released {
                        assert!(!disk.contains_key(ip), "{ip} released but still on disk");
                    }
                    model.retain(|ip, i| {
                        if *i == oi {
                            assert!(!disk.contains_key(ip), "{ip} of {o} stranded by DEL");
                            false
                        } else {
                            true
                        }
                    });
                }
                Err(_) => {
                    let disk = leases_on_disk(net);
                    model.retain(|ip, i| *i != oi || disk.get(ip) == Some(&*i));
                }
            },
            3 => {
                let ip = addr(b.byte());
                if store.release_addresses(&[ip]).is_ok() {
                    let left = fs::symlink_metadata(net.join(ip.to_string()));
                    assert!(left.is_err(), "{ip} not released");
                    model.remove(&ip);
                } else {
                    let disk = leases_on_disk(net);
                    model.retain(|ip, i| disk.get(ip) == Some(&*i));
                }
            }
            4 => {
                if let Ok(found) = store.find(&o) {
                    for (ip, i) in &model {
                        if *i == oi {
                            assert!(found.contains(ip), "find({o}) misses {ip}: {found:?}");
                        }
                    }
                }
            }
            6 => foreign_write(net, &sets, &o, addr(b.byte()), op & 0x10 == 0, &mut model),
            _ => {
                let mask = b.byte();
                let valid: HashSet<Owner> = (0..OWNERS.len())
                    .filter(|i| mask & (1 << i) != 0)
                    .map(owner)
                    .collect();
                let keep: HashSet<usize> =
                    (0..OWNERS.len()).filter(|i| mask & (1 << i) != 0).collect();
                match store.gc(&valid) {
                    Ok(_) => {
                        let disk = leases_on_disk(net);
                        model.retain(|ip, i| {
                            if keep.contains(i) {
                                true
                            } else {
                                assert!(!disk.contains_key(ip), "GC kept {ip} of {}", owner(*i));
                                false
                            }
                        });
                    }
                    Err(_) => {
                        let disk = leases_on_disk(net);
                        model.retain(|ip, i| disk.get(ip) == Some(&*i));
                    }
                }
            }
        }
        check_leases_held(net, &model, &format!("op {op} of {o}"));
        if let Ok(free) = store.free_counts(&sets) {
            for (i, s) in sets.iter().enumerate() {
                let mine = model.keys().filter(|ip| s.contains(**ip)).count() as u128;
                assert!(
                    free[i] + mine <= s.capacity(),
                    "free {free:?} with {model:?}"
                );
            }
        }
    }
}

/// What Go host-local does between two of our operations: reserve `ip` for `o` (`O_EXCL`,
/// then `last_reserved_ip.N` of its range set) or release it. Planted entries are left alone
/// (a symlink out, a FIFO, a directory).
fn foreign_write(
    net: &Path,
    sets: &[RangeSet],
    o: &Owner,
    ip: IpAddr,
    reserve: bool,
    model: &mut HashMap<IpAddr, usize>,
) {
    let path = net.join(ip.to_string());
    if !reserve {
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) && fs::remove_file(&path).is_ok()
        {
            model.remove(&ip);
        }
        return;
    }
    let Ok(mut f) = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    else {
        return;
    };
    let _ = f.write_all(ipam_store::__fuzz::owner_content(o).as_bytes());
    let Some(n) = sets.iter().position(|s| s.contains(ip)) else {
        return;
    };
    let last = net.join(format!("last_reserved_ip.{n}"));
    match fs::symlink_metadata(&last) {
        Ok(m) if !m.is_file() => {}
        _ => {
            let _ = fs::write(&last, ip.to_string());
        }
    }
}

// ----------------------------------------------------------------------------------------
// eni_config / bridge_config / branch_eni_config: the other plugins' dialects

/// The invocation a plugin's config loader sees: input = selector byte, CNI_ARGS line, then
/// the config JSON (`None` when the input is not that shape).
fn plugin_invocation(data: &[u8], programs: &[&str]) -> Option<(Invocation, u8)> {
    let mut b = Bytes(data);
    let sel = b.byte();
    let args = CniArgs::parse(&lossy(b.line())).ok()?;
    let conf = NetConf::from_value(serde_json::from_slice(b.rest()).ok()?).ok()?;
    let version = SpecVersion::parse(&conf.cni_version).unwrap_or(SpecVersion::LATEST);
    let program = programs[usize::from(sel) % programs.len()];
    let inv = Invocation {
        env: Env {
            command: Command::Add,
            container_id: "ctr-fuzz".into(),
            netns_path: None,
            netns: None,
            ifname: "eth0".into(),
            args,
            path: Vec::new(),
        },
        vars: Vars::new(),
        version,
        conf,
        stdin: Vec::new(),
        program: program.into(),
    };
    Some((inv, sel))
}

/// `eni::EniConf::parse` in every dialect (`eni`, `ecs-eni`, `vpc-eni`) and the lenient DEL
/// parse: config errors are code 4 or 7, a parsed config names an ENI and validates.
pub fn eni_config(data: &[u8]) {
    let Some((inv, sel)) = plugin_invocation(data, &["eni", "ecs-eni", "vpc-eni"]) else {
        return;
    };
    let wait = ["", "5s", "100ms", "99999999999999999999s", "-1s", "1h"][usize::from(sel >> 2) % 6];
    let raw = &inv.conf.raw;
    let _ = eni::EniConf::parse_lenient(raw);
    match eni::EniConf::parse(raw, &inv.conf.plugin_type, &inv.program, Some(wait)) {
        Ok(c) => {
            assert!(c.mac.is_some() || c.name.is_some(), "{}", c.describe());
            assert!(c.iface.validate().is_ok());
            assert!(c.wait <= Duration::from_secs(600), "{:?}", c.wait);
        }
        Err(e) => {
            let code = cni_spec::PluginError::code(&e);
            assert!(matches!(code, 4 | 7), "code {code}: {e}");
        }
    }
}

/// `bridge::config::BridgeConfig::load` in both dialects (`bridge`, `ecs-bridge`): errors are
/// code 2, 4 or 7.
pub fn bridge_config(data: &[u8]) {
    let Some((inv, _)) = plugin_invocation(data, &["bridge", "ecs-bridge"]) else {
        return;
    };
    let _ = bridge::config::BridgeConfig::dialect_of(&inv);
    match bridge::config::BridgeConfig::load(&inv) {
        Ok(c) => {
            let _ = (c.uses_nft(), c.ipam.type_name().to_string());
        }
        Err(e) => assert!(matches!(e.code(), 2 | 4 | 7), "code {}: {e}", e.code()),
    }
}

/// `branch_eni::BranchConf::parse` with CNI_ARGS: errors are code 4 or 7; a parsed config
/// gives an interface config that validates.
pub fn branch_eni_config(data: &[u8]) {
    let Some((inv, _)) = plugin_invocation(data, &["branch-eni", "vpc-branch-eni"]) else {
        return;
    };
    match branch_eni::BranchConf::parse(&inv.conf.raw, &inv.env.args) {
        Ok(c) => {
            for mtu in [None, Some(1500), Some(9001)] {
                let _ = c.iface_config(mtu).validate();
            }
        }
        Err(e) => assert!(matches!(e.code(), 4 | 7), "code {}: {e}", e.code()),
    }
}

// ----------------------------------------------------------------------------------------
// boltdb: the BoltDB reader/writer under the ecs-ipam store

/// The input is a whole bolt file (the corpus holds real ones, from our writer and from Go's
/// bbolt). Properties: opening, reading and writing never panic; a file refused as invalid
/// is left byte for byte as it was; when the file and its `IPAM` bucket read, a rewrite of the
/// bucket commits, reads back exactly, keeps every other readable bucket as it was, and the
/// ecs store on top either leases a free address or fails with a typed error.
pub fn boltdb(data: &[u8]) {
    use ipam_store::boltdb::{Access, Db, Error as DbError};
    static RUN: AtomicU64 = AtomicU64::new(0);
    let path = scratch().join(format!("bolt-{}", RUN.fetch_add(1, Ordering::Relaxed)));
    fs::write(&path, data).expect("write the input");
    let t = Duration::from_millis(200);
    let read = Db::open(&path, Access::Read, t);
    let before = match read {
        Ok(db) => {
            let mut buckets = Vec::new();
            for name in db.bucket_names() {
                if let Ok(b) = db.bucket(&name) {
                    buckets.push((name, b));
                }
            }
            Some((db.bucket(b"IPAM"), buckets))
        }
        Err(DbError::Invalid { .. }) => {
            assert_eq!(
                fs::read(&path).expect("read back"),
                data,
                "refused file changed"
            );
            None
        }
        Err(e) => panic!("unexpected error on a readable file: {e}"),
    };
    if let Some((Ok(ipam), others)) = before {
        let mut db = Db::open(&path, Access::Write, t).expect("a valid file opens for writing");
        let mut entries = ipam.map(|b| b.entries).unwrap_or_default();
        entries.insert(b"fuzz".to_vec(), b"\x01\0\0\0\0\0\0\0value".to_vec());
        db.put_bucket(b"IPAM", &entries).expect("rewrite IPAM");
        drop(db);
        let db = Db::open(&path, Access::Read, t).expect("our own file reopens");
        let got = db
            .bucket(b"IPAM")
            .expect("IPAM reads")
            .expect("IPAM exists");
        assert_eq!(got.entries, entries);
        for (name, b) in others.iter().filter(|(n, _)| n.as_slice() != b"IPAM") {
            assert_eq!(&db.bucket(name).expect("a kept bucket reads"), b);
        }
        drop(db);
        let sets = validate_sets(
            &[vec![RangeSpec {
                subnet: "10.250.0.0/29".into(),
                ..Default::default()
            }]],
            "ranges",
        )
        .expect("a valid range");
        let held: Vec<Vec<u8>> = entries.keys().cloned().collect();
        let store = ipam_store::EcsStore::new(&path, t);
        if let Ok(leases) = store.allocate("fuzz-id", &sets, &[]) {
            for l in leases {
                let key = l.address.to_string().into_bytes();
                let was = held.contains(&key) && entries.get(&key).is_some_and(|v| !v.is_empty());
                let mine = entries
                    .get(&key)
                    .is_some_and(|v| v.get(8..) == Some(b"fuzz-id".as_slice()));
                assert!(!was || mine, "{} was held and handed out again", l.address);
            }
        }
    }
    let _ = fs::remove_file(&path);
}
