//! Concurrency and crash safety: threads, separate processes (flock belongs to the open file
//! description, so processes matter), and processes killed with SIGKILL mid-operation.
//!
//! Child processes are this test binary itself, running the ignored `child` test with its
//! instructions in the `IPAM_STORE_CHILD` environment variable.

// Helpers below fail loudly: unwrap/panic are the point here (clippy only exempts #[test] fns).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use ipam_store::{Owner, RangeSet, Store};

const CHILD_ENV: &str = "IPAM_STORE_CHILD";
/// Pre-existing host-local leases outside the test sets start with this.
const FOREIGN_PREFIX: &str = "10.200.";

fn test_sets() -> Vec<RangeSet> {
    sets(&["10.10.0.0/23", "fd00:10::/64"])
}

/// Runs inside a child process; `IPAM_STORE_CHILD` =
/// `<mode>|<dataDir>|<network>|<id>|<delay µs>|<lock bound ms>`.
#[test]
#[ignore = "helper: runs only as a child process of the tests below"]
fn child() {
    // the test harness's own knob, not a plugin's environment
    #[allow(clippy::disallowed_methods)]
    let spec = std::env::var(CHILD_ENV).expect("run by the concurrency tests only");
    let parts: Vec<&str> = spec.split('|').collect();
    let [mode, data, network, id, delay, bound] = parts[..] else {
        panic!("bad {CHILD_ENV}: {spec}");
    };
    ipam_store::__set_step_delay(Duration::from_micros(delay.parse().unwrap()));
    let bound = Duration::from_millis(bound.parse().unwrap());
    let store = Store::open(Path::new(data), network, bound).unwrap();
    let sets = test_sets();
    match mode {
        "alloc" => {
            let leases = store.allocate(&owner(id, "eth0"), &sets, &[]).unwrap();
            println!("LEASE {} {}", leases[0].address, leases[1].address);
        }
        "release" => {
            let released = store.release_by_owner(&owner(id, "eth0")).unwrap();
            println!("RELEASED {}", released.len());
        }
        "find" => {
            let found = store.find(&owner(id, "eth0")).unwrap();
            println!("FOUND {}", found.len());
        }
        "loop" => {
            // Allocate fresh owners forever, releasing every other one, until killed.
            for i in 0u64.. {
                let o = owner(&format!("{id}-{i}"), "eth0");
                store.allocate(&o, &sets, &[]).unwrap();
                if i % 2 == 1 {
                    store.release_by_owner(&o).unwrap();
                }
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// The lock bound of children spawned with [`spawn`].
const CHILD_LOCK_BOUND: Duration = Duration::from_secs(30);

fn spawn(mode: &str, data: &Path, network: &str, id: &str, delay_us: u64) -> Child {
    spawn_bounded(mode, data, network, id, delay_us, CHILD_LOCK_BOUND)
}

/// [`spawn`] with the child's lock bound.
fn spawn_bounded(
    mode: &str,
    data: &Path,
    network: &str,
    id: &str,
    delay_us: u64,
    bound: Duration,
) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(
            CHILD_ENV,
            format!(
                "{mode}|{}|{network}|{id}|{delay_us}|{}",
                data.display(),
                bound.as_millis()
            ),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child and returns its line starting with `tag`.
fn result_line(child: Child, tag: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find(|l| l.starts_with(tag))
        .unwrap_or_else(|| panic!("no {tag} line in {stdout}"))
        .to_string()
}

/// Checks every lease file: complete `<id>\r\neth0` content, one lease per owner and set,
/// and the owner index finds it. Returns lease → owner.
fn check_store(store: &Store) -> HashMap<IpAddr, Owner> {
    let dir = store.dir();
    let sets = test_sets();
    let mut by_owner: HashMap<Owner, Vec<IpAddr>> = HashMap::new();
    let mut out = HashMap::new();
    for name in lease_names(dir) {
        if name.starts_with(FOREIGN_PREFIX) {
            continue;
        }
        let content = read(dir, &name);
        let (id, ifname) = content
            .split_once("\r\n")
            .unwrap_or_else(|| panic!("{name}: partial or foreign content {content:?}"));
        assert!(!id.is_empty() && ifname == "eth0", "{name}: {content:?}");
        let o = owner(id, ifname);
        let addr = ip(&name);
        assert!(
            sets.iter().any(|s| s.contains(addr)),
            "{name} outside the sets"
        );
        by_owner.entry(o.clone()).or_default().push(addr);
        out.insert(addr, o);
    }
    for (o, addrs) in &by_owner {
        let v4 = addrs.iter().filter(|a| a.is_ipv4()).count();
        assert!(v4 <= 1 && addrs.len() - v4 <= 1, "{o} holds {addrs:?}");
        let mut found = store.find(o).unwrap();
        found.sort();
        let mut want = addrs.clone();
        want.sort();
        assert_eq!(found, want, "index of {o}");
    }
    out
}

fn lock_is_free(store: &Store) -> bool {
    use nix::fcntl::{Flock, FlockArg};
    let f = std::fs::File::open(store.dir().join("lock")).unwrap();
    Flock::lock(OwnedFd::from(f), FlockArg::LockExclusiveNonblock).is_ok()
}

#[test]
fn hundred_threads_allocate_without_duplicates() {
    let tmp = TempDir::new("threads");
    let data = tmp.path().to_path_buf();
    // Half the threads share one Store (each operation opens its own lock file description),
    // the other half open their own.
    let shared = Arc::new(Store::open(&data, "net", Duration::from_secs(30)).unwrap());
    let barrier = Arc::new(Barrier::new(100));
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let (data, barrier, shared) = (data.clone(), barrier.clone(), shared.clone());
            std::thread::spawn(move || {
                let own;
                let store = if i % 2 == 0 {
                    &*shared
                } else {
                    own = Store::open(&data, "net", Duration::from_secs(30)).unwrap();
                    &own
                };
                barrier.wait();
                let leases = store
                    .allocate(&owner(&format!("t{i}"), "eth0"), &test_sets(), &[])
                    .unwrap();
                (i, leases[0].address, leases[1].address)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let v4: HashSet<IpAddr> = results.iter().map(|r| r.1).collect();
    let v6: HashSet<IpAddr> = results.iter().map(|r| r.2).collect();
    assert_eq!((v4.len(), v6.len()), (100, 100));
    let store = open(&tmp, "net");
    let leases = check_store(&store);
    assert_eq!(leases.len(), 200);
    for (i, a4, a6) in results {
        let o = owner(&format!("t{i}"), "eth0");
        assert_eq!(leases[&a4], o);
        assert_eq!(leases[&a6], o);
    }
    // Round-robin from an empty store hands out exactly the first 100 addresses.
    let mut sorted: Vec<IpAddr> = v4.into_iter().collect();
    sorted.sort();
    assert_eq!(sorted.first(), Some(&ip("10.10.0.2")));
    assert_eq!(sorted.last(), Some(&ip("10.10.0.101")));
    assert!(lock_is_free(&store));
}

#[test]
fn a_foreign_writer_racing_our_adds_and_dels_never_shares_an_address() {
    // A thread writes as Go host-local does (under the same flock: the next free address after
    // `last_reserved_ip.0`, O_EXCL, then the pointer; and releases) while four threads of ours
    // allocate and release. Our ADDs after each of its writes go on without a listing, our
    // DELs reconcile: no address is ever held by two owners and every lookup is exact.
    use nix::fcntl::{Flock, FlockArg};
    use std::net::Ipv4Addr;
    let tmp = TempDir::new("race-go");
    let data = tmp.path().to_path_buf();
    let store = open(&tmp, "net");
    store
        .allocate(&owner("first", "eth0"), &test_sets(), &[])
        .unwrap();
    let dir = store.dir().to_path_buf();
    let barrier = Arc::new(Barrier::new(5));
    let go = {
        let (dir, barrier) = (dir.clone(), barrier.clone());
        std::thread::spawn(move || {
            barrier.wait();
            let mut live: Vec<(String, String)> = Vec::new();
            for i in 0..150u32 {
                let f = std::fs::File::open(dir.join("lock")).unwrap();
                let _lock = Flock::lock(OwnedFd::from(f), FlockArg::LockExclusive).unwrap();
                let last: Ipv4Addr = std::fs::read_to_string(dir.join("last_reserved_ip.0"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                let id = format!("g{i}");
                let mut cand = u32::from(last);
                // round robin over 10.10.0.2-10.10.1.254, as host-local walks the /23
                let name = loop {
                    cand = if cand >= u32::from(Ipv4Addr::new(10, 10, 1, 254)) {
                        u32::from(Ipv4Addr::new(10, 10, 0, 2))
                    } else {
                        cand + 1
                    };
                    let name = Ipv4Addr::from(cand).to_string();
                    if go_try_reserve(&dir, &name, &id, 0) {
                        break name;
                    }
                };
                live.push((name, id));
                if i % 3 == 2 {
                    let (gone, _) = live.remove(0);
                    go_release(&dir, &gone);
                }
            }
            live
        })
    };
    let ours: Vec<_> = (0..4)
        .map(|t| {
            let (data, barrier) = (data.clone(), barrier.clone());
            std::thread::spawn(move || {
                let store = Store::open(&data, "net", Duration::from_secs(30)).unwrap();
                barrier.wait();
                let mut kept = Vec::new();
                for k in 0..40u32 {
                    let o = owner(&format!("t{t}-{k}"), "eth0");
                    let leases = store.allocate(&o, &test_sets(), &[]).unwrap();
                    if k % 2 == 1 {
                        let prev = owner(&format!("t{t}-{}", k - 1), "eth0");
                        assert_eq!(store.release_by_owner(&prev).unwrap().len(), 2);
                        kept.pop();
                    }
                    kept.push((o, leases[0].address, leases[1].address));
                }
                kept
            })
        })
        .collect();
    let go_live = go.join().unwrap();
    let ours: Vec<_> = ours.into_iter().map(|h| h.join().unwrap()).collect();
    let leases = check_store(&store);
    for kept in ours {
        for (o, a4, a6) in kept {
            assert_eq!(leases.get(&a4), Some(&o), "{a4}");
            assert_eq!(leases.get(&a6), Some(&o), "{a6}");
        }
    }
    for (name, id) in &go_live {
        assert_eq!(read(&dir, name), format!("{id}\r\neth0"));
        assert_eq!(leases.get(&ip(name)), Some(&owner(id, "eth0")));
    }
    // first + 4 threads x 20 kept, dual-stack; Go's 100 live leases
    assert_eq!(leases.len(), 2 + 4 * 20 * 2 + go_live.len());
    assert_eq!(go_live.len(), 100);
    assert!(lock_is_free(&store));
}

#[test]
fn hundred_processes_allocate_and_release_without_duplicates_or_losses() {
    processes(0);
}

#[test]
fn hundred_processes_with_5000_existing_leases() {
    processes(5000);
}

/// 100 concurrent allocating processes, then 50 releasing + 50 allocating ones, in a store
/// that already holds `existing` host-local leases (outside the sets used here).
fn processes(existing: u32) {
    let tmp = TempDir::new("procs");
    let data = tmp.path();
    for i in 0..existing {
        let name = format!("{FOREIGN_PREFIX}{}.{}", i / 250, i % 250 + 1);
        write_file(&data.join("net"), &name, &format!("old{i}\r\neth0"));
    }
    let store = open(&tmp, "net");
    // The one-time index build is not part of the timing.
    assert_eq!(
        store.find(&owner("old0", "eth0")).unwrap().len(),
        usize::from(existing > 0)
    );

    // The lock bound of the children below, relative to one child alone measured now: the
    // last of 100 waits for the 99 others, so a fixed bound flakes on a loaded machine. Every
    // child must still get the lock within it (a timeout fails the child, and the test).
    let began = Instant::now();
    result_line(spawn("alloc", data, "net", "probe", 0), "LEASE ");
    let one = began.elapsed();
    assert_eq!(
        store
            .release_by_owner(&owner("probe", "eth0"))
            .unwrap()
            .len(),
        2
    );
    let bound = CHILD_LOCK_BOUND.max(one * 100 * 10);
    let began = Instant::now();
    let children: Vec<_> = (0..100)
        .map(|i| spawn_bounded("alloc", data, "net", &format!("p{i}"), 0, bound))
        .collect();
    let lines: Vec<String> = children
        .into_iter()
        .map(|c| result_line(c, "LEASE "))
        .collect();
    let alloc_wall = began.elapsed();
    let mut v4 = HashSet::new();
    let mut v6 = HashSet::new();
    for (i, l) in lines.iter().enumerate() {
        let f: Vec<&str> = l.split(' ').collect();
        assert!(v4.insert(ip(f[1])), "duplicate {}", f[1]);
        assert!(v6.insert(ip(f[2])), "duplicate {}", f[2]);
        let o = owner(&format!("p{i}"), "eth0");
        assert_eq!(
            read(data.join("net").as_path(), f[1]),
            format!("p{i}\r\neth0")
        );
        assert_eq!(store.find(&o).unwrap().len(), 2);
    }
    assert_eq!(check_store(&store).len(), 200);

    // 50 processes release p0..p49 while 50 others allocate q0..q49.
    let began = Instant::now();
    let mut children = Vec::new();
    for i in 0..50 {
        children.push((
            "RELEASED ",
            spawn_bounded("release", data, "net", &format!("p{i}"), 0, bound),
        ));
        children.push((
            "LEASE ",
            spawn_bounded("alloc", data, "net", &format!("q{i}"), 0, bound),
        ));
    }
    for (tag, c) in children {
        let line = result_line(c, tag);
        if tag == "RELEASED " {
            assert_eq!(line, "RELEASED 2");
        }
    }
    let mixed_wall = began.elapsed();
    let leases = check_store(&store);
    assert_eq!(leases.len(), 200);
    let holders: HashSet<String> = leases.values().map(|o| o.id.clone()).collect();
    let want: HashSet<String> = (50..100)
        .map(|i| format!("p{i}"))
        .chain((0..50).map(|i| format!("q{i}")))
        .collect();
    assert_eq!(holders, want);
    assert!(lock_is_free(&store));
    assert_eq!(lease_names(store.dir()).len(), 200 + existing as usize);
    eprintln!(
        "{existing} existing leases: one process alone {} ms; 100 concurrent allocating processes: {} ms wall; 50 release + 50 allocate: {} ms wall (lock bound {} ms)",
        one.as_millis(),
        alloc_wall.as_millis(),
        mixed_wall.as_millis(),
        bound.as_millis()
    );
}

fn rng() -> impl FnMut(u64) -> u64 {
    let mut s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    move |n| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % n
    }
}

#[test]
fn processes_killed_mid_operation_leave_a_consistent_store() {
    let tmp = TempDir::new("crash");
    let data = tmp.path();
    let store = open(&tmp, "net");
    let mut rand = rng();
    let rounds = 30;
    for round in 0..rounds {
        // Each step of a write pauses 0-400 µs, so a kill lands between steps most of the time.
        let mut c = spawn("loop", data, "net", &format!("k{round}"), rand(400));
        std::thread::sleep(Duration::from_millis(5 + rand(40)));
        c.kill().unwrap();
        let status = c.wait().unwrap();
        assert!(!status.success());
    }
    assert!(lock_is_free(&store));
    let before = check_store(&store);
    eprintln!("after {rounds} kills: {} leases", before.len());

    // The next allocation works and collides with nothing.
    let next = store
        .allocate(&owner("after", "eth0"), &test_sets(), &[])
        .unwrap();
    assert!(!before.contains_key(&next[0].address));
    assert!(!before.contains_key(&next[1].address));

    // Every surviving lease is released through the owner index.
    let owners: HashSet<Owner> = before.values().cloned().collect();
    for o in &owners {
        assert!(!store.release_by_owner(o).unwrap().is_empty());
    }
    assert_eq!(lease_names(store.dir()).len(), 2);

    // GC cleans crash leftovers (temp files, stale index files) and keeps the valid owner.
    let temps = names(store.dir())
        .iter()
        .filter(|n| n.starts_with(".tmp-"))
        .count();
    let stale_entries = index_live(store.dir()).len() - 2;
    eprintln!("crash leftovers: {temps} temp files, {stale_entries} index entries without a lease");
    let report = store.gc(&[owner("after", "eth0")].into()).unwrap();
    assert_eq!(report.temp_removed, temps);
    assert!(
        report.released.is_empty() && report.errors.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.kept, 2);
    let live: Vec<String> = index_live(store.dir()).into_iter().collect();
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|e| e.ends_with(" after eth0")), "{live:?}");
    assert!(index_lines(store.dir()).iter().all(|l| l.starts_with("+ ")));
}

#[test]
fn a_process_killed_while_building_the_index_leaves_it_rebuildable() {
    let mut rand = rng();
    let mut interrupted = 0;
    for round in 0..5 {
        let tmp = TempDir::new("crashidx");
        let dir = tmp.path().join("net");
        for n in 0..200u32 {
            write_file(
                &dir,
                &format!("10.10.1.{}", n + 2),
                &format!("old{n}\r\neth0"),
            );
        }
        // 200 index files at 200 µs each: the build takes ≥ 40 ms; kill somewhere inside.
        let mut c = spawn("find", tmp.path(), "net", "old0", 200);
        std::thread::sleep(Duration::from_millis(5 + rand(45)));
        c.kill().unwrap();
        c.wait().unwrap();
        if !dir.join(".owners/.complete").exists() {
            interrupted += 1;
        }
        let store = open(&tmp, "net");
        let leases = check_store(&store);
        assert_eq!(leases.len(), 200, "round {round}");
        assert_eq!(
            store.release_by_owner(&owner("old199", "eth0")).unwrap(),
            [ip("10.10.1.201")]
        );
        assert_eq!(index_live(&dir).len(), 199);
        assert_eq!(
            read(&dir.join(".owners"), ".complete"),
            "ipam-store owner index v3, 256 buckets\n"
        );
    }
    eprintln!("index builds interrupted by the kill: {interrupted} of 5");
    assert!(interrupted > 0, "no kill landed inside an index build");
}
