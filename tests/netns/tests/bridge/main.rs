//! Black-box tests of the `bridge` binary. The plugin always runs inside a simulated host's
//! "host" namespace (never the machine's own), containers are throwaway namespaces, IPAM's
//! store is a per-test temporary directory. Every test asserts kernel state and exact JSON.

mod chain;
mod concurrency;
mod harness;
mod kill9;
mod reference;
mod rollback;

use std::process::Command;

use serde_json::{Value, json};
use test_support::bridge::*;
use test_support::*;

/// The result `bridge` must print, built from what the kernel shows.
fn expected_result(
    v: &str,
    w: &World,
    ctr: &TestNs,
    host_veth: &str,
    ips: &[(&str, Option<&str>)],
    routes: Value,
) -> Value {
    let with_mtu = |mut i: Value, ns: &TestNs, dev: &str| {
        if v == "1.1.0" {
            i["mtu"] = json!(mtu(ns, dev));
        }
        i
    };
    let mut want = json!({
        "cniVersion": v,
        "interfaces": [
            with_mtu(json!({"name": w.bridge, "mac": mac(w.host(), &w.bridge)}), w.host(), &w.bridge),
            with_mtu(json!({"name": host_veth, "mac": mac(w.host(), host_veth)}), w.host(), host_veth),
            with_mtu(json!({"name": "eth0", "mac": mac(ctr, "eth0"),
                            "sandbox": ctr.path().display().to_string()}), ctr, "eth0"),
        ],
        "ips": ips.iter().map(|(a, g)| {
            let mut ip = json!({"interface": 2, "address": a});
            if let Some(g) = g { ip["gateway"] = json!(g); }
            if has_ip_version(v) {
                ip["version"] = json!(if a.contains(':') { "6" } else { "4" });
            }
            ip
        }).collect::<Vec<_>>(),
    });
    if routes.as_array().is_some_and(|r| !r.is_empty()) {
        want["routes"] = routes;
    }
    if v != "1.1.0" {
        want["dns"] = json!({});
    }
    want
}

fn host_veth_of(res: &Value) -> String {
    res["interfaces"][1]["name"].as_str().unwrap().to_string()
}

fn address_of(res: &Value, i: usize) -> String {
    res["ips"][i]["address"].as_str().unwrap().to_string()
}

#[test]
fn v4_every_version_add_check_status_gc_del() {
    let w = World::new("bv4");
    for v in VERSIONS {
        let ctr = TestNs::new("bv4c");
        let cid = format!("ctr-{}", v.replace('.', ""));
        let conf = w.conf(v, &["10.10.0.0/24"], json!({"isGateway": true}));
        let res = w.add(&cid, &ctr, "eth0", &conf);
        let veth = host_veth_of(&res);
        let addr = address_of(&res, 0);
        assert!(veth.starts_with("veth") && veth.len() == 12, "{veth}");
        assert!(
            addr.starts_with("10.10.0.") && addr.ends_with("/24"),
            "{addr}"
        );
        assert_eq!(
            res,
            expected_result(v, &w, &ctr, &veth, &[(&addr, Some("10.10.0.1"))], json!([])),
            "{v}"
        );
        // kernel: bridge up with the gateway, host end enslaved and up, container end configured
        let br = link(w.host(), &w.bridge);
        assert_eq!(br["linkinfo"]["info_kind"], json!("bridge"));
        assert!(br["flags"].as_array().unwrap().contains(&json!("UP")));
        assert_eq!(
            addrs(w.host(), &w.bridge).first().map(String::as_str),
            Some("10.10.0.1/24")
        );
        let hv = link(w.host(), &veth);
        assert_eq!(hv["master"], json!(w.bridge));
        assert!(hv["flags"].as_array().unwrap().contains(&json!("UP")));
        assert_eq!(addrs(&ctr, "eth0"), vec![addr.clone()]);
        assert_eq!(w.host().sysctl_get("net.ipv4.ip_forward"), "1");
        assert_eq!(w.leases(), vec![addr.trim_end_matches("/24").to_string()]);
        // the veth pair's ends point at each other
        let ce = link(&ctr, "eth0");
        assert_eq!(ce["link_index"], hv["ifindex"]);
        assert_eq!(hv["link_index"], ce["ifindex"]);
        assert!(
            ping(&ctr, "10.10.0.1"),
            "{v}: container cannot ping its gateway"
        );

        let with_prev = with_prev_result(&conf, &res);
        let check = w.run("CHECK", &cid, Some(&ctr), "eth0", &with_prev);
        if allows_check(v) {
            assert_eq!(
                (check.status, check.stdout.as_str()),
                (0, ""),
                "{v} CHECK: {check:?}"
            );
        } else {
            assert_eq!(check.status, 1, "{v}: CHECK must be refused: {check:?}");
            assert_eq!(check.json()["code"], json!(1), "{v}: CHECK must be refused");
        }
        for verb in ["STATUS", "GC"] {
            // GC lists this attachment as valid: nothing may go
            let mut c = conf.clone();
            c["cni.dev/valid-attachments"] = json!([{"containerID": cid, "ifname": "eth0"}]);
            let out = call(
                &bin("bridge"),
                Some(w.host()),
                &cni_env(verb, "", "", ""),
                &c,
            );
            if allows_gc_status(v) {
                assert_eq!(
                    (out.status, out.stdout.as_str()),
                    (0, ""),
                    "{v} {verb}: {out:?}"
                );
            } else {
                assert_eq!(out.status, 1, "{v} {verb}: {out:?}");
                assert_eq!(out.json()["code"], json!(1), "{v} {verb}: {out:?}");
            }
        }
        assert_eq!(w.leases().len(), 1, "{v}: GC kept the valid lease");

        let del_conf = if allows_check(v) {
            with_prev.clone()
        } else {
            conf.clone()
        };
        for round in 0..2 {
            let out = w.run("DEL", &cid, Some(&ctr), "eth0", &del_conf);
            assert_eq!(
                (out.status, out.stdout.as_str()),
                (0, ""),
                "{v} DEL #{round}: {out:?}"
            );
            assert!(ctr.link("eth0").is_none(), "{v}: eth0 left after DEL");
            assert!(w.host().link(&veth).is_none(), "{v}: {veth} left after DEL");
            assert!(w.leases().is_empty(), "{v}: lease left after DEL");
        }
        // the bridge and its address stay
        assert_eq!(
            addrs(w.host(), &w.bridge).first().map(String::as_str),
            Some("10.10.0.1/24")
        );
        if allows_check(v) {
            let out = w.run("CHECK", &cid, Some(&ctr), "eth0", &with_prev);
            assert_eq!(out.status, 1, "{v}: CHECK after DEL must fail");
            let msg = out.json()["msg"].as_str().unwrap().to_string();
            assert!(msg.starts_with("CHECK: IPAM CHECK:"), "{msg}");
        }
    }
}

