//! Amazon `ecs-ipam`'s lease store: bucket `IPAM` of a BoltDB file, read and written in its
//! format so that Amazon's plugin and ours can replace each other on a live node.
//!
//! | key | value (after the 8-byte little-endian libkv index) |
//! |---|---|
//! | `169.254.172.2` (IPv4 text) | owner id (ENI MAC, netns path...) |
//! | `6fd00::2` (`6` + IPv6 text) | owner id |
//! | the IPv4 gateway / `6` + the IPv6 gateway | `GateWay` / `GateWayV6` |
//! | `lastKnownIP` / `lastKnownIPv6` | the address last handed out or released |
//!
//! An empty value reads as absent (libkv's rule); a value shorter than the index holds its
//! address for nobody we can name (never handed out, released only by address). Values are
//! written with an index counting from 1 per operation, as libkv counts per process.
//!
//! Every operation opens the file once with bolt's `flock(LOCK_EX)` (bounded wait: the plugin's
//! `IPAM_DB_CONNECTION_TIMEOUT` / `lockTimeoutMs`), reads the bucket, decides in memory and
//! commits at most one bolt transaction (Amazon's plugin commits one per key). ADD per family:
//! the gateway marker first (refused if the gateway key holds anything else), then the
//! requested address exactly, else the owner's existing lease in the subnet (a repeated ADD
//! returns it, where Amazon fails "id already exists"), else Amazon's walk: from the address
//! after `lastKnownIP` (or the subnet's first) with wrap-around, skipping the network address,
//! the IPv4 broadcast address and every key present; `lastKnownIP` is then the new address.
//! DEL by id releases every entry of that id, DEL by address whoever holds it; absent is
//! success; `lastKnownIP` becomes the released address, as Amazon sets it.
//!
//! **Migration.** Leases an earlier version of ours kept in a host-local style directory
//! (`<dir>/ecs-ipam/`) are imported once, under both locks (the bolt file's and the old
//! store's `lock`), then that directory is renamed `ecs-ipam.imported` (never imported twice,
//! kept for inspection). When the old directory sits *at* the bolt file's path (our earlier
//! behaviour when the path did not exist), the bolt file is built beside it with the imported
//! leases and swapped in atomically (`renameat2(RENAME_EXCHANGE)`), and the directory is renamed
//! `<path>.imported`. An address held by different ids in both keeps the bolt holder; the
//! conflict is reported through the store's log callback.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use boltdb::{Access, Db};
use nix::errno::Errno;

use crate::error::Error;
use crate::owner::Holder;
use crate::range::RangeSet;
use crate::store::{Export, Lease, Store, allocatable, map_requests_strict};

/// Amazon's default store file (`IPAM_DB_PATH` unset).
pub const DEFAULT_DB_PATH: &str = "/data/eni-ipam.db";
/// The bucket holding every key.
pub const BUCKET: &[u8] = b"IPAM";
/// The directory name under which earlier versions of ours kept ecs leases.
pub const LEGACY_NETWORK: &str = "ecs-ipam";
/// The suffix of an imported legacy directory.
pub const IMPORTED_SUFFIX: &str = ".imported";

const GATEWAY_V4: &str = "GateWay";
const GATEWAY_V6: &str = "GateWayV6";
const LAST_V4: &str = "lastKnownIP";
const LAST_V6: &str = "lastKnownIPv6";
/// libkv's index in front of every value.
const INDEX_LEN: usize = 8;

/// Who a key's value says holds an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcsHolder {
    /// An owner id (possibly empty, as Amazon allows).
    Id(String),
    /// The gateway marker of its family.
    Gateway,
    /// A value shorter than libkv's index: held, by nobody we can name.
    Unreadable(usize),
}

impl std::fmt::Display for EcsHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EcsHolder::Id(id) => write!(f, "id {id:?}"),
            EcsHolder::Gateway => f.write_str("the gateway marker"),
            EcsHolder::Unreadable(n) => write!(f, "a {n}-byte value without libkv's index"),
        }
    }
}

/// A message for the plugin's log (migration done, conflicts).
pub type LogFn = Box<dyn Fn(&str)>;

/// The ecs-ipam store at one file. Cheap to create; every operation opens and locks the file
/// for its whole duration.
pub struct EcsStore {
    path: PathBuf,
    lock_timeout: Duration,
    /// Data directories whose `ecs-ipam/` subdirectory holds leases to import.
    legacy: Vec<PathBuf>,
    log: LogFn,
}

impl std::fmt::Debug for EcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcsStore")
            .field("path", &self.path)
            .field("lock_timeout", &self.lock_timeout)
            .field("legacy", &self.legacy)
            .finish()
    }
}

