//! The names log, `.owners/names`: which lease names the owner index has taken in, and the
//! stamp that says the network directory has not changed since.
//!
//! ```text
//! + <name> <inode> <bucket>       a lease name seen with this inode; <bucket> is the owner
//!                                 index bucket of its holder (`00`..`ff`), or `-` when the
//!                                 file is not indexed (unreadable, empty, not a regular file)
//! - <name>                        the name is gone
//! = <sec> <nsec> <live> <lines>   stamp: the directory's mtime at the end of our last
//!                                 operation, the number of live names, the number of +/- lines
//! ```
//!
//! Replaying the `+`/`-` lines gives the known names (a later `+` for a name replaces the
//! earlier one). Each append starts with a newline, so a line torn by a power loss never
//! merges with the next (malformed lines are skipped). The stamp is valid only as the file's
//! last line, written in the same `write(2)` as the lines before it.
//!
//! **The base.** A rewritten log starts with `# base <n> <bytes>`: its next `n` lines (`<bytes>`
//! bytes) are `+` lines,
//! one per name, in the order the directory listed them when the log was rewritten (the
//! appended lines after them are the *delta*). Directory listings return surviving names in
//! the same relative order (ext4 and xfs list in hash order, tmpfs and btrfs in creation
//! order), so comparing a fresh listing with the base is a sequential walk with no hashing
//! of the unchanged names (see [`crate::reconcile`]); only delta names and the rare names out
//! of order are looked up. The header is a comment to a reader that does not know it
//! (malformed lines are skipped), and a log without it is all delta: the order is a speed
//! hint, never a condition for correctness.
//!
//! **Why a stamp in the past.** The kernel stamps a directory's mtime from a coarse clock, so a
//! foreign create in the same tick as our last change could leave the mtime unchanged. At the
//! end of an operation that changed the directory we therefore set its mtime ourselves, under
//! the lock, to a time two seconds in the past with a random nanosecond part, read back what
//! the file system stored and record that. Any later create or unlink by anyone stamps the
//! current time, which can never equal it (the offset covers file systems with timestamps as
//! coarse as 2 s). At the start of an operation one `fstat` of the directory tells whether the
//! index is still exact.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::fsx::Mtime;

/// Name of the names log inside the index directory.
pub(crate) const NAMES: &str = "names";
/// How far in the past the stamp is set, in seconds.
const STAMP_OFFSET_S: i64 = 2;
/// The names log is compacted when its `+`/`-` lines exceed the live names by an eighth plus
/// this: the lines beyond the base are what the first operation after a foreign write looks
/// up one by one, so they are kept few.
const COMPACT_SLACK: usize = 256;

/// The stamp line: the directory mtime it vouches for and the log's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    /// The directory's mtime when the index was last exact.
    pub(crate) stamp: Mtime,
    /// Known names.
    pub(crate) live: usize,
    /// `+`/`-` lines in the log.
    pub(crate) lines: usize,
}

/// One known name: its inode and the index bucket of its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Known {
    pub(crate) ino: u64,
    pub(crate) bucket: Option<u8>,
}

/// FxHash (rustc's hasher): a multiply and a rotate per word. Names are fingerprinted on the
/// path of the first operation after a foreign write; they are lease names from our own
/// store, so hash flooding is not a concern, and equal fingerprints are always confirmed by
/// comparing the names.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Whether a log of `lines` lines holding `live` names should be rewritten.
pub(crate) fn needs_compaction(live: usize, lines: usize) -> bool {
    lines > live.saturating_add(live / 8).saturating_add(COMPACT_SLACK)
}

/// The fingerprint of a name: the sort key on both sides of a comparison.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn fingerprint(name: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(name);
    h.write_u8(0xff);
    h.finish()
}

/// A line of the log: the fingerprint of its name, where the line starts, and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) struct Entry {
    pub(crate) fp: u64,
    ino: u64,
    at: u32,
    bucket: u8,
    /// [`ADD`], [`HAS_BUCKET`].
    flags: u8,
}