#[test]
fn ipv6_only_default_gateway_without_dad_wait() {
    let w = World::new("bv6");
    let ctr = TestNs::new("bv6c");
    let conf = w.conf("1.0.0", &["fd10::/64"], json!({"isDefaultGateway": true}));
    let res = w.add("c6", &ctr, "eth0", &conf);
    let veth = host_veth_of(&res);
    assert_eq!(address_of(&res, 0), "fd10::2/64");
    assert_eq!(
        res,
        expected_result(
            "1.0.0",
            &w,
            &ctr,
            &veth,
            &[("fd10::2/64", Some("fd10::1"))],
            json!([{"dst": "::/0", "gw": "fd10::1"}])
        )
    );
    let a = addr_info(&ctr, "eth0", "fd10::2/64").expect("address on eth0");
    assert_eq!(a["nodad"], json!(true), "{a}");
    assert!(a.get("tentative").is_none(), "{a}");
    assert!(routes(&ctr, "-6", "eth0").contains(&"default via fd10::1".to_string()));
    let br = addr_info(w.host(), &w.bridge, "fd10::1/64").expect("gateway on the bridge");
    assert!(br.get("tentative").is_none(), "{br}");
    assert_eq!(w.host().sysctl_get("net.ipv6.conf.all.forwarding"), "1");
    // usable at once: no DAD wait anywhere
    assert!(ping(&ctr, "fd10::1"));
    w.del("c6", Some(&ctr), "eth0", &with_prev_result(&conf, &res));
    assert!(ctr.link("eth0").is_none() && w.leases().is_empty());
}

#[test]
fn dual_stack_default_gateway() {
    let w = World::new("bds");
    let ctr = TestNs::new("bdsc");
    let conf = w.conf(
        "1.1.0",
        &["10.20.0.0/16", "fd20::/64"],
        json!({"isDefaultGateway": true, "dns": {"nameservers": ["10.20.0.53"]}}),
    );
    let res = w.add("cds", &ctr, "eth0", &conf);
    let veth = host_veth_of(&res);
    let mut want = expected_result(
        "1.1.0",
        &w,
        &ctr,
        &veth,
        &[
            ("10.20.0.2/16", Some("10.20.0.1")),
            ("fd20::2/64", Some("fd20::1")),
        ],
        json!([{"dst": "0.0.0.0/0", "gw": "10.20.0.1"}, {"dst": "::/0", "gw": "fd20::1"}]),
    );
    want["dns"] = json!({"nameservers": ["10.20.0.53"]});
    assert_eq!(res, want);
    assert_eq!(
        routes(&ctr, "-4", "eth0"),
        vec!["10.20.0.0/16 scope link", "default via 10.20.0.1"]
    );
    assert!(routes(&ctr, "-6", "eth0").contains(&"default via fd20::1".to_string()));
    assert_eq!(
        addrs(w.host(), &w.bridge),
        vec!["10.20.0.1/16", "fd20::1/64"]
    );
    assert!(ping(&ctr, "10.20.0.1") && ping(&ctr, "fd20::1"));
    // the port passes the task's IPv6 on (the ping above) but has no IPv6 of its own, not even a
    // link-local address
    assert_eq!(
        w.host()
            .sysctl_get(&format!("net/ipv6/conf/{veth}/disable_ipv6")),
        "1"
    );
    assert_eq!(all_addrs(w.host(), &veth), Vec::<String>::new());
    let prev = with_prev_result(&conf, &res);
    let out = w.run("CHECK", "cds", Some(&ctr), "eth0", &prev);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    w.del("cds", Some(&ctr), "eth0", &prev);
    assert!(ctr.link("eth0").is_none() && w.leases().is_empty());
}

/// A `/proc/sys` the plugin cannot write (a runtime that mounts it read-only): ADD still
/// succeeds and the port keeps its IPv6, which could not be turned off.
#[test]
fn read_only_proc_sys_leaves_the_port_ipv6_on() {
    let w = World::new("bro");
    let ctr = TestNs::new("broc");
    let conf = w.conf("1.0.0", &["10.41.0.0/24"], json!({}));
    let wrapper = w.data.path().join("bridge-ro-proc-sys");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec unshare --mount --propagation private sh -c \
             'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec \"$0\"' {}\n",
            bin("bridge").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let env = cni_env("ADD", "cro", &ctr.path().display().to_string(), "eth0");
    let out = call(&wrapper, Some(w.host()), &env, &conf);
    assert_eq!(out.status, 0, "ADD failed: {out:?}");
    let res = out.json();
    assert_eq!(address_of(&res, 0), "10.41.0.2/24");
    let veth = host_veth_of(&res);
    assert_eq!(
        w.host()
            .sysctl_get(&format!("net/ipv6/conf/{veth}/disable_ipv6")),
        "0"
    );
    assert_eq!(addrs(&ctr, "eth0"), vec!["10.41.0.2/24"]);
    w.del("cro", Some(&ctr), "eth0", &conf);
    assert!(ctr.link("eth0").is_none() && w.host_veths().is_empty() && w.leases().is_empty());
}

/// CHECK (where the version has it) and DEL of an attachment made by `add`, both clean.
fn check_and_del(w: &World, v: &str, cid: &str, ctr: &TestNs, conf: &Value, res: &Value) {
    let with_prev = with_prev_result(conf, res);
    if allows_check(v) {
        let out = w.run("CHECK", cid, Some(ctr), "eth0", &with_prev);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, ""),
            "{v} CHECK: {out:?}"
        );
    }
    w.del(cid, Some(ctr), "eth0", &with_prev);
    assert!(ctr.link("eth0").is_none(), "{v}: eth0 left after DEL");
    assert!(w.leases().is_empty(), "{v}: lease left after DEL");
}

