//! The reader/writer on real files: golden bytes of a new file, round trips (property style,
//! with a seeded generator), crafted and mutated corrupt files. No root needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use boltdb::{Access, Db, Error, Problem};

const T: Duration = Duration::from_secs(2);

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "boltdb-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// xorshift64*: reproducible "random" inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// (page size, root pgid) of the newest meta, read by hand.
fn newest_meta(b: &[u8]) -> (usize, u64) {
    let ps = u32_at(b, 16 + 8) as usize;
    let (t0, t1) = (u64_at(b, 16 + 48), u64_at(b, ps + 16 + 48));
    let at = if t1 > t0 { ps } else { 0 };
    (ps, u64_at(b, at + 16 + 16))
}

fn invalid(r: Result<Db, Error>) -> Problem {
    match r {
        Err(Error::Invalid { problem, .. }) => problem,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn a_new_file_is_laid_out_as_bolt_lays_it_out() {
    let t = Tmp::new("new");
    let p = t.file("eni-ipam.db");
    std::fs::write(&p, b"").unwrap();
    let db = Db::open(&p, Access::Write, T).unwrap();
    assert_eq!(db.syncs(), 1);
    let ps = db.page_size();
    assert_eq!(ps, 4096);
    drop(db);
    let b = std::fs::read(&p).unwrap();
    assert_eq!(b.len(), 4 * ps);
    for txid in 0..2u64 {
        let at = txid as usize * ps;
        #[rustfmt::skip]
        let header: [u8; 16] = [
            txid as u8, 0, 0, 0, 0, 0, 0, 0, // page id
            0x04, 0,                          // flags: meta
            0, 0, 0, 0, 0, 0,                 // count, overflow
        ];
        assert_eq!(&b[at..at + 16], &header);
        assert_eq!(u32_at(&b, at + 16), 0xED0C_DAED, "magic");
        assert_eq!(u32_at(&b, at + 20), 2, "version");
        assert_eq!(u32_at(&b, at + 24), 4096, "page size");
        assert_eq!(u32_at(&b, at + 28), 0, "flags");
        assert_eq!(u64_at(&b, at + 32), 3, "root");
        assert_eq!(u64_at(&b, at + 40), 0, "sequence");
        assert_eq!(u64_at(&b, at + 48), 2, "freelist");
        assert_eq!(u64_at(&b, at + 56), 4, "high-water mark");
        assert_eq!(u64_at(&b, at + 64), txid, "txid");
        // FNV-1a 64 over the 56 bytes before the checksum
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for x in &b[at + 16..at + 72] {
            h ^= u64::from(*x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(u64_at(&b, at + 72), h, "checksum");
        assert!(b[at + 80..at + ps].iter().all(|x| *x == 0));
    }
    assert_eq!(
        &b[2 * ps..2 * ps + 16],
        &[2, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        &b[3 * ps..3 * ps + 16],
        &[3, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0]
    );
    // a missing file is created the same way (mode 0644 before the umask)
    let q = t.file("sub.db");
    let db = Db::open(&q, Access::Write, T).unwrap();
    assert_eq!(db.txid(), 1);
    assert_eq!(std::fs::read(&q).unwrap(), b);
}

#[test]
fn a_bucket_round_trips_inline_and_paged_and_keeps_its_neighbours() {
    let t = Tmp::new("rt");
    let p = t.file("db");
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    let mut other = BTreeMap::new();
    other.insert(b"k".to_vec(), b"v".to_vec());
    db.put_bucket(b"other", &other).unwrap();
    let mut ipam = BTreeMap::new();
    ipam.insert(
        b"169.254.172.1".to_vec(),
        b"\x01\0\0\0\0\0\0\0GateWay".to_vec(),
    );
    db.put_bucket(b"IPAM", &ipam).unwrap();
    assert_eq!(db.syncs(), 1 + 2 * 2, "two fdatasync per transaction");
    assert_eq!(db.txid(), 3);
    drop(db);
    let db = Db::open(&p, Access::Read, T).unwrap();
    assert_eq!(db.bucket(b"IPAM").unwrap().unwrap().entries, ipam);
    assert_eq!(db.bucket(b"other").unwrap().unwrap().entries, other);
    assert_eq!(db.bucket(b"nope").unwrap(), None);
    assert_eq!(db.bucket_names(), vec![b"IPAM".to_vec(), b"other".to_vec()]);
    drop(db);
    // 2,000 leases: several leaf pages under a branch, and a value with overflow pages
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    for i in 0..2000u32 {
        let k = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        ipam.insert(
            k.into_bytes(),
            format!("\x02\0\0\0\0\0\0\0owner-{i}").into_bytes(),
        );
    }
    ipam.insert(b"zbig".to_vec(), vec![7u8; 3 * 4096 + 5]);
    db.put_bucket(b"IPAM", &ipam).unwrap();
    drop(db);
    let db = Db::open(&p, Access::Write, T).unwrap();
    assert_eq!(db.bucket(b"IPAM").unwrap().unwrap().entries, ipam);
    assert_eq!(db.bucket(b"other").unwrap().unwrap().entries, other);
}

#[test]
fn random_rounds_match_a_model_and_reuse_freed_pages() {
    let t = Tmp::new("prop");
    let p = t.file("db");
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut side: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    side.insert(b"a".to_vec(), b"1".to_vec());
    {
        let mut db = Db::open(&p, Access::Write, T).unwrap();
        db.put_bucket(b"side", &side).unwrap();
    }
    for round in 0..150 {
        let mut db = Db::open(&p, Access::Write, T).unwrap();
        let got = db
            .bucket(b"IPAM")
            .unwrap()
            .map(|b| b.entries)
            .unwrap_or_default();
        assert_eq!(got, model, "round {round}");
        for _ in 0..rng.below(40) {
            let key = format!("{}.{}", rng.below(600), rng.below(3)).into_bytes();
            if rng.below(3) == 0 {
                model.remove(&key);
            } else {
                let len = match rng.below(20) {
                    0 => 5000 + rng.below(9000),
                    _ => rng.below(40),
                } as usize;
                let v: Vec<u8> = (0..len).map(|i| (i as u64 ^ round) as u8).collect();
                model.insert(key, v);
            }
        }
        db.put_bucket(b"IPAM", &model).unwrap();
        assert_eq!(db.bucket(b"IPAM").unwrap().unwrap().entries, model);
        assert_eq!(db.bucket(b"side").unwrap().unwrap().entries, side);
        drop(db);
        // copy-on-write: with the new meta page lost (a torn write), the file is exactly the
        // previous transaction, because no page that one reaches was rewritten
        let mut torn = std::fs::read(&p).unwrap();
        let (m, _) = newest_meta_at(&torn);
        torn[m + 16 + 60] ^= 0x5a;
        let q = t.file("torn");
        std::fs::write(&q, &torn).unwrap();
        let old = Db::open(&q, Access::Read, T).unwrap();
        let got_old = old
            .bucket(b"IPAM")
            .unwrap()
            .map(|b| b.entries)
            .unwrap_or_default();
        assert_eq!(
            got_old, got,
            "round {round}: the previous transaction is damaged"
        );
        assert_eq!(old.bucket(b"side").unwrap().unwrap().entries, side);
    }
    // copy-on-write with page reuse keeps the file bounded (no leak per round)
    let len = std::fs::metadata(&p).unwrap().len();
    assert!(len < 4 << 20, "{len} bytes after 150 rounds");
}

#[test]
fn the_sequence_of_a_bucket_is_kept() {
    // a bucket value with sequence 42, crafted in the root leaf
    let t = Tmp::new("seq");
    let p = t.file("db");
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    db.put_bucket(b"IPAM", &BTreeMap::new()).unwrap();
    drop(db);
    let mut b = std::fs::read(&p).unwrap();
    let (ps, root) = newest_meta(&b);
    let at = root as usize * ps;
    let pos = u32_at(&b, at + 16 + 4) as usize;
    let ksize = u32_at(&b, at + 16 + 8) as usize;
    let value = at + 16 + pos + ksize;
    b[value + 8] = 42;
    std::fs::write(&p, &b).unwrap();
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    assert_eq!(db.bucket(b"IPAM").unwrap().unwrap().sequence, 42);
    let mut e = BTreeMap::new();
    e.insert(b"x".to_vec(), b"y".to_vec());
    db.put_bucket(b"IPAM", &e).unwrap();
    drop(db);
    let db = Db::open(&p, Access::Read, T).unwrap();
    let got = db.bucket(b"IPAM").unwrap().unwrap();
    assert_eq!((got.sequence, got.entries), (42, e));
}

/// A valid file with an inline IPAM bucket holding one entry; returns its bytes and the
/// offsets of the root leaf's first element and of IPAM's first inline element.
fn small_store(p: &Path) -> (Vec<u8>, usize, usize) {
    let mut db = Db::open(p, Access::Write, T).unwrap();
    let mut e = BTreeMap::new();
    e.insert(b"169.254.172.2".to_vec(), b"\x01\0\0\0\0\0\0\0id".to_vec());
    db.put_bucket(b"IPAM", &e).unwrap();
    drop(db);
    let b = std::fs::read(p).unwrap();
    let (ps, root) = newest_meta(&b);
    let elem = root as usize * ps + 16;
    let pos = u32_at(&b, elem + 4) as usize;
    let ksize = u32_at(&b, elem + 8) as usize;
    let value = elem + pos + ksize;
    (b, elem, value + 16 + 16)
}

#[test]
fn bad_files_are_typed_errors_and_stay_untouched() {
    let t = Tmp::new("bad");
    let p = t.file("db");
    let (good, root_elem, inline_elem) = small_store(&p);
    let ps = 4096;
    type Case = (&'static str, Vec<u8>, fn(&Problem) -> bool);
    let mut cases: Vec<Case> = vec![
        ("100 bytes", good[..100].to_vec(), |p| {
            matches!(p, Problem::Truncated { .. })
        }),
        ("one page", good[..ps].to_vec(), |p| {
            matches!(p, Problem::Truncated { .. })
        }),
        ("three pages", good[..3 * ps].to_vec(), |p| {
            matches!(p, Problem::Truncated { .. })
        }),
        ("garbage", vec![0x5a; 5 * ps], |p| {
            matches!(p, Problem::NotBolt { .. })
        }),
        ("zeros", vec![0; 5 * ps], |p| {
            matches!(p, Problem::NotBolt { .. })
        }),
        ("text", b"[ipam]\n169.254.172.2 = task\n".to_vec(), |p| {
            matches!(p, Problem::Truncated { .. } | Problem::NotBolt { .. })
        }),
    ];
    let mut magic = good.clone();
    for m in [16, ps + 16] {
        magic[m] ^= 0xff;
    }
    cases.push(("wrong magic", magic, |p| {
        matches!(p, Problem::NotBolt { .. })
    }));
    let mut version = good.clone();
    for m in [16, ps + 16] {
        version[m + 4] = 1;
    }
    cases.push(("version 1", version, |p| {
        matches!(p, Problem::Version { found: 1 })
    }));
    let mut sums = good.clone();
    for m in [16, ps + 16] {
        sums[m + 56] ^= 1;
    }
    cases.push(("checksums", sums, |p| matches!(p, Problem::Checksum)));
    let mut pagesz = good.clone();
    for m in [16, ps + 16] {
        pagesz[m + 8..m + 12].copy_from_slice(&3000u32.to_le_bytes());
    }
    cases.push(("page size 3000 (checksums fixed below)", pagesz, |p| {
        matches!(p, Problem::Checksum | Problem::PageSize { .. })
    }));
    for (name, bytes, want) in cases {
        std::fs::write(&p, &bytes).unwrap();
        let e = invalid(Db::open(&p, Access::Write, T));
        assert!(want(&e), "{name}: {e}");
        let msg = Error::Invalid {
            path: p.clone(),
            problem: e,
        }
        .to_string();
        assert!(msg.contains(p.to_str().unwrap()), "{name}: {msg}");
        assert_eq!(
            std::fs::read(&p).unwrap(),
            bytes,
            "{name}: the file changed"
        );
    }
    // IPAM as a plain value: opens (bolt would too), but reading or writing it is refused
    let mut plain = good.clone();
    plain[root_elem] = 0;
    std::fs::write(&p, &plain).unwrap();
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    let e = db.bucket(b"IPAM").unwrap_err();
    assert!(e.to_string().contains("plain value"), "{e}");
    let e = db.put_bucket(b"IPAM", &BTreeMap::new()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                problem: Problem::NotABucket { .. },
                ..
            }
        ),
        "{e}"
    );
    drop(db);
    assert_eq!(std::fs::read(&p).unwrap(), plain);
    // IPAM holding a nested bucket (the inline element flagged as a bucket; its value is too
    // short for a bucket header, which the walk reports)
    let mut nested = good.clone();
    nested[inline_elem] = 1;
    std::fs::write(&p, &nested).unwrap();
    let e = invalid(Db::open(&p, Access::Write, T));
    assert!(matches!(e, Problem::Bucket { .. }), "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), nested);
    // a page id past the end, and a cycle (the root leaf turned into a branch to itself)
    let (_, root) = newest_meta(&good);
    let mut past = good.clone();
    let m = if u64_at(&good, ps + 16 + 48) > u64_at(&good, 16 + 48) {
        ps
    } else {
        0
    };
    past[m + 16 + 16..m + 16 + 24].copy_from_slice(&1000u64.to_le_bytes());
    fix_checksum(&mut past, m);
    std::fs::write(&p, &past).unwrap();
    let e = invalid(Db::open(&p, Access::Write, T));
    assert!(e.to_string().contains("page 1000"), "{e}");
    let mut cycle = good.clone();
    let at = root as usize * ps;
    cycle[at + 8] = 0x01; // branch
    cycle[at + 10] = 1;
    cycle[at + 16..at + 20].copy_from_slice(&16u32.to_le_bytes()); // pos
    cycle[at + 20..at + 24].copy_from_slice(&1u32.to_le_bytes()); // ksize
    cycle[at + 24..at + 32].copy_from_slice(&root.to_le_bytes());
    std::fs::write(&p, &cycle).unwrap();
    let e = invalid(Db::open(&p, Access::Write, T));
    assert!(e.to_string().contains("reached twice"), "{e}");
    assert_eq!(std::fs::read(&p).unwrap(), cycle);
}

fn fix_checksum(b: &mut [u8], meta_page_at: usize) {
    let m = meta_page_at + 16;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in &b[m..m + 56] {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    b[m + 56..m + 64].copy_from_slice(&h.to_le_bytes());
}

#[test]
fn one_bad_meta_falls_back_to_the_other_as_bolt_does() {
    let t = Tmp::new("fallback");
    let p = t.file("db");
    let (mut b, _, _) = small_store(&p);
    // the newest meta (txid 2, page 0) is torn: bolt uses txid 1 (the empty store)
    b[16 + 60] ^= 0xff;
    std::fs::write(&p, &b).unwrap();
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    assert_eq!(db.txid(), 1);
    assert_eq!(db.bucket(b"IPAM").unwrap(), None);
    db.put_bucket(b"IPAM", &BTreeMap::new()).unwrap();
    assert_eq!(db.txid(), 2);
}

#[test]
fn mutated_files_never_panic_and_are_never_rewritten_when_refused() {
    let t = Tmp::new("mut");
    let p = t.file("db");
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    let mut e = BTreeMap::new();
    for i in 0..300u32 {
        e.insert(
            format!("169.254.{}.{}", 172 + i / 256, i % 256).into_bytes(),
            vec![1; 20],
        );
    }
    db.put_bucket(b"IPAM", &e).unwrap();
    db.put_bucket(b"x", &e).unwrap();
    drop(db);
    let good = std::fs::read(&p).unwrap();
    let mut rng = Rng(0x0dd_ba11);
    let started = Instant::now();
    // BOLTDB_MUTATIONS=N runs a longer campaign by hand (the test's own knob)
    #[allow(clippy::disallowed_methods)]
    let rounds: usize = std::env::var("BOLTDB_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    for i in 0..rounds {
        let mut b = good.clone();
        match i % 4 {
            0 => b.truncate(rng.below(b.len() as u64) as usize),
            _ => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(b.len() as u64) as usize;
                    b[at] = rng.next() as u8;
                }
            }
        }
        std::fs::write(&p, &b).unwrap();
        match Db::open(&p, Access::Write, T) {
            Ok(mut db) => {
                let ipam = db.bucket(b"IPAM");
                if let Ok(Some(bucket)) = ipam {
                    db.put_bucket(b"IPAM", &bucket.entries).unwrap();
                    drop(db);
                    let again = Db::open(&p, Access::Read, T).unwrap();
                    assert_eq!(
                        again.bucket(b"IPAM").unwrap().unwrap().entries,
                        bucket.entries
                    );
                }
            }
            Err(Error::Invalid { .. }) => {
                assert_eq!(
                    std::fs::read(&p).unwrap(),
                    b,
                    "mutation {i}: refused file changed"
                )
            }
            Err(e) => panic!("mutation {i}: {e}"),
        }
    }
    assert!(rounds != 1500 || started.elapsed() < Duration::from_secs(60));
}

#[test]
fn the_lock_wait_is_bounded() {
    let t = Tmp::new("lock");
    let p = t.file("db");
    let held = Db::open(&p, Access::Write, T).unwrap();
    let t0 = Instant::now();
    let e = Db::open(&p, Access::Write, Duration::from_millis(200)).unwrap_err();
    let waited = t0.elapsed();
    assert!(matches!(e, Error::LockTimeout { .. }), "{e}");
    assert!(e.to_string().contains(p.to_str().unwrap()), "{e}");
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // readers share, but wait for a writer
    assert!(matches!(
        Db::open(&p, Access::Read, Duration::from_millis(50)),
        Err(Error::LockTimeout { .. })
    ));
    drop(held);
    let r1 = Db::open(&p, Access::Read, T).unwrap();
    let r2 = Db::open(&p, Access::Read, T).unwrap();
    assert!(matches!(
        Db::open(&p, Access::Write, Duration::from_millis(50)),
        Err(Error::LockTimeout { .. })
    ));
    drop((r1, r2));
    // a reader of an empty file sees no bucket and writes nothing
    let q = t.file("empty");
    std::fs::write(&q, b"").unwrap();
    let r = Db::open(&q, Access::Read, T).unwrap();
    assert_eq!(r.bucket(b"IPAM").unwrap(), None);
    assert_eq!(std::fs::metadata(&q).unwrap().len(), 0);
}

/// Offset of the newest meta page and its freelist pgid.
fn newest_meta_at(b: &[u8]) -> (usize, u64) {
    let ps = u32_at(b, 16 + 8) as usize;
    let at = if u64_at(b, ps + 16 + 48) > u64_at(b, 16 + 48) {
        ps
    } else {
        0
    };
    (at, u64_at(b, at + 16 + 32))
}

#[test]
fn a_freelist_with_the_overflow_count_form_and_a_file_without_freelist_read() {
    let t = Tmp::new("fl");
    let p = t.file("db");
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    let mut e = BTreeMap::new();
    for i in 0..400u32 {
        e.insert(format!("k{i:05}").into_bytes(), vec![3; 40]);
    }
    db.put_bucket(b"IPAM", &e).unwrap();
    e.remove(b"k00007".as_slice());
    db.put_bucket(b"IPAM", &e).unwrap();
    drop(db);
    let good = std::fs::read(&p).unwrap();
    let ps = 4096;
    let (_, fl) = newest_meta_at(&good);
    let at = fl as usize * ps;
    let count = u16::from_le_bytes([good[at + 10], good[at + 11]]) as usize;
    assert!(
        count > 0,
        "the freelist lists the pages freed by the rewrite"
    );
    let ids: Vec<u64> = (0..count).map(|i| u64_at(&good, at + 16 + 8 * i)).collect();
    // the same list in bolt's 0xFFFF form: the count moves into the first u64
    let mut big = good.clone();
    big[at + 10..at + 12].copy_from_slice(&0xFFFFu16.to_le_bytes());
    big[at + 16..at + 24].copy_from_slice(&(count as u64).to_le_bytes());
    for (i, id) in ids.iter().enumerate() {
        big[at + 24 + 8 * i..at + 32 + 8 * i].copy_from_slice(&id.to_le_bytes());
    }
    std::fs::write(&p, &big).unwrap();
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    assert_eq!(db.bucket(b"IPAM").unwrap().unwrap().entries, e);
    db.put_bucket(b"IPAM", &e).unwrap();
    drop(db);
    // a file that keeps no freelist (bolt's NoFreelistSync): the free set is rebuilt from
    // reachability, and our commit writes a freelist again
    let mut none = good.clone();
    let (m, _) = newest_meta_at(&none);
    none[m + 16 + 32..m + 16 + 40].copy_from_slice(&u64::MAX.to_le_bytes());
    fix_checksum(&mut none, m);
    std::fs::write(&p, &none).unwrap();
    let mut db = Db::open(&p, Access::Write, T).unwrap();
    assert_eq!(db.bucket(b"IPAM").unwrap().unwrap().entries, e);
    e.insert(b"new".to_vec(), b"v".to_vec());
    db.put_bucket(b"IPAM", &e).unwrap();
    drop(db);
    let after = std::fs::read(&p).unwrap();
    assert_ne!(newest_meta_at(&after).1, u64::MAX);
    assert!(
        after.len() <= none.len() + 2 * ps,
        "unreachable pages were reused"
    );
    let db = Db::open(&p, Access::Read, T).unwrap();
    assert_eq!(db.bucket(b"IPAM").unwrap().unwrap().entries, e);
    drop(db);
    // a freelist listing a page in use is refused
    let mut clash = good.clone();
    let (m, _) = newest_meta_at(&clash);
    let root = u64_at(&clash, m + 16 + 16);
    clash[at + 16..at + 24].copy_from_slice(&root.to_le_bytes());
    std::fs::write(&p, &clash).unwrap();
    let e = invalid(Db::open(&p, Access::Write, T));
    assert!(
        e.to_string().contains("listed as free but is in use"),
        "{e}"
    );
}
