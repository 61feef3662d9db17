//! Opening, validating, reading and committing a bolt file.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Problem};
use crate::format::{
    BRANCH, BUCKET_HEADER, BUCKET_LEAF, COUNT_OVERFLOW, ELEM, Entry, FREELIST, HEADER, Header,
    LEAF, MAGIC, META_LEN, Meta, MetaFault, NO_FREELIST, VERSION, branch_bytes, branch_entries,
    bucket_value, freelist_bytes, freelist_size, leaf_bytes, leaf_entries, leaf_size, u64_at,
};
use crate::lock::{Backoff, Flock, FlockArg, FlockError, flock_within};

/// Largest file this crate loads (an ecs-ipam store is a few tens of KiB).
pub const MAX_FILE: u64 = 256 << 20;
/// Deepest B+tree or bucket nesting followed; deeper means a cycle or a crafted file.
const MAX_DEPTH: usize = 64;
/// bolt's key and value limits.
const MAX_KEY: usize = 32768;
const MAX_VALUE: usize = (1 << 31) - 2;

/// The sleeps between two lock attempts: 100 µs, doubling up to 5 ms (bolt polls every 50 ms).
const BACKOFF: Backoff = Backoff {
    first: Duration::from_micros(100),
    max: Duration::from_millis(5),
};

/// How to open a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `O_RDWR | O_CREAT` (mode 0644 before the umask), `flock(LOCK_EX)`; a zero-length file
    /// is initialised as bolt initialises a new one.
    Write,
    /// `O_RDONLY`, `flock(LOCK_SH)`; a zero-length file reads as an empty database.
    Read,
}

/// A top-level bucket read into memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's sequence (bolt's `NextSequence` counter), kept as found on rewrite.
    pub sequence: u64,
    /// Every key and value, in bolt's (byte) order.
    pub entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A run of pages: first id and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    id: u64,
    len: u64,
}

/// What we know of a top-level bucket after validation.
#[derive(Debug, Clone)]
struct TopBucket {
    sequence: u64,
    entries: Vec<Entry>,
    /// Pages of its own tree and of every nested bucket's tree.
    spans: Vec<Span>,
    /// The first nested bucket's key, if any.
    nested: Option<Vec<u8>>,
}

/// The validated content of a file.
#[derive(Debug, Clone)]
struct State {
    page_size: usize,
    meta: Meta,
    /// Pages `0..meta.pgid`.
    data: Vec<u8>,
    /// Free page ids, sorted.
    free: Vec<u64>,
    /// Pages of the freelist itself (empty when the file keeps none).
    freelist_span: Option<Span>,
    /// The root bucket's entries (top-level buckets), sorted.
    root: Vec<Entry>,
    root_spans: Vec<Span>,
    buckets: HashMap<Vec<u8>, TopBucket>,
}

/// An open bolt file, locked for as long as it lives.
///
/// The whole file (pages below the high-water mark) is read into memory once at open with
/// `pread`; nothing is memory-mapped. A commit writes a new copy-on-write transaction with
/// `pwrite`: new pages only (from the freelist or past the high-water mark, never a page the
/// current meta reaches), `fdatasync`, then the meta page of `txid + 1`, `fdatasync`.
#[derive(Debug)]
pub struct Db {
    file: Flock<File>,
    path: PathBuf,
    access: Access,
    /// `None` for a zero-length file opened for reading.
    state: Option<State>,
    syncs: u32,
}

fn os_page_size() -> usize {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => usize::try_from(n).unwrap_or(4096),
        _ => 4096,
    }
}

fn page_size_ok(ps: u64) -> bool {
    ps.is_power_of_two() && (1024..=65536).contains(&ps)
}