/// Configs written by Go programs: keys in any case Go's `encoding/json` accepts
/// (cni_spec::gojson). The folded keys really take effect in the kernel.
#[test]
fn go_spellings_take_effect_in_every_version() {
    let folded = World::new("bgf");
    for v in VERSIONS {
        let tag = v.replace('.', "");
        // "isgateway" and "HairpinMode": the bridge is the gateway, the port hairpins
        let ctr = TestNs::new("bgfc");
        let cid = format!("gof-{tag}");
        let conf = folded.conf(
            v,
            &["10.85.0.0/24"],
            json!({"isgateway": true, "HairpinMode": true}),
        );
        let res = folded.add(&cid, &ctr, "eth0", &conf);
        let veth = host_veth_of(&res);
        let addr = address_of(&res, 0);
        assert_eq!(
            res,
            expected_result(
                v,
                &folded,
                &ctr,
                &veth,
                &[(&addr, Some("10.85.0.1"))],
                json!([])
            ),
            "{v}"
        );
        assert_eq!(
            addrs(folded.host(), &folded.bridge),
            vec!["10.85.0.1/24"],
            "{v}"
        );
        assert_eq!(folded.host().sysctl_get("net.ipv4.ip_forward"), "1", "{v}");
        let port = link(folded.host(), &veth);
        assert_eq!(port["master"], json!(folded.bridge), "{v}");
        assert_eq!(
            port["linkinfo"]["info_slave_data"]["hairpin"],
            json!(true),
            "{v}: {port}"
        );
        assert!(ping(&ctr, "10.85.0.1"), "{v}: no route to the gateway");
        check_and_del(&folded, v, &cid, &ctr, &conf, &res);
    }
}

/// `null` is "not set", as in Go (cni_spec::gojson): every key of the reference bridge, and
/// `ipam.routes`, `ipam.gateway`, `dns`, `args` and `runtimeConfig` members, may be null.
#[test]
fn null_is_absent_in_every_version() {
    let nulls = World::new("bgn");
    for v in VERSIONS {
        let tag = v.replace('.', "");
        // every key null (the reference bridge's own keys, ipam.routes and dns too): the
        // defaults, a bridge without an address, a port without hairpin
        let ctr = TestNs::new("bgnc");
        let cid = format!("gon-{tag}");
        let mut conf = nulls.conf(
            v,
            &["10.86.0.0/24"],
            json!({"isGateway": null, "isDefaultGateway": null, "hairpinMode": null,
                "promiscMode": null, "ipMasq": null, "mtu": null, "forceAddress": null,
                "portIsolation": null, "macspoofchk": null, "dns": null, "args": null,
                "runtimeConfig": {"portMappings": null, "mac": null}}),
        );
        conf["ipam"]["routes"] = Value::Null;
        conf["ipam"]["gateway"] = Value::Null;
        let res = nulls.add(&cid, &ctr, "eth0", &conf);
        let veth = host_veth_of(&res);
        let addr = address_of(&res, 0);
        assert_eq!(
            res,
            expected_result(
                v,
                &nulls,
                &ctr,
                &veth,
                &[(&addr, Some("10.86.0.1"))],
                json!([])
            ),
            "{v}"
        );
        assert_eq!(
            addrs(nulls.host(), &nulls.bridge),
            Vec::<String>::new(),
            "{v}"
        );
        assert_eq!(mtu(&ctr, "eth0"), 1500, "{v}");
        let port = link(nulls.host(), &veth);
        assert_eq!(
            port["linkinfo"]["info_slave_data"]["hairpin"],
            json!(false),
            "{v}: {port}"
        );
        assert_eq!(
            routes(&ctr, "-4", "eth0"),
            vec!["10.86.0.0/24 scope link"],
            "{v}: no routes from ipam.routes null"
        );
        check_and_del(&nulls, v, &cid, &ctr, &conf, &res);
    }
}

/// ecs-bridge's config with Go spellings: `Bridge`, `IPAM`/`IPV4-SUBNET`/`IPv4-Routes` and
/// the reference keys the agent sends set to null.
#[test]
fn ecs_bridge_and_ecs_ipam_with_go_spellings() {
    let w = World::new("beg");
    let ctr = TestNs::new("begc");
    let db = w.data.path().join("eni-ipam.db").display().to_string();
    let env = [("IPAM_DB_PATH", db.as_str())];
    let conf = json!({"Type": "ecs-bridge", "cniVersion": "0.3.0", "Name": "network-name",
        "Bridge": w.bridge, "isGateway": null, "hairpinMode": null, "ipMasq": null, "MTU": null,
        "IPAM": {"TYPE": "ecs-ipam", "ID": "0a:1b:2c:3d:4e:0f", "IPV4-SUBNET": "169.254.172.0/22",
                 "IPv4-Routes": [{"DST": "169.254.170.2/32"}], "ipv4-address": null}});
    let out = w.run_env("ADD", "pause-g", Some(&ctr), "ecs-eth0", &conf, &env);
    assert_eq!(out.status, 0, "{out:?}");
    let res = out.json();
    assert_eq!(res["cniVersion"], json!("0.3.0"));
    assert_eq!(
        res["ips"],
        json!([{"version": "4", "interface": 2, "address": "169.254.172.2/22",
            "gateway": "169.254.172.1"}])
    );
    assert_eq!(
        res["routes"],
        json!([{"dst": "169.254.172.1/32"}, {"dst": "169.254.170.2/32", "gw": "169.254.172.1"}])
    );
    // kernel: the bridge named by "Bridge" is the gateway, the task routes through it,
    // the MTU is ecs-bridge's default
    assert_eq!(
        link(w.host(), &w.bridge)["linkinfo"]["info_kind"],
        json!("bridge")
    );
    assert_eq!(addrs(w.host(), &w.bridge), vec!["169.254.172.1/22"]);
    assert_eq!(all_addrs(&ctr, "ecs-eth0"), vec!["169.254.172.2/22"]);
    assert_eq!(
        routes(&ctr, "-4", "ecs-eth0"),
        vec![
            "169.254.170.2 via 169.254.172.1",
            "169.254.172.1 scope link"
        ]
    );
    assert_eq!(mtu(&ctr, "ecs-eth0"), 1500);
    assert!(ping(&ctr, "169.254.172.1"));
    // the DEL with the IPAM config releases the lease: the next task gets .2 back only after
    // the round robin wraps, so ask for it by address to prove it is free
    let out = w.run_env("DEL", "pause-g", Some(&ctr), "ecs-eth0", &conf, &env);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(ctr.link("ecs-eth0").is_none());
    let mut again = conf.clone();
    again["IPAM"]["ID"] = json!("0a:1b:2c:3d:4e:10");
    again["IPAM"]["IPV4-ADDRESS"] = json!("169.254.172.2/22");
    let out = w.run_env("ADD", "pause-h", Some(&ctr), "ecs-eth0", &again, &env);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(address_of(&out.json(), 0), "169.254.172.2/22");
    let out = w.run_env("DEL", "pause-h", Some(&ctr), "ecs-eth0", &again, &env);
    assert_eq!(out.status, 0, "{out:?}");
}

