//! The lease store: host-local's on-disk layout plus an owner index.
//!
//! Layout of `<dataDir>/<network>/` (new directories 0700, new files 0600):
//!
//! | entry | content | written by |
//! |---|---|---|
//! | `<ip>` (e.g. `10.0.0.2`, `fd00::2`) | `<id>\r\n<ifname>`, no newline | host-local and us |
//! | `last_reserved_ip.<N>` | the IP last reserved in range set N | host-local and us |
//! | `lock` | empty; `flock(LOCK_EX)` serialises all writers | host-local and us |
//! | `.owners/b00`..`bff` | owner index: append-only `+`/`-` lines `<ip> <id> <ifname>` | us |
//! | `.owners/names` | names log: the lease names (and inodes) the index has taken in, and the directory stamp (see [`crate::names`]) | us |
//! | `.owners/.complete` | marker: the index covers every lease up to the stamp (see [`crate::index`]) | us |
//! | `.tmp-<pid>-<n>` | a lease being written (transient; a crash leftover is ignored, and removed by [`Store::gc`] or an index rebuild) | us |
//!
//! **Reservation** writes the lease content to a temp file, appends the intent (`+ <ip> ...`)
//! to the owner's index bucket, then `link(2)`s the temp file to the IP name (`EEXIST` = taken)
//! and unlinks the temp file: a lease file is never empty or half-written, even after
//! `kill -9`. The temp file is created once per call and linked for every set, so a dual-stack
//! ADD creates one inode. A crash between intent and link leaves a stale index line; every
//! listed lease is verified against its file before use, so stale lines are ignored (and marked
//! dead when seen; when the file names another holder, that holder's line is added). **Release**
//! unlinks the verified lease files, then appends `-` lines.
//!
//! **Lookups by owner** read one index bucket (1/256 of the entries) and the owner's few lease
//! files, never the whole directory, so ADD and DEL cost the same with 0 or 5,000 leases. The
//! index is built by scanning every lease (under the lock) the first time a directory is used
//! (e.g. one Go host-local wrote) or when `.owners/.complete` is missing or of another format.
//!
//! **Leases anyone else writes, at any time, count.** Go host-local, an earlier release of
//! ours, or anything else that takes the same `flock` may change the directory between two of
//! our operations. Every operation of ours that changed the directory ends (still holding the
//! lock) by setting the directory's mtime to a stamp in the past with a random nanosecond part
//! and appending that stamp to the names log; every operation starts with one `fstat` of the
//! directory. Stamp and mtime equal: nobody else created or removed a name since, the index is
//! exact (a kernel-stamped change can never produce a time in the past, however coarse its
//! clock; see [`crate::names`]). Otherwise the operation **reconciles**: it lists the
//! directory once (raw `getdents64` into one buffer: names and inodes, no file read, no
//! `stat`), walks the listing in step with the names log, which keeps the names in the order
//! of the last listing (see [`crate::reconcile`]), reads only the files that are new or whose
//! inode changed, lists their holders in the index, marks the index lines of vanished names
//! dead (after one `fstatat` confirms each is gone), appends those changes to the names log,
//! and restamps. The cost is one directory listing (≈1 ms of kernel time at 5,000 leases on
//! ext4, where the kernel hashes every name it lists) plus a sequential walk, not a read of
//! every lease. An older release of ours rebuilds its own index when it finds ours
//! (other marker) and removes the names log; we rebuild once when we find its v2 marker.
//!
//! **An ADD does not reconcile.** Starting a task should not pay for what someone else
//! changed, and an allocation needs little of the index: every candidate address is checked
//! on disk (`link(2)` fails on a taken name), so all the index can miss is a lease another
//! writer made for the same owner since the stamp, and host-local names its latest
//! reservation in `last_reserved_ip.N`, which the ADD reads and checks. When the stamp does not
//! hold, an ADD therefore goes on with the index as it is, appends its own names to the log
//! without a stamp and leaves the directory's mtime alone, so the next lookup by owner (a
//! DEL, a CHECK) still reconciles and takes everything in. The listing moves off the ADD, to
//! the next DEL or CHECK.
//!
//! Known limitations, all repaired by [`Store::gc`] (a full scan): a lease file released and
//! recreated for another owner between two of our operations *with the same inode number* (the
//! file system may hand a freed inode out again) looks unchanged in the listing. Its new
//! holder's lookups miss it until GC, or until a lookup of the old holder finds the file names
//! someone else, or until a reconciliation sees it named by `last_reserved_ip.N` (host-local
//! rewrites that file on every reservation, so the common case, a static address released and
//! reserved again as the last reservation of its range set, is seen). A writer that does not
//! take the lock, or that sets the directory's mtime itself (restoring a backup of the
//! directory with its timestamps but without `.owners`), can hide a change until the next
//! reconciliation or GC. On a file system that refuses to set the mtime (not the owner, no
//! `CAP_FOWNER`) no stamp is recorded and every operation but an ADD reconciles. An ADD that
//! repeats a foreign ADD of the same owner which is not the latest foreign reservation of its
//! range set gets a second address (host-local refuses such a repeat); the owner's DEL
//! releases both. None of these can make us hand out an address twice: allocation always
//! checks the lease file itself.
//!
//! `.owners` belongs to this crate: remove the whole directory (or run [`Store::gc`]) to force
//! a rebuild; Go host-local ignores it (its files never match a lease's content). It holds
//! regular files only, so that an earlier release's rebuild can remove what it does not know.
//!
//! **Differences from host-local**, all deliberate: one lock for the whole multi-set
//! operation (host-local locks per set); a bounded lock wait; an ADD repeated for the same owner
//! returns the same leases instead of failing (and requesting a different address in a set where
//! the owner already holds one is an error); a failed ADD releases only the leases it created;
//! network and IPv4 broadcast addresses are never handed out, even inside an explicit window;
//! `last_reserved_ip.N` is rewritten in place (`pwrite` + truncate: no new inode);
//! new directories are 0700 (host-local: 0755); the network directory's mtime is a stamp of
//! ours (up to 3 s in the past) after each of our changes.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
#[cfg(feature = "test-hooks")]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ipnetwork::IpNetwork;

use crate::error::Error;
use crate::fsx::{Dir, Mtime, TMP_PREFIX, dirent_at, tmp_name};
use crate::index::{Index, OWNERS, bucket_of, holder_id};
use crate::lock::{self, LOCK, Lock};
use crate::names::{self, Known, Tail};
use crate::owner::{Holder, Owner};
use crate::range::{Range, RangeSet, check_sets};
use crate::reconcile;

/// host-local's default `dataDir`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";
/// Default bound on the lock wait.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

const LAST_RESERVED: &str = "last_reserved_ip.";
/// Largest lease file we read; anything bigger is corrupt.
const MAX_FILE: usize = 64 * 1024;
/// A reconciliation that paired more known names than this (plus 1/16 of the live names) out
/// of the names log's order rewrites the log in listing order.
const REWRITE_OUT_OF_ORDER: usize = 64;
/// Candidates probed one by one (`fstatat`) before switching to one directory listing.
const PROBE_LIMIT: usize = 32;