impl Db {
    /// Opens `path`, waiting at most `timeout` for its `flock`, and validates it (see
    /// [`Access`]). With [`Access::Read`] a missing file is an `Io` error of kind `NotFound`.
    pub fn open(path: &Path, access: Access, timeout: Duration) -> Result<Db, Error> {
        let io = |op| {
            let path = path.to_path_buf();
            move |source| Error::Io { op, path, source }
        };
        let file = match access {
            Access::Write => OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path),
            Access::Read => OpenOptions::new().read(true).open(path),
        }
        .map_err(io("open"))?;
        let file = lock(file, access, path, timeout)?;
        let len = file.metadata().map_err(io("stat"))?.len();
        let mut db = Db {
            file,
            path: path.to_path_buf(),
            access,
            state: None,
            syncs: 0,
        };
        if len == 0 {
            if access == Access::Read {
                return Ok(db);
            }
            db.init()?;
            return Ok(db);
        }
        if len > MAX_FILE {
            return Err(db.invalid(Problem::TooLarge { len, max: MAX_FILE }));
        }
        let mut data = vec![0u8; len as usize];
        db.file.read_exact_at(&mut data, 0).map_err(io("read"))?;
        db.state = Some(State::parse(data).map_err(|p| db.invalid(p))?);
        Ok(db)
    }

    /// Lays out a new database in a zero-length file exactly as bolt does: meta pages 0 and 1
    /// (txid 0 and 1), an empty freelist at page 2, an empty root leaf at page 3, page size
    /// = the OS page size; then `fdatasync`.
    fn init(&mut self) -> Result<(), Error> {
        let ps = os_page_size();
        if !page_size_ok(ps as u64) {
            return Err(self.invalid(Problem::PageSize { size: ps as u64 }));
        }
        let mut buf = vec![0u8; ps * 4];
        for txid in 0..2u64 {
            let m = Meta {
                magic: MAGIC,
                version: VERSION,
                page_size: ps as u32,
                flags: 0,
                root: 3,
                root_sequence: 0,
                freelist: 2,
                pgid: 4,
                txid,
                checksum: 0,
            };
            let at = txid as usize * ps;
            buf[at..at + ps].copy_from_slice(&m.page(ps));
        }
        Header {
            id: 2,
            flags: FREELIST,
            count: 0,
            overflow: 0,
        }
        .write(&mut buf[2 * ps..]);
        Header {
            id: 3,
            flags: LEAF,
            count: 0,
            overflow: 0,
        }
        .write(&mut buf[3 * ps..]);
        self.file
            .write_all_at(&buf, 0)
            .map_err(|e| self.io("write", e))?;
        self.sync()?;
        self.state = Some(State::parse(buf).map_err(|p| self.invalid(p))?);
        Ok(())
    }

    /// The file (as given to [`Db::open`], or as set by [`Db::set_path`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names the file differently in messages (after it was renamed into place).
    pub fn set_path(&mut self, path: &Path) {
        self.path = path.to_path_buf();
    }

    /// The page size (0 for an empty file opened for reading).
    pub fn page_size(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.page_size)
    }

    /// The txid of the meta page in use (0 for an empty file opened for reading).
    pub fn txid(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.meta.txid)
    }

    /// How many `fdatasync` calls this handle made.
    pub fn syncs(&self) -> u32 {
        self.syncs
    }

    /// The names of the top-level buckets.
    pub fn bucket_names(&self) -> Vec<Vec<u8>> {
        self.state
            .as_ref()
            .map(|s| s.root.iter().map(|e| e.key.clone()).collect())
            .unwrap_or_default()
    }

    /// The top-level bucket `name`, or `None` when there is none. A plain value under that
    /// name, or a nested bucket inside it, is [`Error::Invalid`].
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket>, Error> {
        let Some(s) = &self.state else {
            return Ok(None);
        };
        let Some(e) = s.root.iter().find(|e| e.key == name) else {
            return Ok(None);
        };
        if !e.is_bucket() {
            return Err(self.invalid(Problem::NotABucket { name: lossy(name) }));
        }
        let Some(b) = s.buckets.get(name) else {
            return Err(self.invalid(Problem::Bucket {
                name: lossy(name),
                reason: "not indexed".into(),
            }));
        };
        if let Some(key) = &b.nested {
            return Err(self.invalid(Problem::NestedBucket {
                bucket: lossy(name),
                key: lossy(key),
            }));
        }
        Ok(Some(Bucket {
            sequence: b.sequence,
            entries: b
                .entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect(),
        }))
    }

    /// Replaces the content of the top-level bucket `name` (creating it when missing) in one
    /// new transaction, keeping its sequence and every other bucket as they are.
    pub fn put_bucket(
        &mut self,
        name: &[u8],
        entries: &BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), Error> {
        if self.access != Access::Write {
            return Err(Error::Usage {
                path: self.path.clone(),
                reason: "opened read-only".into(),
            });
        }
        check_entry(&self.path, name, b"")?;
        for (k, v) in entries {
            check_entry(&self.path, k, v)?;
        }
        // Refuses what `bucket` refuses: a plain value under `name`, nested buckets.
        self.bucket(name)?;
        let Some(s) = &self.state else {
            return Err(Error::Usage {
                path: self.path.clone(),
                reason: "no database state".into(),
            });
        };
        let tx = Tx::build(s, name, entries);
        let ps = s.page_size as u64;
        let new_state = State::parse(tx.data.clone()).map_err(|p| {
            // Our own transaction does not validate: a bug, never written.
            Error::Usage {
                path: self.path.clone(),
                reason: format!("internal error: the new transaction would be invalid: {p}"),
            }
        })?;
        for (id, bytes) in &tx.pages {
            let at = id * ps;
            self.file
                .write_all_at(bytes, at)
                .map_err(|e| self.io("write", e))?;
        }
        self.sync()?;
        let meta_at = (tx.meta.txid % 2) * ps;
        self.file
            .write_all_at(&tx.meta.page(ps as usize), meta_at)
            .map_err(|e| self.io("write", e))?;
        self.sync()?;
        self.state = Some(new_state);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Error> {
        self.syncs += 1;
        self.file.sync_data().map_err(|e| self.io("fdatasync", e))
    }

    fn io(&self, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            op,
            path: self.path.clone(),
            source,
        }
    }

    fn invalid(&self, problem: Problem) -> Error {
        Error::Invalid {
            path: self.path.clone(),
            problem,
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn check_entry(path: &Path, k: &[u8], v: &[u8]) -> Result<(), Error> {
    let reason = if k.is_empty() {
        "an empty key"
    } else if k.len() > MAX_KEY {
        "a key longer than 32768 bytes"
    } else if v.len() > MAX_VALUE {
        "a value longer than 2 GiB"
    } else {
        return Ok(());
    };
    Err(Error::Usage {
        path: path.to_path_buf(),
        reason: format!("bolt refuses {reason}"),
    })
}

/// `flock`s `file` (exclusive for writers, shared for readers), polling with short randomised
/// sleeps until `timeout`.
fn lock(file: File, access: Access, path: &Path, timeout: Duration) -> Result<Flock<File>, Error> {
    let arg = match access {
        Access::Write => FlockArg::LockExclusiveNonblock,
        Access::Read => FlockArg::LockSharedNonblock,
    };
    flock_within(file, arg, timeout, BACKOFF).map_err(|e| match e {
        FlockError::Sys(source) => Error::Io {
            op: "flock",
            path: path.to_path_buf(),
            source,
        },
        FlockError::Timeout { waited } => Error::LockTimeout {
            path: path.to_path_buf(),
            waited,
        },
    })
}

/// Page marks while validating: which pages some structure uses.
struct Walker<'a> {
    data: &'a [u8],
    ps: usize,
    hwm: u64,
    used: Vec<bool>,
}

impl Walker<'_> {
    fn page_err(page: u64, reason: impl Into<String>) -> Problem {
        Problem::Page {
            page,
            reason: reason.into(),
        }
    }

    /// Checks and marks the span of page `id`; returns its header and bytes.
    fn take(&mut self, id: u64, what: &str) -> Result<(Header, &[u8], Span), Problem> {
        if id < 2 || id >= self.hwm {
            return Err(Self::page_err(
                id,
                format!(
                    "{what} page id is outside 2..{} (the high-water mark)",
                    self.hwm
                ),
            ));
        }
        let at = id as usize * self.ps;
        let h = self
            .data
            .get(at..)
            .and_then(Header::parse)
            .ok_or_else(|| Self::page_err(id, "header beyond the end of the file"))?;
        if h.id != id {
            return Err(Self::page_err(
                id,
                format!("its header says page {} ({what})", h.id),
            ));
        }
        let len = u64::from(h.overflow) + 1;
        if id.checked_add(len).is_none_or(|end| end > self.hwm) {
            return Err(Self::page_err(
                id,
                format!(
                    "{} overflow pages run past the high-water mark {}",
                    h.overflow, self.hwm
                ),
            ));
        }
        for p in id..id + len {
            let slot = &mut self.used[p as usize];
            if *slot {
                return Err(Self::page_err(
                    p,
                    format!("reached twice (a cycle or a page shared by two owners; {what})"),
                ));
            }
            *slot = true;
        }
        let bytes = &self.data[at..at + len as usize * self.ps];
        Ok((h, bytes, Span { id, len }))
    }

    /// The leaf entries of the tree rooted at `id`, its pages appended to `spans`.
    fn tree(
        &mut self,
        id: u64,
        depth: usize,
        spans: &mut Vec<Span>,
    ) -> Result<Vec<Entry>, Problem> {
        if depth > MAX_DEPTH {
            return Err(Self::page_err(id, "tree deeper than 64 levels"));
        }
        let (h, bytes, span) = self.take(id, "tree")?;
        spans.push(span);
        if h.flags & LEAF != 0 && h.flags & BRANCH == 0 {
            return leaf_entries(bytes, h.count).map_err(|r| Self::page_err(id, r));
        }
        if h.flags & BRANCH != 0 && h.flags & LEAF == 0 {
            let children = branch_entries(bytes, h.count).map_err(|r| Self::page_err(id, r))?;
            if children.is_empty() {
                return Err(Self::page_err(id, "branch page without elements"));
            }
            let mut out: Vec<Entry> = Vec::new();
            // (branch keys only guide bolt's searches; every leaf is read here)
            for (_, child) in children {
                let sub = self.tree(child, depth + 1, spans)?;
                if let (Some(last), Some(first)) = (out.last(), sub.first())
                    && last.key >= first.key
                {
                    return Err(Self::page_err(
                        child,
                        "keys are not in ascending order across pages",
                    ));
                }
                out.extend(sub);
            }
            return Ok(out);
        }
        Err(Self::page_err(
            id,
            format!("type flags {:#06x} are neither branch nor leaf", h.flags),
        ))
    }

    /// A bucket value's sequence and entries; nested buckets are walked (validated and
    /// marked) too, their first key reported in `nested`.
    fn bucket(
        &mut self,
        name: &[u8],
        value: &[u8],
        depth: usize,
        spans: &mut Vec<Span>,
        nested: &mut Option<Vec<u8>>,
    ) -> Result<(u64, Vec<Entry>), Problem> {
        let bad = |reason: String| Problem::Bucket {
            name: lossy(name),
            reason,
        };
        if depth > MAX_DEPTH {
            return Err(bad("buckets nested deeper than 64 levels".into()));
        }
        let (Some(root), Some(sequence)) = (u64_at(value, 0), u64_at(value, 8)) else {
            return Err(bad(format!(
                "its value is {} bytes, shorter than a bucket header",
                value.len()
            )));
        };
        let entries = if root == 0 {
            let page = &value[BUCKET_HEADER..];
            let h = Header::parse(page)
                .ok_or_else(|| bad("inline bucket shorter than a page header".into()))?;
            if h.flags & LEAF == 0 || h.flags & BRANCH != 0 {
                return Err(bad(format!(
                    "inline page type flags {:#06x} are not a leaf",
                    h.flags
                )));
            }
            leaf_entries(page, h.count).map_err(|r| bad(format!("inline page: {r}")))?
        } else {
            self.tree(root, 0, spans)?
        };
        for e in entries.iter().filter(|e| e.is_bucket()) {
            if nested.is_none() {
                *nested = Some(e.key.clone());
            }
            let mut ignore = None;
            self.bucket(&e.key, &e.value, depth + 1, spans, &mut ignore)?;
        }
        Ok((sequence, entries))
    }
}