#[test]
fn mtu_9001_on_both_ends_and_the_new_bridge() {
    let w = World::new("bmt");
    let ctr = TestNs::new("bmtc");
    let conf = w.conf("1.1.0", &["10.30.0.0/24"], json!({"mtu": 9001}));
    let res = w.add("cm", &ctr, "eth0", &conf);
    let veth = host_veth_of(&res);
    assert_eq!(mtu(&ctr, "eth0"), 9001);
    assert_eq!(mtu(w.host(), &veth), 9001);
    assert_eq!(mtu(w.host(), &w.bridge), 9001);
    for i in 0..3 {
        assert_eq!(res["interfaces"][i]["mtu"], json!(9001), "{res}");
    }
    // without isGateway: IPAM's gateway is reported, but nothing goes on the bridge
    assert_eq!(
        res["ips"],
        json!([{"interface": 2, "address": "10.30.0.2/24", "gateway": "10.30.0.1"}])
    );
    assert_eq!(addrs(w.host(), &w.bridge), Vec::<String>::new());
    w.del("cm", Some(&ctr), "eth0", &with_prev_result(&conf, &res));
}

/// Chained after another interface plugin, ADD passes `prevResult` through and appends ours.
#[test]
fn prev_result_is_passed_through_with_ours_appended() {
    let w = World::new("bpr");
    let ctr = TestNs::new("bprc");
    let prev = json!({"cniVersion": "1.0.0",
        "interfaces": [{"name": "tap0", "mac": "02:00:00:00:00:01"}],
        "ips": [{"interface": 0, "address": "192.0.2.7/24"}],
        "routes": [{"dst": "198.51.100.0/24", "gw": "192.0.2.1"}],
        "dns": {"nameservers": ["192.0.2.53"]}});
    let conf = with_prev_result(&w.conf("1.0.0", &["10.31.0.0/24"], json!({})), &prev);
    let res = w.add("pr", &ctr, "eth0", &conf);
    let names: Vec<&str> = res["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["tap0", w.bridge.as_str(), &host_veth_of_at(&res, 2), "eth0"]
    );
    assert_eq!(
        res["ips"],
        json!([{"interface": 0, "address": "192.0.2.7/24"},
               {"interface": 3, "address": "10.31.0.2/24", "gateway": "10.31.0.1"}])
    );
    assert_eq!(res["routes"], prev["routes"]);
    assert_eq!(res["dns"], prev["dns"]);
    let out = w.run(
        "CHECK",
        "pr",
        Some(&ctr),
        "eth0",
        &with_prev_result(&conf, &res),
    );
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    w.del("pr", Some(&ctr), "eth0", &conf);
}

fn host_veth_of_at(res: &Value, i: usize) -> String {
    res["interfaces"][i]["name"].as_str().unwrap().to_string()
}

#[test]
fn two_containers_on_one_bridge_reach_each_other() {
    let w = World::new("btw");
    let (a, b) = (TestNs::new("btwa"), TestNs::new("btwb"));
    let conf = w.conf("1.0.0", &["10.40.0.0/24"], json!({"isGateway": true}));
    let ra = w.add("ca", &a, "eth0", &conf);
    let rb = w.add("cb", &b, "eth0", &conf);
    assert_eq!(address_of(&ra, 0), "10.40.0.2/24");
    assert_eq!(address_of(&rb, 0), "10.40.0.3/24");
    // same bridge, same MAC in both results (pinned at creation)
    assert_eq!(ra["interfaces"][0], rb["interfaces"][0]);
    assert_eq!(
        mac(w.host(), &w.bridge),
        ra["interfaces"][0]["mac"].as_str().unwrap()
    );
    let mut ports = w.host_veths();
    ports.sort();
    let mut want = vec![host_veth_of(&ra), host_veth_of(&rb)];
    want.sort();
    assert_eq!(ports, want);
    assert!(ping(&a, "10.40.0.3") && ping(&b, "10.40.0.2"));
    w.del("ca", Some(&a), "eth0", &conf);
    w.del("cb", Some(&b), "eth0", &conf);
    assert!(w.host_veths().is_empty());
}

/// The ECS agent's exact ecs-bridge config: link-local task addresses, the credentials route
/// via the gateway, an on-link host route to the gateway, and no route to other tasks.
#[test]
fn ecs_link_local_tasks_are_isolated() {
    let w = World::new("bec");
    let (a, b) = (TestNs::new("beca"), TestNs::new("becb"));
    let db = w.data.path().join("eni-ipam.db").display().to_string();
    let env = [("IPAM_DB_PATH", db.as_str())];
    let ca = w.ecs_conf("0a:1b:2c:3d:4e:01");
    let cb = w.ecs_conf("0a:1b:2c:3d:4e:02");
    let out = w.run_env("ADD", "pause-a", Some(&a), "ecs-eth0", &ca, &env);
    assert_eq!(out.status, 0, "{out:?}");
    let ra = out.json();
    let veth = host_veth_of(&ra);
    assert_eq!(
        ra,
        json!({
            "cniVersion": "0.3.0",
            "interfaces": [
                {"name": w.bridge, "mac": mac(w.host(), &w.bridge)},
                {"name": veth, "mac": mac(w.host(), &veth)},
                {"name": "ecs-eth0", "mac": "0a:58:a9:fe:ac:02", "sandbox": a.path().display().to_string()},
            ],
            "ips": [{"version": "4", "interface": 2, "address": "169.254.172.2/22", "gateway": "169.254.172.1"}],
            "routes": [{"dst": "169.254.172.1/32"}, {"dst": "169.254.170.2/32", "gw": "169.254.172.1"}],
            "dns": {},
        })
    );
    assert_eq!(mac(&a, "ecs-eth0"), "0a:58:a9:fe:ac:02");
    assert_eq!(mtu(&a, "ecs-eth0"), 1500);
    assert_eq!(mtu(w.host(), &veth), 1500);
    assert_eq!(
        addrs(w.host(), &w.bridge).first().map(String::as_str),
        Some("169.254.172.1/22")
    );
    // routes: the credentials endpoint via the gateway, the gateway on-link, nothing else
    assert_eq!(
        routes(&a, "-4", "ecs-eth0"),
        vec![
            "169.254.170.2 via 169.254.172.1",
            "169.254.172.1 scope link"
        ]
    );
    // no IPv6 link-local address, hence no fe80::/64 route, not even later
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(routes(&a, "-6", "ecs-eth0"), Vec::<String>::new());
    assert_eq!(all_addrs(&a, "ecs-eth0"), vec!["169.254.172.2/22"]);
    assert!(ping(&a, "169.254.172.1"), "task cannot ping the gateway");

    let out = w.run_env("ADD", "pause-b", Some(&b), "ecs-eth0", &cb, &env);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(address_of(&out.json(), 0), "169.254.172.3/22");
    // isolated: neither task has a route to the other
    for (from, to) in [(&a, "169.254.172.3"), (&b, "169.254.172.2")] {
        let o = from.exec(Command::new("ping").args(["-c", "1", "-W", "1", to]));
        assert!(!o.status.success(), "task reached {to}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("unreachable"),
            "{o:?}"
        );
    }
    assert!(ping(&b, "169.254.172.1"));
    let ecs_leases = || -> Vec<String> {
        test_support::ecs_leases(std::path::Path::new(&db))
            .into_keys()
            .collect()
    };
    assert_eq!(ecs_leases(), vec!["169.254.172.2", "169.254.172.3"]);

    // CHECK (0.3.0 cannot CHECK; the same config at 0.4.0 can)
    let mut prev = with_prev_result(&ca, &ra);
    prev["cniVersion"] = json!("0.4.0");
    let out = w.run_env("CHECK", "pause-a", Some(&a), "ecs-eth0", &prev, &env);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    a.ip_ok(&["route", "add", "169.254.172.0/22", "dev", "ecs-eth0"]);
    let out = w.run_env("CHECK", "pause-a", Some(&a), "ecs-eth0", &prev, &env);
    assert!(
        out.json()["msg"]
            .as_str()
            .unwrap()
            .contains("connected route 169.254.172.0/22 is present"),
        "{out:?}"
    );

    // the agent's DEL: "ipam":{} means the lease stays (released later through ecs-ipam)
    let mut del = ca.clone();
    del["ipam"] = json!({});
    for _ in 0..2 {
        let out = w.run_env("DEL", "pause-a", Some(&a), "ecs-eth0", &del, &env);
        assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    }
    assert!(a.link("ecs-eth0").is_none() && w.host().link(&veth).is_none());
    assert_eq!(ecs_leases(), vec!["169.254.172.2", "169.254.172.3"]);
    // a DEL with the IPAM config releases task b's lease
    let out = w.run_env("DEL", "pause-b", Some(&b), "ecs-eth0", &cb, &env);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(ecs_leases(), vec!["169.254.172.2"]);
    // the bridge stays, with its address
    assert_eq!(
        addrs(w.host(), &w.bridge).first().map(String::as_str),
        Some("169.254.172.1/22")
    );
}

