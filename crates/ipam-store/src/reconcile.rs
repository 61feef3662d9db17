//! Comparing a directory listing with the names log: what a reconciliation must take in.
//!
//! The listing (raw `getdents64` records) and the log's base (see [`crate::names`]) list
//! surviving names in the same relative order, so one walk over both pairs them by comparing
//! each name with the base line under the cursor: no hashing, no sorting, no allocation per
//! name. Where they disagree (a name created or removed since, a name out of the base's
//! order) a short look-ahead on both sides finds the next pair; what stays unpaired is
//! paired by name at the end through a hash map of the few leftovers. Names the delta (the
//! log lines after the base) mentions are looked up in the delta instead, since its last
//! line about a name overrides the base. The result does not depend on the order: a log
//! without a base, or a listing in another order, gives the same answer, only slower.
//!
//! Pure computation on two buffers; the store does the I/O.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::fsx::dirent_at;
use crate::names::{self, DeltaMap, FxHasher, Known};

/// How far each side looks ahead for the other's name before giving both up for the
/// leftover pass.
const LOOK_AHEAD: usize = 8;

/// What changed between the log and the listing.
#[derive(Debug, Default)]
pub(crate) struct Diff<'a> {
    /// Known names listed with the same inode (and not named by `last_reserved_ip.N`).
    pub(crate) kept: usize,
    /// Those names and what the log knows of them, in listing order, when asked for.
    pub(crate) kept_list: Vec<(&'a [u8], Known)>,
    /// Known names no longer listed, with what the log knew of them.
    pub(crate) gone: Vec<(&'a [u8], Known)>,
    /// Names to read: listed names the log does not know (`None`), and known names listed
    /// with another inode or named by `last_reserved_ip.N` (what the log knew).
    pub(crate) read: Vec<(&'a [u8], u64, Option<Known>)>,
    /// `+`/`-` lines in the log.
    pub(crate) lines: usize,
    /// Known names paired out of the base's order (through the delta or the leftover pass):
    /// a measure of how much a rewrite in listing order would save the next walk.
    pub(crate) out_of_order: usize,
}

/// A position in the listing and in the base, and the entries found there.
struct Walk<'a, 'r> {
    listing: &'a [u8],
    base: &'a str,
    delta: DeltaMap<'a>,
    /// Which listed names may be delta names (most are not: one hash, no map probe).
    filter: Filter,
    /// Whether each delta name was listed, and with which inode.
    delta_seen: HashMap<&'a [u8], u64, BuildHasherDefault<FxHasher>>,
    recent: &'r [String],
    collect: bool,
    diff: Diff<'a>,
    left_known: Vec<(&'a [u8], Known)>,
    left_listed: Vec<(&'a [u8], u64)>,
}

/// A one-hash Bloom filter over the delta's names, 16 bits per name.
struct Filter {
    bits: Vec<u64>,
    shift: u32,
}

impl Filter {
    fn new<'n>(names: impl ExactSizeIterator<Item = &'n [u8]>) -> Filter {
        if names.len() == 0 {
            return Filter {
                bits: Vec::new(),
                shift: 0,
            };
        }
        let size = (names.len() * 16).next_power_of_two().max(64);
        let mut f = Filter {
            bits: vec![0; size / 64],
            shift: 64 - size.trailing_zeros(),
        };
        for n in names {
            let h = f.slot(n);
            f.bits[h / 64] |= 1 << (h % 64);
        }
        f
    }

    /// A cheap hash of a name: its last 8 bytes (zero-padded) and its length, multiplied.
    #[inline]
    fn slot(&self, name: &[u8]) -> usize {
        let last8 = match name.len().checked_sub(8).and_then(|s| name.get(s..)) {
            Some(t) => t.try_into().map_or(0, u64::from_le_bytes),
            None => name.iter().fold(0u64, |h, c| (h << 8) | u64::from(*c)),
        };
        let h = (last8 ^ (name.len() as u64).rotate_left(56)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> self.shift) as usize
    }

    /// False only when `name` is surely not in the set.
    #[inline]
    fn may_hold(&self, name: &[u8]) -> bool {
        if self.bits.is_empty() {
            return false;
        }
        let h = self.slot(name);
        self.bits[h / 64] & (1 << (h % 64)) != 0
    }
}

/// A listing entry: name, inode, and the byte where the next one starts.
type Listed<'a> = (&'a [u8], u64, usize);
/// A base entry: name, what the log says, and the byte where the next line starts.
type Based<'a> = (&'a [u8], Known, usize);

/// Whether a listed name can be a lease name (an IPv4 or IPv6 address's text starts with a
/// hex digit or `:`): `lock`, `last_reserved_ip.N`, `.owners` and temp files never are.
#[inline]
fn maybe_lease(name: &[u8]) -> bool {
    matches!(name.first(), Some(b'0'..=b'9' | b'a'..=b'f' | b':'))
}

/// Compares the raw listing `listing` with the names log `log`. `recent` are the names the
/// `last_reserved_ip.N` files hold (read again even when unchanged); with `collect`, the
/// unchanged names are returned in [`Diff::kept_list`].
pub(crate) fn diff<'a>(
    listing: &'a [u8],
    log: &'a str,
    recent: &[String],
    collect: bool,
) -> Diff<'a> {
    let (base, base_lines, delta) = names::split_base(log);
    let (delta, delta_lines) = names::replay_delta(delta);
    let mut w = Walk {
        listing,
        base,
        filter: Filter::new(delta.keys().copied()),
        delta,
        delta_seen: HashMap::default(),
        recent,
        collect,
        diff: Diff {
            lines: base_lines + delta_lines,
            ..Diff::default()
        },
        left_known: Vec::new(),
        left_listed: Vec::new(),
    };
    w.walk();
    w.pair_leftovers();
    w.apply_delta();
    w.diff
}

