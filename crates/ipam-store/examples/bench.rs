//! Micro-benchmark: allocate + release with an empty store and with 5,000 and 65,000 (a full
//! /16) existing leases; the first lookup after a foreign write against a bare listing of the
//! same directory.
//!
//! `cargo run --release -p ipam-store --example bench [-- <scratch dir> [iterations]]`
//!
//! The leases are written directly in host-local's format (as Go host-local would have left
//! them), so the first operation also builds the owner index; that one-time cost is printed
//! separately. Each measured operation is a full call: open the lock file, flock, work,
//! unlock. Prints microseconds per operation (mean and median).
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipam_store::{Owner, RangeSet, RangeSpec, Store, validate_sets};

fn sets() -> Result<Vec<RangeSet>, ipam_store::Error> {
    let spec = |s: &str| RangeSpec {
        subnet: s.into(),
        ..Default::default()
    };
    validate_sets(
        &[vec![spec("10.20.0.0/16")], vec![spec("fd00:20::/64")]],
        "ranges",
    )
}

/// Writes `n` host-local lease files 10.20.0.2.. and points the cursor at the last one.
fn prefill(dir: &Path, n: u32) -> Result<(), Box<dyn Error>> {
    std::fs::create_dir_all(dir)?;
    let mut last = None;
    for i in 0..n {
        let ip = IpAddr::from([10, 20, ((i + 2) >> 8) as u8, ((i + 2) & 0xff) as u8]);
        std::fs::write(dir.join(ip.to_string()), format!("cid-{i}\r\neth0"))?;
        last = Some(ip);
    }
    if let Some(ip) = last {
        std::fs::write(dir.join("last_reserved_ip.0"), ip.to_string())?;
    }
    Ok(())
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let mean = v.iter().map(|d| d.as_secs_f64()).sum::<f64>() / v.len().max(1) as f64;
    let median = v.get(v.len() / 2).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    (mean * 1e6, median * 1e6)
}

/// One store under test and its timings.
struct Bench {
    existing: u32,
    store: Store,
    build: Duration,
    alloc: Vec<Duration>,
    release: Vec<Duration>,
}

impl Bench {
    fn new(base: &Path, existing: u32, sync: bool) -> Result<Bench, Box<dyn Error>> {
        let network = format!("bench-{existing}-{}", if sync { "sync" } else { "nosync" });
        prefill(&base.join(&network), existing)?;
        let store = Store::open(base, &network, Duration::from_secs(5))?.with_sync(sync);
        let t = Instant::now();
        store.find(&Owner::new("warmup", "eth0")?)?;
        Ok(Bench {
            existing,
            store,
            build: t.elapsed(),
            alloc: Vec::new(),
            release: Vec::new(),
        })
    }

    fn once(&mut self, sets: &[RangeSet], i: u32) -> Result<(), Box<dyn Error>> {
        let o = Owner::new(&format!("bench-{i}"), "eth0")?;
        let t = Instant::now();
        let leases = self.store.allocate(&o, sets, &[])?;
        self.alloc.push(t.elapsed());
        let t = Instant::now();
        let released = self.store.release_by_owner(&o)?;
        self.release.push(t.elapsed());
        if leases.len() != 2 || released.len() != 2 {
            return Err(format!("iteration {i}: {leases:?} / {released:?}").into());
        }
        Ok(())
    }

    fn print(&mut self, sync: bool) {
        let (am, amed) = stats(std::mem::take(&mut self.alloc));
        let (rm, rmed) = stats(std::mem::take(&mut self.release));
        println!(
            "{:>6} existing leases{}: allocate (v4+v6) mean {am:7.1} µs, median {amed:7.1} µs | release mean {rm:7.1} µs, median {rmed:7.1} µs | first op (index build) {:.1} ms",
            self.existing,
            if sync { ", fsync" } else { "" },
            self.build.as_secs_f64() * 1e3
        );
    }
}

/// Runs the empty and the 5,000-lease store alternately, so that both see the same machine.
fn run(base: &Path, iterations: u32, sync: bool) -> Result<(), Box<dyn Error>> {
    let sets = sets()?;
    let mut empty = Bench::new(base, 0, sync)?;
    let mut full = Bench::new(base, 5000, sync)?;
    for i in 0..iterations {
        empty.once(&sets, i)?;
        full.once(&sets, i)?;
    }
    empty.print(sync);
    full.print(sync);
    Ok(())
}

/// A full /16 (65,000 of 65,534 addresses) against an empty store, alternately. Each
/// allocation moves the round-robin cursor, so at most 400 rounds: past the 534 free
/// addresses the cursor wraps onto taken ones (the slow path host-local has too).
fn run_full(base: &Path, iterations: u32) -> Result<(), Box<dyn Error>> {
    let sets = sets()?;
    let mut empty = Bench::new(base, 0, false)?;
    let mut full = Bench::new(base, 65_000, false)?;
    for i in 0..iterations.min(400) {
        empty.once(&sets, i)?;
        full.once(&sets, i)?;
    }
    empty.print(false);
    full.print(false);
    Ok(())
}