impl State {
    /// Validates a whole file's bytes the way bolt would open it, and more strictly (see the
    /// crate documentation).
    fn parse(mut data: Vec<u8>) -> Result<State, Problem> {
        let (meta, ps) = current_meta(&data)?;
        let hwm = meta.pgid;
        data.truncate(extent(&meta, ps, data.len() as u64)? as usize);
        let mut w = Walker {
            data: &data,
            ps: ps as usize,
            hwm,
            used: vec![false; hwm as usize],
        };
        w.used[0] = true;
        w.used[1] = true;
        let (listed, freelist_span) = match w.freelist(meta.freelist)? {
            Some((ids, span)) => (Some(ids), Some(span)),
            None => (None, None),
        };
        let mut root_spans = Vec::new();
        let root = w.tree(meta.root, 0, &mut root_spans)?;
        let buckets = w.top_buckets(&root)?;
        let free = w.free_pages(listed)?;
        drop(w);
        Ok(State {
            page_size: ps as usize,
            meta,
            data,
            free,
            freelist_span,
            root,
            root_spans,
            buckets,
        })
    }
}

/// The meta page bolt would use (the valid one of the higher txid) and the page size, from
/// the file's bytes `data`.
fn current_meta(data: &[u8]) -> Result<(Meta, u64), Problem> {
    let len = data.len() as u64;
    let meta_end = (HEADER + META_LEN) as u64;
    if len < meta_end {
        return Err(Problem::Truncated {
            len,
            need: meta_end,
            what: "the first meta page needs".into(),
        });
    }
    let m0 = Meta::parse(&data[HEADER..]).ok_or(Problem::Checksum)?;
    let ps = if m0.fault().is_none() {
        u64::from(m0.page_size)
    } else {
        os_page_size() as u64
    };
    if !page_size_ok(ps) {
        return Err(Problem::PageSize { size: ps });
    }
    if len < 2 * ps {
        // bolt refuses a file of less than two pages (or than 4 KiB)
        if m0.fault().is_none() || m0.magic == MAGIC {
            return Err(Problem::Truncated {
                len,
                need: 2 * ps,
                what: "two meta pages need".into(),
            });
        }
        return Err(Problem::NotBolt {
            m0: m0.magic,
            m1: 0,
        });
    }
    let m1 = Meta::parse(&data[ps as usize + HEADER..]).ok_or(Problem::Checksum)?;
    let valid: Vec<Meta> = [m0, m1]
        .into_iter()
        .filter(|m| m.fault().is_none())
        .collect();
    let Some(meta) = valid.iter().copied().max_by_key(|m| m.txid) else {
        return Err(no_valid_meta(m0, m1));
    };
    if u64::from(meta.page_size) != ps {
        return Err(Problem::PageSize {
            size: u64::from(meta.page_size),
        });
    }
    Ok((meta, ps))
}