/// An address leased to an owner from range set `set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Index of the range set in the `sets` passed to [`Store::allocate`].
    pub set: usize,
    /// The leased address.
    pub address: IpAddr,
    /// The range it came from (subnet prefix, gateway).
    pub range: Range,
}

impl Lease {
    /// The address with its subnet's prefix, e.g. `10.0.0.2/24`.
    pub fn network(&self) -> IpNetwork {
        IpNetwork::new(self.address, self.range.subnet().prefix())
            .unwrap_or_else(|_| self.range.subnet())
    }

    /// The range's gateway.
    pub fn gateway(&self) -> IpAddr {
        self.range.gateway()
    }
}

/// What [`Store::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Leases removed because their holder is not a valid owner.
    pub released: Vec<(IpAddr, Holder)>,
    /// Number of leases kept.
    pub kept: usize,
    /// Leftover temp files removed.
    pub temp_removed: usize,
    /// Entries skipped (names that are not IPs, unreadable lease files) and failures.
    pub errors: Vec<String>,
}

/// A network's lease store, `<dataDir>/<network>/`. Cheap to open; every operation takes the
/// lock for its whole duration and releases it before returning.
#[derive(Debug)]
pub struct Store {
    dir: Dir,
    lock_timeout: Duration,
    sync: bool,
}

/// Test hook: a pause between the steps of every write, so a test can `kill -9` a process in
/// the middle of an operation. Only with the `test-hooks` feature; without it a step is nothing.
#[cfg(feature = "test-hooks")]
static STEP_DELAY_NS: AtomicU64 = AtomicU64::new(0);

#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn __set_step_delay(d: Duration) {
    STEP_DELAY_NS.store(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

pub(crate) fn step() {
    #[cfg(feature = "test-hooks")]
    {
        let ns = STEP_DELAY_NS.load(Ordering::Relaxed);
        if ns > 0 {
            std::thread::sleep(Duration::from_nanos(ns));
        }
    }
}

/// What the names log records of a lease file: its inode and its holder's index bucket.
fn known(ino: u64, holder: Option<&Holder>) -> Known {
    Known {
        ino,
        bucket: holder.map(|h| bucket_of(holder_id(h))),
    }
}

fn check_network_name(network: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidName {
            what: "network name",
            value: network.to_string(),
            reason,
        })
    };
    if network.is_empty() {
        return bad("is empty");
    }
    if network == "." || network == ".." {
        return bad("would escape the data directory");
    }
    if network.contains('/') {
        return bad("contains '/'");
    }
    if network.contains('\0') {
        return bad("contains NUL");
    }
    if network.len() > 255 {
        return bad("is longer than 255 bytes");
    }
    Ok(())
}

fn check_data_dir(data_dir: &Path) -> Result<(), Error> {
    use std::os::unix::ffi::OsStrExt;
    let bad = |reason| {
        Err(Error::InvalidName {
            what: "dataDir",
            value: data_dir.display().to_string(),
            reason,
        })
    };
    let bytes = data_dir.as_os_str().as_bytes();
    if bytes.is_empty() {
        return bad("is empty");
    }
    if bytes.contains(&0) {
        return bad("contains NUL");
    }
    if !data_dir.is_absolute() {
        return bad("is not an absolute path");
    }
    if data_dir
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return bad("contains '..'");
    }
    Ok(())
}

/// One pass over the network directory.
#[derive(Default)]
struct Scan {
    /// Lease files: address, inode and holder (or why it could not be read).
    leases: Vec<(IpAddr, u64, Result<Holder, String>)>,
    /// Leftover temp files.
    temps: Vec<String>,
    /// Entries that are none of ours nor host-local's.
    foreign: Vec<String>,
}

/// Every lease of a store, read under its lock, which stays held until this is dropped (see
/// [`Store::export`]).
#[derive(Debug)]
pub struct Export {
    /// Each lease file's address and holder (unreadable lease files are left out).
    pub leases: Vec<(IpAddr, Holder)>,
    /// The addresses of the `last_reserved_ip.*` files.
    pub last_reserved: Vec<IpAddr>,
    _lock: Lock,
}

/// A lease name on disk, with its inode and its holder when the index lists it.
type OnDisk = (IpAddr, u64, Option<Holder>);

/// An operation in progress: the lock is held and the index is exact, or (`unseen`) exact
/// but for what others changed since the last stamp.
struct Session<'a> {
    store: &'a Store,
    index: Index,
    /// The directory's mtime when the names log's stamp vouched for it at the start; `None`
    /// after a rebuild or a reconciliation (the directory is restamped at the end).
    valid: Option<Mtime>,
    /// The stamp did not hold and the operation went on without reconciling (an ADD, see
    /// [`Store::allocate`]): the index may miss leases others wrote since. Nothing is stamped
    /// at the end, so the next operation that needs an exact index reconciles.
    unseen: bool,
    /// What this operation adds to the names log.
    names: RefCell<NamesDelta>,
    _lock: Lock,
}

/// Names log lines to append at the end of an operation, and the log's counters after them.
#[derive(Default)]
struct NamesDelta {
    text: String,
    live: usize,
    lines: usize,
}

/// Whether the index lists leases of this holder (an empty file matches nobody).
fn indexable(h: &Holder) -> bool {
    *h != Holder::Legacy(String::new())
}

