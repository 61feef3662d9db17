//! Our `ipam` against Debian's Go `host-local` (`/usr/lib/cni/host-local`, containernetworking-plugins
//! 1.1.1, CNI up to 1.0.0) on identical inputs and identical store directories: the behaviours
//! of issue 11 §4 a careful client notices. Each test asserts the exact result JSON and the exact
//! store files, and that both implementations agree on them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use test_support::*;

/// The versions Debian's host-local 1.1.1 speaks.
const GO_VERSIONS: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

fn host_local() -> PathBuf {
    let p = PathBuf::from("/usr/lib/cni/host-local");
    assert!(
        p.is_file(),
        "{} is missing: install Debian's containernetworking-plugins (tests/run-all.sh does)",
        p.display()
    );
    p
}

/// A per-test directory holding one data directory per implementation, removed on drop.
struct Dirs(PathBuf);

impl Dirs {
    fn new(tag: &str) -> Dirs {
        let d = std::env::temp_dir().join(format!(
            "ipam-ref-{tag}-{}-{}",
            std::process::id(),
            netns_fixtures::unique_suffix()
        ));
        fs::create_dir_all(&d).unwrap();
        Dirs(d)
    }

    fn data(&self, which: &str) -> PathBuf {
        let d = self.0.join(which);
        fs::create_dir_all(&d).unwrap();
        d
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every file of a network's store that host-local also writes (leases, `last_reserved_ip.N`),
/// with its content; our `.owners` index and the empty `lock` are left out.
fn store_files(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "lock" && !n.starts_with('.'))
                .map(|n| {
                    let c = fs::read_to_string(dir.join(&n)).unwrap();
                    (n, c)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn conf(v: &str, data: &Path, ranges: Value, extra: Value) -> Value {
    let mut c = json!({"cniVersion": v, "name": "refnet", "type": "bridge",
        "ipam": {"type": "host-local", "dataDir": data.display().to_string(), "ranges": ranges}});
    if let Value::Object(m) = extra {
        for (k, val) in m {
            c[k] = val;
        }
    }
    c
}

/// The CNI_* variables; `netns` `None` leaves CNI_NETNS unset.
fn env(verb: &str, cid: &str, netns: Option<&str>, args: &str) -> Vec<(String, String)> {
    let mut e = cni_env(verb, cid, netns.unwrap_or(""), "eth0");
    if netns.is_none() {
        e.retain(|(k, _)| k != "CNI_NETNS");
    }
    if !args.is_empty() {
        e.push(("CNI_ARGS".into(), args.into()));
    }
    e
}

/// Drops what legitimately differs between the two implementations' outputs: `ips[].version`
/// (we print it below 1.0.0 as the spec says; Go's libcni 1.1.2 does not), an empty `dns`
/// (Go always prints it), and, in errors, the code and message (Go says 999 for everything).
fn normalise(mut v: Value) -> Value {
    if let Some(ips) = v["ips"].as_array_mut() {
        for ip in ips {
            ip.as_object_mut().unwrap().remove("version");
        }
    }
    if v["dns"] == json!({}) {
        v.as_object_mut().unwrap().remove("dns");
    }
    if v.get("code").is_some() {
        v = json!({"error": true});
    }
    v
}

/// A plugin run's exit status and normalised stdout.
fn outcome(out: &PluginOutput) -> (i32, Value) {
    let v = if out.stdout.trim().is_empty() {
        Value::Null
    } else {
        normalise(out.json())
    };
    (out.status, v)
}

fn ip_json(v: &str, addr: &str, gw: &str) -> Value {
    let mut ip = json!({"address": addr, "gateway": gw});
    if has_ip_version(v) {
        ip["version"] = json!(if addr.contains(':') { "6" } else { "4" });
    }
    ip
}

/// host-local hands out addresses from a range whose gateway lies outside the subnet (network+1
/// first) and reports that gateway; we used to refuse the config (code 7). We now do the same,
/// with a warning naming the key on stderr, and both leave identical stores.
#[test]
fn a_gateway_outside_the_subnet_is_accepted_as_host_local_does() {
    let ns = TestNs::new("iprg");
    let ns_path = ns.path().display().to_string();
    let ranges = json!([[{"subnet": "10.77.0.0/29", "gateway": "10.99.0.1"}],
                        [{"subnet": "fd77::/125", "gateway": "fd99::1"}]]);
    for v in VERSIONS {
        let dirs = Dirs::new("gw");
        let ours_dir = dirs.data("ours");
        let c = conf(v, &ours_dir, ranges.clone(), json!({}));
        let add = call(
            &bin("ipam"),
            None,
            &env("ADD", "c1", Some(&ns_path), ""),
            &c,
        );
        assert_eq!(add.status, 0, "{v}: {add:?}");
        let mut want = json!({"cniVersion": v, "ips": [
            ip_json(v, "10.77.0.1/29", "10.99.0.1"), ip_json(v, "fd77::1/125", "fd99::1")]});
        if v != "1.1.0" {
            want["dns"] = json!({});
        }
        assert_eq!(add.json(), want, "{v}");
        for key in [
            "ipam.ranges[0][0].gateway 10.99.0.1 is outside subnet 10.77.0.0/29",
            "ipam.ranges[1][0].gateway fd99::1 is outside subnet fd77::/125",
        ] {
            assert!(add.stderr.contains(key), "{v}: no warning {key:?}: {add:?}");
        }
        // the whole window is handed out, network+1 first, and nothing else
        for (i, cid) in ["c2", "c3", "c4", "c5", "c6"].iter().enumerate() {
            let out = call(&bin("ipam"), None, &env("ADD", cid, Some(&ns_path), ""), &c);
            assert_eq!(
                out.json()["ips"][0]["address"],
                json!(format!("10.77.0.{}/29", i + 2)),
                "{v}: {out:?}"
            );
        }
        let full = call(
            &bin("ipam"),
            None,
            &env("ADD", "c7", Some(&ns_path), ""),
            &c,
        );
        assert_eq!(full.status, 1, "{v}: {full:?}");
        assert!(
            full.json()["msg"]
                .as_str()
                .unwrap()
                .contains("no IP addresses available in range set: 10.77.0.1-10.77.0.6"),
            "{full:?}"
        );
        if allows_check(v) {
            let check = call(
                &bin("ipam"),
                None,
                &env("CHECK", "c1", Some(&ns_path), ""),
                &with_prev_result(&c, &add.json()),
            );
            assert_eq!((check.status, check.stdout.as_str()), (0, ""), "{check:?}");
        }
        let del = call(
            &bin("ipam"),
            None,
            &env("DEL", "c1", Some(&ns_path), ""),
            &c,
        );
        assert_eq!((del.status, del.stdout.as_str()), (0, ""), "{del:?}");
        assert!(!del.stderr.contains("outside subnet"), "DEL warns: {del:?}");

        if !GO_VERSIONS.contains(&v) {
            continue;
        }
        // Go host-local on an identical, fresh directory: same results, same files
        let go_dir = dirs.data("go");
        let ours2 = dirs.data("ours2");
        for cid in ["c1", "c2", "c3", "c4", "c5", "c6", "c7"] {
            let go = call(
                &host_local(),
                None,
                &env("ADD", cid, Some(&ns_path), ""),
                &conf(v, &go_dir, ranges.clone(), json!({})),
            );
            let ours = call(
                &bin("ipam"),
                None,
                &env("ADD", cid, Some(&ns_path), ""),
                &conf(v, &ours2, ranges.clone(), json!({})),
            );
            assert_eq!(outcome(&ours), outcome(&go), "{v} {cid}: {ours:?} / {go:?}");
        }
        assert_eq!(
            store_files(&ours2.join("refnet")),
            store_files(&go_dir.join("refnet")),
            "{v}"
        );
    }
    // ecs-ipam refuses it, as Amazon's plugin does
    let dirs = Dirs::new("gwecs");
    let ecs = json!({"cniVersion": "0.3.0", "name": "network-name", "type": "ecs-bridge",
        "ipam": {"type": "ecs-ipam", "id": "0a:1b:2c:3d:4e:5f", "ipv4-subnet": "169.254.172.0/22",
                 "ipv4-gateway": "169.254.180.1"}});
    let out = run_plugin(
        &bin("ipam"),
        None,
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", &ns_path),
            ("CNI_IFNAME", "ecs-eth0"),
            ("CNI_PATH", "/x"),
            ("IPAM_DB_PATH", dirs.data("ecs").to_str().unwrap()),
        ],
        ecs.to_string().as_bytes(),
    );
    assert_eq!(out.json()["code"], json!(7), "{out:?}");
    assert_eq!(
        out.json()["msg"],
        json!("ipam.ipv4-gateway 169.254.180.1 is outside subnet 169.254.172.0/22")
    );
}

/// An IPAM plugin never enters the container: like host-local, ours no longer opens CNI_NETNS,
/// so a path that is gone or is not a namespace is fine for ADD, CHECK and DEL; an unset
/// CNI_NETNS is still refused for ADD and CHECK (code 4), as Go's skel refuses it.
#[test]
fn cni_netns_is_not_opened_as_host_local_does_not() {
    let ns = TestNs::new("iprn");
    let ns_path = ns.path().display().to_string();
    let ranges = json!([[{"subnet": "10.78.0.0/24"}]]);
    let regular = std::env::current_exe().unwrap().display().to_string();
    let cases: [(&str, Option<&str>); 4] = [
        ("a namespace", Some(&ns_path)),
        ("a missing path", Some("/run/netns/ipam-ref-does-not-exist")),
        ("a regular file", Some(&regular)),
        ("unset", None),
    ];
    for v in GO_VERSIONS {
        for (what, netns) in cases {
            let dirs = Dirs::new("ns");
            let (go_dir, ours_dir) = (dirs.data("go"), dirs.data("ours"));
            let mut prev = Value::Null;
            for verb in ["ADD", "CHECK", "DEL"] {
                if verb == "CHECK" && !allows_check(v) {
                    continue;
                }
                let go_conf = conf(v, &go_dir, ranges.clone(), json!({}));
                let ours_conf = conf(v, &ours_dir, ranges.clone(), json!({}));
                let (go_conf, ours_conf) = if verb == "ADD" {
                    (go_conf, ours_conf)
                } else {
                    (
                        with_prev_result(&go_conf, &prev),
                        with_prev_result(&ours_conf, &prev),
                    )
                };
                let e = env(verb, "cns", netns, "");
                let go = call(&host_local(), None, &e, &go_conf);
                let ours = call(&bin("ipam"), None, &e, &ours_conf);
                assert_eq!(
                    outcome(&ours),
                    outcome(&go),
                    "{v} {verb} with CNI_NETNS {what}: ours {ours:?} / Go {go:?}"
                );
                let want_ok = netns.is_some() || verb == "DEL";
                assert_eq!(ours.status == 0, want_ok, "{v} {verb} {what}: {ours:?}");
                if !want_ok {
                    assert_eq!(ours.json()["code"], json!(4), "{ours:?}");
                    assert_eq!(
                        ours.json()["msg"],
                        json!("required env variables [CNI_NETNS] missing")
                    );
                }
                if verb == "ADD" && want_ok {
                    prev = ours.json();
                    assert_eq!(
                        store_files(&ours_dir.join("refnet")).get("10.78.0.2"),
                        Some(&"cns\r\neth0".to_string()),
                        "{v} {what}"
                    );
                }
            }
            assert_eq!(
                store_files(&ours_dir.join("refnet")),
                store_files(&go_dir.join("refnet")),
                "{v} {what}"
            );
        }
    }
    // our own namespace: Go's skel refuses it from v1.2 on (1.1.1 did not); so do we (code 8)
    let dirs = Dirs::new("nsown");
    let c = conf("1.1.0", &dirs.data("ours"), ranges, json!({}));
    let out = call(
        &bin("ipam"),
        None,
        &env("ADD", "cown", Some("/proc/thread-self/ns/net"), ""),
        &c,
    );
    assert_eq!(out.json()["code"], json!(8), "{out:?}");
}

/// One refused request, run by both implementations on identical stores prepared the same way
/// (container `c1` holds the first address of each set): the error, and every store file after
/// it, including where `last_reserved_ip.N` points.
fn refused_request(
    v: &str,
    ranges: &Value,
    cni_args: &str,
    extra: Value,
) -> BTreeMap<String, String> {
    let ns = TestNs::new("iprr");
    let ns_path = ns.path().display().to_string();
    let dirs = Dirs::new("req");
    let mut files = Vec::new();
    for (name, plugin) in [("go", host_local()), ("ours", bin("ipam"))] {
        let d = dirs.data(name);
        let pre = call(
            &plugin,
            None,
            &env("ADD", "c1", Some(&ns_path), ""),
            &conf(v, &d, ranges.clone(), json!({})),
        );
        assert_eq!(pre.status, 0, "{name}: {pre:?}");
        let out = call(
            &plugin,
            None,
            &env("ADD", "req", Some(&ns_path), cni_args),
            &conf(v, &d, ranges.clone(), extra.clone()),
        );
        assert_eq!(out.status, 1, "{name} {cni_args} {extra}: {out:?}");
        files.push(store_files(&d.join("refnet")));
    }
    assert_eq!(files[1], files[0], "{v} {cni_args} {extra}: ours vs Go");
    files.remove(1)
}

/// host-local writes `last_reserved_ip.N` on every reservation, also one a later failure
/// releases again: after a refused request the pointers of the sets that allocated before the
/// refusal (all of them when the requested address lies outside every range) have moved. Ours
/// used to refuse such a request before allocating anything; it now leaves the same files.
#[test]
fn refused_requests_move_last_reserved_ip_as_host_local_does() {
    let single = json!([[{"subnet": "10.7.0.0/24"}]]);
    let dual = json!([[{"subnet": "10.7.0.0/24"}], [{"subnet": "fd07::/64"}]]);
    let lease = |ip: &str| (ip.to_string(), "c1\r\neth0".to_string());
    let pointers = |v4: &str, v6: Option<&str>| {
        let mut m: BTreeMap<String, String> =
            [lease("10.7.0.2"), ("last_reserved_ip.0".into(), v4.into())].into();
        if let Some(v6) = v6 {
            m.extend([lease("fd07::2"), ("last_reserved_ip.1".into(), v6.into())]);
        }
        m
    };
    let none = json!({});
    let ips = |l: Value| json!({"args": {"cni": {"ips": l}}});
    for v in GO_VERSIONS {
        // single stack, CNI_ARGS IP=
        // outside the range: the set allocates .3 round-robin, then the request is refused
        assert_eq!(
            refused_request(v, &single, "IP=10.8.0.2", none.clone()),
            pointers("10.7.0.3", None),
            "{v}"
        );
        // taken, or the gateway: refused in the set, nothing reserved, the pointer stays
        for req in ["IP=10.7.0.2", "IP=10.7.0.1"] {
            assert_eq!(
                refused_request(v, &single, req, none.clone()),
                pointers("10.7.0.2", None),
                "{v} {req}"
            );
        }
        // dual stack (args.cni.ips: Go 1.1.1 takes one address in CNI_ARGS)
        for (req, v4, v6) in [
            // v4 reserved (pointer moves to it), v6 taken
            (json!(["10.7.0.9", "fd07::2"]), "10.7.0.9", "fd07::2"),
            // v4 taken: set 1 never runs
            (json!(["10.7.0.2", "fd07::9"]), "10.7.0.2", "fd07::2"),
            // a v6 address in no range: both sets allocate, then the request is refused
            (json!(["10.7.0.9", "fd08::9"]), "10.7.0.9", "fd07::3"),
            (json!(["fd08::1"]), "10.7.0.3", "fd07::3"),
            // the v6 gateway: set 0 allocates round-robin, set 1 refuses
            (json!(["fd07::1"]), "10.7.0.3", "fd07::2"),
            // the network address lies outside host-local's default window
            (json!(["10.7.0.0"]), "10.7.0.3", "fd07::3"),
        ] {
            assert_eq!(
                refused_request(v, &dual, "", ips(req.clone())),
                pointers(v4, Some(v6)),
                "{v} {req}"
            );
        }
    }
    // every version we advertise behaves the same (Go speaks up to 1.0.0)
    for v in VERSIONS {
        let ns = TestNs::new("iprv");
        let dirs = Dirs::new("reqv");
        let d = dirs.data("ours");
        let ns_path = ns.path().display().to_string();
        let ok = call(
            &bin("ipam"),
            None,
            &env("ADD", "c1", Some(&ns_path), ""),
            &conf(v, &d, dual.clone(), json!({})),
        );
        assert_eq!(ok.status, 0, "{ok:?}");
        // two addresses in one set: the first is taken (pointer moves to it), the second refused
        let out = call(
            &bin("ipam"),
            None,
            &env("ADD", "req", Some(&ns_path), ""),
            &conf(v, &d, dual.clone(), ips(json!(["10.7.0.9", "10.7.0.10"]))),
        );
        assert_eq!(out.json()["code"], json!(100), "{out:?}");
        assert_eq!(
            out.json()["msg"],
            json!(
                "requested IP addresses 10.7.0.9 and 10.7.0.10 are both in range set 0 \
                 (10.7.0.1-10.7.0.254); only one address is allocated per range set"
            )
        );
        assert_eq!(
            store_files(&d.join("refnet")),
            pointers("10.7.0.9", Some("fd07::3")),
            "{v}"
        );
        // outside every range
        let out = call(
            &bin("ipam"),
            None,
            &env("ADD", "req", Some(&ns_path), "IP=10.8.0.2"),
            &conf(v, &d, dual.clone(), none.clone()),
        );
        assert_eq!(
            out.json()["msg"],
            json!(
                "requested IP address 10.8.0.2 is outside every range: \
                 10.7.0.1-10.7.0.254; fd07::1-fd07::ffff:ffff:ffff:ffff"
            ),
            "{out:?}"
        );
        assert_eq!(
            store_files(&d.join("refnet")),
            pointers("10.7.0.10", Some("fd07::4")),
            "{v}"
        );
    }
}
