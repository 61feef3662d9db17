//! The owner index: which lease files belong to which owner, without reading every lease.
//!
//! `.owners/` holds up to 256 bucket files `b00`..`bff`; an owner's entries live in the bucket
//! chosen by a stable hash (FNV-1a) of its id, so an owner and the legacy ID-only leases of its
//! id share a bucket. A bucket is an append-only log of lines
//!
//! ```text
//! + <ip> <id> <ifname>      lease recorded (written *before* the lease file is linked)
//! - <ip> <id> <ifname>      lease gone
//! ```
//!
//! with `id` and `ifname` escaped (bytes outside `[A-Za-z0-9_.-]` as `%XX`, so fields never
//! contain spaces or newlines) and `ifname` = `%` for a legacy ID-only lease. Each append
//! starts with a newline, so a line torn by a power loss never merges with the next one
//! (empty and malformed lines are skipped).
//!
//! Replaying a bucket gives its live entries; every entry is still verified against its lease
//! file before use, so a line left by a crash (intent written, lease never linked) or a lease
//! removed by a foreign writer is harmless. Appending never creates a file in the steady state
//! (file creation is the most expensive metadata operation on a journalling file system), and
//! a bucket is rewritten (temp file + rename) only when its dead lines exceed its live ones by
//! 64. A lookup reads one bucket (1/256 of the entries) and fully parses only the lines of the
//! id it looks for.
//!
//! `.owners/.complete` (content `ipam-store owner index v3, 256 buckets`) says the buckets
//! and the names log (`.owners/names`, see [`crate::names`]) cover every lease of the
//! directory up to the names log's stamp; without it (a directory written by host-local, a
//! crash during a rebuild) or with another content (`v2`: an index an earlier release of ours
//! kept, which never saw foreign writes) the store scans all leases once and rebuilds the
//! buckets and the names log. Leases written by anyone after that are taken in incrementally
//! (see [`crate::store`]). An earlier release that finds the v3 marker rebuilds its own index
//! the same way (and removes the names log, which it does not know), so a rollback and a
//! roll-forward each cost one full scan and lose nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::error::Error;
use crate::fsx::Dir;
use crate::names::{self, NAMES, Tail};
use crate::owner::{Holder, Owner};

/// Name of the index directory inside the network directory.
pub(crate) const OWNERS: &str = ".owners";
/// Name of the completeness marker inside [`OWNERS`].
pub(crate) const COMPLETE: &str = ".complete";
/// Content of the marker; a different content means another format: rebuild.
pub(crate) const FORMAT: &[u8] = b"ipam-store owner index v3, 256 buckets\n";

const BUCKETS: u64 = 256;
/// Largest bucket file we read (far above any real bucket).
const MAX_BUCKET: usize = 16 * 1024 * 1024;
/// Largest names log we read: ~30 bytes a line, compacted at 1.125x the live names; far above
/// a full /16 (65,534 leases).
const MAX_NAMES: usize = 256 * 1024 * 1024;
/// Bytes read from the end of the names log to find its stamp line (one line is < 80).
const TAIL: usize = 128;
/// A bucket is compacted when its dead lines exceed its live ones by this much.
const COMPACT_SLACK: usize = 64;

/// The index directory, opened for the duration of one locked operation.
pub(crate) struct Index {
    dir: Dir,
    sync: bool,
}

/// Live entries replayed from `+`/`-` lines, in first-insertion order.
#[derive(Default)]
struct Replay {
    order: Vec<(IpAddr, Holder)>,
    live: HashMap<(IpAddr, Holder), usize>,
}

impl Replay {
    fn apply(&mut self, (add, ip, h): (bool, IpAddr, Holder)) {
        let key = (ip, h);
        if add {
            if !self.live.contains_key(&key) {
                self.live.insert(key.clone(), self.order.len());
                self.order.push(key);
            }
        } else {
            self.live.remove(&key);
        }
    }