impl Store {
    /// Opens (creating when missing, mode 0700; existing modes are left alone)
    /// `<data_dir>/<network>/`. `data_dir` must be absolute without `..`; `network` must be a
    /// single path component (no `/`, NUL, `.` or `..`, not empty). The network directory
    /// must not be a symlink. `lock_timeout` bounds every lock wait
    /// ([`DEFAULT_LOCK_TIMEOUT`] is 5 s).
    pub fn open(data_dir: &Path, network: &str, lock_timeout: Duration) -> Result<Store, Error> {
        check_data_dir(data_dir)?;
        check_network_name(network)?;
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(|e| Error::io("create directory", data_dir.to_path_buf(), e))?;
        }
        let dir = Dir::open_under(data_dir, network)?;
        Ok(Store {
            dir,
            lock_timeout,
            sync: false,
        })
    }

    /// Opens `<data_dir>/<network>/` only when it exists (it is never created); `None` when
    /// it does not. Used to import a store into another one.
    pub fn open_existing(
        data_dir: &Path,
        network: &str,
        lock_timeout: Duration,
    ) -> Result<Option<Store>, Error> {
        check_data_dir(data_dir)?;
        check_network_name(network)?;
        let path = data_dir.join(network);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Corrupt {
                    path,
                    reason: "is not a directory".into(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("stat", path, e)),
        }
        let dir = Dir::open_under(data_dir, network)?;
        Ok(Some(Store {
            dir,
            lock_timeout,
            sync: false,
        }))
    }

    /// Reads every lease and `last_reserved_ip.*` under the store's lock and keeps the lock
    /// until the returned [`Export`] is dropped; writes nothing (the lock file is created when
    /// missing).
    pub fn export(&self) -> Result<Export, Error> {
        let lock = lock::acquire(&self.dir, self.lock_timeout)?;
        let scan = self.scan()?;
        let entries = self
            .dir
            .list()
            .map_err(|e| Error::io("list", self.dir.path().to_path_buf(), e))?;
        let last_reserved = entries
            .iter()
            .filter_map(|e| e.name.as_ref().ok())
            .filter(|n| n.starts_with(LAST_RESERVED))
            .filter_map(|n| self.dir.read_small(n, 128).ok().flatten())
            .filter_map(|b| String::from_utf8(b).ok()?.trim().parse().ok())
            .collect();
        Ok(Export {
            leases: scan
                .leases
                .into_iter()
                .filter_map(|(ip, _ino, h)| h.ok().map(|h| (ip, h)))
                .collect(),
            last_reserved,
            _lock: lock,
        })
    }

    /// The directory's `(device, inode)`, to tell whether a path still names it.
    pub fn identity(&self) -> Result<(u64, u64), Error> {
        self.dir
            .identity()
            .map_err(|e| Error::io("stat", self.dir.path().to_path_buf(), e))
    }

    /// With `sync`, the lease and index writes are fsynced before the lease is linked and the
    /// directory after, so a lease survives power loss intact (host-local never fsyncs; even
    /// without `sync` a process crash never leaves a partial lease file).
    pub fn with_sync(mut self, sync: bool) -> Store {
        self.sync = sync;
        self
    }

    /// `<dataDir>/<network>`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn io(&self, op: &'static str, name: &str) -> impl FnOnce(std::io::Error) -> Error {
        let path = self.dir.join(name);
        move |e| Error::io(op, path, e)
    }

    /// Locks and opens the index, without checking it.
    fn lock(&self) -> Result<Session<'_>, Error> {
        let lock = lock::acquire(&self.dir, self.lock_timeout)?;
        step();
        Ok(Session {
            store: self,
            index: Index::open(&self.dir, self.sync)?,
            valid: None,
            unseen: false,
            names: RefCell::default(),
            _lock: lock,
        })
    }

    /// Locks and makes the index exact: nothing to do when the directory's mtime is the
    /// names log's stamp (the steady state: one `fstat`, one small read); a reconciliation
    /// when it is not (someone else changed the directory); a full rebuild when the index is
    /// missing or of another format. With `may_skip`, a complete index whose stamp does not
    /// hold is used as it is instead of reconciled (the session is `unseen`).
    fn begin(&self, may_skip: bool) -> Result<Session<'_>, Error> {
        let mut s = self.lock()?;
        let mtime = self
            .dir
            .mtime()
            .map_err(|e| Error::io("stat", self.dir.path().to_path_buf(), e))?;
        if !s.index.is_complete()? {
            s.rebuild()?;
            return Ok(s);
        }
        // An unreadable names log (planted symlink, FIFO...) is no stamp: reconcile.
        match s.index.names_tail() {
            Ok(Some(Some(t))) if t.stamp == mtime => {
                s.valid = Some(mtime);
                *s.names.get_mut() = NamesDelta {
                    text: String::new(),
                    live: t.live,
                    lines: t.lines,
                };
            }
            Ok(Some(_)) if may_skip => s.unseen = true,
            _ => s.reconcile()?,
        }
        Ok(s)
    }

    /// Runs `f` in a session and stamps the directory at its end, whatever `f` returned.
    fn with<T>(&self, f: impl FnOnce(&Session<'_>) -> Result<T, Error>) -> Result<T, Error> {
        self.with_mode(false, f)
    }

    /// [`Store::with`], in a session that may be `unseen` when `may_skip`.
    fn with_mode<T>(
        &self,
        may_skip: bool,
        f: impl FnOnce(&Session<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let s = self.begin(may_skip)?;
        let r = f(&s);
        s.finish();
        r
    }

    /// Lists the network directory and reads every lease file (index build and GC only).
    fn scan(&self) -> Result<Scan, Error> {
        let entries = self
            .dir
            .list()
            .map_err(|e| Error::io("list", self.dir.path().to_path_buf(), e))?;
        let mut scan = Scan::default();
        for e in entries {
            let name = match e.name {
                Ok(n) => n,
                Err(raw) => {
                    scan.foreign
                        .push(String::from_utf8_lossy(&raw).into_owned());
                    continue;
                }
            };
            if name == LOCK || name == OWNERS || name.starts_with(LAST_RESERVED) {
                continue;
            }
            if name.starts_with(TMP_PREFIX) {
                scan.temps.push(name);
                continue;
            }
            let Some(ip) = lease_name(&name) else {
                scan.foreign.push(name);
                continue;
            };
            let Some(holder) = self.read_holder(&name) else {
                continue;
            };
            scan.leases.push((ip, e.ino, holder));
        }
        Ok(scan)
    }

    /// A lease file's holder as a scan reads it: `None` when the file is gone, `Some(Err)`
    /// (why) when it cannot be read as a lease.
    fn read_holder(&self, name: &str) -> Option<Result<Holder, String>> {
        match self.dir.read_small(name, MAX_FILE) {
            Ok(Some(bytes)) => Some(Holder::parse(&bytes).map_err(str::to_string)),
            Ok(None) => None,
            Err(e) => Some(Err(describe(&e))),
        }
    }

    /// The holder of the lease file of `ip`: `None` when there is none, `Some(Err)` when it
    /// cannot be read as a lease (symlink, directory, bad content).
    fn holder_of(&self, ip: IpAddr) -> Result<Option<Result<Holder, String>>, Error> {
        let name = ip.to_string();
        match self.dir.read_small(&name, MAX_FILE) {
            Ok(Some(b)) => Ok(Some(Holder::parse(&b).map_err(str::to_string))),
            Ok(None) => Ok(None),
            Err(e) => match e.raw_os_error() {
                Some(libc::ELOOP | libc::EISDIR | libc::ENXIO) => Ok(Some(Err(describe(&e)))),
                _ if e.kind() == std::io::ErrorKind::InvalidData => Ok(Some(Err(describe(&e)))),
                _ => Err(Error::io("read", self.dir.join(&name), e)),
            },
        }
    }

    fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        let name = format!("{LAST_RESERVED}{set}");
        let bytes = self.dir.read_small(&name, 128).ok()??;
        std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
    }

    /// Reserves one address per range set for `owner` and returns the leases in set order.
    ///
    /// Per set, in order: a requested address inside the set is reserved exactly (refused if it
    /// is a gateway, network or broadcast address, or taken); otherwise the owner's existing
    /// lease in the set is returned (a repeated ADD is retry-safe; after a foreign write, see
    /// the module docs for what is looked at); otherwise the next free
    /// address round-robin from `last_reserved_ip.<set>`. A set takes the first requested
    /// address (in the order given) inside its windows; a requested address no set takes
    /// (outside every set, or a second one in a set) is refused once every set has allocated.
    /// When a set fails, or an address is left over, the leases this call created are released.
    /// The whole call holds the lock once.
    ///
    /// `last_reserved_ip.<set>` moves exactly as host-local moves it: on every reservation,
    /// also one a later failure releases again (so after an ADD refused for a requested
    /// address outside every range, each set's pointer has advanced by one allocation).
    pub fn allocate(
        &self,
        owner: &Owner,
        sets: &[RangeSet],
        requested: &[IpAddr],
    ) -> Result<Vec<Lease>, Error> {
        owner.validate()?;
        check_sets(sets, "ranges")?;
        let (want, leftover) = map_requests(sets, requested);
        self.with_mode(true, |s| s.allocate(owner, sets, &want, &leftover))
    }

    /// Releases every lease of `owner` and returns the released addresses (empty when it held
    /// nothing, which is not an error). Like host-local, when the owner has no
    /// `<id>\r\n<ifname>` lease, legacy ID-only leases of its id are released instead.
    pub fn release_by_owner(&self, owner: &Owner) -> Result<Vec<IpAddr>, Error> {
        owner.validate()?;
        self.with(|s| {
            let released = s.release_held(Holder::Owner(owner.clone()), |h| h.is(owner))?;
            if !released.is_empty() {
                return Ok(released);
            }
            s.release_held(Holder::Legacy(owner.id.clone()), |h| h.is_legacy_of(owner))
        })
    }

    /// Releases the given addresses whoever holds them (ecs-ipam's DEL by address) and
    /// returns those that were leased, with their holder when the file was readable.
    pub fn release_addresses(
        &self,
        addresses: &[IpAddr],
    ) -> Result<Vec<(IpAddr, Option<Holder>)>, Error> {
        self.with(|s| {
            let mut out = Vec::new();
            for &ip in addresses {
                let name = ip.to_string();
                let Some(holder) = self.holder_of(ip)? else {
                    continue;
                };
                if !self.dir.unlink(&name).map_err(self.io("unlink", &name))? {
                    continue;
                }
                s.note_removed(ip);
                step();
                let holder = holder.ok();
                if let Some(h) = &holder {
                    s.index.append(false, &[(ip, h)])?;
                }
                out.push((ip, holder));
            }
            Ok(out)
        })
    }

    /// The addresses leased to `owner` (for CHECK); like host-local, legacy ID-only leases of
    /// its id when it has no `<id>\r\n<ifname>` lease.
    pub fn find(&self, owner: &Owner) -> Result<Vec<IpAddr>, Error> {
        owner.validate()?;
        self.with(|s| {
            let mine = s.held(&owner.id, |h| h.is(owner))?;
            if !mine.is_empty() {
                return Ok(mine);
            }
            s.held(&owner.id, |h| h.is_legacy_of(owner))
        })
    }

    /// Releases every lease whose holder is not in `valid` and rebuilds the owner index and
    /// the names log.
    ///
    /// Scans the whole directory. A legacy ID-only lease is valid when some valid owner has its
    /// id; an empty lease file matches nobody and is released. Entries whose name is not an
    /// IP (other than `lock`, `last_reserved_ip.*`, `.owners`) and lease files that cannot be
    /// read (symlinks, directories, non-UTF-8 or oversized content) are skipped and reported in
    /// [`GcReport::errors`]; leftover temp files are removed.
    pub fn gc(&self, valid: &HashSet<Owner>) -> Result<GcReport, Error> {
        let ids: HashSet<&str> = valid.iter().map(|o| o.id.trim()).collect();
        let owners: HashSet<(&str, &str)> = valid
            .iter()
            .map(|o| (o.id.trim(), o.ifname.as_str()))
            .collect();
        let mut s = self.lock()?;
        let scan = self.scan()?;
        let mut report = GcReport::default();
        for t in scan.temps {
            match self.dir.unlink(&t) {
                Ok(_) => report.temp_removed += 1,
                Err(e) => report
                    .errors
                    .push(format!("unlink {}: {e}", self.dir.join(&t).display())),
            }
        }
        for f in scan.foreign {
            report.errors.push(format!(
                "{}: not a lease (name is not an IP address); skipped",
                self.dir.join(&f).display()
            ));
        }
        // Every lease name left on disk, for the names log; the index lists the readable ones.
        let mut left: Vec<OnDisk> = Vec::new();
        for (ip, ino, holder) in scan.leases {
            let name = ip.to_string();
            let h = match holder {
                Ok(h) => h,
                Err(reason) => {
                    report.errors.push(format!(
                        "{}: {reason}; skipped",
                        self.dir.join(&name).display()
                    ));
                    left.push((ip, ino, None));
                    continue;
                }
            };
            let keep = match &h {
                Holder::Owner(o) => owners.contains(&(o.id.as_str(), o.ifname.as_str())),
                Holder::Legacy(id) => !id.is_empty() && ids.contains(id.as_str()),
            };
            if keep {
                report.kept += 1;
                left.push((ip, ino, Some(h)));
                continue;
            }
            match self.dir.unlink(&name) {
                Ok(_) => report.released.push((ip, h)),
                Err(e) => {
                    report
                        .errors
                        .push(format!("unlink {}: {e}", self.dir.join(&name).display()));
                    left.push((ip, ino, Some(h).filter(indexable)));
                }
            }
            step();
        }
        s.rewrite(&left)?;
        s.finish();
        Ok(report)
    }

    /// Free addresses per range set: capacity minus the lease files inside the set's windows
    /// (one directory listing, no file read, no lock: each entry is created and removed
    /// atomically, so the count is as exact as any answer that is stale once returned).
    pub fn free_counts(&self, sets: &[RangeSet]) -> Result<Vec<u128>, Error> {
        let entries = self
            .dir
            .list()
            .map_err(|e| Error::io("list", self.dir.path().to_path_buf(), e))?;
        let mut used = vec![0u128; sets.len()];
        for e in entries {
            let Some(ip) = e.name.ok().as_deref().and_then(lease_name) else {
                continue;
            };
            for (i, set) in sets.iter().enumerate() {
                if allocatable(set, ip) {
                    used[i] += 1;
                }
            }
        }
        Ok(sets
            .iter()
            .zip(used)
            .map(|(s, u)| s.capacity().saturating_sub(u))
            .collect())
    }

    /// The first range set without a free address, described for a STATUS reply
    /// (`no IP addresses available in range set 0: 10.0.0.1-10.0.0.254`), or `None`.
    pub fn exhausted(&self, sets: &[RangeSet]) -> Result<Option<String>, Error> {
        let free = self.free_counts(sets)?;
        Ok(free.iter().position(|f| *f == 0).and_then(|i| {
            sets.get(i)
                .map(|s| format!("no IP addresses available in range set {i}: {s}"))
        }))
    }
}