fn key_for(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.to_string().into_bytes(),
        IpAddr::V6(a) => format!("6{a}").into_bytes(),
    }
}

/// The address a key names (`a.b.c.d` or `6` + IPv6 text), in any textual form that parses.
fn key_ip(k: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(k).ok()?;
    if let Some(rest) = s.strip_prefix('6')
        && let Ok(a) = rest.parse::<std::net::Ipv6Addr>()
    {
        return Some(IpAddr::V6(a));
    }
    s.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn last_key(v4: bool) -> &'static str {
    if v4 { LAST_V4 } else { LAST_V6 }
}

fn marker(v4: bool) -> &'static str {
    if v4 { GATEWAY_V4 } else { GATEWAY_V6 }
}

/// One open operation: the locked file, the bucket in memory, and an address index.
struct Session {
    db: Db,
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Address → its key, for every key naming an address with a non-empty value.
    ips: BTreeMap<IpAddr, Vec<u8>>,
    dirty: bool,
    index: u64,
}

impl Session {
    fn new(db: Db) -> Result<Session, Error> {
        let entries = db.bucket(BUCKET)?.map(|b| b.entries).unwrap_or_default();
        let ips = entries
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(k, _)| key_ip(k).map(|ip| (ip, k.clone())))
            .collect();
        Ok(Session {
            db,
            entries,
            ips,
            dirty: false,
            index: 0,
        })
    }

    fn holder(&self, ip: IpAddr) -> Option<EcsHolder> {
        let v = self.entries.get(self.ips.get(&ip)?)?;
        Some(match v.get(INDEX_LEN..) {
            None => EcsHolder::Unreadable(v.len()),
            Some(p) if p == marker(ip.is_ipv4()).as_bytes() => EcsHolder::Gateway,
            Some(p) => EcsHolder::Id(String::from_utf8_lossy(p).into_owned()),
        })
    }

    fn put(&mut self, key: Vec<u8>, payload: &str) {
        self.index += 1;
        let mut v = Vec::with_capacity(INDEX_LEN + payload.len());
        v.extend_from_slice(&self.index.to_le_bytes());
        v.extend_from_slice(payload.as_bytes());
        if let Some(ip) = key_ip(&key) {
            self.ips.insert(ip, key.clone());
        }
        self.entries.insert(key, v);
        self.dirty = true;
    }

    fn put_ip(&mut self, ip: IpAddr, payload: &str) {
        let key = self.ips.get(&ip).cloned().unwrap_or_else(|| key_for(ip));
        self.put(key, payload);
    }

    fn remove_ip(&mut self, ip: IpAddr) -> bool {
        let Some(key) = self.ips.remove(&ip) else {
            return false;
        };
        self.entries.remove(&key);
        self.dirty = true;
        true
    }

    fn last_known(&self, v4: bool) -> Option<IpAddr> {
        let v = self.entries.get(last_key(v4).as_bytes())?;
        std::str::from_utf8(v.get(INDEX_LEN..)?)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn ids_of(&self, id: &str) -> Vec<IpAddr> {
        self.ips
            .keys()
            .copied()
            .filter(|ip| matches!(self.holder(*ip), Some(EcsHolder::Id(h)) if h == id))
            .collect()
    }

    fn commit(&mut self) -> Result<(), Error> {
        if self.dirty {
            self.db.put_bucket(BUCKET, &self.entries)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Imports the leases of an old store; returns (imported, conflicts as messages).
    fn merge(&mut self, export: &Export, from: &Path) -> (usize, Vec<String>) {
        let mut imported = 0;
        let mut conflicts = Vec::new();
        for (ip, holder) in &export.leases {
            let id = match holder {
                Holder::Owner(o) => o.id.clone(),
                Holder::Legacy(id) if !id.is_empty() => id.clone(),
                Holder::Legacy(_) => continue,
            };
            match self.holder(*ip) {
                None => {
                    self.put_ip(*ip, &id);
                    imported += 1;
                }
                Some(EcsHolder::Id(h)) if h == id => {}
                Some(other) => conflicts.push(format!(
                    "{ip}: leased to id {id:?} in {} but to {other} in {}; kept the latter",
                    from.display(),
                    self.db.path().display()
                )),
            }
        }
        for ip in &export.last_reserved {
            let key = last_key(ip.is_ipv4());
            if !self.entries.contains_key(key.as_bytes()) {
                self.put(key.as_bytes().to_vec(), &ip.to_string());
            }
        }
        (imported, conflicts)
    }
}

/// `path` + `suffix`, then `.2`, `.3`... until a name is free.
fn free_sibling(path: &Path, suffix: &str) -> Result<PathBuf, Error> {
    for n in 1..1000 {
        let mut s = path.as_os_str().to_os_string();
        s.push(suffix);
        if n > 1 {
            s.push(format!(".{n}"));
        }
        let p = PathBuf::from(s);
        match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(Error::io("stat", p, e)),
            Ok(_) => {}
        }
    }
    Err(Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("no free name for it with the suffix {suffix}"),
    })
}