/// ecs-bridge as ecs-agent's netlib drives it on Fargate: dual-stack link-local subnets, IMDS
/// blocked, the connected IPv4 route kept for daemon tasks (`connectedSubnetMaskSizeIPv4`).
#[test]
fn ecs_dual_stack_blocks_imds_and_keeps_a_configured_connected_route() {
    let w = World::new("bed");
    let ctr = TestNs::new("bedc");
    let conf = json!({"type": "ecs-bridge", "cniVersion": "0.3.1", "name": "network-name",
        "bridge": w.bridge, "mtu": 9001, "blockInstanceMetadata": true,
        "ipam": {"type": "ecs-ipam", "id": ctr.path().display().to_string(),
                 "ipv4-subnet": "169.254.172.0/22", "ipv4-routes": [{"dst": "169.254.170.2/32"}],
                 "ipv6-subnet": "fd00:ec2::172:0/112", "ipv6-routes": [{"dst": "fd00:ec2::23/128"}],
                 "connectedSubnetMaskSizeIPv4": 22}});
    let db = w.data.path().join("eni-ipam.db").display().to_string();
    let out = w.run_env(
        "ADD",
        "task",
        Some(&ctr),
        "ecs-eth0",
        &conf,
        &[("IPAM_DB_PATH", &db)],
    );
    assert_eq!(out.status, 0, "{out:?}");
    let res = out.json();
    assert_eq!(
        res["ips"],
        json!([
            {"version": "4", "interface": 2, "address": "169.254.172.2/22", "gateway": "169.254.172.1"},
            {"version": "6", "interface": 2, "address": "fd00:ec2::172:2/112", "gateway": "fd00:ec2::172:1"},
        ])
    );
    assert_eq!(
        res["routes"],
        json!([
            {"dst": "169.254.172.1/32"}, {"dst": "fd00:ec2::172:1/128"},
            {"dst": "169.254.170.2/32", "gw": "169.254.172.1"},
            {"dst": "fd00:ec2::23/128", "gw": "fd00:ec2::172:1"},
        ])
    );
    assert_eq!(mtu(&ctr, "ecs-eth0"), 9001);
    assert_eq!(
        routes(&ctr, "-4", "ecs-eth0"),
        vec![
            "169.254.170.2 via 169.254.172.1",
            "169.254.172.0/22 scope link",
            "169.254.172.1 scope link"
        ]
    );
    assert_eq!(
        routes(&ctr, "-6", "ecs-eth0"),
        // IPv6 has no route scopes: the on-link host route shows as a plain device route
        vec!["fd00:ec2::172:1", "fd00:ec2::23 via fd00:ec2::172:1"]
    );
    let blackholes = |fam: &str| {
        ctr.ip_json(&[fam, "route", "show", "type", "blackhole"])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dst"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(blackholes("-4"), vec!["169.254.169.254"]);
    assert_eq!(blackholes("-6"), vec!["fd00:ec2::254"]);
    assert_eq!(
        all_addrs(&ctr, "ecs-eth0"),
        vec!["169.254.172.2/22", "fd00:ec2::172:2/112"]
    );
    assert!(ping(&ctr, "169.254.172.1") && ping(&ctr, "fd00:ec2::172:1"));
    let mut prev = with_prev_result(&conf, &res);
    prev["cniVersion"] = json!("1.0.0");
    let out = w.run_env(
        "CHECK",
        "task",
        Some(&ctr),
        "ecs-eth0",
        &prev,
        &[("IPAM_DB_PATH", &db)],
    );
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    let out = w.run_env(
        "DEL",
        "task",
        Some(&ctr),
        "ecs-eth0",
        &conf,
        &[("IPAM_DB_PATH", &db)],
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert!(ctr.link("ecs-eth0").is_none());
    assert!(test_support::ecs_leases(std::path::Path::new(&db)).is_empty());
}

/// Installed as `ecs-bridge` (a symlink), the plugin speaks the ECS dialect whatever `type`
/// says.
#[test]
fn ecs_dialect_by_program_name() {
    let w = World::new("bep");
    let ctr = TestNs::new("bepc");
    let dir = TempDir::new("bep-bin");
    let link_path = dir.path().join("ecs-bridge");
    std::os::unix::fs::symlink(bin("bridge"), &link_path).unwrap();
    let mut conf = w.ecs_conf("0a:1b:2c:3d:4e:09");
    conf["type"] = json!("bridge");
    let db = w.data.path().join("eni-ipam.db").display().to_string();
    let mut env = cni_env(
        "ADD",
        "pause",
        &ctr.path().display().to_string(),
        "ecs-eth0",
    );
    env.push(("IPAM_DB_PATH".into(), db.clone()));
    let out = call(&link_path, Some(w.host()), &env, &conf);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(mac(&ctr, "ecs-eth0"), "0a:58:a9:fe:ac:02");
    assert_eq!(
        routes(&ctr, "-4", "ecs-eth0"),
        vec![
            "169.254.170.2 via 169.254.172.1",
            "169.254.172.1 scope link"
        ]
    );
    // ecs-bridge requires `bridge`
    conf.as_object_mut().unwrap().remove("bridge");
    let other = TestNs::new("bepd");
    env[2].1 = other.path().display().to_string();
    let out = call(&link_path, Some(w.host()), &env, &conf);
    assert_eq!(out.json()["code"], json!(7));
    assert!(
        out.json()["msg"].as_str().unwrap().contains("'bridge'"),
        "{out:?}"
    );
    let out = run_plugin(&link_path, None, &[], b"");
    assert!(out.stderr.starts_with("CNI bridge plugin"), "{out:?}");
}

#[test]
fn ipam_exhaustion_rolls_back_and_leases_nothing() {
    let w = World::new("bex");
    let (a, b) = (TestNs::new("bexa"), TestNs::new("bexb"));
    // a /30: the gateway .1 and one address, .2
    let conf = w.conf("1.0.0", &["10.50.0.0/30"], json!({"isGateway": true}));
    let ra = w.add("ca", &a, "eth0", &conf);
    assert_eq!(address_of(&ra, 0), "10.50.0.2/30");
    let out = w.run("ADD", "cb", Some(&b), "eth0", &conf);
    assert_eq!(out.status, 1, "{out:?}");
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    assert!(msg.starts_with("ADD: IPAM ADD:"), "{msg}");
    assert!(b.link("eth0").is_none(), "veth left in the container");
    assert_eq!(w.host_veths(), vec![host_veth_of(&ra)]);
    assert_eq!(w.leases(), vec!["10.50.0.2"]);
}

/// A failure after IPAM ADD (a conflicting bridge address) releases the lease and removes the
/// veth; the error names the step. `forceAddress` replaces the conflicting address.
#[test]
fn failure_after_ipam_rolls_back() {
    let w = World::new("brb");
    let ctr = TestNs::new("brbc");
    w.host()
        .ip_ok(&["link", "add", &w.bridge, "type", "bridge"]);
    w.host()
        .ip_ok(&["addr", "add", "10.60.0.9/24", "dev", &w.bridge]);
    let conf = w.conf("1.1.0", &["10.60.0.0/24"], json!({"isGateway": true}));
    let out = w.run("ADD", "c1", Some(&ctr), "eth0", &conf);
    assert_eq!(out.status, 1, "{out:?}");
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with(&format!(
            "ADD: add gateway 10.60.0.1/24 to bridge {}:",
            w.bridge
        )) && msg.contains("already has address 10.60.0.9/24"),
        "{msg}"
    );
    assert!(ctr.link("eth0").is_none(), "veth left in the container");
    assert!(w.host_veths().is_empty(), "veth left on the host");
    assert!(w.leases().is_empty(), "lease kept");
    assert_eq!(addrs(w.host(), &w.bridge), vec!["10.60.0.9/24"]);

    let mut forced = conf.clone();
    forced["forceAddress"] = json!(true);
    let res = w.add("c1", &ctr, "eth0", &forced);
    assert_eq!(address_of(&res, 0), "10.60.0.3/24");
    assert_eq!(addrs(w.host(), &w.bridge), vec!["10.60.0.1/24"]);
}

#[test]
fn del_succeeds_when_the_netns_is_gone() {
    let w = World::new("bdg");
    let ctr = TestNs::new("bdgc");
    let netns = ctr.path().display().to_string();
    let conf = w.conf("1.1.0", &["10.70.0.0/24"], json!({"ipMasq": true}));
    let res = w.add("cg", &ctr, "eth0", &conf);
    let veth = host_veth_of(&res);
    assert_eq!(w.leases().len(), 1);
    drop(ctr);
    let prev = with_prev_result(&conf, &res);
    for ns in [netns.as_str(), ""] {
        let out = call(
            &bin("bridge"),
            Some(w.host()),
            &cni_env("DEL", "cg", ns, "eth0"),
            &prev,
        );
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, ""),
            "netns {ns:?}: {out:?}"
        );
    }
    assert!(w.leases().is_empty(), "IPAM DEL must run without the netns");
    assert!(nft_comments(w.host()).is_empty(), "masquerade rule left");
    eventually("the host veth is gone with its namespace", || {
        w.host().link(&veth).is_none()
    });
}