/// Why neither meta page `m0` nor `m1` is valid.
fn no_valid_meta(m0: Meta, m1: Meta) -> Problem {
    let faults = [m0.fault(), m1.fault()];
    if faults.iter().all(|f| *f == Some(MetaFault::Magic)) {
        Problem::NotBolt {
            m0: m0.magic,
            m1: m1.magic,
        }
    } else if let Some(m) = [m0, m1]
        .iter()
        .find(|m| m.fault() == Some(MetaFault::Version))
    {
        Problem::Version { found: m.version }
    } else {
        Problem::Checksum
    }
}

/// The bytes the pages `meta` counts take (high-water mark × page size `ps`), checked against
/// the file's length `len`.
fn extent(meta: &Meta, ps: u64, len: u64) -> Result<u64, Problem> {
    let meta_err = |reason: String| Problem::Meta {
        txid: meta.txid,
        reason,
    };
    let hwm = meta.pgid;
    if hwm < 3 {
        return Err(meta_err(format!("high-water mark {hwm} is below 3")));
    }
    let need = hwm
        .checked_mul(ps)
        .ok_or_else(|| meta_err(format!("high-water mark {hwm} overflows")))?;
    if len < need {
        return Err(Problem::Truncated {
            len,
            need,
            what: format!("the {hwm} pages of {ps} bytes its meta page counts need"),
        });
    }
    Ok(need)
}