/// [`Entry::flags`]: a `+` line (else `-`).
#[cfg(any(test, feature = "test-hooks"))]
const ADD: u8 = 1;
/// [`Entry::flags`]: the bucket is set.
#[cfg(any(test, feature = "test-hooks"))]
const HAS_BUCKET: u8 = 2;

#[cfg(any(test, feature = "test-hooks"))]
impl Entry {
    fn is_add(&self) -> bool {
        self.flags & ADD != 0
    }
}

/// The known names of a log, replayed and sorted by fingerprint (sequential memory access:
/// at 65,000 names a hash table of them cost as much as listing the directory).
#[derive(Debug)]
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) struct Replayed<'a> {
    log: &'a str,
    /// The `+` line of each live name, sorted by fingerprint.
    pub(crate) live: Vec<Entry>,
    /// `+`/`-` lines read (the file's size in lines, for compaction).
    pub(crate) lines: usize,
}

#[cfg(any(test, feature = "test-hooks"))]
impl<'a> Replayed<'a> {
    /// The name of a live entry.
    pub(crate) fn name(&self, e: Entry) -> &'a str {
        line_name(self.log, e.at as usize).unwrap_or("")
    }

    /// The inode and bucket of a live entry.
    pub(crate) fn known(&self, e: Entry) -> Known {
        Known {
            ino: e.ino,
            bucket: (e.flags & HAS_BUCKET != 0).then_some(e.bucket),
        }
    }
}

/// Sorts `v` by `key`, a well-spread 64-bit hash, then by `tie`, in place: one counting pass
/// on the key's top bits (one or two elements per bucket), each element cycled into its
/// bucket, then an insertion sort of each bucket (a comparison sort for a bucket that is not
/// tiny after all). O(n), and no second copy of `v`: on the path of the first operation after
/// a foreign write a fresh process pays for every page it touches.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn sort_by_hash<T: Copy>(v: &mut [T], key: impl Fn(&T) -> u64, tie: impl Fn(&T) -> u64) {
    if v.len() < 64 || v.len() > u32::MAX as usize {
        v.sort_unstable_by_key(|e| (key(e), tie(e)));
        return;
    }
    let bits = (usize::BITS - 1 - v.len().leading_zeros()).min(20);
    let shift = 64 - bits;
    let bucket = |e: &T| (key(e) >> shift) as usize;
    let n = 1usize << bits;
    let mut start = vec![0u32; n + 1];
    for e in v.iter() {
        start[bucket(e) + 1] += 1;
    }
    for b in 1..=n {
        start[b] += start[b - 1];
    }
    let mut head: Vec<u32> = start[..n].to_vec();
    for b in 0..n {
        while head[b] < start[b + 1] {
            let i = head[b] as usize;
            let t = bucket(&v[i]);
            if t != b {
                v.swap(i, head[t] as usize);
            }
            head[t] += 1;
        }
    }
    let ord = |e: &T| (key(e), tie(e));
    for w in start.windows(2) {
        let run = &mut v[w[0] as usize..w[1] as usize];
        if run.len() > 16 {
            run.sort_unstable_by_key(|e| ord(e));
            continue;
        }
        for i in 1..run.len() {
            let mut j = i;
            while j > 0 && ord(&run[j - 1]) > ord(&run[j]) {
                run.swap(j - 1, j);
                j -= 1;
            }
        }
    }
}

/// The name of the `+`/`-` line starting at `at`.
#[cfg(any(test, feature = "test-hooks"))]
fn line_name(log: &str, at: usize) -> Option<&str> {
    let rest = log.get(at + 2..)?;
    let end = rest
        .bytes()
        .position(|b| b == b' ' || b == b'\n')
        .unwrap_or(rest.len());
    rest.get(..end)
}