    fn into_entries(self) -> Vec<(IpAddr, Holder)> {
        let live = self.live;
        self.order
            .into_iter()
            .enumerate()
            .filter(|(i, k)| live.get(k) == Some(i))
            .map(|(_, k)| k)
            .collect()
    }
}

/// The bucket number of an owner id (FNV-1a of the id, modulo 256).
pub(crate) fn bucket_of(id: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    u8::try_from(h % BUCKETS).unwrap_or(0)
}

/// The file name of bucket `b`: `b00`..`bff`.
pub(crate) fn bucket_file(b: u8) -> String {
    format!("b{b:02x}")
}

pub(crate) fn bucket_name(id: &str) -> String {
    bucket_file(bucket_of(id))
}

fn escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) fn line(op: char, ip: IpAddr, h: &Holder) -> String {
    let mut s = format!("{op} {ip} ");
    match h {
        Holder::Owner(o) => {
            escape(&o.id, &mut s);
            s.push(' ');
            escape(&o.ifname, &mut s);
        }
        Holder::Legacy(id) => {
            escape(id, &mut s);
            s.push_str(" %");
        }
    }
    s.push('\n');
    s
}

pub(crate) fn parse_line(l: &str) -> Option<(bool, IpAddr, Holder)> {
    let mut f = l.split(' ');
    let add = match f.next()? {
        "+" => true,
        "-" => false,
        _ => return None,
    };
    let ip = f.next()?.parse().ok()?;
    let id = unescape(f.next()?)?;
    let ifname = f.next()?;
    if f.next().is_some() || id.is_empty() {
        return None;
    }
    let h = if ifname == "%" {
        Holder::Legacy(id)
    } else {
        Holder::Owner(Owner {
            id,
            ifname: unescape(ifname)?,
        })
    };
    Some((add, ip, h))
}

pub(crate) fn holder_id(h: &Holder) -> &str {
    match h {
        Holder::Owner(o) => &o.id,
        Holder::Legacy(id) => id,
    }
}

impl Index {
    /// Opens (creating) `.owners` in the network directory.
    pub(crate) fn open(network: &Dir, sync: bool) -> Result<Index, Error> {
        Ok(Index {
            dir: network.subdir(OWNERS)?,
            sync,
        })
    }

    fn err(&self, op: &'static str, name: &str) -> impl FnOnce(std::io::Error) -> Error {
        let path = self.dir.join(name);
        move |e| Error::io(op, path, e)
    }

    /// Whether the marker says the index covers every lease.
    pub(crate) fn is_complete(&self) -> Result<bool, Error> {
        let m = self
            .dir
            .read_small(COMPLETE, 256)
            .map_err(self.err("read", COMPLETE))?;
        Ok(m.as_deref() == Some(FORMAT))
    }

    /// Replaces the whole index with `entries` and the names log with `names`, and writes the
    /// marker (removed first, so a crash in between leaves an incomplete index that the next
    /// operation rebuilds).
    pub(crate) fn rebuild(&self, entries: &[(IpAddr, Holder)], names: &str) -> Result<(), Error> {
        self.dir
            .unlink(COMPLETE)
            .map_err(self.err("unlink", COMPLETE))?;
        let mut buckets: BTreeMap<String, String> = BTreeMap::new();
        for (ip, h) in entries {
            buckets
                .entry(bucket_name(holder_id(h)))
                .or_default()
                .push_str(&line('+', *ip, h));
        }
        let existing = self
            .dir
            .list()
            .map_err(|e| Error::io("list", self.dir.path().to_path_buf(), e))?;
        for e in existing {
            if let Ok(n) = e.name
                && !buckets.contains_key(&n)
            {
                self.dir.unlink(&n).map_err(self.err("unlink", &n))?;
            }
        }
        for (name, content) in &buckets {
            self.dir
                .replace(name, content.as_bytes(), false)
                .map_err(self.err("write", name))?;
            crate::store::step();
        }
        self.names_replace(names)?;
        if self.sync {
            self.dir
                .sync()
                .map_err(|e| Error::io("fsync", self.dir.path().to_path_buf(), e))?;
        }
        self.dir
            .create_new(COMPLETE, FORMAT, self.sync)
            .map_err(self.err("create", COMPLETE))?;
        Ok(())
    }

