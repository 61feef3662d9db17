//! Hardening (issue 5): fault injection, crash consistency, concurrency and hostile input,
//! black-box through the built `ipam` and `loopback` binaries.
//!
//! Every case must end in a clean success or a clear CNI error object, within the bound,
//! without a panic, and leave nothing behind once DEL has run. The figures these tests
//! produce are recorded in docs/reliability.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use suite_tests::*;

/// A per-test directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!(
            "hardening-{tag}-{}-{}",
            std::process::id(),
            netns_fixtures::unique_suffix()
        ));
        fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn s(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A tmpfs of `size` mounted on a directory of our own; unmounted (lazily) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(format!("size={size},mode=0700").as_str()),
        )
        .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", dir.display()));
        Tmpfs(dir.to_path_buf())
    }

    fn remount(&self, read_only: bool) {
        let mut flags = nix::mount::MsFlags::MS_REMOUNT
            | nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV;
        if read_only {
            flags |= nix::mount::MsFlags::MS_RDONLY;
        }
        nix::mount::mount(None::<&str>, &self.0, None::<&str>, flags, None::<&str>)
            .unwrap_or_else(|e| panic!("remount {} (ro={read_only}): {e}", self.0.display()));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn host_local(v: &str, name: &str, data: &str, extra: Value) -> Value {
    let mut ipam = json!({
        "type": "ipam",
        "ranges": [[{"subnet": "10.91.0.0/24"}]],
        "dataDir": data,
    });
    for (k, val) in extra.as_object().unwrap() {
        ipam[k] = val.clone();
    }
    json!({"cniVersion": v, "name": name, "type": "bridge", "ipam": ipam})
}

fn ipam(verb: &str, cid: &str, netns: &str, conf: &Value) -> PluginOutput {
    call(&bin("ipam"), None, &cni_env(verb, cid, netns, "eth0"), conf)
}

fn assert_ok(out: &PluginOutput, what: &str) {
    assert_eq!(out.status, 0, "{what}: {out:?}");
    assert!(!out.timed_out, "{what}: hung");
}

/// A failure that is a CNI error object with `code` whose message contains `needle`.
fn assert_cni_error(out: &PluginOutput, code: u64, needle: &str, what: &str) {
    assert!(!out.timed_out, "{what}: hung: {out:?}");
    assert_eq!(out.status, 1, "{what}: {out:?}");
    let v = out.json();
    assert_eq!(v["code"], json!(code), "{what}: {v}");
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
    assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
}

/// What a network directory holds: lease files (address -> content), temp files, others.
#[derive(Debug, Default)]
struct Listing {
    leases: BTreeMap<String, String>,
    temps: Vec<String>,
    other: Vec<String>,
}

fn listing(net: &Path) -> Listing {
    let mut l = Listing::default();
    let Ok(rd) = fs::read_dir(net) else {
        return l;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<std::net::IpAddr>().is_ok() {
            let content = fs::read(e.path())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| format!("<{e}>"));
            l.leases.insert(name, content);
        } else if name.starts_with(".tmp-") {
            l.temps.push(name);
        } else {
            l.other.push(name);
        }
    }
    l
}

/// The addresses whose lease file names `id` as its owner.
fn leases_of(net: &Path, id: &str) -> Vec<String> {
    listing(net)
        .leases
        .into_iter()
        .filter(|(_, c)| c.split("\r\n").next() == Some(id))
        .map(|(a, _)| a)
        .collect()
}