/// Replays a whole log: a later `+` for a name replaces the earlier one, `-` removes it.
///
/// A byte-level scan parses every valid line once into an [`Entry`]; sorting them by
/// (fingerprint, position) groups each name's lines in log order, and the last one decides.
/// Logs larger than 4 GiB are not read (`MAX_NAMES` is far below).
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn replay(log: &str) -> Replayed<'_> {
    let bytes = log.as_bytes();
    let mut recs: Vec<Entry> = Vec::with_capacity(bytes.len() / 26 + 1);
    let mut at = 0;
    while at < bytes.len() {
        let end = bytes[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| at + i);
        let line = &log[at..end];
        let parsed = parse_line(line);
        if let (Some((name, known)), Ok(pos)) = (parsed, u32::try_from(at)) {
            let k = known.unwrap_or_default();
            recs.push(Entry {
                fp: fingerprint(name.as_bytes()),
                ino: k.ino,
                at: pos,
                bucket: k.bucket.unwrap_or(0),
                flags: if known.is_some() { ADD } else { 0 }
                    | if k.bucket.is_some() { HAS_BUCKET } else { 0 },
            });
        }
        at = end + 1;
    }
    let lines = recs.len();
    sort_by_hash(&mut recs, |r| r.fp, |r| u64::from(r.at));
    // Keep, in place, the last line of each name when it is a `+`.
    let mut live = 0;
    let mut i = 0;
    while i < recs.len() {
        let fp = recs[i].fp;
        let j = recs[i + 1..]
            .iter()
            .position(|r| r.fp != fp)
            .map_or(recs.len(), |n| i + 1 + n);
        if j == i + 1 {
            if recs[i].is_add() {
                recs[live] = recs[i];
                live += 1;
            }
            i = j;
            continue;
        }
        // Several lines share the fingerprint (almost always one name's history): the last
        // line of each name decides.
        let mut last: Vec<(&str, Entry)> = Vec::new();
        for r in &recs[i..j] {
            let name = line_name(log, r.at as usize).unwrap_or("");
            match last.iter_mut().find(|(n, _)| *n == name) {
                Some(e) => e.1 = *r,
                None => last.push((name, *r)),
            }
        }
        for (_, e) in last {
            if e.is_add() {
                recs[live] = e;
                live += 1;
            }
        }
        i = j;
    }
    recs.truncate(live);
    Replayed {
        log,
        live: recs,
        lines,
    }
}

/// A `+ <name> <inode> <bucket>` line as `(name, Some(known))`, a `- <name>` line as
/// `(name, None)`; anything else (the stamp, a header, a damaged line) as `None`.
fn parse_line(line: &str) -> Option<(&str, Option<Known>)> {
    if let Some(rest) = line.strip_prefix("+ ") {
        parse_add(rest).map(|(name, k)| (name, Some(k)))
    } else if let Some(name) = line.strip_prefix("- ")
        && !name.is_empty()
        && !name.contains(' ')
    {
        Some((name, None))
    } else {
        None
    }
}

/// `<name> <inode> <bucket>` (the part after `+ `).
fn parse_add(rest: &str) -> Option<(&str, Known)> {
    let b = rest.as_bytes();
    let sp = b.iter().position(|c| *c == b' ')?;
    if sp == 0 {
        return None;
    }
    let mut ino: u64 = 0;
    let mut i = sp + 1;
    let digits = i;
    while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        ino = ino.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        i += 1;
    }
    if i == digits || b.get(i) != Some(&b' ') {
        return None;
    }
    let bucket = match b.get(i + 1..)? {
        b"-" => None,
        [h, l] => Some((hex(*h)? << 4) | hex(*l)?),
        _ => return None,
    };
    Some((rest.get(..sp)?, Known { ino, bucket }))
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The stamp of a log whose last bytes are `tail`: `None` unless the very last line is a
/// complete stamp line.
pub(crate) fn parse_tail(tail: &[u8]) -> Option<Tail> {
    let body = tail.strip_suffix(b"\n")?;
    let last = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => &body[i + 1..],
        None => body,
    };
    let text = std::str::from_utf8(last.strip_prefix(b"= ")?).ok()?;
    let mut f = text.split(' ');
    let (Some(sec), Some(nsec), Some(live), Some(lines), None) =
        (f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return None;
    };
    let nsec: i64 = nsec.parse().ok()?;
    if !(0..1_000_000_000).contains(&nsec) {
        return None;
    }
    Some(Tail {
        stamp: Mtime {
            sec: sec.parse().ok()?,
            nsec,
        },
        live: live.parse().ok()?,
        lines: lines.parse().ok()?,
    })
}

