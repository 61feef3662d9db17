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
/// The names log is compacted when its `+`/`-` lines exceed the live names by half plus this.
const COMPACT_SLACK: usize = 512;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) ino: u64,
    pub(crate) bucket: Option<u8>,
}

/// FxHash (rustc's hasher): a multiply and a rotate per word. The names log is replayed on
/// the path of the first operation after a foreign write, where SipHash was a third of the
/// cost; its keys are lease names from our own store, so hash flooding is not a concern.
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

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by lease names, hashed with [`FxHasher`].
pub(crate) type NameMap<'a, V> = HashMap<&'a str, V, BuildHasherDefault<FxHasher>>;

/// A known name while a listing is compared with the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) known: Known,
    /// Listed again.
    pub(crate) seen: bool,
}

/// The known names replayed from a log, borrowing the names from its text.
#[derive(Debug, Default)]
pub(crate) struct Replayed<'a> {
    pub(crate) names: NameMap<'a, Seen>,
    /// `+`/`-` lines read (the file's size in lines, for compaction).
    pub(crate) lines: usize,
}

/// Whether a log of `lines` lines holding `live` names should be rewritten.
pub(crate) fn needs_compaction(live: usize, lines: usize) -> bool {
    lines > live.saturating_add(live / 2).saturating_add(COMPACT_SLACK)
}

/// Replays a whole log; `expected` sizes the map (the live count the last stamp gave).
///
/// A byte-level scan: this runs on the path of the first operation after a foreign write.
pub(crate) fn parse(text: &str, expected: usize) -> Replayed<'_> {
    let mut r = Replayed {
        names: NameMap::with_capacity_and_hasher(expected, BuildHasherDefault::default()),
        lines: 0,
    };
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let end = bytes[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| at + i);
        let line = &text[at..end];
        at = end + 1;
        if let Some(rest) = line.strip_prefix("+ ") {
            if let Some((name, known)) = parse_add(rest) {
                r.lines += 1;
                r.names.insert(name, Seen { known, seen: false });
            }
        } else if let Some(name) = line.strip_prefix("- ")
            && !name.is_empty()
            && !name.contains(' ')
        {
            r.lines += 1;
            r.names.remove(name);
        }
    }
    r
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
        let r = parse(&log, 0);
        assert_eq!(r.lines, 5);
        assert_eq!(
            r.names
                .into_iter()
                .map(|(n, s)| (n, s.known))
                .collect::<HashMap<_, _>>(),
            HashMap::from([
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
            ])
        );
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
    fn compaction_threshold() {
        assert!(!needs_compaction(0, COMPACT_SLACK));
        assert!(needs_compaction(0, COMPACT_SLACK + 1));
        assert!(!needs_compaction(1000, 1500 + COMPACT_SLACK));
        assert!(needs_compaction(1000, 1501 + COMPACT_SLACK));
        assert!(!needs_compaction(usize::MAX, usize::MAX));
    }
}