/// The address a directory entry names, when the name is an address's canonical text.
fn lease_name(name: &str) -> Option<IpAddr> {
    name.parse::<IpAddr>()
        .ok()
        .filter(|ip| ip.to_string() == name)
}

/// Whether `ip` is in one of `set`'s windows and not reserved.
pub(crate) fn allocatable(set: &RangeSet, ip: IpAddr) -> bool {
    set.range_for(ip)
        .is_some_and(|r| r.reserved_kind(ip).is_none())
}

/// Assigns requested addresses to range sets as host-local does: each set takes the first
/// requested address (in the order given) inside one of its windows; repeats of an address are
/// ignored. Returns each set's address and the addresses no set took.
fn map_requests(sets: &[RangeSet], requested: &[IpAddr]) -> (Vec<Option<IpAddr>>, Vec<IpAddr>) {
    let mut want: Vec<Option<IpAddr>> = vec![None; sets.len()];
    let mut leftover: Vec<IpAddr> = Vec::new();
    for &ip in requested {
        if want.contains(&Some(ip)) || leftover.contains(&ip) {
            continue;
        }
        match sets.iter().position(|s| s.contains(ip)) {
            Some(i) if want[i].is_none() => want[i] = Some(ip),
            _ => leftover.push(ip),
        }
    }
    (want, leftover)
}