/// Appends `+ <name> <ino> <bucket>` to `out`.
pub(crate) fn add_line(out: &mut String, name: &str, k: Known) {
    let _ = match k.bucket {
        Some(b) => writeln!(out, "+ {name} {} {b:02x}", k.ino),
        None => writeln!(out, "+ {name} {} -", k.ino),
    };
}

/// Appends `- <name>` to `out`.
pub(crate) fn remove_line(out: &mut String, name: &str) {
    let _ = writeln!(out, "- {name}");
}

/// Appends the stamp line to `out`.
pub(crate) fn stamp_line(out: &mut String, t: &Tail) {
    let _ = writeln!(
        out,
        "= {} {} {} {}",
        t.stamp.sec, t.stamp.nsec, t.live, t.lines
    );
}

/// First line of a rewritten log: `# base <n> <bytes>`, the number of base lines after it
/// and their size.
const BASE_HEADER: &str = "# base ";

/// A log split into its base (the lines the header counts) and its delta (the rest), with
/// the number of base lines. A log without a valid header is all delta.
pub(crate) fn split_base(log: &str) -> (&str, usize, &str) {
    let split = || {
        let (head, body) = log.strip_prefix(BASE_HEADER)?.split_once('\n')?;
        let (n, size) = head.split_once(' ')?;
        let (n, size) = (n.parse::<usize>().ok()?, size.parse::<usize>().ok()?);
        let ends_a_line = size == 0 || body.as_bytes().get(size - 1) == Some(&b'\n');
        (ends_a_line && body.is_char_boundary(size)).then(|| (&body[..size], n, &body[size..]))
    };
    split().unwrap_or(("", 0, log))
}

/// A rewritten log: the header, then `body`, `n` `+` lines (each ending in a newline).
pub(crate) fn with_base(body: &str, n: usize) -> String {
    let mut out = String::with_capacity(body.len() + 32);
    let _ = writeln!(out, "{BASE_HEADER}{n} {}", body.len());
    out.push_str(body);
    out
}

/// The `+` line at byte `at` of `text` (a base): its name, what it says, and where the next
/// line starts; `Err(next)` for a malformed line ([`parse_add`] reads it).
pub(crate) fn base_line(text: &str, at: usize) -> Result<(&str, Known, usize), usize> {
    let b = text.as_bytes();
    let rest = b.get(at..).unwrap_or_default();
    let (end, next) = match rest.iter().position(|c| *c == b'\n') {
        Some(p) => (at + p, at + p + 1),
        None => (b.len(), b.len()),
    };
    match text
        .get(at..end)
        .and_then(|line| line.strip_prefix("+ "))
        .and_then(parse_add)
    {
        Some((name, k)) => Ok((name, k, next)),
        None => Err(next),
    }
}

/// [`base_line`] when the line at byte `at` is the `+` line of `name` (a name without a
/// space) in its usual form: `(what it says, where the next line starts)`. `None` does not
/// mean malformed: ask [`base_line`] then.
#[inline]
pub(crate) fn base_line_of(text: &str, at: usize, name: &[u8]) -> Option<(Known, usize)> {
    let b = text.as_bytes();
    let after = b
        .get(at..)?
        .strip_prefix(b"+ ")?
        .strip_prefix(name)?
        .strip_prefix(b" ")?;
    let mut ino: u64 = 0;
    let mut i = 0;
    for c in after.iter().take(19) {
        if !c.is_ascii_digit() {
            break;
        }
        ino = ino * 10 + u64::from(c - b'0');
        i += 1;
    }
    let (bucket, used) = match after.get(i..)? {
        [b' ', b'-', b'\n', ..] | [b' ', b'-'] => (None, i + 2),
        [b' ', h, l, b'\n', ..] | [b' ', h, l] => (Some((hex(*h)? << 4) | hex(*l)?), i + 3),
        _ => return None,
    };
    if i == 0 {
        return None;
    }
    let end = at + 2 + name.len() + 1 + used;
    Some((Known { ino, bucket }, (end + 1).min(b.len())))
}

/// What the delta (the lines after the base) says of each name it mentions: the last line
/// decides, `None` for a `-`.
pub(crate) type DeltaMap<'a> = HashMap<&'a [u8], Option<Known>, BuildHasherDefault<FxHasher>>;