impl Walker<'_> {
    /// The freelist at page `id` (none when `id` is [`NO_FREELIST`]): its page ids, sorted and
    /// checked, and its pages.
    fn freelist(&mut self, id: u64) -> Result<Option<(Vec<u64>, Span)>, Problem> {
        if id == NO_FREELIST {
            return Ok(None);
        }
        let hwm = self.hwm;
        let fl_err = |reason: String| Problem::Freelist { reason };
        let (h, bytes, span) = self.take(id, "freelist").map_err(|p| match p {
            Problem::Page { page, reason } => fl_err(format!("page {page}: {reason}")),
            other => other,
        })?;
        if h.flags & FREELIST == 0 {
            return Err(fl_err(format!(
                "page {id} has type flags {:#06x}, not a freelist",
                h.flags
            )));
        }
        let (first, count) = if h.count == COUNT_OVERFLOW {
            let n = u64_at(bytes, HEADER).ok_or_else(|| fl_err("count missing".into()))?;
            (HEADER + 8, n)
        } else {
            (HEADER, u64::from(h.count))
        };
        let end = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(first as u64))
            .filter(|end| *end <= bytes.len() as u64)
            .ok_or_else(|| {
                fl_err(format!(
                    "{count} ids do not fit in its {} bytes",
                    bytes.len()
                ))
            })?;
        let mut ids: Vec<u64> = bytes[first..end as usize]
            .chunks_exact(8)
            .filter_map(|c| u64_at(c, 0))
            .collect();
        ids.sort_unstable();
        for pair in ids.windows(2) {
            if pair[0] == pair[1] {
                return Err(fl_err(format!("page {} is listed twice", pair[0])));
            }
        }
        if let Some(bad) = ids.iter().find(|id| **id < 2 || **id >= hwm) {
            return Err(fl_err(format!(
                "lists page {bad}, outside 2..{hwm} (the high-water mark)"
            )));
        }
        Ok(Some((ids, span)))
    }

    /// Every top-level bucket of the root bucket's entries `root`, and every bucket under it.
    fn top_buckets(&mut self, root: &[Entry]) -> Result<HashMap<Vec<u8>, TopBucket>, Problem> {
        let mut buckets = HashMap::new();
        for e in root.iter().filter(|e| e.is_bucket()) {
            let mut spans = Vec::new();
            let mut nested = None;
            let (sequence, entries) = self.bucket(&e.key, &e.value, 1, &mut spans, &mut nested)?;
            buckets.insert(
                e.key.clone(),
                TopBucket {
                    sequence,
                    entries,
                    spans,
                    nested,
                },
            );
        }
        Ok(buckets)
    }

    /// The free pages once every structure is walked: those of the freelist `listed` (none
    /// of which may be in use), or with no persisted freelist every page nothing reaches
    /// (bolt's freepages).
    fn free_pages(&self, listed: Option<Vec<u64>>) -> Result<Vec<u64>, Problem> {
        match listed {
            Some(ids) => {
                if let Some(id) = ids.iter().find(|id| self.used[**id as usize]) {
                    return Err(Problem::Freelist {
                        reason: format!("page {id} is listed as free but is in use"),
                    });
                }
                Ok(ids)
            }
            None => Ok((2..self.hwm)
                .filter(|id| !self.used[*id as usize])
                .collect()),
        }
    }
}