#[test]
fn check_detects_a_removed_address_and_route() {
    let w = World::new("bck");
    let ctr = TestNs::new("bckc");
    let conf = w.conf(
        "1.1.0",
        &["10.80.0.0/24"],
        json!({"isDefaultGateway": true, "mtu": 1400}),
    );
    let res = w.add("ck", &ctr, "eth0", &conf);
    let prev = with_prev_result(&conf, &res);
    let out = w.run("CHECK", "ck", Some(&ctr), "eth0", &prev);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    ctr.ip_ok(&["addr", "del", "10.80.0.2/24", "dev", "eth0"]);
    let out = w.run("CHECK", "ck", Some(&ctr), "eth0", &prev);
    assert_eq!(out.status, 1);
    assert_eq!(
        out.json()["msg"],
        json!(format!(
            "CHECK: the kernel's state differs from prevResult: eth0: address 10.80.0.2/24 is missing; eth0: route 0.0.0.0/0 via 10.80.0.1 dev eth0 is missing"
        ))
    );
    // a changed MTU and a detached host end are named too
    ctr.ip_ok(&["addr", "add", "10.80.0.2/24", "dev", "eth0"]);
    ctr.ip_ok(&["route", "add", "default", "via", "10.80.0.1"]);
    ctr.ip_ok(&["link", "set", "eth0", "mtu", "1300"]);
    let veth = host_veth_of(&res);
    w.host().ip_ok(&["link", "set", &veth, "nomaster"]);
    let out = w.run("CHECK", "ck", Some(&ctr), "eth0", &prev);
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    assert!(msg.contains("eth0 has MTU 1300 instead of 1400"), "{msg}");
    assert!(
        msg.contains(&format!("{veth} is not attached to bridge {}", w.bridge)),
        "{msg}"
    );
    // CHECK needs prevResult
    let out = w.run("CHECK", "ck", Some(&ctr), "eth0", &conf);
    assert_eq!(out.json()["code"], json!(7), "{out:?}");
    w.del("ck", Some(&ctr), "eth0", &prev);
}