/// `renameat2(2)` of two paths relative to the working directory, as the raw system call: glibc
/// wraps it (and `nix` offers it only there), musl 1.2.3 does not.
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL);
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call; the kernel only
    // reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if r == 0 { Ok(()) } else { Err(Errno::last()) }
}

fn rename_noreplace(from: &Path, to: &Path) -> Result<(), Error> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
        .map_err(|e| Error::io("rename", from.to_path_buf(), e.into()))
}

fn is_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

impl EcsStore {
    /// The store at `path` (Amazon's `IPAM_DB_PATH`); `lock_timeout` bounds the `flock` wait.
    pub fn new(path: &Path, lock_timeout: Duration) -> EcsStore {
        EcsStore {
            path: path.to_path_buf(),
            lock_timeout,
            legacy: Vec::new(),
            log: Box::new(|_| {}),
        }
    }

    /// Also imports `<dir>/ecs-ipam/` (an earlier version's store) when it exists.
    pub fn with_legacy_dir(mut self, dir: &Path) -> EcsStore {
        self.legacy.push(dir.to_path_buf());
        self
    }

    /// Where migration messages go.
    pub fn with_log(mut self, log: LogFn) -> EcsStore {
        self.log = log;
        self
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn anything_to_read(&self) -> bool {
        self.path.exists() || self.legacy.iter().any(|d| is_dir(&d.join(LEGACY_NETWORK)))
    }

    /// Opens (creating the parent directory 0750 and the file, as libkv does), migrates what
    /// there is to migrate, and reads the bucket.
    fn begin(&self) -> Result<Session, Error> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(parent)
                .map_err(|e| Error::io("create directory", parent.to_path_buf(), e))?;
        }
        let mut s = None;
        for _ in 0..3 {
            if let Ok(m) = std::fs::metadata(&self.path)
                && m.is_dir()
            {
                if !is_dir(&self.path.join(LEGACY_NETWORK)) {
                    return Err(Error::Corrupt {
                        path: self.path.clone(),
                        reason:
                            "is a directory, not a BoltDB file (IPAM_DB_PATH names the store file)"
                                .into(),
                    });
                }
                match self.migrate_dir_at_path()? {
                    Some(db) => {
                        s = Some(Session::new(db)?);
                        break;
                    }
                    None => continue,
                }
            }
            s = Some(Session::new(Db::open(
                &self.path,
                Access::Write,
                self.lock_timeout,
            )?)?);
            break;
        }
        let Some(mut s) = s else {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                reason: "kept changing between a directory and a file while being opened".into(),
            });
        };
        for dir in &self.legacy {
            self.import_sibling(&mut s, dir)?;
        }
        Ok(s)
    }

    /// Imports `<dir>/ecs-ipam/` into the open store, then renames it `ecs-ipam.imported`.
    fn import_sibling(&self, s: &mut Session, dir: &Path) -> Result<(), Error> {
        let old_dir = dir.join(LEGACY_NETWORK);
        if !is_dir(&old_dir) {
            return Ok(());
        }
        let Some(old) = Store::open_existing(dir, LEGACY_NETWORK, self.lock_timeout)? else {
            return Ok(());
        };
        let export = old.export()?;
        let (imported, conflicts) = s.merge(&export, &old_dir);
        s.commit()?;
        let aside = free_sibling(&old_dir, IMPORTED_SUFFIX)?;
        rename_noreplace(&old_dir, &aside)?;
        self.report(&old_dir, &aside, imported, &conflicts);
        drop(export);
        Ok(())
    }

    fn report(&self, from: &Path, aside: &Path, imported: usize, conflicts: &[String]) {
        (self.log)(&format!(
            "imported {imported} lease(s) of an earlier ecs store {} into {}; the old directory is now {}",
            from.display(),
            self.path.display(),
            aside.display()
        ));
        for c in conflicts {
            (self.log)(&format!("import conflict: {c}"));
        }
    }

    /// The old store is a directory at the file's path: build the file beside it with the
    /// imported leases and swap the two atomically. `None`: the directory changed meanwhile
    /// (someone else migrated it); the caller opens again.
    fn migrate_dir_at_path(&self) -> Result<Option<Db>, Error> {
        let Some(old) = Store::open_existing(&self.path, LEGACY_NETWORK, self.lock_timeout)? else {
            return Ok(None);
        };
        let export = old.export()?;
        let old_dir = self.path.join(LEGACY_NETWORK);
        let still = std::fs::symlink_metadata(&old_dir)
            .is_ok_and(|m| (m.dev(), m.ino()) == old.identity().unwrap_or_default());
        if !still {
            return Ok(None);
        }
        let tmp = free_sibling(&self.path, &format!(".tmp-{}", std::process::id()))?;
        let mut s = Session::new(Db::open(&tmp, Access::Write, self.lock_timeout)?)?;
        let (imported, conflicts) = s.merge(&export, &old_dir);
        let built = s.commit();
        if let Err(e) = built {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let aside = free_sibling(&self.path, IMPORTED_SUFFIX)?;
        let db = match renameat2(&tmp, &self.path, libc::RENAME_EXCHANGE) {
            Ok(()) => {
                // `tmp` now names the old directory.
                rename_noreplace(&tmp, &aside)?;
                let mut db = s.db;
                db.set_path(&self.path);
                db
            }
            Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                // No exchange on this file system: move the directory aside, then the file in;
                // if somebody created a file meanwhile, import into theirs.
                rename_noreplace(&self.path, &aside)?;
                match renameat2(&tmp, &self.path, libc::RENAME_NOREPLACE) {
                    Ok(()) => {
                        let mut db = s.db;
                        db.set_path(&self.path);
                        db
                    }
                    Err(_) => {
                        let _ = std::fs::remove_file(&tmp);
                        let mut s2 =
                            Session::new(Db::open(&self.path, Access::Write, self.lock_timeout)?)?;
                        s2.merge(&export, &old_dir);
                        s2.commit()?;
                        s2.db
                    }
                }
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::io("rename (exchange)", tmp, e.into()));
            }
        };
        self.report(&old_dir, &aside.join(LEGACY_NETWORK), imported, &conflicts);
        drop(export);
        Ok(Some(db))
    }

    /// Leases one address per range set to `id` (see the module documentation) in one
    /// transaction; nothing is written when a set fails.
    pub fn allocate(
        &self,
        id: &str,
        sets: &[RangeSet],
        requested: &[IpAddr],
    ) -> Result<Vec<Lease>, Error> {
        let want = map_requests_strict(sets, requested)?;
        let mut s = self.begin()?;
        let mut leases = Vec::new();
        for (i, set) in sets.iter().enumerate() {
            leases.push(self.allocate_in(&mut s, id, i, set, want.get(i).copied().flatten())?);
        }
        s.commit()?;
        Ok(leases)
    }

    fn allocate_in(
        &self,
        s: &mut Session,
        id: &str,
        i: usize,
        set: &RangeSet,
        want: Option<IpAddr>,
    ) -> Result<Lease, Error> {
        let v4 = set.is_ipv4();
        for r in set.ranges() {
            let gw = r.gateway();
            match s.holder(gw) {
                None => s.put_ip(gw, marker(v4)),
                Some(EcsHolder::Gateway) => {}
                Some(other) => {
                    return Err(Error::GatewayTaken {
                        gateway: gw,
                        holder: other.to_string(),
                        marker: marker(v4),
                        path: self.path.clone(),
                    });
                }
            }
        }
        let lease = |ip: IpAddr| -> Result<Lease, Error> {
            let range = set.range_for(ip).cloned().ok_or_else(|| Error::Corrupt {
                path: self.path.clone(),
                reason: format!("{ip} is not in range set {i} ({set})"),
            })?;
            Ok(Lease {
                set: i,
                address: ip,
                range,
            })
        };
        let mine: Vec<IpAddr> = s
            .ids_of(id)
            .into_iter()
            .filter(|ip| allocatable(set, *ip))
            .collect();
        if let Some(req) = want {
            if mine.contains(&req) {
                return lease(req);
            }
            if let Some(h) = mine.first() {
                return Err(Error::OwnerHoldsOther {
                    owner: format!("id {id:?}"),
                    held: *h,
                    requested: req,
                    set: i,
                    ranges: set.to_string(),
                });
            }
            if let Some(h) = s.holder(req) {
                return Err(Error::AddressTaken {
                    address: req,
                    set: i,
                    ranges: set.to_string(),
                    holder: h.to_string(),
                });
            }
            s.put_ip(req, id);
            s.put(last_key(v4).as_bytes().to_vec(), &req.to_string());
            return lease(req);
        }
        if let Some(h) = mine.first() {
            return lease(*h);
        }
        let last = s.last_known(v4);
        let free = set
            .candidates(last)
            .map(|(ip, _)| ip)
            .find(|ip| !s.ips.contains_key(ip));
        let Some(ip) = free else {
            return Err(Error::Exhausted {
                set: i,
                ranges: set.to_string(),
            });
        };
        s.put_ip(ip, id);
        s.put(last_key(v4).as_bytes().to_vec(), &ip.to_string());
        lease(ip)
    }

    /// Releases every address held by `id`; returns them (empty: nothing held, success).
    pub fn release_by_id(&self, id: &str) -> Result<Vec<IpAddr>, Error> {
        let mut s = self.begin()?;
        let mine = s.ids_of(id);
        self.release(&mut s, &mine)
    }

    /// Releases these addresses whoever holds them (gateway markers excepted); returns those
    /// that were held.
    pub fn release_addresses(&self, addresses: &[IpAddr]) -> Result<Vec<IpAddr>, Error> {
        let mut s = self.begin()?;
        let held: Vec<IpAddr> = addresses
            .iter()
            .copied()
            .filter(|ip| !matches!(s.holder(*ip), None | Some(EcsHolder::Gateway)))
            .collect();
        self.release(&mut s, &held)
    }

    fn release(&self, s: &mut Session, ips: &[IpAddr]) -> Result<Vec<IpAddr>, Error> {
        let mut out = Vec::new();
        for ip in ips {
            if s.remove_ip(*ip) {
                s.put(last_key(ip.is_ipv4()).as_bytes().to_vec(), &ip.to_string());
                out.push(*ip);
            }
        }
        s.commit()?;
        Ok(out)
    }

    /// The addresses `id` holds (CHECK). A missing file (and nothing to import) is an empty
    /// store; nothing is created then.
    pub fn find(&self, id: &str) -> Result<Vec<IpAddr>, Error> {
        if !self.anything_to_read() {
            return Ok(Vec::new());
        }
        let mut s = self.begin()?;
        s.commit()?;
        Ok(s.ids_of(id))
    }

    /// Free addresses per range set (STATUS); like [`EcsStore::find`], creates nothing.
    pub fn free_counts(&self, sets: &[RangeSet]) -> Result<Vec<u128>, Error> {
        let taken: Vec<IpAddr> = if self.anything_to_read() {
            let mut s = self.begin()?;
            s.commit()?;
            s.ips.keys().copied().collect()
        } else {
            Vec::new()
        };
        Ok(sets
            .iter()
            .map(|set| {
                let used = taken.iter().filter(|ip| allocatable(set, **ip)).count();
                set.capacity().saturating_sub(used as u128)
            })
            .collect())
    }

    /// The first range set without a free address, described for STATUS, or `None`.
    pub fn exhausted(&self, sets: &[RangeSet]) -> Result<Option<String>, Error> {
        let free = self.free_counts(sets)?;
        Ok(free.iter().position(|f| *f == 0).and_then(|i| {
            sets.get(i).map(|s| {
                format!(
                    "no IP addresses available in range set {i}: {s} (store {})",
                    self.path.display()
                )
            })
        }))
    }

    /// Every key of the bucket with the libkv index stripped (for tests and tooling).
    pub fn dump(&self) -> Result<BTreeMap<String, String>, Error> {
        let db = match Db::open(&self.path, Access::Read, self.lock_timeout) {
            Ok(db) => db,
            Err(boltdb::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(BTreeMap::new());
            }
            Err(e) => return Err(e.into()),
        };
        Ok(db
            .bucket(BUCKET)?
            .map(|b| b.entries)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(v.get(INDEX_LEN..).unwrap_or_default()).into_owned(),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_addresses_in_both_families() {
        assert_eq!(
            key_ip(b"169.254.172.2"),
            Some("169.254.172.2".parse().unwrap())
        );
        assert_eq!(key_ip(b"6fd00::2"), Some("fd00::2".parse().unwrap()));
        assert_eq!(key_ip(b"64.1.2.3"), Some("64.1.2.3".parse().unwrap()));
        assert_eq!(key_ip(b"lastKnownIP"), None);
        assert_eq!(key_ip(b"6"), None);
        assert_eq!(key_for("fd00::2".parse().unwrap()), b"6fd00::2");
        assert_eq!(key_for("10.0.0.1".parse().unwrap()), b"10.0.0.1");
    }
}