/// Assigns each requested address to the set whose window contains it, refusing at once an
/// address outside every set, a second address in one set, and a gateway, network or broadcast
/// address (the ecs-ipam dialect's rules: one static address per family, checked up front).
pub(crate) fn map_requests_strict(
    sets: &[RangeSet],
    requested: &[IpAddr],
) -> Result<Vec<Option<IpAddr>>, Error> {
    let mut want: Vec<Option<IpAddr>> = vec![None; sets.len()];
    for &ip in requested {
        let found = sets
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.range_for(ip).map(|r| (i, s, r)));
        let Some((i, set, range)) = found else {
            let all: Vec<String> = sets.iter().map(ToString::to_string).collect();
            return Err(Error::RequestedOutsideRanges {
                address: ip,
                ranges: all.join("; "),
            });
        };
        match want.get(i).copied().flatten() {
            Some(first) if first == ip => continue,
            Some(first) => {
                return Err(Error::RequestedTwiceInSet {
                    first,
                    second: ip,
                    set: i,
                    ranges: set.to_string(),
                });
            }
            None => {}
        }
        match range.reserved_kind(ip) {
            Some("gateway") => {
                return Err(Error::RequestedGateway {
                    address: ip,
                    range: range.to_string(),
                });
            }
            Some(kind) => {
                return Err(Error::RequestedReserved {
                    address: ip,
                    kind,
                    subnet: range.subnet().to_string(),
                });
            }
            None => {}
        }
        if let Some(w) = want.get_mut(i) {
            *w = Some(ip);
        }
    }
    Ok(want)
}

/// Why the first address [`map_requests`] left over cannot be allocated.
fn leftover_error(
    sets: &[RangeSet],
    want: &[Option<IpAddr>],
    leftover: &[IpAddr],
) -> Option<Error> {
    let &ip = leftover.first()?;
    Some(match sets.iter().position(|s| s.contains(ip)) {
        Some(i) => Error::RequestedTwiceInSet {
            first: want.get(i).copied().flatten().unwrap_or(ip),
            second: ip,
            set: i,
            ranges: sets[i].to_string(),
        },
        None => Error::RequestedOutsideRanges {
            address: ip,
            ranges: sets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        },
    })
}

/// Refuses a requested address that is a gateway, network or broadcast address of its range.
fn check_requested(set: &RangeSet, req: IpAddr) -> Result<(), Error> {
    match set
        .range_for(req)
        .and_then(|r| r.reserved_kind(req).map(|k| (r, k)))
    {
        Some((r, "gateway")) => Err(Error::RequestedGateway {
            address: req,
            range: r.to_string(),
        }),
        Some((r, kind)) => Err(Error::RequestedReserved {
            address: req,
            kind,
            subnet: r.subnet().to_string(),
        }),
        None => Ok(()),
    }
}

fn describe(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ELOOP) => "is a symbolic link (not followed)".into(),
        Some(libc::EISDIR) => "is a directory".into(),
        _ => e.to_string(),
    }
}