/// A transaction being built: pages to write and the next meta.
struct Tx {
    ps: usize,
    /// Free ids still available to this transaction, sorted.
    avail: Vec<u64>,
    hwm: u64,
    /// (first page id, bytes padded to whole pages).
    pages: Vec<(u64, Vec<u8>)>,
    meta: Meta,
    /// The file's pages after the transaction (for re-validation).
    data: Vec<u8>,
}

impl Tx {
    fn build(s: &State, name: &[u8], entries: &BTreeMap<Vec<u8>, Vec<u8>>) -> Tx {
        let ps = s.page_size;
        let mut tx = Tx {
            ps,
            avail: s.free.clone(),
            hwm: s.meta.pgid,
            pages: Vec::new(),
            meta: s.meta,
            data: Vec::new(),
        };
        // Pages the current meta reaches that this transaction replaces: freed, but not
        // reusable before the new meta is on disk.
        let mut freed: Vec<u64> = Vec::new();
        let mut free_span = |sp: &Span| freed.extend(sp.id..sp.id + sp.len);
        s.root_spans.iter().for_each(&mut free_span);
        let old = s.buckets.get(name);
        if let Some(b) = old {
            b.spans.iter().for_each(&mut free_span);
        }
        if let Some(sp) = &s.freelist_span {
            free_span(sp);
        }
        let sequence = old.map_or(0, |b| b.sequence);

        // The bucket: inline when bolt would keep it inline (no nested bucket, at most a
        // quarter page), else its own tree.
        let kv: Vec<(&[u8], u32, &[u8])> = entries
            .iter()
            .map(|(k, v)| (k.as_slice(), 0u32, v.as_slice()))
            .collect();
        let inline = leaf_size(kv.iter().map(|(k, _, v)| (*k, *v))) <= ps / 4;
        let value = if inline {
            bucket_value(0, sequence, &leaf_bytes(&kv))
        } else {
            let root = tx.tree(&kv);
            bucket_value(root, sequence, &[])
        };

        // The root bucket with the new value.
        let mut root: Vec<(&[u8], u32, &[u8])> = s
            .root
            .iter()
            .filter(|e| e.key != name)
            .map(|e| (e.key.as_slice(), e.flags, e.value.as_slice()))
            .collect();
        root.push((name, BUCKET_LEAF, &value));
        root.sort_by(|a, b| a.0.cmp(b.0));
        tx.meta.root = tx.tree(&root);

        // The freelist: what stays free plus what this transaction freed (bolt's sizing).
        let count = tx.avail.len() + freed.len();
        let n = (freelist_size(count) / ps) as u64 + 1;
        let fl = tx.alloc(n);
        let mut ids: Vec<u64> = tx.avail.iter().copied().chain(freed).collect();
        ids.sort_unstable();
        ids.dedup();
        tx.push(fl, freelist_bytes(&ids));
        tx.meta.freelist = fl;
        tx.meta.pgid = tx.hwm;
        tx.meta.txid = s.meta.txid.wrapping_add(1);

        // The file as it will be.
        let mut data = s.data.clone();
        data.resize(tx.hwm as usize * ps, 0);
        for (id, bytes) in &tx.pages {
            let at = *id as usize * ps;
            data[at..at + bytes.len()].copy_from_slice(bytes);
        }
        let at = (tx.meta.txid % 2) as usize * ps;
        data[at..at + ps].copy_from_slice(&tx.meta.page(ps));
        tx.data = data;
        tx
    }