#[test]
fn bad_input_gives_clear_errors_and_leaves_nothing() {
    let w = World::new("bbi");
    let ctr = TestNs::new("bbic");
    let nothing_left = |what: &str| {
        assert!(ctr.link("eth0").is_none(), "{what}: eth0 left");
        assert!(w.host_veths().is_empty(), "{what}: host veth left");
        assert!(w.leases().is_empty(), "{what}: lease left");
    };
    // an existing link of the bridge's name that is not a bridge
    w.host().ip_ok(&[
        "link", "add", &w.bridge, "type", "veth", "peer", "name", "peerx",
    ]);
    let conf = w.conf("1.0.0", &["10.90.0.0/24"], json!({}));
    let out = w.run("ADD", "cb", Some(&ctr), "eth0", &conf);
    assert_eq!(out.json()["code"], json!(100), "{out:?}");
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    let b = &w.bridge;
    assert!(
        msg.starts_with(&format!(
            "ADD: ensure bridge {b}: interface named {b} already exists in netns net:["
        )) && msg.ends_with("but is a veth, not a bridge"),
        "{msg}"
    );
    assert!(ctr.link("eth0").is_none() && w.leases().is_empty());
    w.host().ip_ok(&["link", "del", &w.bridge]);

    let cases: Vec<(Value, u64, &str)> = vec![
        (
            json!({"bridge": "a-very-long-bridge-name"}),
            7,
            "invalid network config: key \"bridge\": \"a-very-long-bridge-name\" is longer than 15 bytes",
        ),
        (
            json!({"mtu": 67}),
            7,
            "invalid network config: key \"mtu\": 67 is outside 68..=65535",
        ),
        (
            json!({"mtu": 65536}),
            7,
            "invalid network config: key \"mtu\": 65536 is outside 68..=65535",
        ),
        (
            json!({"mtu": "1500"}),
            7,
            "invalid network config: key \"mtu\": invalid type",
        ),
        (
            json!({"vlan": 4095}),
            7,
            "invalid network config: key \"vlan\": 4095 is outside 0..=4094",
        ),
        (
            json!({"vlanTrunk": [{"minID": 9}]}),
            7,
            "invalid network config: key \"vlanTrunk[0]\": minID and maxID go together",
        ),
    ];
    for (extra, code, msg) in cases {
        let conf = w.conf("1.0.0", &["10.90.0.0/24"], extra.clone());
        let out = w.run("ADD", "cb", Some(&ctr), "eth0", &conf);
        assert_eq!(out.status, 1, "{extra}");
        assert_eq!(out.json()["code"], json!(code), "{extra}: {out:?}");
        assert!(
            out.json()["msg"].as_str().unwrap().starts_with(msg),
            "{extra}: {out:?}"
        );
        nothing_left(&extra.to_string());
    }
    assert!(
        w.host().link(&w.bridge).is_none(),
        "no bridge for rejected configs"
    );

    // IPAM without the family a route needs: rolled back after IPAM ADD
    let mut conf = w.conf("1.0.0", &["10.90.0.0/24"], json!({}));
    conf["ipam"]["routes"] = json!([{"dst": "::/0"}]);
    let out = w.run("ADD", "cb", Some(&ctr), "eth0", &conf);
    assert_eq!(out.json()["code"], json!(7), "{out:?}");
    assert_eq!(
        out.json()["msg"],
        json!(
            "ADD: IPAM result: IPAM (ipam) result unusable: route ::/0 is IPv6 but IPAM returned no IPv6 address"
        )
    );
    nothing_left("route without its family");

    // an MTU the IPv6 address cannot live with
    let conf = w.conf("1.0.0", &["fd90::/64"], json!({"mtu": 1000}));
    let out = w.run("ADD", "cb", Some(&ctr), "eth0", &conf);
    assert_eq!(out.json()["code"], json!(7), "{out:?}");
    assert!(
        out.json()["msg"]
            .as_str()
            .unwrap()
            .contains("key \"mtu\": 1000 is below 1280"),
        "{out:?}"
    );
    nothing_left("mtu below IPv6's minimum");

    // the container interface already exists
    ctr.ip_ok(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    let out = w.run("ADD", "cb", Some(&ctr), "eth0", &conf);
    assert_eq!(
        out.json()["msg"],
        json!(format!(
            "ADD: create veth eth0: container interface eth0 already exists in netns {}",
            ctr.path().display()
        ))
    );
    assert!(w.leases().is_empty() && w.host_veths().is_empty());
}

#[test]
fn ip_masq_and_mac_spoof_rules_follow_the_attachment() {
    let w = World::new("bnt");
    let (a, b) = (TestNs::new("bnta"), TestNs::new("bntb"));
    let conf = w.conf(
        "1.1.0",
        &["10.95.0.0/24", "fd95::/64"],
        json!({"isGateway": true, "ipMasq": true, "macspoofchk": true}),
    );
    let ra = w.add("ca", &a, "eth0", &conf);
    let rb = w.add("cb", &b, "eth0", &conf);
    let tag = |c: &str| format!("cni-bridge net={} id={c} if=eth0", w.net);
    let mut got = nft_comments(w.host());
    got.sort();
    let mut want = vec![
        tag("ca"),
        tag("ca"),
        tag("ca"),
        tag("cb"),
        tag("cb"),
        tag("cb"),
    ];
    want.sort();
    assert_eq!(
        got, want,
        "one masquerade rule per address and one spoof rule each"
    );
    let rules = w
        .host()
        .exec(Command::new("nft").args(["list", "table", "ip", "cni_bridge_nat"]));
    let text = String::from_utf8_lossy(&rules.stdout);
    assert!(
        text.contains(&format!(
            "ip saddr 10.95.0.2 ip daddr != {{ 10.95.0.0/24, 224.0.0.0/4 }} masquerade comment \"{}\"",
            tag("ca")
        )),
        "{text}"
    );
    let spoof =
        w.host()
            .exec(Command::new("nft").args(["list", "table", "bridge", "cni_bridge_macspoof"]));
    let text = String::from_utf8_lossy(&spoof.stdout);
    assert!(
        text.contains(&format!(
            "iifname \"{}\" ether saddr != {} drop",
            host_veth_of(&ra),
            mac(&a, "eth0")
        )),
        "{text}"
    );
    let prev = with_prev_result(&conf, &ra);
    let out = w.run("CHECK", "ca", Some(&a), "eth0", &prev);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");

    // GC with only cb valid removes ca's rules (and its lease)
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "cb", "ifname": "eth0"}]);
    let out = call(
        &bin("bridge"),
        Some(w.host()),
        &cni_env("GC", "", "", ""),
        &gc,
    );
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    assert_eq!(
        nft_comments(w.host()),
        vec![tag("cb"), tag("cb"), tag("cb")]
    );
    assert!(a.link("eth0").is_some(), "GC does not touch interfaces");
    assert_eq!(w.leases(), vec!["10.95.0.3", "fd95::3"]);
    let out = w.run("CHECK", "ca", Some(&a), "eth0", &prev);
    assert!(
        out.json()["msg"]
            .as_str()
            .unwrap()
            .starts_with("CHECK: IPAM CHECK: no lease"),
        "{out:?}"
    );
    // CHECK names a missing rule
    let flush = w.host().exec(Command::new("nft").args([
        "flush",
        "chain",
        "ip",
        "cni_bridge_nat",
        "postrouting",
    ]));
    assert!(flush.status.success(), "{flush:?}");
    let prev_b = with_prev_result(&conf, &rb);
    let out = w.run("CHECK", "cb", Some(&b), "eth0", &prev_b);
    assert_eq!(
        out.json()["msg"],
        json!(format!(
            "CHECK: the kernel's state differs from prevResult: masquerade rule for 10.95.0.3 is missing from table ip cni_bridge_nat"
        )),
        "{out:?}"
    );

    // DEL removes exactly cb's rules
    w.del("cb", Some(&b), "eth0", &conf);
    assert!(nft_comments(w.host()).is_empty());
    assert!(w.leases().is_empty());
}