    /// The stamp line of the names log: `None` when there is no log, `Some(None)` when its
    /// last line is no stamp (lines appended without one, or damage).
    pub(crate) fn names_tail(&self) -> Result<Option<Option<Tail>>, Error> {
        let tail = self
            .dir
            .read_tail(NAMES, TAIL)
            .map_err(self.err("read", NAMES))?;
        Ok(tail.as_deref().map(names::parse_tail))
    }

    /// The whole names log; `None` when it does not exist.
    pub(crate) fn names_read(&self) -> Result<Option<Vec<u8>>, Error> {
        self.dir
            .read_all(NAMES, MAX_NAMES)
            .map_err(self.err("read", NAMES))
    }

    /// Appends to the names log in one write, after a newline that ends a torn line.
    pub(crate) fn names_append(&self, text: &str) -> Result<(), Error> {
        let content = format!("\n{text}");
        self.dir
            .append(NAMES, content.as_bytes(), false)
            .map_err(self.err("append", NAMES))
    }

    /// Replaces the names log (temp file + rename).
    pub(crate) fn names_replace(&self, text: &str) -> Result<(), Error> {
        self.dir
            .replace(NAMES, text.as_bytes(), self.sync)
            .map_err(self.err("write", NAMES))
    }

    /// Every live entry of bucket `b` (replayed, not verified).
    pub(crate) fn load_bucket(&self, b: u8) -> Result<Vec<(IpAddr, Holder)>, Error> {
        let name = bucket_file(b);
        let bytes = self
            .dir
            .read_small(&name, MAX_BUCKET)
            .map_err(self.err("read", &name))?
            .unwrap_or_default();
        let mut all = Replay::default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(parse_line)
            .for_each(|e| all.apply(e));
        Ok(all.into_entries())
    }

    /// The live entries of holders with this `id` (owner or legacy), replayed from its bucket.
    /// Lines of other ids are skipped after one field comparison. The bucket is compacted
    /// when its dead lines outnumber the live ones by more than [`COMPACT_SLACK`].
    pub(crate) fn load(&self, id: &str) -> Result<Vec<(IpAddr, Holder)>, Error> {
        let name = bucket_name(id);
        let bytes = self
            .dir
            .read_small(&name, MAX_BUCKET)
            .map_err(self.err("read", &name))?
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let mut esc = String::new();
        escape(id, &mut esc);
        let (mut adds, mut removes) = (0usize, 0usize);
        let mut mine = Replay::default();
        for l in text.lines() {
            match l.as_bytes().first() {
                Some(b'+') => adds += 1,
                Some(b'-') => removes += 1,
                _ => continue,
            }
            if l.split(' ').nth(2) == Some(esc.as_str())
                && let Some(entry) = parse_line(l)
            {
                mine.apply(entry);
            }
        }
        // Each `-` line normally kills one `+` line: 2 dead lines per removal.
        let live = adds.saturating_sub(removes);
        if 2 * removes > live + COMPACT_SLACK {
            let mut all = Replay::default();
            text.lines()
                .filter_map(parse_line)
                .for_each(|e| all.apply(e));
            let content: String = all
                .into_entries()
                .iter()
                .map(|(ip, h)| line('+', *ip, h))
                .collect();
            self.dir
                .replace(&name, content.as_bytes(), self.sync)
                .map_err(self.err("write", &name))?;
        }
        Ok(mine.into_entries())
    }