    /// `n` contiguous pages: the first run in the freelist, else past the high-water mark.
    fn alloc(&mut self, n: u64) -> u64 {
        let mut run_start = 0usize;
        for i in 0..self.avail.len() {
            if i > 0 && self.avail[i] != self.avail[i - 1] + 1 {
                run_start = i;
            }
            if (i - run_start + 1) as u64 == n {
                let id = self.avail[run_start];
                self.avail.drain(run_start..=i);
                return id;
            }
        }
        let id = self.hwm;
        self.hwm += n;
        id
    }

    /// Allocates pages for `bytes` (a page image with header id 0), sets its id and overflow.
    fn place(&mut self, mut bytes: Vec<u8>) -> u64 {
        let n = bytes.len().div_ceil(self.ps).max(1) as u64;
        let id = self.alloc(n);
        self.push(id, std::mem::take(&mut bytes));
        id
    }

    fn push(&mut self, id: u64, mut bytes: Vec<u8>) {
        let n = bytes.len().div_ceil(self.ps).max(1);
        bytes.resize(n * self.ps, 0);
        if let Some(mut h) = Header::parse(&bytes) {
            h.id = id;
            h.overflow = (n - 1) as u32;
            h.write(&mut bytes);
        }
        self.pages.push((id, bytes));
    }