#[test]
fn concurrent_adds_share_one_new_bridge() {
    let w = World::new("bcc");
    let ctrs: Vec<TestNs> = (0..4).map(|_| TestNs::new("bccc")).collect();
    let conf = w.conf("1.1.0", &["10.11.0.0/24"], json!({"isGateway": true}));
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = ctrs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (w, conf) = (&w, &conf);
                s.spawn(move || w.add(&format!("cc{i}"), c, "eth0", conf))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(links_of_kind(w.host(), "bridge"), vec![w.bridge.clone()]);
    let br_mac = mac(w.host(), &w.bridge);
    for r in &results {
        assert_eq!(r["interfaces"][0]["mac"], json!(br_mac), "{r}");
        assert_eq!(link(w.host(), &host_veth_of(r))["master"], json!(w.bridge));
    }
    assert_eq!(w.leases().len(), 4);
    assert_eq!(addrs(w.host(), &w.bridge), vec!["10.11.0.1/24"]);
}

#[test]
fn container_mac_sources_and_precedence() {
    let w = World::new("bmc");
    let conf = w.conf("1.1.0", &["10.12.0.0/24"], json!({}));
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({}),
            "IgnoreUnknown=1;MAC=c2:00:00:00:00:03;K8S_POD_NAME=x",
            "c2:00:00:00:00:03",
        ),
        (
            json!({"args": {"cni": {"mac": "c2:00:00:00:00:02"}}}),
            "MAC=c2:00:00:00:00:03",
            "c2:00:00:00:00:02",
        ),
        (
            json!({"args": {"cni": {"mac": "c2:00:00:00:00:02"}}, "runtimeConfig": {"mac": "c2:00:00:00:00:01"}}),
            "MAC=c2:00:00:00:00:03",
            "c2:00:00:00:00:01",
        ),
    ];
    for (i, (extra, cni_args, want)) in cases.into_iter().enumerate() {
        let ctr = TestNs::new("bmcc");
        let mut c = conf.clone();
        merge(&mut c, extra);
        let out = w.run_env(
            "ADD",
            &format!("m{i}"),
            Some(&ctr),
            "eth0",
            &c,
            &[("CNI_ARGS", cni_args)],
        );
        assert_eq!(out.status, 0, "{out:?}");
        assert_eq!(mac(&ctr, "eth0"), want);
        assert_eq!(out.json()["interfaces"][2]["mac"], json!(want));
        // MAC does not upset the in-process IPAM (it knows only IP)
        let out = w.run_env(
            "DEL",
            &format!("m{i}"),
            Some(&ctr),
            "eth0",
            &c,
            &[("CNI_ARGS", cni_args)],
        );
        assert_eq!(out.status, 0, "{out:?}");
    }
    assert!(w.leases().is_empty());
}

#[test]
fn port_flags_promisc_layer2_and_disabled_interface() {
    let w = World::new("bpf");
    let ctr = TestNs::new("bpfc");
    let conf = json!({"cniVersion": "1.0.0", "name": w.net, "type": "bridge", "bridge": w.bridge,
        "hairpinMode": true, "portIsolation": true});
    let res = w.add("p1", &ctr, "eth0", &conf);
    // layer 2 only: no IPAM, no addresses, container end up
    assert!(res.get("ips").is_none(), "{res}");
    let port = link(w.host(), &host_veth_of(&res));
    assert_eq!(
        port["linkinfo"]["info_slave_data"]["hairpin"],
        json!(true),
        "{port}"
    );
    assert_eq!(
        port["linkinfo"]["info_slave_data"]["isolated"],
        json!(true),
        "{port}"
    );
    assert!(
        link(&ctr, "eth0")["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("UP"))
    );
    w.del("p1", Some(&ctr), "eth0", &conf);

    let conf = json!({"cniVersion": "1.0.0", "name": w.net, "type": "bridge", "bridge": w.bridge,
        "promiscMode": true, "disableContainerInterface": true});
    let res = w.add("p2", &ctr, "eth0", &conf);
    assert!(link(w.host(), &w.bridge)["promiscuity"].as_u64().unwrap() >= 1);
    assert!(
        !link(&ctr, "eth0")["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("UP"))
    );
    let port = link(w.host(), &host_veth_of(&res));
    assert_eq!(
        port["linkinfo"]["info_slave_data"]["hairpin"],
        json!(false),
        "{port}"
    );
    w.del("p2", Some(&ctr), "eth0", &conf);
}

#[test]
fn non_string_cni_version_is_a_decode_error() {
    assert_non_string_cni_version_is_a_decode_error("bridge");
}

#[test]
fn version_and_capabilities() {
    assert_version_about_and_capabilities("bridge", &["awsvpc-network-mode"]);
}