/// Replays a delta into a map, and counts its `+`/`-` lines.
pub(crate) fn replay_delta(delta: &str) -> (DeltaMap<'_>, usize) {
    let mut map = DeltaMap::default();
    let mut lines = 0;
    for line in delta.split('\n') {
        let parsed = parse_line(line);
        if let Some((name, k)) = parsed {
            map.insert(name.as_bytes(), k);
            lines += 1;
        }
    }
    (map, lines)
}

/// The live names of a log in base order (names the delta mentions left out), then the
/// delta's live names: what a rewrite keeps when no listing is at hand. Same set as
/// [`replay`].
pub(crate) fn live_in_order(log: &str) -> Vec<(&str, Known)> {
    let (base, _, delta) = split_base(log);
    let (map, _) = replay_delta(delta);
    let mut out: Vec<(&str, Known)> = Vec::new();
    // Where each name is in `out` (a base line repeating a name, never written so, replaces
    // the earlier one, as in a replay).
    let mut at_of: HashMap<&str, usize, BuildHasherDefault<FxHasher>> = HashMap::default();
    let mut at = 0;
    while at < base.len() {
        at = match base_line(base, at) {
            Ok((name, k, next)) => {
                if !map.contains_key(name.as_bytes()) {
                    match at_of.get(name) {
                        Some(i) => out[*i].1 = k,
                        None => {
                            at_of.insert(name, out.len());
                            out.push((name, k));
                        }
                    }
                }
                next
            }
            Err(next) => next,
        };
    }
    // The delta's live names, each at its last line.
    let mut last: Vec<(&str, Known)> = Vec::new();
    for line in delta.split('\n') {
        let Some((name, k)) = line.strip_prefix("+ ").and_then(parse_add) else {
            continue;
        };
        if map.get(name.as_bytes()) != Some(&Some(k)) {
            continue;
        }
        match at_of.get(name) {
            Some(i) => last[*i].1 = k,
            None => {
                at_of.insert(name, last.len());
                last.push((name, k));
            }
        }
    }
    out.extend(last);
    out
}

