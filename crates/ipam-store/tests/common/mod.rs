//! Helpers shared by the integration tests: a self-removing temp dir and small builders.
// Test helpers fail loudly: unwrap/panic are the point here (clippy only exempts #[test] fns).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipam_store::{Owner, RangeSet, RangeSpec, Store, validate_sets};

/// A unique directory under the system temp dir, removed on drop (even when the test fails).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "ipam-store-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn owner(id: &str, ifname: &str) -> Owner {
    Owner::new(id, ifname).unwrap()
}

pub fn spec(subnet: &str) -> RangeSpec {
    RangeSpec {
        subnet: subnet.into(),
        ..Default::default()
    }
}

pub fn spec_range(subnet: &str, start: &str, end: &str) -> RangeSpec {
    RangeSpec {
        subnet: subnet.into(),
        range_start: Some(start.into()),
        range_end: Some(end.into()),
        gateway: None,
    }
}

/// One set per subnet, each with one range of default bounds.
pub fn sets(subnets: &[&str]) -> Vec<RangeSet> {
    let raw: Vec<Vec<RangeSpec>> = subnets.iter().map(|s| vec![spec(s)]).collect();
    validate_sets(&raw, "ranges").unwrap()
}

/// One set made of several ranges.
pub fn one_set(subnets: &[&str]) -> Vec<RangeSet> {
    validate_sets(&[subnets.iter().map(|s| spec(s)).collect()], "ranges").unwrap()
}

pub fn open(dir: &TempDir, network: &str) -> Store {
    Store::open(dir.path(), network, Duration::from_secs(5)).unwrap()
}

/// Writes a lease file the way Go host-local does (plain write, no temp).
pub fn write_file(dir: &Path, name: &str, content: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), content).unwrap();
}

pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

pub fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Names in the network directory that parse as IP addresses, sorted.
pub fn lease_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.parse::<IpAddr>().is_ok())
        .collect();
    v.sort();
    v
}

/// All entry names in a directory, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Bucket files of the owner index (`.owners/b00`..`bff`), sorted.
pub fn buckets(dir: &Path) -> Vec<String> {
    names(&dir.join(".owners"))
        .into_iter()
        .filter(|n| {
            n.len() == 3 && n.starts_with('b') && n[1..].bytes().all(|b| b.is_ascii_hexdigit())
        })
        .collect()
}

/// All lines of all index buckets, in file order per bucket.
pub fn index_lines(dir: &Path) -> Vec<String> {
    buckets(dir)
        .iter()
        .flat_map(|b| {
            read(&dir.join(".owners"), b)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The live entries of the index (`<ip> <id> <ifname>`, escaped as on disk), replayed from
/// the `+`/`-` lines.
pub fn index_live(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut live = std::collections::BTreeSet::new();
    for l in index_lines(dir) {
        if let Some(e) = l.strip_prefix("+ ") {
            live.insert(e.to_string());
        } else if let Some(e) = l.strip_prefix("- ") {
            live.remove(e);
        }
    }
    live
}

/// Writes a lease the way Go host-local does: `O_CREAT|O_EXCL`, content, then
/// `last_reserved_ip.<set>` rewritten in place. `false`, and nothing written, when the address
/// is taken.
pub fn go_try_reserve(dir: &Path, ip: &str, id: &str, set: usize) -> bool {
    use std::io::Write;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(ip));
    let mut f = match created {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return false,
        Err(e) => panic!("reserve {ip}: {e}"),
    };
    f.write_all(format!("{id}\r\neth0").as_bytes()).unwrap();
    std::fs::write(dir.join(format!("last_reserved_ip.{set}")), ip).unwrap();
    true
}

/// [`go_try_reserve`] of an address that must be free.
pub fn go_reserve(dir: &Path, ip: &str, id: &str, set: usize) {
    assert!(go_try_reserve(dir, ip, id, set), "{ip} is taken");
}

/// Removes a lease the way Go host-local does.
pub fn go_release(dir: &Path, ip: &str) {
    std::fs::remove_file(dir.join(ip)).unwrap();
}