    /// Appends `+` (`add`) or `-` lines for `entries` in one write.
    pub(crate) fn append(&self, add: bool, entries: &[(IpAddr, &Holder)]) -> Result<(), Error> {
        let mut by_bucket: BTreeMap<String, String> = BTreeMap::new();
        for (ip, h) in entries {
            by_bucket
                .entry(bucket_name(holder_id(h)))
                .or_default()
                .push_str(&line(if add { '+' } else { '-' }, *ip, h));
        }
        for (name, content) in by_bucket {
            // The leading newline ends a line torn by a crash (power loss) so that it cannot
            // swallow this one; empty lines are ignored.
            let content = format!("\n{content}");
            self.dir
                .append(&name, content.as_bytes(), self.sync)
                .map_err(self.err("append", &name))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_any_owner() {
        let odd = Owner {
            id: "../x y\u{e9}%+".into(),
            ifname: "eth0/..".into(),
        };
        for h in [
            Holder::Owner(odd),
            Holder::Legacy("0a:1b:2c:3d:4e:5f".into()),
        ] {
            let ip: IpAddr = "fd00::2".parse().unwrap();
            let l = line('+', ip, &h);
            assert_eq!(l.matches(' ').count(), 3, "{l}");
            assert!(l.ends_with('\n') && l.trim_end().lines().count() == 1);
            assert_eq!(parse_line(l.trim_end()), Some((true, ip, h.clone())));
        }
        assert_eq!(
            line(
                '-',
                "10.0.0.2".parse().unwrap(),
                &Holder::Legacy("abc".into())
            ),
            "- 10.0.0.2 abc %\n"
        );
        for bad in [
            "",
            "+",
            "+ 10.0.0.2",
            "* 10.0.0.2 a b",
            "+ 10.0.0.2 a%4 b",
            "+ x a b",
        ] {
            assert_eq!(parse_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn replay_keeps_first_insertion_order_and_applies_removals() {
        let a = Holder::Owner(Owner {
            id: "a".into(),
            ifname: "eth0".into(),
        });
        let l = Holder::Legacy("a".into());
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut r = Replay::default();
        for e in [
            (true, ip("10.0.0.2"), a.clone()),
            (true, ip("10.0.0.3"), a.clone()),
            (true, ip("10.0.0.2"), l.clone()),
            (false, ip("10.0.0.2"), a.clone()),
            (true, ip("10.0.0.4"), a.clone()),
            (false, ip("10.0.0.9"), a.clone()),
            (true, ip("10.0.0.2"), a.clone()),
        ] {
            r.apply(e);
        }
        assert_eq!(
            r.into_entries(),
            [
                (ip("10.0.0.3"), a.clone()),
                (ip("10.0.0.2"), l),
                (ip("10.0.0.4"), a.clone()),
                (ip("10.0.0.2"), a),
            ]
        );
    }

    #[test]
    fn churn_is_compacted() {
        let base = std::env::temp_dir().join(format!("ipam-index-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let net = Dir::open_under(&base, "net").unwrap();
        let idx = Index::open(&net, false).unwrap();
        let me = Holder::Owner(Owner {
            id: "me".into(),
            ifname: "eth0".into(),
        });
        let keep: IpAddr = "10.0.0.1".parse().unwrap();
        idx.append(true, &[(keep, &me)]).unwrap();
        for i in 0..200u32 {
            let ip = IpAddr::from([10, 0, 1, (i % 250) as u8]);
            idx.append(true, &[(ip, &me)]).unwrap();
            idx.append(false, &[(ip, &me)]).unwrap();
            assert_eq!(idx.load("me").unwrap(), [(keep, me.clone())]);
        }
        let file = base.join("net/.owners").join(bucket_name("me"));
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = text.lines().filter(|l| !l.is_empty()).count();
        // Compacted at least once: far fewer than the 401 lines written.
        assert!(lines < 2 * COMPACT_SLACK + 8, "{lines} lines");
        assert!(text.starts_with("+ 10.0.0.1 me eth0\n"), "{text}");
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket_name("dummy"), bucket_name("dummy"));
        let used: std::collections::HashSet<String> =
            (0..5000).map(|i| bucket_name(&format!("c{i}"))).collect();
        assert_eq!(used.len(), 256);
        assert!(used.iter().all(|n| n.len() == 3 && n.starts_with('b')));
    }
}
