//! Black-box tests of the `ipam` binary: host-local's and ecs-ipam's dialects, the on-disk
//! layout, every verb in every version, concurrency and the bounded lock.

mod concurrency;
mod ecs_store;
mod foreign;
mod kill9;
mod lock;
mod reference;
mod store_faults;
mod store_security;

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use test_support::*;

/// A per-test data directory, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new(tag: &str) -> DataDir {
        let d = std::env::temp_dir().join(format!(
            "ipam-test-{tag}-{}-{}",
            std::process::id(),
            netns_fixtures::unique_suffix()
        ));
        fs::create_dir_all(&d).unwrap();
        DataDir(d)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
    fn net(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn host_local(v: &str, data: &DataDir, extra: Value) -> Value {
    let mut ipam = json!({
        "type": "ipam",
        "ranges": [[{"subnet": "10.77.0.0/24"}], [{"subnet": "fd77::/64"}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.0.2.0/24", "gw": "10.77.0.254"}],
        "dataDir": data.path(),
    });
    for (k, val) in extra.as_object().unwrap() {
        ipam[k] = val.clone();
    }
    json!({"cniVersion": v, "name": "hlnet", "type": "bridge", "ipam": ipam})
}

fn run(ns: &TestNs, verb: &str, cid: &str, ifname: &str, conf: &Value) -> PluginOutput {
    call(
        &bin("ipam"),
        None,
        &cni_env(verb, cid, &ns.path().display().to_string(), ifname),
        conf,
    )
}

fn lease(dir: &Path, ip: &str) -> Option<String> {
    fs::read_to_string(dir.join(ip)).ok()
}

#[test]
fn host_local_dual_stack_in_every_version() {
    let ns = TestNs::new("ipv");
    for v in VERSIONS {
        let data = DataDir::new("dual");
        let conf = host_local(v, &data, json!({}));
        let add = run(&ns, "ADD", "ctr-a", "eth0", &conf);
        assert_eq!(add.status, 0, "{v}: {add:?}");
        let ip = |addr: &str, gw: &str, fam: &str| {
            if has_ip_version(v) {
                json!({"version": fam, "address": addr, "gateway": gw})
            } else {
                json!({"address": addr, "gateway": gw})
            }
        };
        let mut want = json!({
            "cniVersion": v,
            "ips": [ip("10.77.0.2/24", "10.77.0.1", "4"), ip("fd77::2/64", "fd77::1", "6")],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.0.2.0/24", "gw": "10.77.0.254"}],
        });
        if v != "1.1.0" {
            want["dns"] = json!({});
        }
        assert_eq!(add.json(), want, "{v}");
        let dir = data.net("hlnet");
        assert_eq!(lease(&dir, "10.77.0.2").as_deref(), Some("ctr-a\r\neth0"));
        assert_eq!(lease(&dir, "fd77::2").as_deref(), Some("ctr-a\r\neth0"));
        assert_eq!(
            lease(&dir, "last_reserved_ip.0").as_deref(),
            Some("10.77.0.2")
        );
        assert_eq!(
            lease(&dir, "last_reserved_ip.1").as_deref(),
            Some("fd77::2")
        );

        // retry-safe: the same owner gets the same lease back
        let again = run(&ns, "ADD", "ctr-a", "eth0", &conf);
        assert_eq!(again.json(), want, "{v}: repeated ADD");
        // another owner gets the next addresses
        let other = run(&ns, "ADD", "ctr-b", "eth0", &conf);
        assert_eq!(other.json()["ips"][0]["address"], json!("10.77.0.3/24"));
        assert_eq!(other.json()["ips"][1]["address"], json!("fd77::3/64"));

        if allows_check(v) {
            let check = run(
                &ns,
                "CHECK",
                "ctr-a",
                "eth0",
                &with_prev_result(&conf, &add.json()),
            );
            assert_eq!(
                (check.status, check.stdout.as_str()),
                (0, ""),
                "{v}: {check:?}"
            );
            let wrong = run(
                &ns,
                "CHECK",
                "ctr-b",
                "eth0",
                &with_prev_result(&conf, &add.json()),
            );
            assert_eq!(wrong.status, 1, "{v}: CHECK with someone else's prevResult");
            assert!(wrong.json()["msg"].as_str().unwrap().contains("10.77.0.2"));
        } else {
            let check = run(
                &ns,
                "CHECK",
                "ctr-a",
                "eth0",
                &with_prev_result(&conf, &add.json()),
            );
            assert_eq!(check.status, 1, "{v}: CHECK must be refused: {check:?}");
            assert_eq!(check.json()["code"], json!(1), "{v}: {check:?}");
        }
        if allows_gc_status(v) {
            let st = run(&ns, "STATUS", "", "", &conf);
            assert_eq!((st.status, st.stdout.as_str()), (0, ""));
            // GC naming both attachments as valid releases nothing
            let mut gc = conf.clone();
            gc["cni.dev/valid-attachments"] = json!([
                {"containerID": "ctr-a", "ifname": "eth0"},
                {"containerID": "ctr-b", "ifname": "eth0"}
            ]);
            let out = run(&ns, "GC", "", "", &gc);
            assert_eq!(
                (out.status, out.stdout.as_str()),
                (0, ""),
                "{v} GC: {out:?}"
            );
            assert_eq!(lease(&dir, "10.77.0.2").as_deref(), Some("ctr-a\r\neth0"));
            assert_eq!(lease(&dir, "fd77::2").as_deref(), Some("ctr-a\r\neth0"));
        } else {
            for verb in ["STATUS", "GC"] {
                let out = run(&ns, verb, "", "", &conf);
                assert_eq!(out.status, 1, "{v} {verb} must be refused: {out:?}");
                assert_eq!(out.json()["code"], json!(1), "{v} {verb}: {out:?}");
            }
        }
        for round in 0..2 {
            let del = run(&ns, "DEL", "ctr-a", "eth0", &conf);
            assert_eq!(
                (del.status, del.stdout.as_str()),
                (0, ""),
                "{v} DEL #{round}"
            );
        }
        assert_eq!(lease(&dir, "10.77.0.2"), None);
        assert_eq!(lease(&dir, "fd77::2"), None);
        assert!(
            lease(&dir, "10.77.0.3").is_some(),
            "other owner's lease kept"
        );
        // round-robin: the freed .2 is not reused before the range wraps
        let next = run(&ns, "ADD", "ctr-c", "eth0", &conf);
        assert_eq!(next.json()["ips"][0]["address"], json!("10.77.0.4/24"));
    }
}

#[test]
fn requested_addresses_from_every_source() {
    let ns = TestNs::new("ipr");
    let data = DataDir::new("req");
    let base = host_local("1.0.0", &data, json!({}));
    // CNI_ARGS IP=
    let mut env = cni_env("ADD", "ctr-1", &ns.path().display().to_string(), "eth0");
    env.push((
        "CNI_ARGS".into(),
        "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.77.0.50".into(),
    ));
    let out = call(&bin("ipam"), None, &env, &base);
    assert_eq!(
        out.json()["ips"][0]["address"],
        json!("10.77.0.50/24"),
        "{out:?}"
    );
    // args.cni.ips
    let mut conf = base.clone();
    conf["args"] = json!({"cni": {"ips": ["10.77.0.60", "fd77::60"]}});
    let out = run(&ns, "ADD", "ctr-2", "eth0", &conf);
    assert_eq!(out.json()["ips"][0]["address"], json!("10.77.0.60/24"));
    assert_eq!(out.json()["ips"][1]["address"], json!("fd77::60/64"));
    // runtimeConfig.ips
    let mut conf = base.clone();
    conf["runtimeConfig"] = json!({"ips": ["10.77.0.70/24"]});
    let out = run(&ns, "ADD", "ctr-3", "eth0", &conf);
    assert_eq!(out.json()["ips"][0]["address"], json!("10.77.0.70/24"));
    // a taken address is refused, naming it and its holder
    let mut conf = base.clone();
    conf["runtimeConfig"] = json!({"ips": ["10.77.0.70"]});
    let out = run(&ns, "ADD", "ctr-4", "eth0", &conf);
    assert_eq!(out.status, 1);
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    assert!(msg.contains("10.77.0.70") && msg.contains("ctr-3"), "{msg}");
    // outside every range
    conf["runtimeConfig"] = json!({"ips": ["10.99.0.1"]});
    let out = run(&ns, "ADD", "ctr-4", "eth0", &conf);
    assert!(
        out.json()["msg"].as_str().unwrap().contains("10.99.0.1"),
        "{out:?}"
    );
    // nothing was leased to ctr-4 by the failed calls
    let leased: Vec<String> = fs::read_dir(data.net("hlnet"))
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.unwrap().path()).ok())
        .filter(|c| c.starts_with("ctr-4"))
        .collect();
    assert!(leased.is_empty(), "{leased:?}");
    // unknown CNI_ARGS keys without IgnoreUnknown are refused
    let mut env = cni_env("ADD", "ctr-5", &ns.path().display().to_string(), "eth0");
    env.push(("CNI_ARGS".into(), "FOO=bar".into()));
    let out = call(&bin("ipam"), None, &env, &base);
    assert_eq!(out.json()["code"], json!(4));
}

/// Configs written by Go programs (cni_spec::gojson): `Ranges`, `DataDir`, `RangeStart` in
/// other cases, the last of two spellings winning, and `null` for "not set" (`routes`,
/// `gateway`, `resolvConf`, `args`, `runtimeConfig`).
#[test]
fn host_local_keys_in_go_spellings_and_nulls_in_every_version() {
    let ns = TestNs::new("ipg");
    for v in VERSIONS {
        let data = DataDir::new("go");
        let conf = json!({"cniVersion": v, "name": "gonet", "type": "bridge",
            "args": null, "runtimeConfig": {"ips": null, "ipRanges": null},
            "ipam": {"TYPE": "ipam",
                "Ranges": [[{"Subnet": "10.83.0.0/24", "RANGESTART": "10.83.0.10", "gateway": null}],
                           [{"SUBNET": "fd83::/64", "RangeEnd": null}]],
                "dataDir": "/nonexistent/used-only-if-the-later-spelling-were-ignored",
                "DataDir": data.path(),
                "routes": null, "resolvConf": null}});
        let add = run(&ns, "ADD", "ctr-go", "eth0", &conf);
        assert_eq!(add.status, 0, "{v}: {add:?}");
        let ip = |addr: &str, gw: &str, fam: &str| {
            if has_ip_version(v) {
                json!({"version": fam, "address": addr, "gateway": gw})
            } else {
                json!({"address": addr, "gateway": gw})
            }
        };
        let mut want = json!({"cniVersion": v,
            "ips": [ip("10.83.0.10/24", "10.83.0.1", "4"), ip("fd83::2/64", "fd83::1", "6")]});
        if v != "1.1.0" {
            want["dns"] = json!({});
        }
        assert_eq!(add.json(), want, "{v}");
        // the lease files land in the DataDir given last
        let dir = data.net("gonet");
        assert_eq!(lease(&dir, "10.83.0.10").as_deref(), Some("ctr-go\r\neth0"));
        assert_eq!(lease(&dir, "fd83::2").as_deref(), Some("ctr-go\r\neth0"));
        if allows_check(v) {
            let check = run(
                &ns,
                "CHECK",
                "ctr-go",
                "eth0",
                &with_prev_result(&conf, &add.json()),
            );
            assert_eq!(
                (check.status, check.stdout.as_str()),
                (0, ""),
                "{v}: {check:?}"
            );
        }
        let del = run(&ns, "DEL", "ctr-go", "eth0", &conf);
        assert_eq!((del.status, del.stdout.as_str()), (0, ""), "{v}: {del:?}");
        assert_eq!(lease(&dir, "10.83.0.10"), None, "{v}");
        assert_eq!(lease(&dir, "fd83::2"), None, "{v}");
    }
    // a wrong type names the key as the user wrote it
    let data = DataDir::new("gobad");
    let conf = json!({"cniVersion": "1.0.0", "name": "gonet", "type": "bridge",
        "ipam": {"type": "ipam", "DataDir": data.path(), "Ranges": [[{"Subnet": 10}]]}});
    let out = run(&ns, "ADD", "ctr-go", "eth0", &conf);
    assert_eq!(out.json()["code"], json!(7), "{out:?}");
    assert_eq!(
        out.json()["msg"],
        json!(
            "invalid network config: key \"ipam.Ranges[0][0].Subnet\": invalid type: integer `10`, expected a string"
        )
    );
}

/// ecs-ipam's keys in Go spellings (`IPV4-SUBNET`, `IPv4-Routes`, `ID`), nulls for the
/// optional ones: the ecs dialect is recognised and served, in every version.
#[test]
fn ecs_keys_in_go_spellings_in_every_version() {
    let ns = TestNs::new("ipeg");
    for v in VERSIONS {
        let data = DataDir::new("ecsgo");
        let db = data.0.join("eni-ipam.db").display().to_string();
        let env_with = |verb: &str, cid: &str| {
            let mut e = cni_env(verb, cid, &ns.path().display().to_string(), "ecs-eth0");
            e.push(("IPAM_DB_PATH".into(), db.clone()));
            e
        };
        let conf = |id: &str| {
            json!({"cniVersion": v, "name": "network-name", "type": "ecs-bridge",
                "ipam": {"Type": "ecs-ipam", "ID": id, "IPV4-SUBNET": "169.254.172.0/22",
                    "IPv4-Routes": [{"DST": "169.254.170.2/32", "gw": null}],
                    "ipv4-address": null, "ipv4-gateway": null, "ipv6-subnet": null}})
        };
        let a = call(
            &bin("ipam"),
            None,
            &env_with("ADD", "pause-a"),
            &conf("0a:1b:2c:3d:4e:01"),
        );
        assert_eq!(a.status, 0, "{v}: {a:?}");
        let a = a.json();
        let addr_a = a["ips"][0]["address"].as_str().unwrap().to_string();
        assert!(
            addr_a.starts_with("169.254.17") && addr_a.ends_with("/22"),
            "{v}: {a}"
        );
        let mut ip = json!({"address": addr_a, "gateway": "169.254.172.1"});
        if has_ip_version(v) {
            ip["version"] = json!("4");
        }
        let mut want = json!({"cniVersion": v, "ips": [ip],
            "routes": [{"dst": "169.254.170.2/32"}]});
        if v != "1.1.0" {
            want["dns"] = json!({});
        }
        assert_eq!(a, want, "{v}");
        // the lease is recorded: the same id gets it again, another id gets another address
        let again = call(
            &bin("ipam"),
            None,
            &env_with("ADD", "pause-a"),
            &conf("0a:1b:2c:3d:4e:01"),
        );
        assert_eq!(again.json()["ips"][0]["address"], json!(addr_a), "{v}");
        let b = call(
            &bin("ipam"),
            None,
            &env_with("ADD", "pause-b"),
            &conf("0a:1b:2c:3d:4e:02"),
        );
        let addr_b = b.json()["ips"][0]["address"].as_str().unwrap().to_string();
        assert_ne!(addr_a, addr_b, "{v}: one address handed out twice");
        for (cid, id) in [
            ("pause-a", "0a:1b:2c:3d:4e:01"),
            ("pause-b", "0a:1b:2c:3d:4e:02"),
        ] {
            let del = call(&bin("ipam"), None, &env_with("DEL", cid), &conf(id));
            assert_eq!((del.status, del.stdout.as_str()), (0, ""), "{v}: {del:?}");
        }
        // released: a third id may ask for the first address by IPV4-ADDRESS
        let mut c = conf("0a:1b:2c:3d:4e:03");
        c["ipam"]["IPV4-ADDRESS"] = json!(addr_a);
        let out = call(&bin("ipam"), None, &env_with("ADD", "pause-c"), &c);
        assert_eq!(
            out.json()["ips"][0]["address"],
            json!(addr_a),
            "{v}: {out:?}"
        );
    }
}

#[test]
fn legacy_range_keys_resolv_conf_and_legacy_lease_files() {
    let ns = TestNs::new("ipl");
    let data = DataDir::new("legacy");
    let resolv = data.0.join("resolv.conf");
    fs::write(&resolv, "nameserver 10.0.0.53\nnameserver 10.0.0.54\ndomain corp\nsearch a.corp b.corp\noptions ndots:2\n").unwrap();
    let conf = json!({"cniVersion": "1.0.0", "name": "old", "type": "x", "ipam": {
        "type": "host-local", "subnet": "10.78.0.0/29", "rangeStart": "10.78.0.3",
        "rangeEnd": "10.78.0.5", "gateway": "10.78.0.1", "dataDir": data.path(),
        "resolvConf": resolv.to_str().unwrap()}});
    // a legacy ID-only lease left by an old host-local before we ever used this store
    fs::create_dir_all(data.net("old")).unwrap();
    fs::write(data.net("old").join("10.78.0.5"), "legacy-ctr").unwrap();
    let out = run(&ns, "ADD", "c1", "eth0", &conf);
    assert_eq!(
        out.json()["ips"],
        json!([{"address": "10.78.0.3/29", "gateway": "10.78.0.1"}])
    );
    assert_eq!(
        out.json()["dns"],
        json!({"nameservers": ["10.0.0.53", "10.0.0.54"],
        "domain": "corp", "search": ["a.corp", "b.corp"], "options": ["ndots:2"]})
    );
    // ... is never handed out again, and is released by DEL of that ID
    let out = run(&ns, "ADD", "c2", "eth0", &conf);
    assert_eq!(out.json()["ips"][0]["address"], json!("10.78.0.4/29"));
    let full = run(&ns, "ADD", "c3", "eth0", &conf);
    assert_eq!(full.status, 1, "10.78.0.5 is still leased: {full:?}");
    let out = run(&ns, "DEL", "legacy-ctr", "eth0", &conf);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(!data.net("old").join("10.78.0.5").exists());
    // DEL of an unknown ID succeeds
    assert_eq!(run(&ns, "DEL", "nobody", "eth0", &conf).status, 0);
}

#[test]
fn status_reports_exhaustion_and_gc_releases_invalid_attachments() {
    let ns = TestNs::new("ips");
    let data = DataDir::new("gc");
    let conf = json!({"cniVersion": "1.1.0", "name": "tiny", "type": "x", "ipam": {
        "type": "ipam", "ranges": [[{"subnet": "10.79.0.0/30"}]], "dataDir": data.path()}});
    // a /30 has exactly one allocatable address (.2; .1 is the gateway)
    assert_eq!(run(&ns, "ADD", "keep", "eth0", &conf).status, 0);
    let full = run(&ns, "ADD", "late", "eth0", &conf);
    assert_eq!(full.status, 1);
    assert!(
        full.json()["msg"]
            .as_str()
            .unwrap()
            .contains("no IP addresses available"),
        "{full:?}"
    );
    let st = run(&ns, "STATUS", "", "", &conf);
    assert_eq!(st.json()["code"], json!(50), "{st:?}");
    assert!(
        st.json()["msg"]
            .as_str()
            .unwrap()
            .contains("network tiny: no IP addresses available in range set 0"),
        "{st:?}"
    );
    // GC with "keep" valid keeps it; GC without the key releases everything
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let out = run(&ns, "GC", "", "", &gc);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(data.net("tiny").join("10.79.0.2").exists());
    let out = run(&ns, "GC", "", "", &conf);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(!data.net("tiny").join("10.79.0.2").exists());
    assert_eq!(run(&ns, "STATUS", "", "", &conf).status, 0);
}

#[test]
fn ecs_dialect_as_the_agent_drives_it() {
    let ns = TestNs::new("ipe");
    let data = DataDir::new("ecs");
    // IPAM_DB_PATH names Amazon's BoltDB file (it need not exist yet)
    let db = data.0.join("eni-ipam.db");
    // ADD through the bridge config the agent sends (ipam part), name "network-name"
    let add_conf = json!({"type": "ecs-bridge", "cniVersion": "0.3.0", "name": "network-name",
        "bridge": "ecs-bridge", "mtu": 0,
        "ipam": {"type": "ecs-ipam", "id": "0a:1b:2c:3d:4e:5f",
                 "ipv4-subnet": "169.254.172.0/22", "ipv4-routes": [{"dst": "169.254.170.2/32"}]}});
    let env_with = |verb: &str, cid: &str| {
        let mut e = cni_env(verb, cid, &ns.path().display().to_string(), "ecs-eth0");
        e.push(("IPAM_DB_PATH".into(), db.display().to_string()));
        e
    };
    let out = call(&bin("ipam"), None, &env_with("ADD", "pause-1"), &add_conf);
    assert_eq!(
        out.json(),
        json!({"cniVersion": "0.3.0",
        "ips": [{"version": "4", "address": "169.254.172.2/22", "gateway": "169.254.172.1"}],
        "routes": [{"dst": "169.254.170.2/32"}], "dns": {}}),
        "{out:?}"
    );
    let leases = |want: &[(&str, &str)]| {
        let want: std::collections::BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(ecs_leases(&db), want);
    };
    leases(&[("169.254.172.2", "0a:1b:2c:3d:4e:5f")]);
    assert!(db.is_file(), "the store is the file itself");
    assert!(!data.0.join("ecs-ipam").exists() && !data.0.join("eni-ipam.db.d").exists());
    // a retried ADD (the Go plugin fails here: "id already exists") returns the same lease
    let again = call(&bin("ipam"), None, &env_with("ADD", "pause-1"), &add_conf);
    assert_eq!(again.json()["ips"][0]["address"], json!("169.254.172.2/22"));
    // the agent releases later with its own name/type, a different container ID, the same id
    let del_conf = json!({"cniVersion": "0.3.0", "name": "ecs-ipam", "type": "ecs-ipam",
        "ipam": {"type": "ecs-ipam", "id": "0a:1b:2c:3d:4e:5f", "ipv4-subnet": "169.254.172.0/22"}});
    let out = call(&bin("ipam"), None, &env_with("DEL", "other-id"), &del_conf);
    assert_eq!(out.status, 0, "{out:?}");
    leases(&[]);
    // a static ipv4-address, then DEL by address
    let mut stat = add_conf.clone();
    stat["ipam"]["ipv4-address"] = json!("169.254.172.100/22");
    let out = call(&bin("ipam"), None, &env_with("ADD", "pause-2"), &stat);
    assert_eq!(out.json()["ips"][0]["address"], json!("169.254.172.100/22"));
    leases(&[("169.254.172.100", "0a:1b:2c:3d:4e:5f")]);
    let out = call(&bin("ipam"), None, &env_with("DEL", "x"), &stat);
    assert_eq!(out.status, 0);
    leases(&[]);
    // validation names the key
    let mut bad = add_conf.clone();
    bad["ipam"]["ipv4-gateway"] = json!("10.0.0.1");
    let out = call(&bin("ipam"), None, &env_with("ADD", "pause-3"), &bad);
    assert_eq!(out.json()["code"], json!(7));
    assert!(
        out.json()["msg"]
            .as_str()
            .unwrap()
            .contains("ipam.ipv4-gateway"),
        "{out:?}"
    );
}

#[test]
fn bad_configs_name_the_field() {
    let ns = TestNs::new("ipb");
    let data = DataDir::new("bad");
    let cases = [
        (
            json!({"ranges": [[{"subnet": "10.80.0.1/24"}]]}),
            "ipam.ranges[0][0].subnet",
        ),
        (
            json!({"ranges": [[{"subnet": "10.80.0.0/24", "gateway": "fd00::1"}]]}),
            "ipam.ranges[0][0].gateway fd00::1 is an IPv6 address",
        ),
        (
            json!({"ranges": [[{"subnet": "10.80.0.0/24"}], [{"subnet": "10.80.0.0/25"}]]}),
            "overlaps",
        ),
        (
            json!({"ranges": [[{"subnet": "10.80.0.0/24", "rangeStart": "10.80.1.5"}]]}),
            "rangeStart",
        ),
        (json!({"ranges": "10.80.0.0/24"}), "ipam.ranges"),
    ];
    for (ipam, needle) in cases {
        let mut ipam = ipam;
        ipam["type"] = json!("ipam");
        ipam["dataDir"] = json!(data.path());
        let conf = json!({"cniVersion": "1.0.0", "name": "bad", "type": "x", "ipam": ipam});
        let out = run(&ns, "ADD", "c", "eth0", &conf);
        assert_eq!(out.status, 1, "{needle}");
        assert_eq!(out.json()["code"], json!(7), "{needle}: {out:?}");
        assert!(
            out.json()["msg"].as_str().unwrap().contains(needle),
            "{needle}: {out:?}"
        );
    }
    // a network name or dataDir that would escape the store
    for (name, dir) in [("ok", "relative/dir"), ("ok", "/tmp/../etc")] {
        let conf = json!({"cniVersion": "1.0.0", "name": name, "type": "x",
            "ipam": {"type": "ipam", "ranges": [[{"subnet": "10.80.0.0/24"}]], "dataDir": dir}});
        let out = run(&ns, "ADD", "c", "eth0", &conf);
        assert_eq!(out.status, 1, "{dir}: {out:?}");
        assert!(
            out.json()["msg"].as_str().unwrap().contains(dir),
            "{dir}: {out:?}"
        );
    }
}

#[test]
fn lock_held_by_another_process_gives_try_again_within_the_bound() {
    let ns = TestNs::new("ipk");
    let data = DataDir::new("lock");
    let conf = host_local("1.0.0", &data, json!({"lockTimeoutMs": 300}));
    assert_eq!(run(&ns, "ADD", "first", "eth0", &conf).status, 0);
    let lock = fs::File::open(data.net("hlnet").join("lock")).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let t = std::time::Instant::now();
    let out = run(&ns, "ADD", "second", "eth0", &conf);
    let waited = t.elapsed();
    assert_eq!(out.json()["code"], json!(11), "{out:?}");
    assert!(waited < std::time::Duration::from_secs(3), "{waited:?}");
    drop(lock);
    assert_eq!(run(&ns, "ADD", "second", "eth0", &conf).status, 0);
}

#[test]
fn hundred_concurrent_adds_never_duplicate_or_lose_a_lease() {
    let ns = TestNs::new("ipc");
    let data = DataDir::new("conc");
    let conf = json!({"cniVersion": "1.0.0", "name": "conc", "type": "x", "ipam": {
        "type": "ipam", "ranges": [[{"subnet": "10.82.0.0/24"}]], "dataDir": data.path()}});
    let netns = ns.path().display().to_string();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let conf = conf.clone();
            let netns = netns.clone();
            std::thread::spawn(move || {
                call(
                    &bin("ipam"),
                    None,
                    &cni_env("ADD", &format!("ctr-{i}"), &netns, "eth0"),
                    &conf,
                )
            })
        })
        .collect();
    let mut addrs: Vec<String> = handles
        .into_iter()
        .map(|h| {
            let out = h.join().unwrap();
            assert_eq!(out.status, 0, "{out:?}");
            out.json()["ips"][0]["address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 100, "duplicate addresses handed out");
    let files = fs::read_dir(data.net("conc"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("10.82.0.")
        })
        .count();
    assert_eq!(files, 100, "one lease file per ADD");
}

#[test]
fn non_string_cni_version_is_a_decode_error() {
    assert_non_string_cni_version_is_a_decode_error("ipam");
}

#[test]
fn version_about_and_capabilities() {
    assert_version_about_and_capabilities("ipam", &["awsvpc-network-mode"]);
}