/// Whether nobody holds the store lock (we can take it without waiting).
fn lock_is_free(net: &Path) -> bool {
    let f = fs::File::open(net.join("lock")).unwrap();
    // SAFETY: flock on a descriptor we own; closing it releases the lock.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// A small xorshift generator; the seed is printed so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn from_env(tag: &str) -> Rng {
        let seed = std::env::var("HARDENING_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{tag}: HARDENING_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Fault injection

#[test]
fn netns_deleted_between_add_and_del() {
    let host = TestNs::new("hdh");
    let data = Scratch::new("gone");
    let conf = host_local("1.0.0", "gone", &data.s(), json!({}));
    let lo_conf = json!({"cniVersion": "1.0.0", "name": "gone", "type": "loopback"});
    let net = data.path().join("gone");
    for v in VERSIONS {
        let ctr = TestNs::new("hdc");
        let netns = ctr.path().display().to_string();
        let mut conf = conf.clone();
        conf["cniVersion"] = json!(v);
        let mut lo_conf = lo_conf.clone();
        lo_conf["cniVersion"] = json!(v);
        let add = ipam("ADD", "gone-1", &netns, &conf);
        assert_ok(&add, v);
        let lo = call(
            &bin("loopback"),
            Some(&host),
            &cni_env("ADD", "gone-1", &netns, "lo"),
            &lo_conf,
        );
        assert_ok(&lo, v);
        assert_eq!(leases_of(&net, "gone-1").len(), 1);
        let path = ctr.path().to_path_buf();
        drop(ctr);
        assert!(!path.exists(), "the namespace is gone");
        for round in 0..2 {
            let del = call(
                &bin("loopback"),
                Some(&host),
                &cni_env("DEL", "gone-1", &netns, "lo"),
                &with_prev_result(&lo_conf, &lo.json()),
            );
            assert_ok(&del, &format!("{v} loopback DEL #{round}"));
            assert_eq!(del.stdout, "");
            let del = ipam(
                "DEL",
                "gone-1",
                &netns,
                &with_prev_result(&conf, &add.json()),
            );
            assert_ok(&del, &format!("{v} ipam DEL #{round}"));
            assert_eq!(del.stdout, "");
        }
        let l = listing(&net);
        assert!(l.leases.is_empty() && l.temps.is_empty(), "{v}: {l:?}");
        assert!(lock_is_free(&net));
    }
}

#[test]
fn ipam_lock_held_by_another_process_answers_try_again_within_the_bound() {
    let ns = TestNs::new("hdl");
    let netns = ns.path().display().to_string();
    let data = Scratch::new("lock");
    let net = data.path().join("locked");
    let quick = host_local("1.0.0", "locked", &data.s(), json!({"lockTimeoutMs": 300}));
    let default_bound = host_local("1.0.0", "locked", &data.s(), json!({}));
    assert_ok(&ipam("ADD", "before", &netns, &quick), "first ADD");
    // another process takes the lock and keeps it
    // -o: flock keeps the lock itself, its `sleep` child does not inherit it
    let mut holder = Command::new("flock")
        .args(["-x", "-o"])
        .arg(net.join("lock"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let t = Instant::now();
    while lock_is_free(&net) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "flock never took the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for (verb, conf, bound) in [
        ("ADD", &quick, Duration::from_millis(300)),
        ("DEL", &quick, Duration::from_millis(300)),
        ("ADD", &default_bound, Duration::from_secs(5)),
    ] {
        let t = Instant::now();
        let out = ipam(verb, "during", &netns, conf);
        let took = t.elapsed();
        assert_cni_error(&out, 11, "timed out", verb);
        assert!(
            took >= bound && took < bound + Duration::from_secs(2),
            "{verb}: answered after {took:?} with a bound of {bound:?}"
        );
    }
    // the ecs dialect takes its bound from IPAM_DB_CONNECTION_TIMEOUT, as Go ecs-ipam does
    let ecs = json!({"cniVersion": "0.3.0", "name": "ecs-ipam", "type": "ecs-ipam",
        "ipam": {"type": "ecs-ipam", "id": "0a:1b:2c:3d:4e:5f", "ipv4-subnet": "169.254.172.0/22"}});
    // (bolt's lock: flock on the store file itself)
    let ecs_lock = data.path().join("eni-ipam.db");
    fs::write(&ecs_lock, "").unwrap();
    let mut ecs_holder = Command::new("flock")
        .args(["-x", "-o"])
        .arg(&ecs_lock)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut env = cni_env("ADD", "pause", &netns, "ecs-eth0");
    env.push(("IPAM_DB_PATH".into(), ecs_lock.display().to_string()));
    env.push(("IPAM_DB_CONNECTION_TIMEOUT".into(), "400ms".into()));
    let t = Instant::now();
    let out = call(&bin("ipam"), None, &env, &ecs);
    assert_cni_error(&out, 11, "timed out", "ecs ADD");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(
        fs::metadata(&ecs_lock).unwrap().len(),
        0,
        "written while locked"
    );
    for h in [&mut holder, &mut ecs_holder] {
        h.kill().unwrap();
        h.wait().unwrap();
    }
    // once the holder is gone everything works and nothing is left behind
    assert_ok(&ipam("ADD", "during", &netns, &quick), "ADD after");
    for cid in ["during", "before"] {
        assert_ok(&ipam("DEL", cid, &netns, &quick), "DEL after");
    }
    let l = listing(&net);
    assert!(l.leases.is_empty() && l.temps.is_empty(), "{l:?}");
    assert!(lock_is_free(&net));
}

#[test]
fn lock_bounds_out_of_range_are_config_errors_not_panics() {
    // Regression (found in review): a duration past Duration's range panicked the plugin.
    let ns = TestNs::new("hdb");
    let netns = ns.path().display().to_string();
    let data = Scratch::new("bound");
    let ecs = json!({"cniVersion": "0.3.0", "name": "ecs-ipam", "type": "ecs-ipam",
        "ipam": {"type": "ecs-ipam", "id": "0a:1b:2c:3d:4e:5f", "ipv4-subnet": "169.254.172.0/22"}});
    for bad in [
        "99999999999999999999s",
        "1000000000000000000m",
        "-5s",
        "5",
        "soon",
    ] {
        let mut env = cni_env("ADD", "pause", &netns, "ecs-eth0");
        env.push(("IPAM_DB_PATH".into(), data.s()));
        env.push(("IPAM_DB_CONNECTION_TIMEOUT".into(), bad.into()));
        let out = call(&bin("ipam"), None, &env, &ecs);
        assert_cni_error(&out, 7, "IPAM_DB_CONNECTION_TIMEOUT", bad);
    }
    // the largest lockTimeoutMs is a valid (if patient) bound
    let conf = host_local(
        "1.0.0",
        "bound",
        &data.s(),
        json!({"lockTimeoutMs": u64::MAX}),
    );
    assert_ok(&ipam("ADD", "c", &netns, &conf), "lockTimeoutMs u64::MAX");
    assert_ok(&ipam("DEL", "c", &netns, &conf), "DEL");
    let conf = host_local("1.0.0", "bound", &data.s(), json!({"lockTimeoutMs": -1}));
    assert_cni_error(
        &ipam("ADD", "c", &netns, &conf),
        7,
        "lockTimeoutMs",
        "negative",
    );
}

#[test]
fn corrupt_empty_and_foreign_files_in_the_store() {
    let ns = TestNs::new("hdf");
    let netns = ns.path().display().to_string();
    let data = Scratch::new("corrupt");
    let net = data.path().join("corrupt");
    let sentinel = data.path().join("sentinel");
    fs::write(&sentinel, "untouched").unwrap();
    fs::create_dir_all(net.join(".owners")).unwrap();
    fs::write(net.join("10.91.0.2"), "").unwrap(); // empty lease file
    fs::write(net.join("10.91.0.3"), b"\xff\xfe\x00garbage").unwrap(); // not UTF-8
    fs::write(net.join("10.91.0.4"), "x".repeat(100_000)).unwrap(); // oversized
    fs::create_dir(net.join("10.91.0.5")).unwrap(); // a directory
    std::os::unix::fs::symlink(&sentinel, net.join("10.91.0.6")).unwrap(); // a symlink out
    fs::write(net.join("notes.txt"), "left by an admin").unwrap(); // foreign names
    fs::write(net.join("010.91.0.7"), "ctr\r\neth0").unwrap();
    fs::write(net.join("last_reserved_ip.0"), "not an address\n\n").unwrap();
    fs::write(net.join(".owners/.complete"), "some other format").unwrap();
    fs::write(
        net.join(".owners/b00"),
        "+ garbage\n- 10.91.0.9\n\u{0}\u{1}",
    )
    .unwrap();
    fs::write(net.join(".tmp-1-1"), "c\r\neth0").unwrap(); // a crash leftover
    let conf = host_local("1.1.0", "corrupt", &data.s(), json!({}));

    let add = ipam("ADD", "ctr", &netns, &conf);
    assert_ok(&add, "ADD over a corrupt store");
    // every planted lease name counts as taken, whatever its content or type
    assert_eq!(add.json()["ips"][0]["address"], json!("10.91.0.7/24"));
    let check = ipam(
        "CHECK",
        "ctr",
        &netns,
        &with_prev_result(&conf, &add.json()),
    );
    assert_ok(&check, "CHECK");
    let status = ipam("STATUS", "", "", &conf);
    assert_ok(&status, "STATUS");
    for round in 0..2 {
        assert_ok(&ipam("DEL", "ctr", &netns, &conf), &format!("DEL #{round}"));
    }
    assert!(leases_of(&net, "ctr").is_empty());
    // the index was rebuilt (the leftover temp file went with it)
    assert_eq!(
        fs::read_to_string(net.join(".owners/.complete")).unwrap(),
        "ipam-store owner index v3, 256 buckets\n"
    );
    assert!(listing(&net).temps.is_empty());
    // GC releases what belongs to nobody and names, without touching, what it cannot read
    let gc = ipam("GC", "", "", &conf);
    assert_cni_error(&gc, 100, "GC of network corrupt finished with errors", "GC");
    let msg = gc.json()["msg"].as_str().unwrap().to_string();
    for needle in [
        "10.91.0.3",
        "10.91.0.4",
        "10.91.0.5",
        "10.91.0.6",
        "notes.txt",
    ] {
        assert!(msg.contains(needle), "GC message lacks {needle}: {msg}");
    }
    let l = listing(&net);
    assert!(
        !l.leases.contains_key("10.91.0.2"),
        "empty lease kept: {l:?}"
    );
    assert_eq!(fs::read_to_string(&sentinel).unwrap(), "untouched");
    assert!(
        fs::symlink_metadata(net.join("10.91.0.6"))
            .unwrap()
            .is_symlink()
    );
    assert!(lock_is_free(&net));
}

#[test]
fn fifos_in_the_store_never_block_the_plugin() {
    // Regression of a fuzz finding (fuzz/regressions/ipam_store/fifo-lock): a FIFO named
    // `lock` made every ADD and DEL block forever in open(2).
    let ns = TestNs::new("hdq");
    let netns = ns.path().display().to_string();
    let bucket = format!(".owners/{}", ipam_store::__fuzz::bucket_name("ctr"));
    for (name, add_fails) in [
        ("lock", true),
        ("last_reserved_ip.0", true),
        (bucket.as_str(), true),
        ("10.91.0.2", false),
    ] {
        let data = Scratch::new("fifo");
        let net = data.path().join("fifo");
        let conf = host_local("1.0.0", "fifo", &data.s(), json!({"lockTimeoutMs": 500}));
        fs::create_dir_all(net.join(".owners")).unwrap();
        // a complete index, so that the bucket is used as it is rather than rebuilt
        fs::write(
            net.join(".owners/.complete"),
            "ipam-store owner index v3, 256 buckets\n",
        )
        .unwrap();
        let fifo = net.join(name);
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // ... whose names log vouches for the directory as it is now (stamp = its mtime)
        let m = fs::metadata(&net).unwrap();
        fs::write(
            net.join(".owners/names"),
            format!("= {} {} 0 0\n", m.mtime(), m.mtime_nsec()),
        )
        .unwrap();
        let env = cni_env("ADD", "ctr", &netns, "eth0");
        let out = netns_fixtures::run_plugin_with_timeout(
            &bin("ipam"),
            None,
            &as_env(&env),
            conf.to_string().as_bytes(),
            Duration::from_secs(10),
        );
        if add_fails {
            assert_cni_error(&out, 100, name, &format!("ADD with a FIFO as {name}"));
            assert!(leases_of(&net, "ctr").is_empty(), "{name}");
        } else {
            assert_ok(&out, name);
            assert_ne!(out.json()["ips"][0]["address"], json!("10.91.0.2/24"));
        }
        // DEL answers too; once the FIFO is gone it succeeds and leaves nothing
        let del = ipam("DEL", "ctr", &netns, &conf);
        assert!(
            !del.timed_out && (del.status == 0 || name == "lock"),
            "{del:?}"
        );
        fs::remove_file(&fifo).unwrap();
        assert_ok(&ipam("DEL", "ctr", &netns, &conf), name);
        let l = listing(&net);
        assert!(
            leases_of(&net, "ctr").is_empty() && l.temps.is_empty(),
            "{name}: {l:?}"
        );
    }
}

#[test]
fn read_only_store_gives_a_clear_error_and_recovers() {
    let ns = TestNs::new("hdr");
    let netns = ns.path().display().to_string();
    let scratch = Scratch::new("ro");
    let mnt = Tmpfs::mount(&scratch.path().join("mnt"), "1m");
    let data = scratch.path().join("mnt/data");
    let conf = host_local("1.0.0", "ro", data.to_str().unwrap(), json!({}));
    let net = data.join("ro");
    assert_ok(&ipam("ADD", "held", &netns, &conf), "ADD before");
    mnt.remount(true);
    let add = ipam("ADD", "new", &netns, &conf);
    assert_cni_error(
        &add,
        100,
        "Read-only file system",
        "ADD on a read-only store",
    );
    let del = ipam("DEL", "held", &netns, &conf);
    assert_cni_error(
        &del,
        100,
        "Read-only file system",
        "DEL on a read-only store",
    );
    // a store that does not exist yet cannot be created there either
    let other = host_local("1.0.0", "other", data.to_str().unwrap(), json!({}));
    let add = ipam("ADD", "new", &netns, &other);
    assert_cni_error(&add, 100, "Read-only file system", "ADD of a new network");
    mnt.remount(false);
    assert_eq!(leases_of(&net, "held").len(), 1, "the lease survived");
    assert_ok(&ipam("DEL", "held", &netns, &conf), "DEL after");
    assert_ok(&ipam("DEL", "new", &netns, &conf), "DEL of the failed ADD");
    let l = listing(&net);
    assert!(l.leases.is_empty() && l.temps.is_empty(), "{l:?}");
}

#[test]
fn full_store_gives_a_clear_error_and_leaves_nothing_behind() {
    let ns = TestNs::new("hdn");
    let netns = ns.path().display().to_string();
    let scratch = Scratch::new("full");
    let mnt = scratch.path().join("mnt");
    let _fs = Tmpfs::mount(&mnt, "64k");
    let data = mnt.join("data");
    let conf = host_local("1.0.0", "full", data.to_str().unwrap(), json!({}));
    let net = data.join("full");
    assert_ok(&ipam("ADD", "held", &netns, &conf), "ADD before");
    // fill the file system up to the last block
    let filler = mnt.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    drop(f);
    for cid in ["new-1", "new-2", "new-3"] {
        let add = ipam("ADD", cid, &netns, &conf);
        assert_cni_error(&add, 100, "No space left on device", "ADD on a full store");
        let l = listing(&net);
        assert!(leases_of(&net, cid).is_empty(), "{l:?}");
        assert!(l.temps.is_empty(), "a failed ADD left temp files: {l:?}");
    }
    // DEL frees space and works on a full file system
    assert_ok(&ipam("DEL", "held", &netns, &conf), "DEL on a full store");
    fs::remove_file(&filler).unwrap();
    assert_ok(&ipam("ADD", "new-1", &netns, &conf), "ADD after");
    for cid in ["new-1", "new-2", "held"] {
        assert_ok(&ipam("DEL", cid, &netns, &conf), "DEL after");
    }
    let l = listing(&net);
    assert!(l.leases.is_empty() && l.temps.is_empty(), "{l:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. Crash consistency

/// Starts `ipam` with `verb` for `cid` and its config on stdin.
fn start(verb: &str, cid: &str, netns: &str, conf: &Value) -> std::process::Child {
    let mut child = Command::new(bin("ipam"))
        .env_clear()
        .envs(cni_env(verb, cid, netns, "eth0"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(conf.to_string().as_bytes());
    child
}

/// How long an uninterrupted `verb` runs, from its start to its exit (the fastest of 5).
fn run_time(verb: &str, netns: &str, conf: &Value) -> Duration {
    (0..5)
        .map(|i| {
            let cid = format!("timing{i}");
            if verb == "DEL" {
                assert_ok(&ipam("ADD", &cid, netns, conf), "timing ADD");
            }
            let t = Instant::now();
            let status = start(verb, &cid, netns, conf).wait().unwrap();
            let took = t.elapsed();
            assert!(status.success());
            let _ = ipam("DEL", &cid, netns, conf);
            took
        })
        .min()
        .unwrap()
}

/// Starts `ipam` with `verb` for `cid`, kills it with SIGKILL after `delay`, and reports
/// whether it was still running at that moment.
fn kill_during(verb: &str, cid: &str, netns: &str, conf: &Value, delay: Duration) -> bool {
    let mut child = start(verb, cid, netns, conf);
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    // SAFETY: SIGKILL to our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    running && std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL)
}

#[test]
fn kill_9_during_add_or_del_strands_nothing() {
    let ns = TestNs::new("hdk");
    let netns = ns.path().display().to_string();
    let data = Scratch::new("crash");
    let net = data.path().join("crash");
    // a dual-stack config: two leases, two index lines, two last_reserved files per ADD
    let mut conf = host_local("1.0.0", "crash", &data.s(), json!({}));
    conf["ipam"]["ranges"] = json!([[{"subnet": "10.91.0.0/24"}], [{"subnet": "fd91::/120"}]]);
    assert_ok(&ipam("ADD", "survivor", &netns, &conf), "survivor ADD");
    let survivor = leases_of(&net, "survivor");
    assert_eq!(survivor.len(), 2);
    // kills are spread uniformly over the time an uninterrupted run takes here
    let add_span = run_time("ADD", &netns, &conf).as_micros() as u64;
    let del_span = run_time("DEL", &netns, &conf).as_micros() as u64;
    let mut rng = Rng::from_env("kill_9_during_add_or_del_strands_nothing");
    let (mut killed_add, mut killed_del) = (0, 0);
    let mut leftover_temps: HashSet<String> = HashSet::new();
    for run in 0..200 {
        let cid = format!("k{run}");
        let delay = Duration::from_micros(rng.below(add_span.max(1)));
        killed_add += usize::from(kill_during("ADD", &cid, &netns, &conf, delay));
        assert!(
            lock_is_free(&net),
            "run {run}: lock still held after kill -9"
        );
        leftover_temps.extend(listing(&net).temps);
        if run % 2 == 0 {
            // also kill the DEL that cleans up, at a random point, before the real one
            assert_ok(&ipam("ADD", &cid, &netns, &conf), "ADD after the kill");
            let delay = Duration::from_micros(rng.below(del_span.max(1)));
            killed_del += usize::from(kill_during("DEL", &cid, &netns, &conf, delay));
        }
        let del = ipam("DEL", &cid, &netns, &conf);
        assert_ok(&del, &format!("run {run}: DEL after kill -9"));
        assert!(
            leases_of(&net, &cid).is_empty(),
            "run {run}: stranded lease"
        );
        // the next ADD succeeds and gets a fresh pair of addresses
        let next = ipam("ADD", &format!("n{run}"), &netns, &conf);
        assert_ok(&next, &format!("run {run}: ADD after the crash"));
        assert_eq!(next.json()["ips"].as_array().unwrap().len(), 2);
        assert_ok(&ipam("DEL", &format!("n{run}"), &netns, &conf), "DEL");
        assert_eq!(
            leases_of(&net, "survivor"),
            survivor,
            "run {run}: lost lease"
        );
    }
    // GC (survivor valid) removes every crash leftover; the survivor stays
    let mut gc = conf.clone();
    gc["cniVersion"] = json!("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "survivor", "ifname": "eth0"}]);
    assert_ok(&ipam("GC", "", "", &gc), "GC");
    let l = listing(&net);
    assert_eq!(l.leases.len(), 2, "{l:?}");
    assert!(l.temps.is_empty(), "{l:?}");
    assert_ok(&ipam("DEL", "survivor", &netns, &conf), "survivor DEL");
    assert!(listing(&net).leases.is_empty());
    eprintln!(
        "kill -9 (ADD runs {add_span} us, DEL {del_span} us): 200 ADD runs ({killed_add} killed while running), 100 DEL runs \
         ({killed_del} killed while running), {} distinct temp files seen before GC, \
         0 stranded leases, 0 held locks, 0 lost leases",
        leftover_temps.len()
    );
    assert!(
        killed_add >= 50,
        "only {killed_add} of 200 ADDs were killed mid-run: the delays miss the operation"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Concurrency

#[test]
fn hundred_parallel_add_del_cycles_never_duplicate_or_lose_a_lease() {
    let ns = TestNs::new("hdp");
    let netns = ns.path().display().to_string();
    let data = Scratch::new("par");
    let net = data.path().join("par");
    let conf = host_local("1.0.0", "par", &data.s(), json!({}));
    let bound = Duration::from_secs(5); // the default lock bound
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let (conf, netns, net) = (conf.clone(), netns.clone(), net.clone());
            std::thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                let mut timed = |verb: &str, cid: &str| {
                    let t = Instant::now();
                    let out = ipam(verb, cid, &netns, &conf);
                    slowest = slowest.max(t.elapsed());
                    assert_ok(&out, &format!("{verb} {cid}"));
                    out
                };
                let first = format!("a{i}");
                let add = timed("ADD", &first);
                let ip = add.json()["ips"][0]["address"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let ip = ip.split('/').next().unwrap().to_string();
                // the lease is ours on disk, and a repeated ADD returns it
                assert_eq!(
                    fs::read_to_string(net.join(&ip)).unwrap(),
                    format!("{first}\r\neth0")
                );
                let again = timed("ADD", &first);
                assert_eq!(again.json()["ips"], add.json()["ips"]);
                timed("DEL", &first);
                let second = format!("b{i}");
                let add = timed("ADD", &second);
                let kept = add.json()["ips"][0]["address"]
                    .as_str()
                    .unwrap()
                    .to_string();
                (kept, slowest)
            })
        })
        .collect();
    let mut kept = Vec::new();
    let mut slowest = Duration::ZERO;
    for h in handles {
        let (ip, s) = h.join().unwrap();
        kept.push(ip);
        slowest = slowest.max(s);
    }
    let unique: HashSet<&String> = kept.iter().collect();
    assert_eq!(unique.len(), 100, "duplicate addresses: {kept:?}");
    let l = listing(&net);
    assert_eq!(l.leases.len(), 100, "one lease per live container: {l:?}");
    for (i, ip) in kept.iter().enumerate() {
        let ip = ip.split('/').next().unwrap();
        assert_eq!(l.leases[ip], format!("b{i}\r\neth0"), "lease of b{i}");
    }
    assert!(l.temps.is_empty(), "{l:?}");
    assert!(slowest < bound, "an operation took {slowest:?}");
    eprintln!("100 parallel cycles (500 operations): slowest operation {slowest:?}");
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let (conf, netns) = (conf.clone(), netns.clone());
            std::thread::spawn(move || ipam("DEL", &format!("b{i}"), &netns, &conf))
        })
        .collect();
    for h in handles {
        assert_ok(&h.join().unwrap(), "parallel DEL");
    }
    assert!(listing(&net).leases.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 5. Security

#[test]
fn names_that_try_to_escape_the_store_are_refused() {
    let ns = TestNs::new("hde");
    let netns = ns.path().display().to_string();
    let data = Scratch::new("esc");
    let before = fs::read_dir(data.path()).unwrap().count();
    // network names: validated by the dispatcher before any file is touched
    for name in ["..", ".", "../x", "a/b", "/abs", "a\u{0}b", "", "-x", "x y"] {
        let conf = host_local("1.0.0", name, &data.s(), json!({}));
        let out = ipam("ADD", "ctr", &netns, &conf);
        assert_cni_error(&out, 7, "name", &format!("network name {name:?}"));
    }
    // container IDs and interface names: validated from the environment
    for cid in ["..", "../../etc", "a/b", "/x", ".hidden", "-x", "a b"] {
        let conf = host_local("1.0.0", "esc", &data.s(), json!({}));
        let out = ipam("ADD", cid, &netns, &conf);
        assert_cni_error(&out, 4, "CNI_CONTAINERID", &format!("container id {cid:?}"));
        let out = ipam("DEL", cid, &netns, &conf);
        assert_cni_error(
            &out,
            4,
            "CNI_CONTAINERID",
            &format!("DEL container id {cid:?}"),
        );
    }
    for ifname in [
        "..",
        ".",
        "../x",
        "a/b",
        "eth0:1",
        "x y",
        "1234567890123456",
    ] {
        let conf = host_local("1.0.0", "esc", &data.s(), json!({}));
        let out = call(
            &bin("ipam"),
            None,
            &cni_env("ADD", "ctr", &netns, ifname),
            &conf,
        );
        assert_cni_error(&out, 4, "CNI_IFNAME", &format!("ifname {ifname:?}"));
    }
    // dataDir: absolute, without `..`
    for dir in ["relative", "../x", "/tmp/../etc", "/a/./../b"] {
        let conf = host_local("1.0.0", "esc", dir, json!({}));
        let out = ipam("ADD", "ctr", &netns, &conf);
        assert_cni_error(&out, 7, "dataDir", &format!("dataDir {dir:?}"));
    }
    // ecs-ipam's `id` is an owner key written into the store file, never a path: any
    // printable id works; control characters are refused
    let db = data.path().join("eni-ipam.db");
    let mut env = cni_env("ADD", "pause", &netns, "ecs-eth0");
    env.push(("IPAM_DB_PATH".into(), db.display().to_string()));
    for (id, ok) in [
        ("../../../../etc/passwd", true),
        ("/x/y", true),
        ("a\nb", false),
        ("a\r\nb", false),
        ("a\u{0}b", false),
    ] {
        let conf = json!({"cniVersion": "1.0.0", "name": "ecs", "type": "ecs-ipam",
            "ipam": {"type": "ecs-ipam", "id": id, "ipv4-subnet": "169.254.172.0/22"}});
        let out = call(&bin("ipam"), None, &env, &conf);
        let held = || ecs_leases(&db).values().filter(|v| *v == id).count();
        if ok {
            assert_ok(&out, id);
            assert_eq!(held(), 1, "{id}");
            let mut del = env.clone();
            del[0].1 = "DEL".into();
            assert_ok(&call(&bin("ipam"), None, &del, &conf), id);
            assert_eq!(held(), 0, "{id}");
        } else {
            assert_cni_error(&out, 7, "owner id", &format!("id {id:?}"));
        }
    }
    // nothing was created outside the data directory's own networks and the store file
    let names: Vec<String> = fs::read_dir(data.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(before, 0);
    assert!(
        names.iter().all(|n| n == "esc" || n == "eni-ipam.db"),
        "{names:?}"
    );
}

#[test]
fn symlinks_planted_in_the_store_are_never_followed() {
    let ns = TestNs::new("hds");
    let netns = ns.path().display().to_string();
    let data = Scratch::new("sym");
    let outside = data.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let sentinel = outside.join("sentinel");
    fs::write(&sentinel, "untouched").unwrap();
    let conf = |name: &str| host_local("1.0.0", name, &data.s(), json!({}));

    // the network directory itself is a symlink: refused, the target stays empty of ours
    std::os::unix::fs::symlink(&outside, data.path().join("linked")).unwrap();
    let out = ipam("ADD", "ctr", &netns, &conf("linked"));
    assert_cni_error(&out, 100, "symbolic link", "network directory symlink");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);

    // `lock` and `.owners` as symlinks: refused with a clear error
    for (name, entry) in [("slock", "lock"), ("sowners", ".owners")] {
        let net = data.path().join(name);
        fs::create_dir(&net).unwrap();
        std::os::unix::fs::symlink(&sentinel, net.join(entry)).unwrap();
        let out = ipam("ADD", "ctr", &netns, &conf(name));
        assert_cni_error(&out, 100, entry, &format!("{entry} symlink"));
        let del = ipam("DEL", "ctr", &netns, &conf(name));
        assert_eq!(del.status, 1, "{del:?}");
        fs::remove_file(net.join(entry)).unwrap();
        assert_ok(&ipam("ADD", "ctr", &netns, &conf(name)), entry);
        assert_ok(&ipam("DEL", "ctr", &netns, &conf(name)), entry);
    }

    // a lease name and the round-robin hint as symlinks: not followed, not written through;
    // the hint is replaced by a file of our own
    let net = data.path().join("sleases");
    fs::create_dir_all(net.join(".owners")).unwrap();
    for entry in ["10.91.0.2", "last_reserved_ip.0"] {
        std::os::unix::fs::symlink(&sentinel, net.join(entry)).unwrap();
    }
    let add = ipam("ADD", "ctr", &netns, &conf("sleases"));
    assert_ok(&add, "ADD past symlinks");
    assert_eq!(add.json()["ips"][0]["address"], json!("10.91.0.3/24"));
    assert!(
        !fs::symlink_metadata(net.join("last_reserved_ip.0"))
            .unwrap()
            .is_symlink()
    );
    assert_ok(&ipam("DEL", "ctr", &netns, &conf("sleases")), "DEL");
    assert!(
        fs::symlink_metadata(net.join("10.91.0.2"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&sentinel).unwrap(), "untouched");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn store_files_are_0600_in_0700_directories() {
    let ns = TestNs::new("hdm");
    let netns = ns.path().display().to_string();
    let scratch = Scratch::new("mode");
    let data = scratch.path().join("not/yet/there");
    let conf = host_local("1.0.0", "modes", data.to_str().unwrap(), json!({}));
    assert_ok(&ipam("ADD", "ctr", &netns, &conf), "ADD");
    let net = data.join("modes");
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    for d in [data.clone(), net.clone(), net.join(".owners")] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    let mut files = 0;
    for dir in [net.clone(), net.join(".owners")] {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            if e.file_type().unwrap().is_file() {
                files += 1;
                assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
            }
        }
    }
    assert!(
        files >= 5,
        "lease, lock, last_reserved_ip.0, bucket, marker: {files}"
    );
    // an existing data directory keeps the mode its owner chose
    let shared = scratch.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    let conf2 = host_local("1.0.0", "modes", shared.to_str().unwrap(), json!({}));
    assert_ok(&ipam("ADD", "ctr", &netns, &conf2), "ADD");
    assert_eq!(mode(&shared), 0o755);
    assert_eq!(mode(&shared.join("modes")), 0o700);
    for c in [&conf, &conf2] {
        assert_ok(&ipam("DEL", "ctr", &netns, c), "DEL");
    }
}

#[test]
fn cni_netns_must_be_another_network_namespace() {
    let host = TestNs::new("hdx");
    let ctr = TestNs::new("hdy");
    let data = Scratch::new("netns");
    let regular = data.path().join("regular");
    fs::write(&regular, "not a namespace").unwrap();
    let fifo = data.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let ipam_conf = host_local("1.0.0", "netns", &data.s(), json!({}));
    let lo_conf = json!({"cniVersion": "1.0.0", "name": "netns", "type": "loopback"});
    let host_path = host.path().display().to_string();
    let bad: Vec<(String, u64, &str)> = vec![
        (regular.display().to_string(), 4, "not a network namespace"),
        ("/dev/null".into(), 4, "not a network namespace"),
        (data.s(), 4, "not a network namespace"),
        ("/proc/self/ns/uts".into(), 4, "not a network namespace"),
        // found by this test: a FIFO made open(2) block forever
        (fifo.display().to_string(), 4, "not a network namespace"),
        (
            "/run/netns/does-not-exist-hardening".into(),
            4,
            "cannot open",
        ),
        // the plugin runs in `host`: both names of its own namespace are refused
        ("/proc/self/ns/net".into(), 8, "own network namespace"),
        (host_path.clone(), 8, "own network namespace"),
    ];
    for (plugin, conf) in [("ipam", &ipam_conf), ("loopback", &lo_conf)] {
        for (path, code, needle) in &bad {
            if plugin == "ipam" && *code != 8 {
                // an IPAM plugin never enters CNI_NETNS and, like host-local, does not look at
                // it (issue 11): any path but our own namespace is fine, and none blocks
                for verb in ["ADD", "CHECK", "DEL"] {
                    let conf = if verb == "CHECK" {
                        with_prev_result(conf, &json!({"cniVersion": "1.0.0"}))
                    } else {
                        conf.clone()
                    };
                    let out = netns_fixtures::run_plugin_with_timeout(
                        &bin(plugin),
                        Some(&host),
                        &as_env(&cni_env(verb, "ctr", path, "eth0")),
                        conf.to_string().as_bytes(),
                        Duration::from_secs(10),
                    );
                    assert_ok(&out, &format!("ipam {verb} {path}"));
                }
                assert!(leases_of(&data.path().join("netns"), "ctr").is_empty());
                continue;
            }
            for verb in ["ADD", "CHECK"] {
                let conf = with_prev_result(conf, &json!({"cniVersion": "1.0.0"}));
                let out = netns_fixtures::run_plugin_with_timeout(
                    &bin(plugin),
                    Some(&host),
                    &as_env(&cni_env(verb, "ctr", path, "eth0")),
                    conf.to_string().as_bytes(),
                    Duration::from_secs(10),
                );
                assert_cni_error(&out, *code, needle, &format!("{plugin} {verb} {path}"));
            }
            // DEL: a path that is not a namespace counts as gone, our own is refused
            let out = netns_fixtures::run_plugin_with_timeout(
                &bin(plugin),
                Some(&host),
                &as_env(&cni_env("DEL", "ctr", path, "eth0")),
                conf.to_string().as_bytes(),
                Duration::from_secs(10),
            );
            if *code == 8 {
                assert_cni_error(&out, 8, needle, &format!("{plugin} DEL {path}"));
            } else {
                assert_ok(&out, &format!("{plugin} DEL {path}"));
            }
        }
        // and the real container namespace works
        let ctr_path = ctr.path().display().to_string();
        let out = call(
            &bin(plugin),
            Some(&host),
            &cni_env("ADD", "ctr", &ctr_path, "eth0"),
            conf,
        );
        assert_ok(&out, plugin);
        let out = call(
            &bin(plugin),
            Some(&host),
            &cni_env("DEL", "ctr", &ctr_path, "eth0"),
            conf,
        );
        assert_ok(&out, plugin);
    }
    assert!(leases_of(&data.path().join("netns"), "ctr").is_empty());
}

#[test]
fn hostile_stdin_is_bounded_and_answered() {
    let ns = TestNs::new("hdi");
    let netns = ns.path().display().to_string();
    let data = Scratch::new("stdin");
    let env = cni_env("ADD", "ctr", &netns, "eth0");
    let conf = host_local("1.0.0", "stdin", &data.s(), json!({}));
    let mut big = conf.clone();
    big["padding"] = json!("x".repeat(5 << 20));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, u64, &str)> = vec![
        (
            "5 MiB config",
            big.to_string().into_bytes(),
            5,
            "larger than 4194304 bytes",
        ),
        (
            "100000 nested arrays",
            deep.into_bytes(),
            6,
            "recursion limit",
        ),
        (
            "not UTF-8",
            b"{\"cniVersion\":\"1.0.0\xff\"}".to_vec(),
            6,
            "decode",
        ),
        ("empty", Vec::new(), 6, "decode"),
        (
            "truncated",
            br#"{"cniVersion":"1.0.0","name":"x""#.to_vec(),
            6,
            "decode",
        ),
        ("an array", b"[1,2]".to_vec(), 6, "JSON object"),
        ("NUL bytes", vec![0u8; 1000], 6, "decode"),
    ];
    for plugin in ["ipam", "loopback"] {
        for (what, input, code, needle) in &cases {
            let t = Instant::now();
            let out = run_plugin(&bin(plugin), None, &as_env(&env), input);
            assert_cni_error(&out, *code, needle, &format!("{plugin}: {what}"));
            assert!(t.elapsed() < Duration::from_secs(10), "{plugin} {what}");
        }
        // an endless stdin (/dev/zero) is cut at the bound
        let t = Instant::now();
        let out = Command::new(bin(plugin))
            .env_clear()
            .envs(env.clone())
            .stdin(fs::File::open("/dev/zero").unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{plugin} /dev/zero");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["code"], json!(5), "{v}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }
    assert!(listing(&data.path().join("stdin")).leases.is_empty());
}