    /// Writes a B+tree of `entries` (sorted): leaves of at most a page each (a single larger
    /// entry gets overflow pages), then branch levels; returns the root page id.
    fn tree(&mut self, entries: &[(&[u8], u32, &[u8])]) -> u64 {
        let mut level: Vec<(Vec<u8>, u64)> = Vec::new();
        for group in chunks(entries, self.ps, |(k, _, v)| ELEM + k.len() + v.len()) {
            let first = group.first().map(|e| e.0.to_vec()).unwrap_or_default();
            let id = self.place(leaf_bytes(group));
            level.push((first, id));
        }
        while level.len() > 1 {
            let mut next = Vec::new();
            let owned = std::mem::take(&mut level);
            for group in chunks(&owned, self.ps, |(k, _)| ELEM + k.len()) {
                let first = group.first().map(|e| e.0.clone()).unwrap_or_default();
                let children: Vec<(&[u8], u64)> =
                    group.iter().map(|(k, id)| (k.as_slice(), *id)).collect();
                let id = self.place(branch_bytes(&children));
                next.push((first, id));
            }
            level = next;
        }
        level.first().map_or(0, |(_, id)| *id)
    }
}

/// Splits `items` into groups whose page (header + `size` of each) fits in `ps`, each group
/// holding at least two items (one when only one is left), and one empty group for no items.
fn chunks<T>(items: &[T], ps: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    if items.is_empty() {
        return vec![items];
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = HEADER;
    for (i, it) in items.iter().enumerate() {
        let s = size(it);
        if i - start >= 2 && used + s > ps {
            out.push(&items[start..i]);
            start = i;
            used = HEADER;
        }
        used += s;
    }
    out.push(&items[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_fill_pages_and_never_leave_a_branch_of_one() {
        let items: Vec<usize> = vec![100; 100];
        let groups = chunks(&items, 1024, |n| *n);
        assert!(
            groups
                .iter()
                .all(|g| HEADER + g.iter().sum::<usize>() <= 1024)
        );
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), 100);
        let big: Vec<usize> = vec![5000; 3];
        let groups = chunks(&big, 1024, |n| *n);
        assert!(groups.iter().all(|g| g.len() >= 2 || g.len() == 3 - 2));
        assert_eq!(chunks::<usize>(&[], 1024, |n| *n).len(), 1);
    }
}
