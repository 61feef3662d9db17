//! One host-local `dataDir` shared with Debian's Go `host-local` (and with an earlier release
//! of ours): every lease on disk counts, whoever wrote it and whenever. Our CHECK finds a lease
//! Go wrote after our last operation, our repeated ADD returns it, our DEL releases it, our GC
//! keeps exactly the valid set; a rollback to an earlier release and back loses nothing.
//!
//! The "earlier release" is `$CNI_SUITE_OLD_BIN_DIR/ipam` when that variable is set (e.g. the
//! debug build of the previous release), else a simulation of exactly what that release does
//! to the store: on finding our index it rebuilds its own (`.owners/.complete` v2, the names
//! log removed), then writes leases through a temp file and v2 bucket lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use test_support::*;

/// Debian's Go host-local (package containernetworking-plugins, installed by run-all.sh).
const GO: &str = "/usr/lib/cni/host-local";

/// The spec versions both plugins support (Go host-local 1.1.1 stops at 1.0.0).
const SHARED_VERSIONS: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

fn go() -> PathBuf {
    let p = PathBuf::from(GO);
    assert!(
        p.is_file(),
        "{GO} is missing: apt-get install containernetworking-plugins"
    );
    p
}

/// A per-test data directory, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new(tag: &str) -> DataDir {
        let d = std::env::temp_dir().join(format!(
            "ipam-foreign-{tag}-{}-{}",
            std::process::id(),
            netns_fixtures::unique_suffix()
        ));
        fs::create_dir_all(&d).unwrap();
        DataDir(d)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
    /// The network directory of the configs below.
    fn net(&self) -> PathBuf {
        self.0.join("shared")
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn conf(v: &str, data: &DataDir) -> Value {
    json!({"cniVersion": v, "name": "shared", "type": "bridge", "ipam": {
        "type": "host-local", "dataDir": data.path(),
        "ranges": [[{"subnet": "10.88.0.0/16"}], [{"subnet": "fd88::/64"}]]}})
}

fn run(bin: &Path, ns: &TestNs, verb: &str, cid: &str, conf: &Value) -> PluginOutput {
    call(
        bin,
        None,
        &cni_env(verb, cid, &ns.path().display().to_string(), "eth0"),
        conf,
    )
}

fn ours(ns: &TestNs, verb: &str, cid: &str, conf: &Value) -> PluginOutput {
    run(&bin("ipam"), ns, verb, cid, conf)
}

fn ok(out: &PluginOutput, what: &str) -> Value {
    assert_eq!(out.status, 0, "{what}: {out:?}");
    if out.stdout.trim().is_empty() {
        Value::Null
    } else {
        out.json()
    }
}

/// Lease files per container id: `{id: {address, ...}}`, read from disk.
fn leases(net: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in fs::read_dir(net).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<std::net::IpAddr>().is_err() {
            continue;
        }
        let content = fs::read_to_string(e.path()).unwrap();
        let id = content.split("\r\n").next().unwrap().trim().to_string();
        out.entry(id).or_default().insert(name);
    }
    out
}