/// The first lookup after a foreign write (one reconciliation: a listing of the directory
/// compared with the names log) against a steady lookup and a bare listing of the same
/// directory (the kernel's floor for seeing every name), median of `rounds`.
fn foreign(base: &Path, existing: u32, rounds: u32) -> Result<(), Box<dyn Error>> {
    let network = format!("bench-foreign-{existing}");
    let dir = base.join(&network);
    prefill(&dir, existing)?;
    let store = Store::open(base, &network, Duration::from_secs(5))?;
    store.find(&Owner::new("warmup", "eth0")?)?;
    let (mut steady, mut after, mut listing) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        let t = Instant::now();
        store.find(&Owner::new(&format!("steady-{i}"), "eth0")?)?;
        steady.push(t.elapsed());
        // A reservation as Go host-local writes it, above every prefilled address.
        let ip = IpAddr::from([10, 20, 255, (i % 250 + 1) as u8]);
        std::fs::write(dir.join(ip.to_string()), format!("go-{i}\r\neth0"))?;
        let go = Owner::new(&format!("go-{i}"), "eth0")?;
        let t = Instant::now();
        let found = store.find(&go)?;
        after.push(t.elapsed());
        if found != [ip] {
            return Err(format!("round {i}: {found:?}").into());
        }
        let t = Instant::now();
        let mut n = 0u64;
        for e in std::fs::read_dir(&dir)? {
            n ^= std::os::unix::fs::DirEntryExt::ino(&e?);
        }
        std::hint::black_box(n);
        listing.push(t.elapsed());
        store.release_by_owner(&go)?;
    }
    let min = |v: &[Duration]| v.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e6);
    let (ms, ma, ml) = (min(&steady), min(&after), min(&listing));
    let ((_, s), (_, a), (_, l)) = (stats(steady), stats(after), stats(listing));
    println!(
        "{existing:>6} leases: lookup {s:7.1} µs | first lookup after a foreign write {a:8.1} µs | bare listing of the directory {l:8.1} µs (medians of {rounds}; minimums {ms:.1} / {ma:.1} / {ml:.1} µs)"
    );
    Ok(())
}

/// The file-system floor of one lease, without this crate: create + write a file, link it
/// under a new name, unlink both. Run alternately in the empty and the full directory, it
/// shows how much of the difference the directory size itself causes.
fn fs_floor(base: &Path, iterations: u32) -> Result<(), Box<dyn Error>> {
    let dirs = [base.join("bench-0-nosync"), base.join("bench-5000-nosync")];
    let mut times = [Vec::new(), Vec::new()];
    for i in 0..iterations {
        for (d, t) in dirs.iter().zip(times.iter_mut()) {
            let (tmp, name) = (
                d.join(".floor-tmp"),
                d.join(format!("10.99.{}.{}", i / 250, i % 250)),
            );
            let began = Instant::now();
            std::fs::write(&tmp, "floor\r\neth0")?;
            std::fs::hard_link(&tmp, &name)?;
            std::fs::remove_file(&tmp)?;
            std::fs::remove_file(&name)?;
            t.push(began.elapsed());
        }
    }
    let [e, f] = times;
    let ((em, emed), (fm, fmed)) = (stats(e), stats(f));
    println!(
        "file-system floor (create+write, link, 2 unlinks): empty dir mean {em:.1} µs, median {emed:.1} µs | 5,000-file dir mean {fm:.1} µs, median {fmed:.1} µs"
    );
    Ok(())
}

/// What host-local does on every lookup by owner: read every lease file.
fn scan_all(dir: &Path) -> Result<Duration, Box<dyn Error>> {
    let t = Instant::now();
    let mut n = 0usize;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            n += std::fs::read(e.path())?.len();
        }
    }
    std::hint::black_box(n);
    Ok(t.elapsed())
}

/// One allocation whose next 5,000 candidates are all taken (worst case for the probe).
fn dense(base: &Path) -> Result<Duration, Box<dyn Error>> {
    let network = "bench-dense";
    let dir = base.join(network);
    prefill(&dir, 5000)?;
    std::fs::write(dir.join("last_reserved_ip.0"), "10.20.255.254")?;
    let store = Store::open(base, network, Duration::from_secs(5))?;
    store.find(&Owner::new("warmup", "eth0")?)?;
    let t = Instant::now();
    let leases = store.allocate(&Owner::new("dense", "eth0")?, &sets()?, &[])?;
    let took = t.elapsed();
    if leases[0].address != IpAddr::from([10, 20, 19, 138]) {
        return Err(format!("unexpected {:?}", leases[0].address).into());
    }
    Ok(took)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let base: PathBuf = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ipam-store-bench-{}", std::process::id()))
    });
    let iterations: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base)?;
    let result = (|| -> Result<(), Box<dyn Error>> {
        println!(
            "scratch dir {}, {iterations} iterations per row",
            base.display()
        );
        run(&base, iterations, false)?;
        run_full(&base, iterations)?;
        foreign(&base, 5000, 50)?;
        foreign(&base, 65_000, 15)?;
        fs_floor(&base, iterations)?;
        run(&base, iterations.min(200), true)?;
        let scan = scan_all(&base.join("bench-5000-nosync"))?;
        println!(
            "reading all 5,000 lease files once (what host-local does per lookup): {:.1} µs",
            scan.as_secs_f64() * 1e6
        );
        let d = dense(&base)?;
        println!(
            "one allocate whose next 5,000 candidates are all taken: {:.1} µs",
            d.as_secs_f64() * 1e6
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&base);
    result
}