/// A stamp for the directory: [`STAMP_OFFSET_S`] seconds ago, with a random nanosecond part.
pub(crate) fn pick_stamp() -> Mtime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut x = u64::from(now.subsec_nanos())
        ^ (u64::from(std::process::id()) << 32)
        ^ now.as_secs().rotate_left(17)
        ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64 finaliser: every input bit moves every output bit.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    Mtime {
        sec: i64::try_from(now.as_secs()).unwrap_or(i64::MAX) - STAMP_OFFSET_S,
        nsec: i64::try_from(x % 1_000_000_000).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_replay_and_skip_garbage() {
        let mut log = String::new();
        add_line(
            &mut log,
            "10.0.0.2",
            Known {
                ino: 12,
                bucket: Some(0xa7),
            },
        );
        add_line(
            &mut log,
            "fd00::2",
            Known {
                ino: 12,
                bucket: None,
            },
        );
        add_line(
            &mut log,
            "10.0.0.3",
            Known {
                ino: 13,
                bucket: Some(0),
            },
        );
        remove_line(&mut log, "10.0.0.3");
        add_line(
            &mut log,
            "10.0.0.2",
            Known {
                ino: 99,
                bucket: Some(1),
            },
        );
        assert_eq!(
            log,
            "+ 10.0.0.2 12 a7\n+ fd00::2 12 -\n+ 10.0.0.3 13 00\n- 10.0.0.3\n+ 10.0.0.2 99 01\n"
        );
        log.push_str(
            "\n+ 10.0.0.9 x 00\n+ 10.0.0.9 1 0\n+ 10.0.0.9 1 zz\n+ 10.0.0.9\n- \n+ 10.0.0.",
        );
        let r = replay(&log);
        assert_eq!(r.lines, 5);
        let mut live: Vec<(&str, Known)> =
            r.live.iter().map(|e| (r.name(*e), r.known(*e))).collect();
        live.sort_by_key(|(n, _)| *n);
        assert_eq!(
            live,
            [
                (
                    "10.0.0.2",
                    Known {
                        ino: 99,
                        bucket: Some(1)
                    }
                ),
                (
                    "fd00::2",
                    Known {
                        ino: 12,
                        bucket: None
                    }
                ),
            ]
        );
        assert!(r.live.windows(2).all(|w| w[0].fp <= w[1].fp));
    }

    #[test]
    fn each_name_s_last_line_decides() {
        let k = |ino| Known { ino, bucket: None };
        let mut log = String::new();
        add_line(&mut log, "a", k(1));
        add_line(&mut log, "b", k(2));
        remove_line(&mut log, "a");
        add_line(&mut log, "a", k(3));
        remove_line(&mut log, "b");
        remove_line(&mut log, "c");
        add_line(&mut log, "d", k(4));
        add_line(&mut log, "d", k(5));
        let r = replay(&log);
        assert_eq!(r.lines, 8);
        let mut live: Vec<(&str, u64)> = r
            .live
            .iter()
            .map(|e| (r.name(*e), r.known(*e).ino))
            .collect();
        live.sort();
        assert_eq!(live, [("a", 3), ("d", 5)]);
    }

    #[test]
    fn the_stamp_counts_only_as_the_last_complete_line() {
        let t = Tail {
            stamp: Mtime {
                sec: 1_700_000_000,
                nsec: 123_456_789,
            },
            live: 5000,
            lines: 5002,
        };
        let mut s = String::from("+ 10.0.0.2 12 a7\n");
        stamp_line(&mut s, &t);
        assert_eq!(s, "+ 10.0.0.2 12 a7\n= 1700000000 123456789 5000 5002\n");
        assert_eq!(parse_tail(s.as_bytes()), Some(t));
        // Only the stamp line in the tail window: still found.
        assert_eq!(parse_tail(&s.as_bytes()[17..]), Some(t));
        // Torn, followed by more lines, or malformed: no stamp.
        for bad in [
            &s[..s.len() - 1],
            &s[..s.len() - 3],
            "= 1700000000 123456789 5000 5002\n+ 10.0.0.2 12 a7\n",
            "= 1700000000 1000000000 1 1\n",
            "= 1700000000 -1 1 1\n",
            "= 1 2 3\n",
            "= 1 2 3 4 5\n",
            "",
            "\n",
        ] {
            assert_eq!(parse_tail(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn stamps_are_in_the_past_and_vary() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let a = pick_stamp();
        assert!(a.sec <= now - STAMP_OFFSET_S && a.sec >= now - STAMP_OFFSET_S - 1);
        assert!((0..1_000_000_000).contains(&a.nsec));
        let distinct: std::collections::HashSet<i64> = (0..64)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_micros(10));
                pick_stamp().nsec
            })
            .collect();
        assert!(distinct.len() > 60, "{distinct:?}");
    }

    #[test]
    fn sort_by_hash_sorts_by_key_then_tie() {
        for n in [0u64, 1, 63, 64, 65, 1000, 5000] {
            // Spread keys with duplicates (every key twice, ties in reverse order).
            let mut v: Vec<(u64, u64)> = (0..n)
                .flat_map(|i| {
                    let k = fingerprint(&i.to_le_bytes());
                    [(k, n - i), (k, 0)]
                })
                .collect();
            let mut want = v.clone();
            want.sort_unstable();
            sort_by_hash(&mut v, |e| e.0, |e| e.1);
            assert_eq!(v, want, "n={n}");
        }
        // Badly spread keys (all in one bucket) are still sorted.
        let mut v: Vec<(u64, u64)> = (0..300u64).rev().map(|i| (i, 0)).collect();
        sort_by_hash(&mut v, |e| e.0, |e| e.1);
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn base_lines_parse_as_replayed_lines() {
        let lines = [
            "+ 10.0.0.2 12 a7",
            "+ fd00::2 0 -",
            "+ 10.0.0.3 18446744073709551615 00",
            "+ 10.0.0.3 18446744073709551616 00",
            "+ 10.0.0.3 99999999999999999999 00",
            "+ 10.0.0.3 1 0",
            "+ 10.0.0.3 1 zz",
            "+ 10.0.0.3 1 aaa",
            "+ 10.0.0.3 x 00",
            "+ 10.0.0.3  00",
            "+  1 00",
            "+ a b 1 00",
            "+ 10.0.0.3 1",
            "- 10.0.0.3",
            "# base 1 2",
            "",
            "+",
        ];
        for l in lines {
            let want = l.strip_prefix("+ ").and_then(parse_add);
            for text in [l.to_string(), format!("{l}\n"), format!("{l}\n+ x 1 -")] {
                let got = base_line(&text, 0);
                assert_eq!(got.ok().map(|(n, k, _)| (n, k)), want, "{text:?}");
                let next = match got {
                    Ok((_, _, n)) | Err(n) => n,
                };
                assert_eq!(next, (l.len() + 1).min(text.len()), "{text:?}");
            }
        }
    }

    #[test]
    fn the_fast_base_line_agrees() {
        for l in [
            "+ 10.0.0.2 12 a7",
            "+ fd00::2 0 -",
            "+ 10.0.0.3 1844674407370955161 00",
            "+ 10.0.0.3 18446744073709551615 00",
            "+ 10.0.0.3 1 0",
            "+ 10.0.0.3 1 zz",
            "+ 10.0.0.3 1 aaa",
            "+ 10.0.0.3 x 00",
            "+ 10.0.0.3  00",
            "+ 10.0.0.3 1",
            "+ 10.0.0.3 1 -x",
            "- 10.0.0.3",
        ] {
            for text in [l.to_string(), format!("{l}\n"), format!("{l}\n+ x 1 -")] {
                for name in ["10.0.0.2", "fd00::2", "10.0.0.3", "10.0.0."] {
                    if let Some(fast) = base_line_of(&text, 0, name.as_bytes()) {
                        let slow = base_line(&text, 0).unwrap();
                        assert_eq!(
                            (slow.0.as_bytes(), slow.1, slow.2),
                            (name.as_bytes(), fast.0, fast.1)
                        );
                    }
                }
            }
        }
        assert!(base_line_of("+ 10.0.0.2 12 a7\n", 0, b"10.0.0.2").is_some());
        assert!(base_line_of("+ 10.0.0.2 12 -", 0, b"10.0.0.2").is_some());
    }

    #[test]
    fn a_base_splits_off_and_keeps_the_replayed_names() {
        let k = |ino| Known {
            ino,
            bucket: Some(1),
        };
        let mut body = String::new();
        add_line(&mut body, "a", k(1));
        add_line(&mut body, "b", k(2));
        add_line(&mut body, "c", k(3));
        let mut log = with_base(&body, 3);
        remove_line(&mut log, "b");
        add_line(&mut log, "d", k(4));
        add_line(&mut log, "a", k(5));
        let (base, n, delta) = split_base(&log);
        assert_eq!((base, n), (body.as_str(), 3));
        assert_eq!(delta, "- b\n+ d 4 01\n+ a 5 01\n");
        let live = live_in_order(&log);
        assert_eq!(live, [("c", k(3)), ("d", k(4)), ("a", k(5))]);
        let r = replay(&log);
        let mut replayed: Vec<(&str, Known)> =
            r.live.iter().map(|e| (r.name(*e), r.known(*e))).collect();
        replayed.sort_by_key(|(n, _)| *n);
        let mut sorted = live.clone();
        sorted.sort_by_key(|(n, _)| *n);
        assert_eq!(sorted, replayed);
        // A header that does not end on a line, or is not one: all delta.
        for bad in [
            "# base 3 5\n+ a 1 01\n",
            "# base x 0\n",
            "# base 3\n+ a 1 01\n",
        ] {
            assert_eq!(split_base(bad), ("", 0, bad));
        }
    }

    #[test]
    fn compaction_threshold() {
        assert!(!needs_compaction(0, COMPACT_SLACK));
        assert!(needs_compaction(0, COMPACT_SLACK + 1));
        assert!(!needs_compaction(1000, 1125 + COMPACT_SLACK));
        assert!(needs_compaction(1000, 1126 + COMPACT_SLACK));
        assert!(!needs_compaction(usize::MAX, usize::MAX));
    }
}