impl<'a> Walk<'a, '_> {
    /// The listing entry at or after byte `at` that the walk pairs with the base: a
    /// possible lease name the delta does not mention (a delta name is noted as seen).
    #[inline]
    fn listed_at(&mut self, mut at: usize) -> Option<Listed<'a>> {
        loop {
            let (name, ino, next) = dirent_at(self.listing, at)?;
            at = next;
            if !maybe_lease(name) {
                continue;
            }
            if self.filter.may_hold(name) && self.delta.contains_key(name) {
                self.delta_seen.insert(name, ino);
                continue;
            }
            return Some((name, ino, next));
        }
    }

    /// The base entry at or after byte `at` (malformed lines skipped).
    fn based_at(&self, mut at: usize) -> Option<Based<'a>> {
        while at < self.base.len() {
            match names::base_line(self.base, at) {
                Ok((name, k, next)) => return Some((name.as_bytes(), k, next)),
                Err(next) => at = next,
            }
        }
        None
    }

    /// The walk: pairs equal names in order, looking ahead on a mismatch; what it cannot
    /// pair goes to the leftovers.
    fn walk(&mut self) {
        let (mut i, mut j) = (0usize, 0usize);
        loop {
            let l = self.listed_at(j);
            // The usual case: the base line under the cursor is the listed name's.
            if let Some(l) = l
                && let Some((k, next)) = names::base_line_of(self.base, i, l.0)
            {
                self.pair(l.0, l.1, k);
                (i, j) = (next, l.2);
                continue;
            }
            let k = self.based_at(i);
            match (k, l) {
                (None, None) => break,
                (Some(k), None) => {
                    self.left_known.push((k.0, k.1));
                    i = k.2;
                }
                (None, Some(l)) => {
                    self.left_listed.push((l.0, l.1));
                    j = l.2;
                }
                (Some(k), Some(l)) if k.0 == l.0 => {
                    self.pair(l.0, l.1, k.1);
                    (i, j) = (k.2, l.2);
                }
                (Some(k), Some(l)) => (i, j) = self.resync(k, l),
            }
        }
    }

    /// After a mismatch between base entry `k` and listing entry `l`: the listed name a few
    /// lines further in the base (the base entries before it were removed, or are out of
    /// order), or the base name a few entries further in the listing (the entries before it
    /// are new), or neither (both go to the leftovers). Returns the new positions.
    fn resync(&mut self, k: Based<'a>, l: Listed<'a>) -> (usize, usize) {
        let mut p = k.2;
        for _ in 0..LOOK_AHEAD {
            let Some(b) = self.based_at(p) else { break };
            if b.0 == l.0 {
                let mut q = Some(k);
                while let Some(s) = q.filter(|s| s.2 <= p) {
                    self.left_known.push((s.0, s.1));
                    q = self.based_at(s.2);
                }
                self.pair(l.0, l.1, b.1);
                return (b.2, l.2);
            }
            p = b.2;
        }
        let mut p = l.2;
        for _ in 0..LOOK_AHEAD {
            let Some(m) = self.listed_at(p) else { break };
            if m.0 == k.0 {
                let mut q = Some(l);
                while let Some(s) = q.filter(|s| s.0 != m.0) {
                    self.left_listed.push((s.0, s.1));
                    q = self.listed_at(s.2);
                }
                self.pair(m.0, m.1, k.1);
                return (k.2, m.2);
            }
            p = m.2;
        }
        self.left_known.push((k.0, k.1));
        self.left_listed.push((l.0, l.1));
        (k.2, l.2)
    }

    /// A known name listed with inode `ino`: unchanged, or to be read again.
    #[inline]
    fn pair(&mut self, name: &'a [u8], ino: u64, k: Known) {
        let recent = |r: &String| r.as_bytes().last() == name.last() && r.as_bytes() == name;
        if k.ino == ino && !self.recent.iter().any(recent) {
            self.diff.kept += 1;
            if self.collect {
                self.diff.kept_list.push((name, k));
            }
        } else {
            self.diff.read.push((name, ino, Some(k)));
        }
    }

    /// Pairs the leftovers of both sides by name; base names the delta mentions are
    /// overridden by it and dropped here.
    fn pair_leftovers(&mut self) {
        let mut known: HashMap<&[u8], Known, BuildHasherDefault<FxHasher>> = HashMap::default();
        for (name, k) in std::mem::take(&mut self.left_known) {
            if !self.delta.contains_key(name) {
                // A base repeating a name (never written so): the last line decides.
                known.insert(name, k);
            }
        }
        for (name, ino) in std::mem::take(&mut self.left_listed) {
            match known.remove(name) {
                Some(k) => {
                    self.diff.out_of_order += 1;
                    self.pair(name, ino, k);
                }
                None => self.diff.read.push((name, ino, None)),
            }
        }
        self.diff.gone.extend(known);
    }

    /// The names the delta mentions: its last line against the listing.
    fn apply_delta(&mut self) {
        let delta = std::mem::take(&mut self.delta);
        for (name, k) in delta {
            match (k, self.delta_seen.get(name).copied()) {
                (Some(k), Some(ino)) => {
                    self.diff.out_of_order += 1;
                    self.pair(name, ino, k);
                }
                (Some(k), None) => self.diff.gone.push((name, k)),
                (None, Some(ino)) => self.diff.read.push((name, ino, None)),
                (None, None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{add_line, remove_line, replay, with_base};

    /// A raw listing of `(name, inode)` in the kernel's record format.
    fn listing(entries: &[(&str, u64)]) -> Vec<u8> {
        let mut buf = Vec::new();
        for (name, ino) in [(".", 1), ("..", 2)].iter().chain(entries) {
            let reclen = (19 + name.len() + 1).div_ceil(8) * 8;
            buf.extend_from_slice(&ino.to_ne_bytes());
            buf.extend_from_slice(&0i64.to_ne_bytes());
            buf.extend_from_slice(&(reclen as u16).to_ne_bytes());
            buf.push(8);
            buf.extend_from_slice(name.as_bytes());
            buf.resize(buf.len() + reclen - 19 - name.len(), 0);
        }
        buf
    }

    fn k(ino: u64) -> Known {
        Known {
            ino,
            bucket: Some((ino % 256) as u8),
        }
    }

    /// The diff as sorted `(gone, read, kept)` name lists.
    /// Gone names, reads `(name, inode, known inode)`, and the count of kept names.
    type Summary = (Vec<String>, Vec<(String, u64, Option<u64>)>, usize);

    fn summary(d: &Diff<'_>) -> Summary {
        let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let mut gone: Vec<String> = d.gone.iter().map(|(n, _)| s(n)).collect();
        gone.sort();
        let mut read: Vec<(String, u64, Option<u64>)> = d
            .read
            .iter()
            .map(|(n, ino, k)| (s(n), *ino, k.map(|k| k.ino)))
            .collect();
        read.sort();
        (gone, read, d.kept)
    }

    /// The same comparison done naively: replay the log, look every listed name up.
    fn naive(entries: &[(&str, u64)], log: &str, recent: &[String]) -> Summary {
        let r = replay(log);
        let mut known: HashMap<String, Known> = r
            .live
            .iter()
            .map(|e| (r.name(*e).to_string(), r.known(*e)))
            .collect();
        let (mut read, mut kept) = (Vec::new(), 0);
        for (name, ino) in entries {
            if !maybe_lease(name.as_bytes()) {
                continue;
            }
            match known.remove(*name) {
                Some(k) if k.ino == *ino && !recent.iter().any(|r| r == name) => kept += 1,
                Some(k) => read.push((name.to_string(), *ino, Some(k.ino))),
                None => read.push((name.to_string(), *ino, None)),
            }
        }
        let mut gone: Vec<String> = known.into_keys().collect();
        gone.sort();
        read.sort();
        (gone, read, kept)
    }

    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    #[test]
    fn same_answer_as_a_replay_whatever_the_order() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..300 {
            let n = (xorshift(&mut seed) % 300) as usize;
            // The names as the last listing gave them; the base holds them in that order
            // (but for a few swapped), the delta adds and removes some.
            let mut names: Vec<(String, u64)> = (0..n)
                .map(|i| (format!("10.1.{}.{}", i / 200, i % 200), 1000 + i as u64))
                .collect();
            let mut log = String::new();
            let has_base = round % 5 != 0;
            let mut base: Vec<(String, u64)> = names.clone();
            for _ in 0..(xorshift(&mut seed) % 4) {
                if base.len() > 1 {
                    let a = (xorshift(&mut seed) as usize) % base.len();
                    let b = (xorshift(&mut seed) as usize) % base.len();
                    base.swap(a, b);
                }
            }
            for (name, ino) in &base {
                add_line(&mut log, name, k(*ino));
            }
            if has_base {
                log = with_base(&log, base.len());
            }
            // Delta: our own later operations.
            for _ in 0..(xorshift(&mut seed) % 20) {
                let r = xorshift(&mut seed);
                if r % 3 == 0 && !names.is_empty() {
                    let i = (r as usize / 3) % names.len();
                    remove_line(&mut log, &names[i].0);
                    names.remove(i);
                } else {
                    let name = format!("10.2.0.{}", r % 250);
                    let ino = 5000 + r % 1000;
                    add_line(&mut log, &name, k(ino));
                    names.retain(|(n, _)| *n != name);
                    let at = (r as usize >> 8) % (names.len() + 1);
                    names.insert(at, (name, ino));
                }
            }
            // Foreign changes since: removals, creations, recreations with another inode.
            let mut listed = names.clone();
            for _ in 0..(xorshift(&mut seed) % 30) {
                let r = xorshift(&mut seed);
                match r % 4 {
                    0 if !listed.is_empty() => {
                        listed.remove((r as usize / 4) % listed.len());
                    }
                    1 if !listed.is_empty() => {
                        let i = (r as usize / 4) % listed.len();
                        listed[i].1 += 77_777;
                    }
                    _ => {
                        let name = format!("10.3.{}.{}", r % 7, (r >> 8) % 250);
                        if !listed.iter().any(|(n, _)| *n == name) {
                            let at = (r as usize >> 16) % (listed.len() + 1);
                            listed.insert(at, (name, 9000 + r % 100));
                        }
                    }
                }
            }
            listed.insert(0, ("lock".into(), 3));
            listed.push(("last_reserved_ip.0".into(), 4));
            let recent: Vec<String> = listed
                .iter()
                .rev()
                .take(1)
                .filter(|_| round % 2 == 0)
                .map(|(n, _)| n.clone())
                .collect();
            let entries: Vec<(&str, u64)> = listed.iter().map(|(n, i)| (n.as_str(), *i)).collect();
            let buf = listing(&entries);
            let d = diff(&buf, &log, &recent, true);
            assert_eq!(
                summary(&d),
                naive(&entries, &log, &recent),
                "round {round}\n{log}"
            );
            assert_eq!(d.kept_list.len(), d.kept);
            assert_eq!(d.lines, replay(&log).lines);
        }
    }

    #[test]
    fn an_ordered_base_is_walked_without_leftovers() {
        const NEW: [&str; 13] = [
            "10.9.9.0",
            "10.9.9.1",
            "10.9.9.2",
            "10.9.9.3",
            "10.9.9.4",
            "10.9.9.5",
            "10.9.9.6",
            "10.9.9.7",
            "10.9.9.8",
            "10.9.9.9",
            "10.9.9.10",
            "10.9.9.11",
            "10.9.9.12",
        ];
        let names: Vec<(String, u64)> = (0..500)
            .map(|i| (format!("10.0.{}.{}", i / 250, i % 250), i))
            .collect();
        let mut log = String::new();
        for (n, ino) in &names {
            add_line(&mut log, n, k(*ino));
        }
        let log = with_base(&log, names.len());
        // Every 50th name removed, one in 40 new ones between.
        let mut listed: Vec<(&str, u64)> = Vec::new();
        for (i, (n, ino)) in names.iter().enumerate() {
            if i % 40 == 7 {
                listed.push((NEW[i / 40], 1));
            }
            if i % 50 != 3 {
                listed.push((n, *ino));
            }
        }
        let buf = listing(&listed);
        let d = diff(&buf, &log, &[], false);
        assert_eq!(d.out_of_order, 0);
        assert_eq!(d.gone.len(), 10);
        assert_eq!(d.kept, 490);
        assert_eq!(d.read.len(), 13);
    }
}