/// The addresses (without prefix) of a result's `ips`.
fn addrs(result: &Value) -> BTreeSet<String> {
    result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let a = i["address"].as_str().unwrap();
            a.split('/').next().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_lease_go_wrote_after_our_last_operation_is_found_returned_and_released() {
    let ns = TestNs::new("ipf");
    for v in SHARED_VERSIONS {
        let data = DataDir::new("go-add");
        let c = conf(v, &data);
        let mine = ok(&ours(&ns, "ADD", "c1", &c), "our ADD c1");
        let theirs = ok(&run(&go(), &ns, "ADD", "xgo", &c), "Go ADD xgo");
        let net = data.net();
        assert_eq!(leases(&net)["xgo"], addrs(&theirs), "{v}");
        if allows_check(v) {
            let check = ours(&ns, "CHECK", "xgo", &with_prev_result(&c, &theirs));
            assert_eq!(
                (check.status, check.stdout.as_str()),
                (0, ""),
                "{v}: our CHECK of Go's lease: {check:?}"
            );
        }
        // the repeated ADD returns Go's lease: same JSON, no second address
        let again = ok(&ours(&ns, "ADD", "xgo", &c), "our ADD xgo");
        assert_eq!(again["ips"], theirs["ips"], "{v}");
        assert_eq!(leases(&net)["xgo"], addrs(&theirs), "{v}: a second address");
        // our DEL releases it, and only it
        ok(&ours(&ns, "DEL", "xgo", &c), "our DEL xgo");
        let left = leases(&net);
        assert!(!left.contains_key("xgo"), "{v}: Go's lease left: {left:?}");
        assert_eq!(left["c1"], addrs(&mine), "{v}");
        // and Go sees ours as ours (its own check: no duplicate allocation for c1)
        let dup = run(&go(), &ns, "ADD", "c1", &c);
        assert_eq!(dup.status, 1, "{v}: {dup:?}");
        assert!(dup.stdout.contains("duplicate allocation"), "{v}: {dup:?}");
    }
}

#[test]
fn go_releases_our_lease_and_hands_the_address_to_another_container() {
    let ns = TestNs::new("ipg");
    let data = DataDir::new("go-del");
    let c = conf("1.0.0", &data);
    let net = data.net();
    let first = ok(&ours(&ns, "ADD", "c2", &c), "our ADD c2");
    ok(&run(&go(), &ns, "DEL", "c2", &c), "Go DEL c2");
    assert!(leases(&net).is_empty());
    // a static-IP restart: Go gives c2's addresses to c3
    let mut with_ips = c.clone();
    with_ips["runtimeConfig"] = json!({"ips": addrs(&first)});
    let c3 = ok(
        &run(&go(), &ns, "ADD", "c3", &with_ips),
        "Go ADD c3 with c2's addresses",
    );
    assert_eq!(addrs(&c3), addrs(&first));
    // no stale ownership: c2 holds nothing, c3 holds what Go gave it
    let check = ours(&ns, "CHECK", "c2", &with_prev_result(&c, &first));
    assert_eq!(check.status, 1, "{check:?}");
    assert_eq!(check.json()["code"], json!(100), "{check:?}");
    assert!(
        check.json()["msg"]
            .as_str()
            .unwrap()
            .contains("no lease for container c2"),
        "{check:?}"
    );
    let check = ours(&ns, "CHECK", "c3", &with_prev_result(&c, &c3));
    assert_eq!((check.status, check.stdout.as_str()), (0, ""), "{check:?}");
    // c2's ADD gets fresh addresses, c3's repeated ADD its own
    let fresh = ok(&ours(&ns, "ADD", "c2", &c), "our ADD c2 again");
    assert!(addrs(&fresh).is_disjoint(&addrs(&first)), "{fresh}");
    assert_eq!(
        ok(&ours(&ns, "ADD", "c3", &c), "our ADD c3")["ips"],
        c3["ips"]
    );
    let l = leases(&net);
    assert_eq!(l["c2"], addrs(&fresh));
    assert_eq!(l["c3"], addrs(&c3));
    ok(&ours(&ns, "DEL", "c3", &c), "our DEL c3");
    assert!(!leases(&net).contains_key("c3"));
}

#[test]
fn interleaved_go_and_our_operations_then_our_gc_keeps_the_exact_set() {
    let ns = TestNs::new("ipi");
    let data = DataDir::new("mixed");
    let c = conf("1.0.0", &data);
    let net = data.net();
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    // the model: container -> its addresses
    let mut model: BTreeMap<String, Value> = BTreeMap::new();
    for step in 0..80 {
        let cid = format!("k{}", rng.below(12));
        let what = format!("step {step} on {cid}");
        let held = model.get(&cid).cloned();
        match (held, rng.below(5)) {
            (None, 0 | 1) => {
                let r = ok(
                    &run(&go(), &ns, "ADD", &cid, &c),
                    &format!("{what}: Go ADD"),
                );
                model.insert(cid, r);
            }
            (None, _) => {
                let r = ok(&ours(&ns, "ADD", &cid, &c), &format!("{what}: our ADD"));
                model.insert(cid, r);
            }
            (Some(_), 0) => {
                ok(
                    &run(&go(), &ns, "DEL", &cid, &c),
                    &format!("{what}: Go DEL"),
                );
                model.remove(&cid);
            }
            (Some(_), 1) => {
                ok(&ours(&ns, "DEL", &cid, &c), &format!("{what}: our DEL"));
                model.remove(&cid);
            }
            (Some(r), 2) => {
                let again = ok(&ours(&ns, "ADD", &cid, &c), &format!("{what}: our ADD"));
                assert_eq!(again["ips"], r["ips"], "{what}: repeated ADD");
            }
            (Some(r), _) => {
                let check = ours(&ns, "CHECK", &cid, &with_prev_result(&c, &r));
                assert_eq!((check.status, check.stdout.as_str()), (0, ""), "{what}");
            }
        }
        let want: BTreeMap<String, BTreeSet<String>> =
            model.iter().map(|(k, r)| (k.clone(), addrs(r))).collect();
        assert_eq!(leases(&net), want, "{what}");
    }
    // GC (1.1.0, ours only) with every other live container valid
    let valid: Vec<String> = model.keys().step_by(2).cloned().collect();
    let mut gc = conf("1.1.0", &data);
    gc["cni.dev/valid-attachments"] = valid
        .iter()
        .map(|k| json!({"containerID": k, "ifname": "eth0"}))
        .collect();
    let out = ours(&ns, "GC", "", &gc);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    let want: BTreeMap<String, BTreeSet<String>> = valid
        .iter()
        .map(|k| (k.clone(), addrs(&model[k])))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(leases(&net), want);
    // and the index agrees with the disk afterwards: every kept container is found
    for (k, r) in valid.iter().map(|k| (k, &model[k])) {
        let check = ours(&ns, "CHECK", k, &with_prev_result(&c, r));
        assert_eq!((check.status, check.stdout.as_str()), (0, ""), "{k}");
    }
}

/// The earlier release of ours, or its simulation (see the module docs).
enum Older {
    Binary(PathBuf),
    Simulated,
}

impl Older {
    fn pick() -> Older {
        match std::env::var_os("CNI_SUITE_OLD_BIN_DIR") {
            Some(d) => {
                let p = PathBuf::from(d).join("ipam");
                assert!(p.is_file(), "CNI_SUITE_OLD_BIN_DIR has no ipam: {p:?}");
                Older::Binary(p)
            }
            None => Older::Simulated,
        }
    }

    /// ADD of `cid`, which gets `v4`/`v6` (the next addresses round-robin).
    fn add(&self, ns: &TestNs, c: &Value, net: &Path, cid: &str, v4: &str, v6: &str) {
        match self {
            Older::Binary(b) => {
                let r = ok(&run(b, ns, "ADD", cid, c), "the earlier release's ADD");
                assert_eq!(addrs(&r), BTreeSet::from([v4.to_string(), v6.to_string()]));
            }
            Older::Simulated => {
                let owners = net.join(".owners");
                let v2 = "ipam-store owner index v2, 256 buckets\n";
                if fs::read_to_string(owners.join(".complete")).ok().as_deref() != Some(v2) {
                    // its rebuild: every file it does not know goes, then its own index
                    fs::remove_file(owners.join(".complete")).unwrap();
                    for e in fs::read_dir(&owners).unwrap().flatten() {
                        fs::remove_file(e.path()).unwrap();
                    }
                    for (id, ips) in leases(net) {
                        let b = ipam_store::__fuzz::bucket_name(&id);
                        let lines: String =
                            ips.iter().map(|ip| format!("+ {ip} {id} eth0\n")).collect();
                        append(&owners.join(b), &lines);
                    }
                    fs::write(owners.join(".complete"), v2).unwrap();
                }
                let b = ipam_store::__fuzz::bucket_name(cid);
                append(
                    &owners.join(b),
                    &format!("\n+ {v4} {cid} eth0\n\n+ {v6} {cid} eth0\n"),
                );
                let tmp = net.join(".tmp-4242-0");
                fs::write(&tmp, format!("{cid}\r\neth0")).unwrap();
                for ip in [v4, v6] {
                    fs::hard_link(&tmp, net.join(ip)).unwrap();
                }
                fs::write(net.join("last_reserved_ip.0"), v4).unwrap();
                fs::write(net.join("last_reserved_ip.1"), v6).unwrap();
                fs::remove_file(&tmp).unwrap();
            }
        }
    }

    /// DEL of `cid` (which holds `ips`).
    fn del(&self, ns: &TestNs, c: &Value, net: &Path, cid: &str, ips: &BTreeSet<String>) {
        match self {
            Older::Binary(b) => {
                ok(&run(b, ns, "DEL", cid, c), "the earlier release's DEL");
            }
            Older::Simulated => {
                let mut lines = String::from("\n");
                for ip in ips {
                    fs::remove_file(net.join(ip)).unwrap();
                    lines.push_str(&format!("- {ip} {cid} eth0\n"));
                }
                let b = ipam_store::__fuzz::bucket_name(cid);
                append(&net.join(".owners").join(b), &lines);
            }
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

#[test]
fn rollback_to_the_earlier_release_and_roll_forward_lose_nothing() {
    let ns = TestNs::new("ipr");
    let data = DataDir::new("rollback");
    let c = conf("1.0.0", &data);
    let net = data.net();
    let older = Older::pick();
    let marker = || fs::read_to_string(net.join(".owners/.complete")).unwrap();
    let a = ok(&ours(&ns, "ADD", "a", &c), "our ADD a");
    // rollback: the earlier release and Go host-local share the directory
    older.add(&ns, &c, &net, "b", "10.88.0.3", "fd88::3");
    let go_c = ok(&run(&go(), &ns, "ADD", "c", &c), "Go ADD c");
    assert_eq!(
        addrs(&go_c),
        BTreeSet::from(["10.88.0.4".to_string(), "fd88::4".to_string()])
    );
    older.del(&ns, &c, &net, "a", &addrs(&a));
    let rolled_back = marker();
    // roll forward: every lease written meanwhile counts
    let b = json!({"cniVersion": "1.0.0", "ips": [
        {"address": "10.88.0.3/16", "gateway": "10.88.0.1"},
        {"address": "fd88::3/64", "gateway": "fd88::1"}], "dns": {}});
    for (cid, prev) in [("b", &b), ("c", &go_c)] {
        let check = ours(&ns, "CHECK", cid, &with_prev_result(&c, prev));
        assert_eq!(
            (check.status, check.stdout.as_str()),
            (0, ""),
            "{cid}: {check:?}"
        );
        assert_eq!(
            ok(&ours(&ns, "ADD", cid, &c), cid)["ips"],
            prev["ips"],
            "{cid}"
        );
    }
    // the earlier release had rebuilt its own index, ours is back
    assert_eq!(rolled_back, "ipam-store owner index v2, 256 buckets\n");
    assert_eq!(marker(), "ipam-store owner index v3, 256 buckets\n");
    let check = ours(&ns, "CHECK", "a", &with_prev_result(&c, &a));
    assert_eq!(
        check.json()["code"],
        json!(100),
        "a was released: {check:?}"
    );
    // and later foreign writes too
    let go_d = ok(&run(&go(), &ns, "ADD", "d", &c), "Go ADD d");
    assert_eq!(leases(&net)["d"], addrs(&go_d));
    for cid in ["b", "c", "d"] {
        ok(&ours(&ns, "DEL", cid, &c), cid);
    }
    assert!(leases(&net).is_empty(), "{:?}", leases(&net));
}

#[test]
fn a_foreign_create_right_after_our_operation_is_seen() {
    // The kernel stamps a directory's mtime from a coarse clock: a create in the same tick
    // as our last change could leave it unchanged. Here the foreign create follows our
    // process's exit by well under a tick, fifty times.
    let ns = TestNs::new("ipt");
    let data = DataDir::new("tick");
    let c = conf("1.0.0", &data);
    let net = data.net();
    for i in 0..50 {
        ok(&ours(&ns, "ADD", &format!("o{i}"), &c), "our ADD");
        let name = format!("10.88.200.{}", i + 1);
        fs::write(net.join(&name), format!("f{i}\r\neth0")).unwrap();
        ok(&ours(&ns, "DEL", &format!("f{i}"), &c), "our DEL");
        assert!(!net.join(&name).exists(), "round {i}: {name} not released");
    }
}
