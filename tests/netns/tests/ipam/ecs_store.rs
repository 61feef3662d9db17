//! The ecs dialect of our `ipam` and Amazon's ecs-ipam on one BoltDB lease store.
//!
//! The other side is `netns-fixtures/ecs-ipam-go` (built on first use by
//! `scripts/build-ecs-ipam-go.sh` from Debian's Go and bbolt packages): a store written
//! the way Amazon's plugin lays it out, with bolt's own consistency check (`check`) run on every
//! file we write. Covered: upgrade, downgrade, alternating and concurrent use, release by id
//! and by address, the default path `/data/eni-ipam.db` (in a private mount namespace whose
//! root is an overlay on a tmpfs, so the real `/data` is never touched), the three migration
//! paths of an earlier release's store, the lock held beyond the bound (code 11), and bad
//! files (code 100 naming the file, bytes unchanged).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::*;

const SUBNET: &str = "169.254.172.0/22";
const SUBNET6: &str = "fd00:ec2::172:0/112";

/// The Go double of Amazon's store, built once per test binary.
fn go_bin() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let script = repo_root().join("scripts/build-ecs-ipam-go.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .expect("run build-ecs-ipam-go.sh");
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let p = PathBuf::from(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap()
                .trim(),
        );
        assert!(p.is_file(), "{p:?}");
        p
    })
}

/// A per-test directory, removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!(
            "ecs-ipam-test-{tag}-{}-{}",
            std::process::id(),
            netns_fixtures::unique_suffix()
        ));
        fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One test's store: a netns for CNI_NETNS, a directory, the store file in it.
struct World {
    ns: TestNs,
    /// Removed on drop.
    _dir: Tmp,
    db: PathBuf,
}

fn ipam(id: &str, extra: &Value) -> Value {
    let mut ipam = json!({"type": "ecs-ipam", "id": id, "ipv4-subnet": SUBNET,
        "ipv4-routes": [{"dst": "169.254.170.2/32"}]});
    for (k, v) in extra.as_object().unwrap() {
        ipam[k] = v.clone();
    }
    ipam
}

/// The agent's ADD (through ecs-bridge's config) or its later release through ecs-ipam.
fn agent_conf(verb: &str, id: &str, extra: &Value) -> Value {
    if verb == "DEL" {
        json!({"cniVersion": "0.3.0", "name": "ecs-ipam", "type": "ecs-ipam", "ipam": ipam(id, extra)})
    } else {
        json!({"type": "ecs-bridge", "cniVersion": "0.3.0", "name": "network-name",
            "bridge": "ecs-bridge", "mtu": 0, "ipam": ipam(id, extra)})
    }
}

impl World {
    fn new(tag: &str) -> World {
        let dir = Tmp::new(tag);
        let db = dir.0.join("eni-ipam.db");
        World {
            ns: TestNs::new("eci"),
            _dir: dir,
            db,
        }
    }

    fn env(&self, verb: &str, extra_env: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut e = cni_env(
            verb,
            "pause",
            &self.ns.path().display().to_string(),
            "ecs-eth0",
        );
        e.push(("IPAM_DB_PATH".into(), self.db.display().to_string()));
        e.push(("IPAM_DB_CONNECTION_TIMEOUT".into(), "30s".into()));
        for (k, v) in extra_env {
            e.retain(|(kk, _)| kk != k);
            e.push((k.to_string(), v.to_string()));
        }
        e
    }

    /// Our plugin, as the agent calls it.
    fn ours(&self, verb: &str, id: &str, extra: Value) -> PluginOutput {
        call(
            &bin("ipam"),
            None,
            &self.env(verb, &[]),
            &agent_conf(verb, id, &extra),
        )
    }

    /// Our ADD; the IPv4 address it leased.
    fn ours_add(&self, id: &str) -> String {
        let out = self.ours("ADD", id, json!({}));
        assert_eq!(out.status, 0, "{out:?}");
        addr(&out.json()["ips"][0]["address"])
    }