impl Session<'_> {
    fn dir(&self) -> &Dir {
        &self.store.dir
    }

    /// Scans every lease and rebuilds the index and the names log; crash leftovers go too.
    fn rebuild(&mut self) -> Result<(), Error> {
        let scan = self.store.scan()?;
        // Under the lock every temp file is a crash leftover.
        for t in &scan.temps {
            let _ = self.dir().unlink(t);
        }
        let leases: Vec<OnDisk> = scan
            .leases
            .into_iter()
            .map(|(ip, ino, h)| (ip, ino, h.ok().filter(indexable)))
            .collect();
        self.rewrite(&leases)
    }

    /// Replaces the index with the holders of `leases` and the names log with their names:
    /// every lease name on disk, with its holder when the index lists it.
    fn rewrite(&mut self, leases: &[OnDisk]) -> Result<(), Error> {
        let mut text = String::new();
        let mut entries = Vec::new();
        for (ip, ino, h) in leases {
            names::add_line(&mut text, &ip.to_string(), known(*ino, h.as_ref()));
            if let Some(h) = h {
                entries.push((*ip, h.clone()));
            }
        }
        self.index
            .rebuild(&entries, &names::with_base(&text, leases.len()))?;
        *self.names.get_mut() = NamesDelta {
            text: String::new(),
            live: leases.len(),
            lines: leases.len(),
        };
        self.valid = None;
        Ok(())
    }

    /// Takes in what changed in the directory since the names log's stamp, whoever changed
    /// it: one listing (names and inodes) compared with the known names. A new name, or a
    /// known name with another inode, is read and indexed; a vanished name's index line is
    /// marked dead. The lease each `last_reserved_ip.N` names is read again even when its
    /// inode is unchanged (host-local rewrites that file on every reservation, so an address
    /// released and reserved again for another owner between two of our operations, which
    /// the file system may give the freed inode, is seen when it was the last one reserved).
    fn reconcile(&mut self) -> Result<(), Error> {
        let Some(bytes) = self.index.names_read().ok().flatten() else {
            // No names log: nothing to compare with.
            return self.rebuild();
        };
        let log = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let d = self.dir();
        let listing = d
            .read_dirents()
            .map_err(|e| Error::io("list", d.path().to_path_buf(), e))?;
        let delta = self.compare(&log, &listing)?;
        *self.names.get_mut() = delta;
        self.valid = None;
        Ok(())
    }

    /// The body of [`Session::reconcile`]: compares the raw listing `listing` with `log` (see
    /// [`crate::reconcile`]), reads what changed, updates the index, and returns the names
    /// log lines to append.
    fn compare(&self, log: &str, listing: &[u8]) -> Result<NamesDelta, Error> {
        let recent = self.recent_reserved();
        let diff = reconcile::diff(listing, log, &recent, false);
        let mut delta = NamesDelta {
            text: String::new(),
            live: diff.kept,
            lines: diff.lines,
        };
        let mut read = self.resolved(&diff.read);
        let mut dead = self.note_gone(&diff.gone, &mut read, &mut delta)?;
        let (rechecked, added) = self.read_changed(read, &mut dead)?;
        self.mark_dead(&dead)?;
        self.take_in(&added, &mut delta)?;
        delta.live += rechecked.len();
        if names::needs_compaction(delta.live, delta.lines)
            || diff.out_of_order > REWRITE_OUT_OF_ORDER + delta.live / 16
        {
            self.rewrite_in_listing_order(log, listing, &recent, &rechecked, &added)?;
            delta.text.clear();
            delta.lines = delta.live;
        }
        Ok(delta)
    }

    /// The addresses `last_reserved_ip.N` name (host-local numbers the files from 0).
    fn recent_reserved(&self) -> Vec<String> {
        (0..64)
            .map_while(|n| {
                self.dir()
                    .read_small(&format!("{LAST_RESERVED}{n}"), 128)
                    .ok()
                    .flatten()
            })
            .filter_map(|b| String::from_utf8(b).ok().map(|s| s.trim().to_string()))
            .collect()
    }

    /// The names of a diff's reads that are lease names, as addresses.
    fn resolved(&self, read: &[(&[u8], u64, Option<Known>)]) -> Vec<(IpAddr, u64, Option<Known>)> {
        read.iter()
            .filter_map(|(name, ino, k)| {
                let ip = std::str::from_utf8(name).ok().and_then(lease_name)?;
                Some((ip, *ino, *k))
            })
            .collect()
    }

    /// Known names the listing no longer has: `-` lines, and their index buckets to mark
    /// dead. A name that still exists after all (only a malformed log can say so) is read
    /// again instead (added to `read`).
    fn note_gone(
        &self,
        gone: &[(&[u8], Known)],
        read: &mut Vec<(IpAddr, u64, Option<Known>)>,
        delta: &mut NamesDelta,
    ) -> Result<Vec<(IpAddr, u8)>, Error> {
        let d = self.dir();
        let mut dead = Vec::new();
        for (name, k) in gone {
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let ip = lease_name(name);
            if let Some(ip) = ip
                && let Some(ino) = d.ino_of(name).map_err(self.store.io("stat", name))?
            {
                read.push((ip, ino, Some(*k)));
                continue;
            }
            names::remove_line(&mut delta.text, name);
            delta.lines = delta.lines.saturating_add(1);
            if let (Some(ip), Some(b)) = (ip, k.bucket) {
                dead.push((ip, b));
            }
        }
        Ok(dead)
    }

    /// Reads the lease files of new names and of known names with another inode (or named
    /// by `last_reserved_ip.N`). Returns the known ones whose holder is the one indexed
    /// (`rechecked`) and the names to take in (`added`, with their holder when the file is a
    /// lease); the old index lines of the others go to `dead`.
    #[allow(clippy::type_complexity)]
    fn read_changed(
        &self,
        read: Vec<(IpAddr, u64, Option<Known>)>,
        dead: &mut Vec<(IpAddr, u8)>,
    ) -> Result<(Vec<(IpAddr, Known)>, Vec<OnDisk>), Error> {
        let mut added: Vec<OnDisk> = Vec::new();
        let mut rechecked: Vec<(IpAddr, Known)> = Vec::new();
        for (ip, ino, before) in read {
            let Some(holder) = self.store.read_holder(&ip.to_string()) else {
                continue;
            };
            let holder = holder.ok().filter(indexable);
            let bucket = known(ino, holder.as_ref()).bucket;
            if let Some(k) = before {
                if k.ino == ino
                    && k.bucket == bucket
                    && match &holder {
                        Some(h) => self.index.load(holder_id(h))?.contains(&(ip, h.clone())),
                        None => true,
                    }
                {
                    rechecked.push((ip, k));
                    continue;
                }
                if let Some(b) = k.bucket {
                    dead.push((ip, b));
                }
            }
            added.push((ip, ino, holder));
        }
        Ok((rechecked, added))
    }

    /// Lists the holders of `added` in the index and notes their names.
    fn take_in(&self, added: &[OnDisk], delta: &mut NamesDelta) -> Result<(), Error> {
        let indexed: Vec<(IpAddr, &Holder)> = added
            .iter()
            .filter_map(|(ip, _, h)| h.as_ref().map(|h| (*ip, h)))
            .collect();
        self.index.append(true, &indexed)?;
        for (ip, ino, h) in added {
            names::add_line(&mut delta.text, &ip.to_string(), known(*ino, h.as_ref()));
            delta.lines = delta.lines.saturating_add(1);
        }
        delta.live += added.len();
        Ok(())
    }

    /// Replaces the names log with every live name in the order of `listing`, so that the
    /// next comparison walks it in step: the unchanged names of `log`, then `rechecked` and
    /// `added`.
    fn rewrite_in_listing_order(
        &self,
        log: &str,
        listing: &[u8],
        recent: &[String],
        rechecked: &[(IpAddr, Known)],
        added: &[OnDisk],
    ) -> Result<(), Error> {
        let diff = reconcile::diff(listing, log, recent, true);
        let mut live: HashMap<Vec<u8>, Known> = diff
            .kept_list
            .iter()
            .map(|(n, k)| (n.to_vec(), *k))
            .collect();
        for (ip, k) in rechecked {
            live.insert(ip.to_string().into_bytes(), *k);
        }
        for (ip, ino, h) in added {
            live.insert(ip.to_string().into_bytes(), known(*ino, h.as_ref()));
        }
        let n = live.len();
        let mut text = String::new();
        let mut at = 0;
        while let Some((name, _, next)) = dirent_at(listing, at) {
            at = next;
            if let (Some(k), Ok(n)) = (live.remove(name), std::str::from_utf8(name)) {
                names::add_line(&mut text, n, k);
            }
        }
        // Unreachable in practice (every live name was listed); kept for exactness.
        for (n, k) in &live {
            names::add_line(&mut text, &String::from_utf8_lossy(n), *k);
        }
        self.index.names_replace(&names::with_base(&text, n))
    }

    /// Appends `-` lines for the live entries of each `(address, bucket)`.
    fn mark_dead(&self, gone: &[(IpAddr, u8)]) -> Result<(), Error> {
        let mut by_bucket: std::collections::BTreeMap<u8, HashSet<IpAddr>> = Default::default();
        for (ip, b) in gone {
            by_bucket.entry(*b).or_default().insert(*ip);
        }
        for (b, ips) in by_bucket {
            let live = self.index.load_bucket(b)?;
            let dead: Vec<(IpAddr, &Holder)> = live
                .iter()
                .filter(|(ip, _)| ips.contains(ip))
                .map(|(ip, h)| (*ip, h))
                .collect();
            self.index.append(false, &dead)?;
        }
        Ok(())
    }

    /// Records a lease name this operation linked.
    fn note_added(&self, ip: IpAddr, ino: u64, holder: &Holder) {
        let mut n = self.names.borrow_mut();
        names::add_line(&mut n.text, &ip.to_string(), known(ino, Some(holder)));
        n.live = n.live.saturating_add(1);
        n.lines = n.lines.saturating_add(1);
    }

    /// Records a lease name this operation unlinked.
    fn note_removed(&self, ip: IpAddr) {
        let mut n = self.names.borrow_mut();
        names::remove_line(&mut n.text, &ip.to_string());
        n.live = n.live.saturating_sub(1);
        n.lines = n.lines.saturating_add(1);
    }

    /// Ends the operation: when the directory changed (or the index was rebuilt or
    /// reconciled), sets the directory's mtime to a fresh stamp (see [`crate::names`]) and
    /// appends this operation's names and the stamp line in one write; an `unseen` session
    /// appends its names only. Best effort: when a step fails the log has no valid stamp and
    /// the next operation reconciles.
    fn finish(self) {
        let d = self.dir();
        let mut n = self.names.take();
        if self.unseen {
            // The index may miss what others changed: record our own changes, no stamp.
            if !n.text.is_empty() {
                let _ = self.index.names_append(&n.text);
            }
            return;
        }
        // Nothing of ours to record: done if the stamp still holds (one `fstat`; an operation
        // that wrote lines stamps anyway, and `set_mtime` reads the mtime it sets).
        if n.text.is_empty() && self.valid.is_some() && d.mtime().ok() == self.valid {
            return;
        }
        if names::needs_compaction(n.live, n.lines)
            && let Some((text, live)) = self.compacted(&n.text)
            && self.index.names_replace(&text).is_ok()
        {
            n = NamesDelta {
                text: String::new(),
                live,
                lines: live,
            };
        }
        let want = names::pick_stamp();
        // A file system that ignores the request stamps "now" instead: no stamp then.
        if let Ok(stamp) = d.set_mtime(want)
            && stamp.sec <= want.sec
        {
            let tail = Tail {
                stamp,
                live: n.live,
                lines: n.lines,
            };
            names::stamp_line(&mut n.text, &tail);
        }
        if !n.text.is_empty() {
            let _ = self.index.names_append(&n.text);
        }
    }

    /// The names log with `delta` applied, as a fresh log without dead lines (its base in
    /// the old base's order, the delta's names after it), and its size.
    fn compacted(&self, delta: &str) -> Option<(String, usize)> {
        let mut log = String::from_utf8(self.index.names_read().ok()??).ok()?;
        log.push('\n');
        log.push_str(delta);
        let live = names::live_in_order(&log);
        let mut text = String::new();
        for (name, k) in &live {
            names::add_line(&mut text, name, *k);
        }
        Some((names::with_base(&text, live.len()), live.len()))
    }

    /// [`Store::allocate`] under the lock, `want` mapped per set.
    fn allocate(
        &self,
        owner: &Owner,
        sets: &[RangeSet],
        want: &[Option<IpAddr>],
        leftover: &[IpAddr],
    ) -> Result<Vec<Lease>, Error> {
        let mut held = self.held(&owner.id, |h| h.is(owner))?;
        let mut created = Vec::new();
        let mut tmp = None;
        let result = (0..sets.len())
            .map(|i| {
                self.allocate_in(
                    owner,
                    i,
                    &sets[i],
                    want.get(i).copied().flatten(),
                    &mut held,
                    &mut tmp,
                    &mut created,
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|leases| match leftover_error(sets, want, leftover) {
                Some(e) => Err(e),
                None => Ok(leases),
            });
        let d = self.dir();
        if let Some((t, _)) = &tmp {
            let _ = d.unlink(t);
        }
        match result {
            Ok(leases) => {
                if self.store.sync && !created.is_empty() {
                    d.sync()
                        .map_err(|e| Error::io("fsync", d.path().to_path_buf(), e))?;
                }
                Ok(leases)
            }
            Err(e) => {
                for ip in &created {
                    if matches!(d.unlink(&ip.to_string()), Ok(true)) {
                        self.note_removed(*ip);
                    }
                }
                let h = Holder::Owner(owner.clone());
                let dead: Vec<(IpAddr, &Holder)> = created.iter().map(|ip| (*ip, &h)).collect();
                let _ = self.index.append(false, &dead);
                Err(e)
            }
        }
    }

    /// The addresses listed in the bucket of `id` for a holder satisfying `matches` whose
    /// lease file confirms that holder; listed addresses whose file says otherwise are marked
    /// dead in the index (and, when the file names another holder, listed for that one).
    fn held(&self, id: &str, matches: impl Fn(&Holder) -> bool) -> Result<Vec<IpAddr>, Error> {
        let entries = self.index.load(id)?;
        let mut mine: Vec<IpAddr> = Vec::new();
        let mut dead = Vec::new();
        let mut moved = Vec::new();
        for (ip, listed) in entries.iter().filter(|(_, h)| matches(h)) {
            if mine.contains(ip) {
                continue;
            }
            match self.store.holder_of(*ip)? {
                Some(Ok(h)) if h == *listed => mine.push(*ip),
                Some(Ok(h)) if indexable(&h) => {
                    dead.push((*ip, listed));
                    moved.push((*ip, h));
                }
                _ => dead.push((*ip, listed)),
            }
        }
        if !dead.is_empty() {
            self.index.append(false, &dead)?;
        }
        if !moved.is_empty() {
            let moved: Vec<(IpAddr, &Holder)> = moved.iter().map(|(ip, h)| (*ip, h)).collect();
            self.index.append(true, &moved)?;
        }
        Ok(mine)
    }

    /// Unlinks the verified leases of the entries satisfying `matches`, then records them
    /// dead.
    fn release_held(
        &self,
        holder: Holder,
        matches: impl Fn(&Holder) -> bool,
    ) -> Result<Vec<IpAddr>, Error> {
        let held = self.held(holder_id(&holder), &matches)?;
        let mut released = Vec::new();
        for ip in &held {
            let n = ip.to_string();
            if self.dir().unlink(&n).map_err(self.store.io("unlink", &n))? {
                released.push(*ip);
                self.note_removed(*ip);
            }
            step();
        }
        let dead: Vec<(IpAddr, &Holder)> = released.iter().map(|ip| (*ip, &holder)).collect();
        self.index.append(false, &dead)?;
        Ok(released)
    }

    /// One set of [`Store::allocate`]: the requested address, else the owner's lease in the
    /// set, else the next free address round-robin.
    #[allow(clippy::too_many_arguments)]
    fn allocate_in(
        &self,
        owner: &Owner,
        i: usize,
        set: &RangeSet,
        want: Option<IpAddr>,
        held: &mut Vec<IpAddr>,
        tmp: &mut Option<(String, u64)>,
        created: &mut Vec<IpAddr>,
    ) -> Result<Lease, Error> {
        let lease = |ip: IpAddr| self.lease_in(i, set, ip);
        let mine: Vec<IpAddr> = held
            .iter()
            .copied()
            .filter(|ip| allocatable(set, *ip))
            .collect();
        if let Some(req) = want {
            check_requested(set, req)?;
            if mine.contains(&req) {
                return lease(req);
            }
            if let Some(h) = mine.first() {
                return Err(Error::OwnerHoldsOther {
                    owner: owner.to_string(),
                    held: *h,
                    requested: req,
                    set: i,
                    ranges: set.to_string(),
                });
            }
            return self.reserve_requested(owner, i, set, req, held, tmp, created);
        }
        if let Some(h) = mine.first() {
            return lease(*h);
        }
        let last = self.store.last_reserved(i);
        // Unseen: the index may miss a lease another writer made for this owner since it last
        // saw the directory. host-local names its latest reservation in `last_reserved_ip.N`,
        // so an ADD it made and one of ours repeats is found without a listing.
        if self.unseen
            && let Some(l) = last.filter(|l| allocatable(set, *l))
            && let Some(Ok(h)) = self.store.holder_of(l)?
            && h.is(owner)
        {
            return self.adopt(i, set, l, &h, held);
        }
        self.reserve_next_free(owner, i, set, last, held, tmp, created)
    }

    /// Lists `ip`, whose lease file names `h`, a holder matching the owner, in the index and
    /// in `held`, and returns its lease: another writer leased it to the owner after the index
    /// last saw it.
    fn adopt(
        &self,
        i: usize,
        set: &RangeSet,
        ip: IpAddr,
        h: &Holder,
        held: &mut Vec<IpAddr>,
    ) -> Result<Lease, Error> {
        self.index.append(true, &[(ip, h)])?;
        held.push(ip);
        self.lease_in(i, set, ip)
    }

    /// The lease of `ip` from range set `i`.
    fn lease_in(&self, i: usize, set: &RangeSet, ip: IpAddr) -> Result<Lease, Error> {
        let range = set.range_for(ip).cloned().ok_or_else(|| Error::Corrupt {
            path: self.dir().join(&ip.to_string()),
            reason: format!("is not in range set {i} ({set})"),
        })?;
        Ok(Lease {
            set: i,
            address: ip,
            range,
        })
    }

    /// Reserves the requested address `req` of set `i` for `owner`, who holds none in the
    /// set; when it is taken, it is the owner's only if a foreign writer leased it to them.
    #[allow(clippy::too_many_arguments)]
    fn reserve_requested(
        &self,
        owner: &Owner,
        i: usize,
        set: &RangeSet,
        req: IpAddr,
        held: &mut Vec<IpAddr>,
        tmp: &mut Option<(String, u64)>,
        created: &mut Vec<IpAddr>,
    ) -> Result<Lease, Error> {
        let name = req.to_string();
        if !self
            .dir()
            .exists(&name)
            .map_err(self.store.io("stat", &name))?
            && self.reserve(owner, i, req, held, tmp, created)?
        {
            return self.lease_in(i, set, req);
        }
        // Taken: ours only if a foreign writer added it after the index was built.
        match self.store.holder_of(req)? {
            Some(Ok(h)) if h.is(owner) => self.adopt(i, set, req, &h, held),
            holder => Err(Error::AddressTaken {
                address: req,
                set: i,
                ranges: set.to_string(),
                holder: match holder {
                    Some(Ok(h)) => h.to_string(),
                    Some(Err(reason)) => format!("an unreadable lease file ({reason})"),
                    None => "nobody (released meanwhile)".into(),
                },
            }),
        }
    }

    /// Reserves the next free address of set `i` round-robin from `last`, the address
    /// `last_reserved_ip.<i>` names: the first [`PROBE_LIMIT`] candidates are probed one by
    /// one, then one listing says which are taken.
    #[allow(clippy::too_many_arguments)]
    fn reserve_next_free(
        &self,
        owner: &Owner,
        i: usize,
        set: &RangeSet,
        last: Option<IpAddr>,
        held: &mut Vec<IpAddr>,
        tmp: &mut Option<(String, u64)>,
        created: &mut Vec<IpAddr>,
    ) -> Result<Lease, Error> {
        let mut taken: Option<HashSet<IpAddr>> = None;
        let mut probes = 0usize;
        for (cand, _) in set.candidates(last) {
            let busy = match &taken {
                Some(t) => t.contains(&cand),
                None if probes < PROBE_LIMIT => {
                    probes += 1;
                    let name = cand.to_string();
                    self.dir()
                        .exists(&name)
                        .map_err(self.store.io("stat", &name))?
                }
                None => {
                    // Many neighbours are taken: list the directory once instead.
                    let t = self.taken_in(set)?;
                    if (t.len() as u128) >= set.capacity() {
                        break;
                    }
                    let busy = t.contains(&cand);
                    taken = Some(t);
                    busy
                }
            };
            if !busy && self.reserve(owner, i, cand, held, tmp, created)? {
                return self.lease_in(i, set, cand);
            }
        }
        Err(Error::Exhausted {
            set: i,
            ranges: set.to_string(),
        })
    }

    /// The leased addresses of `set` (one directory listing).
    fn taken_in(&self, set: &RangeSet) -> Result<HashSet<IpAddr>, Error> {
        let d = self.dir();
        let entries = d
            .list()
            .map_err(|e| Error::io("list", d.path().to_path_buf(), e))?;
        Ok(entries
            .into_iter()
            .filter_map(|e| e.name.ok().as_deref().and_then(lease_name))
            .filter(|ip| allocatable(set, *ip))
            .collect())
    }

    /// Records the intent, then links the lease file into place. `Ok(false)` when the name got
    /// taken meanwhile (only possible with a writer that ignores the lock).
    fn reserve(
        &self,
        owner: &Owner,
        set: usize,
        ip: IpAddr,
        held: &mut Vec<IpAddr>,
        tmp: &mut Option<(String, u64)>,
        created: &mut Vec<IpAddr>,
    ) -> Result<bool, Error> {
        let d = self.dir();
        let (t, ino) = match tmp {
            Some((t, ino)) => (t.clone(), *ino),
            None => {
                let t = tmp_name();
                let ino = d
                    .create_new_ino(&t, owner.content().as_bytes(), self.store.sync)
                    .map_err(self.store.io("create", &t))?;
                *tmp = Some((t.clone(), ino));
                step();
                (t, ino)
            }
        };
        let h = Holder::Owner(owner.clone());
        self.index.append(true, &[(ip, &h)])?;
        step();
        let name = ip.to_string();
        if !d.link(&t, &name).map_err(self.store.io("link", &name))? {
            self.index.append(false, &[(ip, &h)])?;
            return Ok(false);
        }
        self.note_added(ip, ino, &h);
        created.push(ip);
        held.push(ip);
        step();
        let lr = format!("{LAST_RESERVED}{set}");
        d.overwrite(&lr, name.as_bytes())
            .map_err(self.store.io("write", &lr))?;
        step();
        Ok(true)
    }
}