    /// The Go double on this store.
    fn go(&self, args: &[&str]) -> Output {
        go_cmd(args, &[("IPAM_DB_PATH", self.db.to_str().unwrap())])
    }

    fn go_ok(&self, args: &[&str]) -> String {
        let out = self.go(args);
        assert!(out.status.success(), "ecs-ipam-go {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The Go ADD; the IPv4 address it leased.
    fn go_add(&self, id: &str) -> String {
        let v: Value =
            serde_json::from_str(&self.go_ok(&["add", "-id", id, "-subnet", SUBNET])).unwrap();
        v["ipv4"].as_str().unwrap().to_string()
    }

    /// Every key of bucket IPAM as Go's bbolt reads it (index stripped).
    fn dump(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.go_ok(&["dump"])).unwrap()
    }

    /// Address keys → owner, as Go reads them.
    fn leases(&self) -> BTreeMap<String, String> {
        self.dump()
            .into_iter()
            .filter(|(k, v)| !k.starts_with("last") && !v.starts_with("GateWay"))
            .collect()
    }

    /// bolt's own consistency check of the whole file passes.
    fn check(&self) {
        let out = self.go(&["check"]);
        assert!(out.status.success(), "bolt check: {out:?}");
    }
}

fn go_cmd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(go_bin());
    c.args(args)
        .env_clear()
        .env("IPAM_DB_CONNECTION_TIMEOUT", "30s");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).output().expect("run ecs-ipam-go")
}

fn addr(v: &Value) -> String {
    v.as_str().unwrap().split('/').next().unwrap().to_string()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn upgrade_leases_amazons_plugin_wrote_are_never_handed_out_again() {
    let w = World::new("up");
    // the node before the upgrade: three tasks, one released (lastKnownIP moves back)
    assert_eq!(w.go_add("eni-a"), "169.254.172.2");
    assert_eq!(w.go_add("eni-b"), "169.254.172.3");
    assert_eq!(w.go_add("eni-c"), "169.254.172.4");
    w.go_ok(&["del", "-id", "eni-b"]);
    let v: Value = serde_json::from_str(&w.go_ok(&[
        "add", "-id", "eni-d", "-subnet", SUBNET, "-subnet6", SUBNET6,
    ]))
    .unwrap();
    assert_eq!(
        v,
        json!({"ipv4": "169.254.172.5", "ipv6": "fd00:ec2::172:2"})
    );
    // after the swap: ours continues Amazon's walk after lastKnownIP, around every lease
    assert_eq!(w.ours_add("task-1"), "169.254.172.6");
    assert_eq!(w.ours_add("task-2"), "169.254.172.7");
    // a repeated ADD of a Go-written id returns its lease (Amazon would fail)
    assert_eq!(w.ours_add("eni-a"), "169.254.172.2");
    // the agent's release of a Go-written lease by ENI MAC, both families
    let out = w.ours("DEL", "eni-d", json!({"ipv6-subnet": SUBNET6}));
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(
        w.leases(),
        map(&[
            ("169.254.172.2", "eni-a"),
            ("169.254.172.4", "eni-c"),
            ("169.254.172.6", "task-1"),
            ("169.254.172.7", "task-2"),
        ])
    );
    let d = w.dump();
    assert_eq!(d["lastKnownIP"], "169.254.172.5");
    assert_eq!(d["lastKnownIPv6"], "fd00:ec2::172:2");
    assert_eq!(d["169.254.172.1"], "GateWay");
    w.check();
    // fill the rest of a /29 by turns: nobody ever gets a held address
    let small = World::new("up-small");
    let sub = "10.9.0.0/29";
    small.go_ok(&["add", "-id", "g1", "-subnet", sub]);
    let mut got = vec!["10.9.0.2".to_string()];
    for i in 0..4 {
        let out = small.ours("ADD", &format!("r{i}"), json!({"ipv4-subnet": sub}));
        assert_eq!(out.status, 0, "{out:?}");
        got.push(addr(&out.json()["ips"][0]["address"]));
    }
    got.sort();
    assert_eq!(
        got,
        ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
    );
    let out = small.ours("ADD", "r-full", json!({"ipv4-subnet": sub}));
    assert_eq!(
        (out.status, out.json()["code"].clone()),
        (1, json!(100)),
        "{out:?}"
    );
    small.check();
    // STATUS (1.1.0) sees the full subnet, leases of both plugins counted; CHECK finds the lease
    let status = |v: &str| {
        let mut c = agent_conf("ADD", "r0", &json!({"ipv4-subnet": sub}));
        c["cniVersion"] = json!(v);
        call(&bin("ipam"), None, &small.env("STATUS", &[]), &c)
    };
    let out = status("1.1.0");
    assert_eq!(out.json()["code"], json!(50), "{out:?}");
    let mut c = agent_conf("ADD", "g1", &json!({"ipv4-subnet": sub}));
    c["cniVersion"] = json!("1.0.0");
    c["prevResult"] = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.9.0.2/29"}]});
    let out = call(&bin("ipam"), None, &small.env("CHECK", &[]), &c);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    c["ipam"]["id"] = json!("nobody");
    let out = call(&bin("ipam"), None, &small.env("CHECK", &[]), &c);
    assert!(
        out.json()["msg"].as_str().unwrap().contains("no lease"),
        "{out:?}"
    );
    small.go_ok(&["del", "-id", "g1"]);
    assert_eq!(status("1.1.0").status, 0);
}

#[test]
fn downgrade_amazons_plugin_sees_every_lease_ours_wrote() {
    let w = World::new("down");
    assert!(!w.db.exists());
    for (i, id) in ["t1", "t2", "t3"].iter().enumerate() {
        assert_eq!(w.ours_add(id), format!("169.254.172.{}", i + 2));
        w.check();
    }
    let out = w.ours("ADD", "t4", json!({"ipv6-subnet": SUBNET6}));
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(addr(&out.json()["ips"][1]["address"]), "fd00:ec2::172:2");
    w.check();
    assert_eq!(
        fs::metadata(&w.db).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(
        w.dump(),
        map(&[
            ("169.254.172.1", "GateWay"),
            ("169.254.172.2", "t1"),
            ("169.254.172.3", "t2"),
            ("169.254.172.4", "t3"),
            ("169.254.172.5", "t4"),
            ("6fd00:ec2::172:1", "GateWayV6"),
            ("6fd00:ec2::172:2", "t4"),
            ("lastKnownIP", "169.254.172.5"),
            ("lastKnownIPv6", "fd00:ec2::172:2"),
        ])
    );
    // rolled back: Amazon's plugin goes on after ours, never over it
    assert_eq!(w.go_add("g1"), "169.254.172.6");
    let v: Value = serde_json::from_str(
        &w.go_ok(&["add", "-id", "g2", "-subnet", SUBNET, "-subnet6", SUBNET6]),
    )
    .unwrap();
    assert_eq!(
        v,
        json!({"ipv4": "169.254.172.7", "ipv6": "fd00:ec2::172:3"})
    );
    // ... releases what ours leased, by id (as the agent does) and by address
    w.go_ok(&["del", "-id", "t1"]);
    w.go_ok(&["del", "-ip", "169.254.172.3"]);
    assert!(!w.leases().contains_key("169.254.172.2"));
    assert!(!w.leases().contains_key("169.254.172.3"));
    // ... and a statically requested address ours holds is refused
    let out = w.go(&[
        "add",
        "-id",
        "g3",
        "-subnet",
        SUBNET,
        "-ip",
        "169.254.172.4",
    ]);
    assert!(!out.status.success(), "{out:?}");
    w.check();
    // a bucket of several leaf pages under a branch page, written by us, read by bbolt
    for i in 0..160 {
        w.ours_add(&format!("many-{i:03}"));
    }
    w.check();
    let leases = w.leases();
    assert_eq!(
        leases.values().filter(|v| v.starts_with("many-")).count(),
        160
    );
    let next = w.go_add("g-after");
    assert!(!leases.contains_key(&next), "{next} handed out twice");
    w.check();
}

use std::os::unix::fs::PermissionsExt;

#[test]
fn alternating_use_never_hands_out_an_address_twice() {
    let w = World::new("alt");
    let mut live: BTreeMap<String, String> = BTreeMap::new(); // id -> address
    for round in 0..25 {
        let a = w.ours_add(&format!("r{round}"));
        let b = w.go_add(&format!("g{round}"));
        for (id, ip) in [(format!("r{round}"), a), (format!("g{round}"), b)] {
            assert!(
                !live.values().any(|v| *v == ip),
                "round {round}: {ip} handed out twice"
            );
            live.insert(id, ip);
        }
        if round % 3 == 1 {
            // ours releases a Go lease, Go releases one of ours
            let out = w.ours("DEL", &format!("g{}", round - 1), json!({}));
            assert_eq!(out.status, 0, "{out:?}");
            live.remove(&format!("g{}", round - 1));
            w.go_ok(&["del", "-id", &format!("r{}", round - 1)]);
            live.remove(&format!("r{}", round - 1));
        }
    }
    let want: BTreeMap<String, String> = live.into_iter().map(|(id, ip)| (ip, id)).collect();
    assert_eq!(w.leases(), want);
    w.check();
}

#[test]
fn concurrent_use_from_both_sides() {
    let w = World::new("conc");
    let ours_ids: Vec<String> = (0..60).map(|i| format!("r{i}")).collect();
    let go_ids: Vec<String> = (0..60).map(|i| format!("g{i}")).collect();
    let results = std::thread::scope(|s| {
        let ours = s.spawn(|| {
            let mut got = Vec::new();
            for (i, id) in ours_ids.iter().enumerate() {
                got.push((id.clone(), w.ours_add(id)));
                if i % 4 == 3 {
                    let out = w.ours("DEL", &ours_ids[i - 1], json!({}));
                    assert_eq!(out.status, 0, "{out:?}");
                }
            }
            got
        });
        let go = s.spawn(|| {
            let mut got = Vec::new();
            for (i, id) in go_ids.iter().enumerate() {
                got.push((id.clone(), w.go_add(id)));
                if i % 4 == 3 {
                    w.go_ok(&["del", "-id", &go_ids[i - 1]]);
                }
            }
            got
        });
        (ours.join().unwrap(), go.join().unwrap())
    });
    let released = |ids: &[String]| -> Vec<String> {
        (0..ids.len())
            .filter(|i| i % 4 == 2)
            .map(|i| ids[i].clone())
            .collect()
    };
    let dead: Vec<String> = released(&ours_ids)
        .into_iter()
        .chain(released(&go_ids))
        .collect();
    let leases = w.leases();
    let mut want = BTreeMap::new();
    for (id, ip) in results.0.iter().chain(&results.1) {
        if !dead.contains(id) {
            // two live ids with one address would leave one of them missing here
            assert!(
                want.insert(ip.clone(), id.clone()).is_none(),
                "{ip} handed out twice"
            );
        }
    }
    assert_eq!(leases, want);
    assert_eq!(leases.len(), 90);
    w.check();
}

#[test]
fn release_by_id_and_by_address() {
    let w = World::new("rel");
    let out = w.ours("ADD", "eni-x", json!({"ipv6-subnet": SUBNET6}));
    assert_eq!(out.status, 0, "{out:?}");
    w.go_ok(&[
        "add",
        "-id",
        "go-y",
        "-subnet",
        SUBNET,
        "-ip",
        "169.254.172.50",
    ]);
    w.go_ok(&[
        "add",
        "-id",
        "go-z",
        "-subnet",
        SUBNET,
        "-ip",
        "169.254.172.51",
    ]);
    // by address: whoever holds it (a Go lease); the lease and nothing else goes
    let out = w.ours(
        "DEL",
        "unrelated",
        json!({"ipv4-address": "169.254.172.50/22"}),
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(
        w.leases(),
        map(&[
            ("169.254.172.2", "eni-x"),
            ("169.254.172.51", "go-z"),
            ("6fd00:ec2::172:2", "eni-x"),
        ])
    );
    assert_eq!(w.dump()["lastKnownIP"], "169.254.172.50");
    // by id: every entry of the id, both families
    let out = w.ours("DEL", "eni-x", json!({"ipv6-subnet": SUBNET6}));
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(w.leases(), map(&[("169.254.172.51", "go-z")]));
    let d = w.dump();
    assert_eq!(
        (d["lastKnownIP"].as_str(), d["lastKnownIPv6"].as_str()),
        ("169.254.172.2", "fd00:ec2::172:2")
    );
    // nothing held: success, nothing written (Amazon fails both)
    let before = fs::read(&w.db).unwrap();
    for extra in [json!({}), json!({"ipv4-address": "169.254.172.99"})] {
        let out = w.ours("DEL", "eni-x", extra);
        assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    }
    assert_eq!(fs::read(&w.db).unwrap(), before);
    // the freed address is reused last: the walk goes on after it
    assert_eq!(w.ours_add("eni-n"), "169.254.172.3");
    w.check();
}

/// A private mount namespace whose root is an overlay of `/` on a tmpfs, with a tmpfs on
/// `/data`: the plugin and the Go double run in it through `nsenter`, the test reads its files
/// through `/proc/<pid>/root`. The holder process is killed by its PID on drop.
struct PrivateRoot {
    holder: Child,
    /// The overlay's mount point (its tmpfs lives only in the namespace); removed on drop.
    _dir: Tmp,
}

impl PrivateRoot {
    fn new() -> PrivateRoot {
        let dir = Tmp::new("root");
        let t = dir.0.display().to_string();
        let script = format!(
            "set -e; mount -t tmpfs ovl {t}; mkdir {t}/up {t}/work {t}/root; \
             mount -t overlay overlay -o lowerdir=/,upperdir={t}/up,workdir={t}/work {t}/root; \
             mkdir -p {t}/root/data; mount -t tmpfs data {t}/root/data; \
             for m in proc dev sys run/netns; do mount --rbind /$m {t}/root/$m; done; \
             cd {t}/root; echo ready; exec chroot {t}/root sleep 600"
        );
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let r = PrivateRoot { holder, _dir: dir };
        // sleep has been exec'd in the new root once /proc/<pid>/root is it
        let t0 = Instant::now();
        while !r.root_is_private() {
            assert!(t0.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn root_is_private(&self) -> bool {
        fs::read_link(format!("/proc/{}/exe", self.holder.id())).is_ok_and(|p| p.ends_with("sleep"))
    }

    /// A path inside the private root, seen from here.
    fn path(&self, p: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{p}", self.holder.id()))
    }

    /// `prog args` run inside (mount namespace and root of the holder).
    fn command(&self, prog: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m", "-r", "-w", "--"])
            .arg(prog);
        c
    }

    /// Our plugin inside, as the agent calls it on EC2 (IPAM_DB_PATH unset).
    fn ours(&self, ns: &TestNs, verb: &str, id: &str) -> Output {
        let mut c = self.command(&bin("ipam"));
        c.env_clear().env("PATH", netns_fixtures::DEFAULT_PATH);
        for (k, v) in cni_env(verb, "pause", &ns.path().display().to_string(), "ecs-eth0") {
            c.env(k, v);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(agent_conf(verb, id, &json!({})).to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn go(&self, args: &[&str]) -> Output {
        self.command(go_bin())
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for PrivateRoot {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[test]
fn default_path_is_amazons_data_eni_ipam_db() {
    let real_data = Path::new("/data").exists();
    let ns = TestNs::new("ecd");
    let root = PrivateRoot::new();
    // an earlier release of ours kept the leases in /var/lib/cni/networks/ecs-ipam/
    let old = root.path("/var/lib/cni/networks/ecs-ipam");
    fs::create_dir_all(&old).unwrap();
    fs::write(old.join("169.254.172.2"), "eni-old\r\necs-eth0").unwrap();
    fs::write(old.join("last_reserved_ip.0"), "169.254.172.2").unwrap();
    let out = root.ours(&ns, "ADD", "eni-new");
    assert!(out.status.success(), "{out:?}");
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(res["ips"][0]["address"], json!("169.254.172.3/22"));
    let db = root.path("/data/eni-ipam.db");
    assert!(db.is_file());
    // Amazon's plugin, IPAM_DB_PATH unset too, reads the same file
    let dump = root.go(&["dump"]);
    assert!(dump.status.success(), "{dump:?}");
    let dump: BTreeMap<String, String> = serde_json::from_slice(&dump.stdout).unwrap();
    assert_eq!(dump["169.254.172.2"], "eni-old");
    assert_eq!(dump["169.254.172.3"], "eni-new");
    assert!(root.go(&["check"]).status.success());
    // the old directory was imported once and kept aside
    assert!(!old.exists());
    assert!(
        root.path("/var/lib/cni/networks/ecs-ipam.imported/169.254.172.2")
            .is_file()
    );
    let out = root.ours(&ns, "DEL", "eni-old");
    assert!(out.status.success(), "{out:?}");
    let out = root.ours(&ns, "ADD", "eni-3");
    assert!(out.status.success(), "{out:?}");
    let dump: BTreeMap<String, String> =
        serde_json::from_slice(&root.go(&["dump"]).stdout).unwrap();
    assert!(!dump.contains_key("169.254.172.2"), "re-imported: {dump:?}");
    assert_eq!(
        Path::new("/data").exists(),
        real_data,
        "the real /data was touched"
    );
    // a missing parent directory is created 0750, as libkv does
    drop(root);
    let root = PrivateRoot::new();
    let mut c = root.command(&bin("ipam"));
    c.env_clear()
        .env("IPAM_DB_PATH", "/data/deep/er/eni-ipam.db")
        .envs(cni_env(
            "ADD",
            "p",
            &ns.path().display().to_string(),
            "ecs-eth0",
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(agent_conf("ADD", "x", &json!({})).to_string().as_bytes())
            .unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    let deep = root.path("/data/deep/er");
    assert_eq!(
        fs::metadata(&deep).unwrap().permissions().mode() & 0o777,
        0o750
    );
    assert!(deep.join("eni-ipam.db").is_file());
}

/// A child killed (by its PID) and reaped when the test ends, even on failure.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An earlier release's lease file: `<id>\r\n<ifname>`.
fn plant_old_store(dir: &Path, leases: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (ip, id) in leases {
        fs::write(dir.join(ip), format!("{id}\r\necs-eth0")).unwrap();
    }
    fs::write(dir.join("lock"), "").unwrap();
}

#[test]
fn an_earlier_releases_store_beside_the_file_is_imported_once() {
    let w = World::new("mig-d");
    // IPAM_DB_PATH named Amazon's file: the earlier release kept <path>.d/ecs-ipam/ beside it
    w.go_add("go-a"); // 169.254.172.2
    let old = PathBuf::from(format!("{}.d/ecs-ipam", w.db.display()));
    plant_old_store(
        &old,
        &[
            ("169.254.172.10", "eni-old"),
            ("169.254.172.2", "eni-conflict"),
            ("fd00:ec2::172:9", "eni-old"),
        ],
    );
    let out = w.ours("ADD", "eni-new", json!({}));
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.stderr.contains("import conflict: 169.254.172.2"),
        "{}",
        out.stderr
    );
    assert_eq!(
        w.leases(),
        map(&[
            ("169.254.172.10", "eni-old"),
            ("169.254.172.2", "go-a"), // the bolt holder wins a conflict
            ("169.254.172.3", "eni-new"),
            ("6fd00:ec2::172:9", "eni-old"),
        ])
    );
    assert!(!old.exists());
    let aside = PathBuf::from(format!("{}.d/ecs-ipam.imported", w.db.display()));
    assert!(
        aside.join("169.254.172.10").is_file(),
        "kept for inspection"
    );
    // imported once: a released lease does not come back
    assert_eq!(w.ours("DEL", "eni-old", json!({})).status, 0);
    assert_eq!(w.ours("DEL", "eni-old", json!({})).status, 0);
    assert!(!w.leases().contains_key("169.254.172.10"));
    w.check();
}

#[test]
fn an_earlier_releases_directory_at_the_path_becomes_the_file() {
    let w = World::new("mig-at");
    // the earlier release created a directory AT IPAM_DB_PATH when the file did not exist
    plant_old_store(
        &w.db.join("ecs-ipam"),
        &[("169.254.172.2", "eni-1"), ("169.254.172.3", "eni-2")],
    );
    fs::write(
        w.db.join("ecs-ipam").join("last_reserved_ip.0"),
        "169.254.172.3",
    )
    .unwrap();
    assert_eq!(w.ours_add("eni-3"), "169.254.172.4");
    assert!(w.db.is_file(), "the store file took the directory's place");
    let aside = PathBuf::from(format!("{}.imported", w.db.display()));
    assert!(aside.join("ecs-ipam/169.254.172.2").is_file());
    assert_eq!(
        w.leases(),
        map(&[
            ("169.254.172.2", "eni-1"),
            ("169.254.172.3", "eni-2"),
            ("169.254.172.4", "eni-3")
        ])
    );
    // rollback works: Amazon's plugin opens the file and goes on
    assert_eq!(w.go_add("go-1"), "169.254.172.5");
    w.check();
    // a directory at the path that is no store of ours is refused, untouched
    let v = World::new("mig-bad");
    fs::create_dir_all(&v.db).unwrap();
    fs::write(v.db.join("x"), "keep").unwrap();
    let out = v.ours("ADD", "e", json!({}));
    assert_eq!(out.json()["code"], json!(100), "{out:?}");
    assert!(
        out.json()["msg"]
            .as_str()
            .unwrap()
            .contains(v.db.to_str().unwrap())
    );
    assert_eq!(fs::read_to_string(v.db.join("x")).unwrap(), "keep");
}

#[test]
fn a_lock_held_beyond_the_bound_is_try_again_and_the_file_is_untouched() {
    let w = World::new("lock");
    w.go_add("go-a");
    let mut hold = KillOnDrop(
        Command::new(go_bin())
            .args(["hold-lock", "-seconds", "8"])
            .env_clear()
            .env("IPAM_DB_PATH", &w.db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(hold.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let before = fs::read(&w.db).unwrap();
    for (env, conf_extra) in [
        (vec![("IPAM_DB_CONNECTION_TIMEOUT", "400ms")], json!({})),
        (vec![], json!({"lockTimeoutMs": 300})),
    ] {
        for verb in ["ADD", "DEL"] {
            let t0 = Instant::now();
            let mut e = w.env(verb, &env);
            if env.is_empty() {
                e.retain(|(k, _)| k != "IPAM_DB_CONNECTION_TIMEOUT");
            }
            let out = call(
                &bin("ipam"),
                None,
                &e,
                &agent_conf(verb, "eni-b", &conf_extra),
            );
            let waited = t0.elapsed();
            assert_eq!(out.json()["code"], json!(11), "{verb}: {out:?}");
            assert!(
                out.json()["msg"]
                    .as_str()
                    .unwrap()
                    .contains(w.db.to_str().unwrap())
            );
            assert!(
                waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
                "{verb}: {waited:?}"
            );
        }
    }
    assert_eq!(fs::read(&w.db).unwrap(), before);
    drop(hold);
    assert_eq!(w.ours_add("eni-b"), "169.254.172.3");
}

/// `IPAM_DB_CONNECTION_TIMEOUT` is read as Amazon's plugin reads it, with Go's
/// `time.ParseDuration`: compound and fractional forms bound the wait (`1m30s` was once
/// refused with code 7).
#[test]
fn the_connection_timeout_takes_any_go_duration() {
    let w = World::new("godur");
    w.go_add("go-a");
    let mut hold = KillOnDrop(
        Command::new(go_bin())
            .args(["hold-lock", "-seconds", "8"])
            .env_clear()
            .env("IPAM_DB_PATH", &w.db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(hold.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    for bound in ["0h0m0.4s", "400000us", "0.0001h"] {
        let t0 = Instant::now();
        let e = w.env("ADD", &[("IPAM_DB_CONNECTION_TIMEOUT", bound)]);
        let out = call(
            &bin("ipam"),
            None,
            &e,
            &agent_conf("ADD", "eni-b", &json!({})),
        );
        let waited = t0.elapsed();
        assert_eq!(out.json()["code"], json!(11), "{bound}: {out:?}");
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
            "{bound}: {waited:?}"
        );
    }
    drop(hold);
    let e = w.env("ADD", &[("IPAM_DB_CONNECTION_TIMEOUT", "1m30s")]);
    let out = call(
        &bin("ipam"),
        None,
        &e,
        &agent_conf("ADD", "eni-b", &json!({})),
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(addr(&out.json()["ips"][0]["address"]), "169.254.172.3");
}

#[test]
fn bad_files_are_code_100_naming_the_file_and_stay_untouched() {
    let w = World::new("bad");
    w.go_add("go-a");
    let good = fs::read(&w.db).unwrap();
    let ps = 4096;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated to 3 pages", good[..3 * ps].to_vec()),
        ("truncated to 100 bytes", good[..100].to_vec()),
        (
            "garbage",
            (0..5 * ps).map(|i| (i * 7 % 251) as u8).collect(),
        ),
        ("a text file", b"169.254.172.2 eni-a\n".repeat(300)),
    ];
    let mut magic = good.clone();
    magic[16] ^= 0xff;
    magic[ps + 16] ^= 0xff;
    cases.push(("wrong magic", magic));
    let mut version = good.clone();
    version[20] = 1;
    version[ps + 20] = 1;
    cases.push(("format version 1", version));
    // IPAM as a plain key: the root leaf's element flags cleared
    let root = {
        let t0 = u64::from_le_bytes(good[64..72].try_into().unwrap());
        let t1 = u64::from_le_bytes(good[ps + 64..ps + 72].try_into().unwrap());
        let m = if t1 > t0 { ps } else { 0 };
        u64::from_le_bytes(good[m + 32..m + 40].try_into().unwrap()) as usize
    };
    let mut plain = good.clone();
    assert_eq!(plain[root * ps + 16], 1, "IPAM is a bucket");
    plain[root * ps + 16] = 0;
    cases.push(("IPAM a plain key", plain));
    // IPAM holding a sub-bucket, made by bbolt itself
    let nested = World::new("bad-nested");
    nested.go_add("go-a");
    nested.go_ok(&["nest"]);
    cases.push(("IPAM holding a sub-bucket", fs::read(&nested.db).unwrap()));
    for (what, bytes) in &cases {
        fs::write(&w.db, bytes).unwrap();
        for verb in ["ADD", "DEL"] {
            let out = w.ours(verb, "eni-b", json!({}));
            assert_eq!(out.json()["code"], json!(100), "{what} {verb}: {out:?}");
            let msg = out.json()["msg"].as_str().unwrap().to_string();
            assert!(msg.contains(w.db.to_str().unwrap()), "{what}: {msg}");
            assert!(msg.contains("not a valid BoltDB store"), "{what}: {msg}");
            assert_eq!(
                &fs::read(&w.db).unwrap(),
                bytes,
                "{what} {verb}: the file changed"
            );
        }
    }
    // a zero-length file is laid out as bolt lays out a new one, then used
    fs::write(&w.db, b"").unwrap();
    assert_eq!(w.ours_add("eni-b"), "169.254.172.2");
    w.check();
}

#[test]
fn fifty_concurrent_adds_of_ours_share_the_lock() {
    let w = World::new("ours50");
    let got: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let w = &w;
                s.spawn(move || w.ours_add(&format!("t{i}")))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut uniq = got.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 50, "an address was handed out twice: {got:?}");
    assert_eq!(w.leases().len(), 50);
    w.check();
}
