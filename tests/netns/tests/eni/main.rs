//! Black-box tests of the `eni` binary. The plugin runs inside a simulated host namespace
//! (never the real host) that holds a fake ENI: a veth end with the ENI's MAC whose peer sits in
//! a "subnet" namespace answering as IPv4/IPv6 gateway. Every test asserts kernel state (with
//! `ip -j`) and the plugin's exact output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod concurrency;
mod harness;
mod imds;
mod kill9;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::*;

const MAC: &str = "0a:1b:2c:3d:4e:5f";
const GW4: &str = "10.0.1.1/24";
const GW6: &str = "2001:db8:1::1/64";

struct Fix {
    sim: SimHost,
    eni: netns_fixtures::FakeEni,
    ctr: TestNs,
}

impl Fix {
    /// A simulated host with one fake ENI (MTU 1500 on the host end; the subnet end is raised
    /// to 9001 so jumbo frames work once the plugin sets the ENI's MTU) and a container.
    fn new(prefix: &str) -> Fix {
        let sim = SimHost::new(prefix);
        let eni = sim.add_fake_eni(MAC, Some(GW4), Some(GW6), 1500);
        sim.subnet
            .ip_ok(&["link", "set", &eni.peer_name, "mtu", "9001"]);
        let ctr = TestNs::new(&format!("{prefix}c"));
        Fix { sim, eni, ctr }
    }

    fn netns(&self) -> String {
        self.ctr.path().display().to_string()
    }

    fn call(&self, verb: &str, ifname: &str, conf: &Value) -> PluginOutput {
        self.call_env(verb, ifname, conf, &[])
    }

    fn call_env(
        &self,
        verb: &str,
        ifname: &str,
        conf: &Value,
        extra: &[(&str, &str)],
    ) -> PluginOutput {
        let mut env = cni_env(verb, "ctr-1", &self.netns(), ifname);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        call(&bin("eni"), Some(&self.sim.host), &env, conf)
    }

    /// The ENI as it is in the host: (mtu, up, alias), or None if it is not there.
    fn in_host(&self) -> Option<(u64, bool, String)> {
        self.sim.host.link(&self.eni.name).map(|l| state(&l))
    }

    /// CHECK with `prev` (a config carrying the ADD's result) succeeds and prints nothing.
    fn check_ok(&self, ifname: &str, prev: &Value) {
        let check = self.call("CHECK", ifname, prev);
        assert_eq!((check.status, check.stdout.as_str()), (0, ""), "{check:?}");
    }

    /// DEL with `conf` succeeds, and the ENI is back in the host with its own name, MTU 1500,
    /// down, alias cleared.
    fn del_gives_the_eni_back(&self, ifname: &str, conf: &Value) {
        let del = self.call("DEL", ifname, conf);
        assert_eq!(del.status, 0, "{del:?}");
        assert_eq!(self.in_host(), Some((1500, false, String::new())));
    }

    /// The tail of a successful ADD: CHECK with its result succeeds, then DEL with it gives the
    /// ENI back to the host ([`Fix::check_ok`], [`Fix::del_gives_the_eni_back`]).
    fn check_then_del(&self, ifname: &str, conf: &Value, add: &PluginOutput) {
        let prev = with_prev_result(conf, &add.json());
        self.check_ok(ifname, &prev);
        self.del_gives_the_eni_back(ifname, &prev);
    }

    /// Asserts the ENI is in the host exactly as the fixture made it (name, MAC, MTU 1500,
    /// up, no alias) and not in the container.
    fn assert_untouched(&self, what: &str) {
        let link = self
            .sim
            .host
            .link(&self.eni.name)
            .unwrap_or_else(|| panic!("{what}: ENI {} is not in the host", self.eni.name));
        assert_eq!(link["address"], MAC, "{what}");
        assert_eq!(state(&link), (1500, true, String::new()), "{what}");
        assert_eq!(ctr_links(&self.ctr), vec!["lo".to_string()], "{what}");
    }
}

/// (mtu, admin up, alias) of an `ip -j link` object.
fn state(l: &Value) -> (u64, bool, String) {
    (
        l["mtu"].as_u64().unwrap(),
        l["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        l["ifalias"].as_str().unwrap_or("").to_string(),
    )
}

fn ctr_links(ns: &TestNs) -> Vec<String> {
    ns.ip_json(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

fn route_get_ok(ns: &TestNs, dst: &str) -> bool {
    ns.ip(&["route", "get", dst]).status.success()
}

fn ping(ns: &TestNs, dst: &str, size: &str) -> bool {
    ns.exec(
        Command::new("ping")
            .args(["-c1", "-W2", "-M", "do", "-s", size, dst])
            .stdout(Stdio::null()),
    )
    .status
    .success()
}

fn ecs_conf(v: &str, addrs: &[&str], gws: &[&str]) -> Value {
    json!({"cniVersion": v, "name": "eni-net", "type": "eni", "eni": "eni-0123456789abcdef0",
           "mac": MAC, "ip-addresses": addrs, "gateway-ip-addresses": gws,
           "block-instance-metadata": true, "mtu": 9001})
}

fn vpc_conf(v: &str, addrs: &[&str], gws: &[&str], block: bool) -> Value {
    json!({"cniVersion": v, "name": "eni-net", "type": "eni", "eniMACAddress": MAC,
           "eniIPAddresses": addrs, "gatewayIPAddresses": gws, "blockInstanceMetadata": block})
}

fn ip_entry(v: &str, addr: &str, gw: Option<&str>) -> Value {
    let mut e = json!({"interface": 0, "address": addr});
    if let Some(g) = gw {
        e["gateway"] = json!(g);
    }
    if has_ip_version(v) {
        let fam = if addr.contains(':') { "6" } else { "4" };
        let mut m = serde_json::Map::new();
        m.insert("version".into(), json!(fam));
        for (k, val) in e.as_object().unwrap() {
            m.insert(k.clone(), val.clone());
        }
        e = Value::Object(m);
    }
    e
}

fn expected_result(v: &str, netns: &str, mtu: u64, ips: Vec<Value>, routes: Vec<Value>) -> Value {
    let mut iface = json!({"name": "eth0", "mac": MAC, "sandbox": netns});
    if v == "1.1.0" {
        iface = json!({"name": "eth0", "mac": MAC, "mtu": mtu, "sandbox": netns});
    }
    let mut want = json!({"cniVersion": v, "interfaces": [iface], "ips": ips});
    if !routes.is_empty() {
        want["routes"] = json!(routes);
    }
    if v != "1.1.0" {
        want["dns"] = json!({});
    }
    want
}

#[test]
fn ipv4_only_every_version() {
    let f = Fix::new("eniv");
    for v in VERSIONS {
        let ctr = TestNs::new("enivc");
        let netns = ctr.path().display().to_string();
        let run = |verb: &str, conf: &Value| {
            let env = cni_env(verb, "ctr-1", &netns, "eth0");
            call(&bin("eni"), Some(&f.sim.host), &env, conf)
        };
        let conf = vpc_conf(v, &["10.0.1.17/24"], &["10.0.1.1"], true);

        let add = run("ADD", &conf);
        assert_eq!(add.status, 0, "{v} ADD: {add:?}");
        assert_eq!(add.stderr, "", "{v}");
        assert_eq!(
            add.json(),
            expected_result(
                v,
                &netns,
                1500,
                vec![ip_entry(v, "10.0.1.17/24", Some("10.0.1.1"))],
                vec![json!({"dst": "0.0.0.0/0", "gw": "10.0.1.1"})]
            ),
            "{v}"
        );
        assert!(f.in_host().is_none(), "{v}: ENI left the host");
        let link = ctr.link("eth0").unwrap();
        assert_eq!(link["address"], MAC);
        assert_eq!(
            state(&link),
            (1500, true, format!("cni-eni:1:1500:{}:", f.eni.name))
        );
        assert_eq!(global_addrs(&ctr, "eth0"), vec!["10.0.1.17/24"]);
        let r4 = main_routes(&ctr, "-4");
        assert!(
            r4.contains(&"default 10.0.1.1 eth0 -".to_string()),
            "{r4:?}"
        );
        assert!(
            r4.contains(&"169.254.169.254 - - blackhole".to_string()),
            "{r4:?}"
        );
        assert!(!route_get_ok(&ctr, "169.254.169.254"));
        assert!(!route_get_ok(&ctr, "fd00:ec2::254"));
        assert!(ping(&ctr, "10.0.1.1", "56"), "{v}: gateway reachable");

        let with_prev = with_prev_result(&conf, &add.json());
        let check = run("CHECK", &with_prev);
        if allows_check(v) {
            assert_eq!(
                (check.status, check.stdout.as_str()),
                (0, ""),
                "{v} CHECK: {check:?}"
            );
        } else {
            assert_eq!(check.status, 1, "{v}: CHECK refused: {check:?}");
            assert_eq!(check.json()["code"], 1, "{v}: CHECK refused");
        }
        for verb in ["STATUS", "GC"] {
            let out = call(
                &bin("eni"),
                Some(&f.sim.host),
                &cni_env(verb, "", "", ""),
                &conf,
            );
            if allows_gc_status(v) {
                assert_eq!(
                    (out.status, out.stdout.as_str()),
                    (0, ""),
                    "{v} {verb}: {out:?}"
                );
            } else {
                assert_eq!(out.status, 1, "{v} {verb}: {out:?}");
                assert_eq!(out.json()["code"], 1, "{v} {verb}");
            }
        }
        if allows_gc_status(v) {
            // GC naming this attachment as valid leaves the ENI in the task, configured
            let mut gc = conf.clone();
            gc["cni.dev/valid-attachments"] = json!([{"containerID": "ctr-1", "ifname": "eth0"}]);
            let out = call(
                &bin("eni"),
                Some(&f.sim.host),
                &cni_env("GC", "", "", ""),
                &gc,
            );
            assert_eq!(
                (out.status, out.stdout.as_str()),
                (0, ""),
                "{v} GC: {out:?}"
            );
            assert_eq!(ctr.link("eth0").unwrap()["address"], MAC, "{v} after GC");
            assert_eq!(global_addrs(&ctr, "eth0"), vec!["10.0.1.17/24"]);
        }

        let del_conf = if allows_check(v) {
            with_prev.clone()
        } else {
            conf.clone()
        };
        for round in 0..2 {
            let del = run("DEL", &del_conf);
            assert_eq!(
                (del.status, del.stdout.as_str()),
                (0, ""),
                "{v} DEL #{round}: {del:?}"
            );
            // back in the host: original name and MTU, alias cleared, down
            assert_eq!(
                f.in_host(),
                Some((1500, false, String::new())),
                "{v} DEL #{round}"
            );
            assert_eq!(ctr_links(&ctr), vec!["lo".to_string()]);
        }
        if allows_check(v) {
            let check = run("CHECK", &with_prev);
            assert_eq!(check.status, 1, "{v}: CHECK after DEL");
            assert!(
                check.json()["msg"]
                    .as_str()
                    .unwrap()
                    .contains("no interface eth0"),
                "{check:?}"
            );
        }
        // the ENI is reused by the next version: bring it up like the fixture made it
        f.sim.host.ip_ok(&["link", "set", &f.eni.name, "up"]);
    }
}

#[test]
fn dual_stack_jumbo_mtu_end_to_end() {
    let f = Fix::new("enid");
    let conf = ecs_conf(
        "1.1.0",
        &["10.0.1.17/24", "2001:db8:1::17/64"],
        &["10.0.1.1", "2001:db8:1::1"],
    );
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(
        add.json(),
        expected_result(
            "1.1.0",
            &f.netns(),
            9001,
            vec![
                ip_entry("1.1.0", "10.0.1.17/24", Some("10.0.1.1")),
                ip_entry("1.1.0", "2001:db8:1::17/64", Some("2001:db8:1::1")),
            ],
            vec![
                json!({"dst": "0.0.0.0/0", "gw": "10.0.1.1"}),
                json!({"dst": "::/0", "gw": "2001:db8:1::1"}),
            ]
        )
    );
    let link = f.ctr.link("eth0").unwrap();
    assert_eq!(state(&link).0, 9001);
    assert_eq!(
        global_addrs(&f.ctr, "eth0"),
        vec!["10.0.1.17/24", "2001:db8:1::17/64"]
    );
    let r6 = main_routes(&f.ctr, "-6");
    assert!(
        r6.contains(&"default 2001:db8:1::1 eth0 -".to_string()),
        "{r6:?}"
    );
    assert!(
        r6.contains(&"fd00:ec2::254 - lo blackhole".to_string()),
        "{r6:?}"
    );
    // 8,000-byte pings with DF set reach both gateways: MTU 9001 end to end, IPv6 usable at once
    assert!(ping(&f.ctr, "10.0.1.1", "8000"), "IPv4 jumbo ping");
    assert!(ping(&f.ctr, "2001:db8:1::1", "8000"), "IPv6 jumbo ping");
    assert!(!route_get_ok(&f.ctr, "169.254.169.254"));
    assert!(!route_get_ok(&f.ctr, "fd00:ec2::254"));

    // DEL restores the MTU to the host's 1500
    f.check_then_del("eth0", &conf, &add);
}

#[test]
fn ipv6_only() {
    let f = Fix::new("eni6");
    let conf = vpc_conf("1.0.0", &["2001:db8:1::17/64"], &["2001:db8:1::1"], true);
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(
        add.json(),
        expected_result(
            "1.0.0",
            &f.netns(),
            1500,
            vec![ip_entry(
                "1.0.0",
                "2001:db8:1::17/64",
                Some("2001:db8:1::1")
            )],
            vec![json!({"dst": "::/0", "gw": "2001:db8:1::1"})]
        )
    );
    assert_eq!(global_addrs(&f.ctr, "eth0"), vec!["2001:db8:1::17/64"]);
    assert!(main_routes(&f.ctr, "-4").contains(&"169.254.169.254 - - blackhole".to_string()));
    assert!(main_routes(&f.ctr, "-6").contains(&"default 2001:db8:1::1 eth0 -".to_string()));
    assert!(ping(&f.ctr, "2001:db8:1::1", "56"));
    assert!(!route_get_ok(&f.ctr, "fd00:ec2::254"));
    f.check_then_del("eth0", &conf, &add);
}

#[test]
fn metadata_not_blocked_is_reachable_through_the_gateway() {
    let f = Fix::new("enim");
    let conf = vpc_conf(
        "1.0.0",
        &["10.0.1.17/24", "2001:db8:1::17/64"],
        &["10.0.1.1", "2001:db8:1::1"],
        false,
    );
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    assert!(route_get_ok(&f.ctr, "169.254.169.254"));
    assert!(route_get_ok(&f.ctr, "fd00:ec2::254"));
    let got = f.ctr.ip_ok(&["route", "get", "169.254.169.254"]);
    assert!(got.contains("via 10.0.1.1 dev eth0"), "{got}");
    assert!(
        main_routes(&f.ctr, "-4")
            .iter()
            .all(|r| !r.ends_with("blackhole"))
    );
    assert!(
        main_routes(&f.ctr, "-6")
            .iter()
            .all(|r| !r.ends_with("blackhole"))
    );
}

/// The exact stdin the ECS agent sends to vpc-eni (aws-plugins.md §1), with the plugin
/// installed under the name `vpc-eni`.
#[test]
fn ecs_agent_vpc_eni_config_unchanged() {
    let f = Fix::new("enia");
    let dir = tempdir("enia");
    let link = dir.join("vpc-eni");
    std::os::unix::fs::symlink(bin("eni"), &link).unwrap();
    let stdin = r#"{"type":"vpc-eni","cniVersion":"0.3.0","name":"network-name","dns":{},"eniName":"",
 "eniMACAddress":"0a:1b:2c:3d:4e:5f","eniIPAddresses":["10.0.1.17/24"],
 "gatewayIPAddresses":["10.0.1.1"],"useExistingNetwork":false,"blockInstanceMetadata":true}"#;
    let env = cni_env("ADD", "4f2b8e0c1d", &f.netns(), "eth0");
    let add = run_plugin(&link, Some(&f.sim.host), &as_env(&env), stdin.as_bytes());
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(
        add.stdout,
        format!(
            "{{\"cniVersion\":\"0.3.0\",\"interfaces\":[{{\"name\":\"eth0\",\"mac\":\"{MAC}\",\"sandbox\":\"{}\"}}],\"ips\":[{{\"version\":\"4\",\"interface\":0,\"address\":\"10.0.1.17/24\",\"gateway\":\"10.0.1.1\"}}],\"routes\":[{{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.0.1.1\"}}],\"dns\":{{}}}}\n",
            f.netns()
        )
    );
    assert_eq!(global_addrs(&f.ctr, "eth0"), vec!["10.0.1.17/24"]);
    assert!(!route_get_ok(&f.ctr, "169.254.169.254"));
    // the agent's DEL: same config, no prevResult at 0.3.0
    let env = cni_env("DEL", "4f2b8e0c1d", &f.netns(), "eth0");
    let del = run_plugin(&link, Some(&f.sim.host), &as_env(&env), stdin.as_bytes());
    assert_eq!((del.status, del.stdout.as_str()), (0, ""), "{del:?}");
    assert_eq!(f.in_host(), Some((1500, false, String::new())));
    std::fs::remove_dir_all(dir).unwrap();
}

/// ecs-agent netlib's ecs-eni config (dialect chosen by `type`), with MTU 9001.
#[test]
fn ecs_eni_config_unchanged() {
    let f = Fix::new("enie");
    let dir = tempdir("enie");
    let link = dir.join("ecs-eni");
    std::os::unix::fs::symlink(bin("eni"), &link).unwrap();
    let stdin = r#"{"type":"ecs-eni","cniVersion":"0.3.0","name":"network-name","eni":"eni-0123456789abcdef0","mac":"0a:1b:2c:3d:4e:5f","ip-addresses":["10.0.1.17/24"],"gateway-ip-addresses":["10.0.1.1"],"block-instance-metadata":true,"stay-down":false,"mtu":9001}"#;
    let env = cni_env("ADD", "4f2b8e0c1d", &f.netns(), "eth0");
    let add = run_plugin(&link, Some(&f.sim.host), &as_env(&env), stdin.as_bytes());
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(
        add.json(),
        expected_result(
            "0.3.0",
            &f.netns(),
            9001,
            vec![ip_entry("0.3.0", "10.0.1.17/24", Some("10.0.1.1"))],
            vec![json!({"dst": "0.0.0.0/0", "gw": "10.0.1.1"})]
        )
    );
    assert_eq!(state(&f.ctr.link("eth0").unwrap()).0, 9001);
    assert!(ping(&f.ctr, "10.0.1.1", "8000"));
    // --version / --capabilities as the agent asks them
    let caps = run_plugin(&link, None, &[("CNI_COMMAND", "")], b"");
    assert_eq!(caps.status, 0);
    let out = Command::new(&link).arg("--capabilities").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"capabilities":["awsvpc-network-mode"]}"#
    );
    let env = cni_env("DEL", "4f2b8e0c1d", &f.netns(), "eth0");
    let del = run_plugin(&link, Some(&f.sim.host), &as_env(&env), stdin.as_bytes());
    assert_eq!(del.status, 0, "{del:?}");
    assert_eq!(f.in_host(), Some((1500, false, String::new())));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Keys in the spellings Go's `encoding/json` accepts (cni_spec::gojson), in both dialects and
/// every version: any case, the later of two spellings wins (`Mtu` then `mtu`), `null` is not
/// set. The folded keys take effect in the kernel.
#[test]
fn go_spellings_and_nulls_in_both_dialects_every_version() {
    let f = Fix::new("enig");
    for v in VERSIONS {
        let vpc = json!({"cniVersion": v, "name": "eni-net", "type": "eni", "eniName": null,
            "ENIMACAddress": MAC, "EniIPAddresses": ["10.0.1.17/24"],
            "GATEWAYIPADDRESSES": ["10.0.1.1"], "blockinstancemetadata": true, "OpStateDown": null,
            "Mtu": 1500, "mtu": 9001});
        let ecs = json!({"cniVersion": v, "name": "eni-net", "type": "ecs-eni",
            "ENI": "eni-0123456789abcdef0", "MAC": MAC, "IP-Addresses": ["10.0.1.17/24"],
            "Gateway-IP-Addresses": ["10.0.1.1"], "BLOCK-INSTANCE-METADATA": true,
            "stay-down": null, "MTU": 9001});
        for conf in [vpc, ecs] {
            let what = format!("{v} {}", conf["type"]);
            let add = f.call("ADD", "eth0", &conf);
            assert_eq!(add.status, 0, "{what}: {add:?}");
            assert_eq!(
                add.json(),
                expected_result(
                    v,
                    &f.netns(),
                    9001,
                    vec![ip_entry(v, "10.0.1.17/24", Some("10.0.1.1"))],
                    vec![json!({"dst": "0.0.0.0/0", "gw": "10.0.1.1"})]
                ),
                "{what}"
            );
            let link = f.ctr.link("eth0").unwrap();
            assert_eq!(link["address"], MAC, "{what}");
            assert_eq!(
                state(&link),
                (9001, true, format!("cni-eni:1:1500:{}:", f.eni.name)),
                "{what}"
            );
            assert_eq!(global_addrs(&f.ctr, "eth0"), vec!["10.0.1.17/24"], "{what}");
            assert!(
                main_routes(&f.ctr, "-4").contains(&"default 10.0.1.1 eth0 -".to_string()),
                "{what}"
            );
            assert!(
                !route_get_ok(&f.ctr, "169.254.169.254"),
                "{what}: IMDS blocked"
            );
            assert!(ping(&f.ctr, "10.0.1.1", "8000"), "{what}: jumbo frames");
            let with_prev = with_prev_result(&conf, &add.json());
            if allows_check(v) {
                let check = f.call("CHECK", "eth0", &with_prev);
                assert_eq!(
                    (check.status, check.stdout.as_str()),
                    (0, ""),
                    "{what} CHECK: {check:?}"
                );
            }
            let del = f.call("DEL", "eth0", &with_prev);
            assert_eq!(
                (del.status, del.stdout.as_str()),
                (0, ""),
                "{what}: {del:?}"
            );
            assert_eq!(f.in_host(), Some((1500, false, String::new())), "{what}");
            f.sim.host.ip_ok(&["link", "set", &f.eni.name, "up"]);
        }
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        netns_fixtures::unique_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn late_eni_is_waited_for() {
    let sim = SimHost::new("enil");
    let ctr = TestNs::new("enilc");
    let netns = ctr.path().display().to_string();
    let conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "eni", "eniMACAddress": MAC,
        "eniIPAddresses": ["10.0.1.17/24"], "gatewayIPAddresses": ["10.0.1.1"], "eniWaitTimeout": "10s"});
    let start = Instant::now();
    let add = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(400));
            // the ENI "attaches": built under another MAC, then given the ENI's in one step
            let e = sim.add_fake_eni("0a:00:00:00:00:99", Some(GW4), None, 1500);
            sim.host.ip_ok(&["link", "set", &e.name, "address", MAC]);
        });
        call(
            &bin("eni"),
            Some(&sim.host),
            &cni_env("ADD", "c", &netns, "eth0"),
            &conf,
        )
    });
    let took = start.elapsed();
    assert_eq!(add.status, 0, "{add:?}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(global_addrs(&ctr, "eth0"), vec!["10.0.1.17/24"]);
    assert!(ping(&ctr, "10.0.1.1", "56"));
}

/// The ENI appears after ADD started waiting, found by name alone: it is renamed to the
/// configured `eniName` while ADD waits (the wait follows the kernel's link notifications, so
/// a rename is seen as well as a new link), and no other link is taken meanwhile.
#[test]
fn late_eni_is_found_by_name_when_renamed_while_waiting() {
    let sim = SimHost::new("enilr");
    let ctr = TestNs::new("enilrc");
    let netns = ctr.path().display().to_string();
    let name = format!("late{}", std::process::id() % 100_000);
    let conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "eni", "eniName": name,
        "eniIPAddresses": ["10.0.1.17/24"], "gatewayIPAddresses": ["10.0.1.1"], "eniWaitTimeout": "10s"});
    let start = Instant::now();
    let add = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            let e = sim.add_fake_eni(MAC, Some(GW4), None, 1500);
            std::thread::sleep(Duration::from_millis(200));
            sim.host.ip_ok(&["link", "set", &e.name, "down"]);
            sim.host.ip_ok(&["link", "set", &e.name, "name", &name]);
        });
        call(
            &bin("eni"),
            Some(&sim.host),
            &cni_env("ADD", "c", &netns, "eth0"),
            &conf,
        )
    });
    let took = start.elapsed();
    assert_eq!(add.status, 0, "{add:?}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert_eq!(add.json()["interfaces"][0]["mac"], MAC, "{}", add.json());
    assert_eq!(global_addrs(&ctr, "eth0"), vec!["10.0.1.17/24"]);
    assert!(ping(&ctr, "10.0.1.1", "56"));
}

#[test]
fn eni_that_never_appears_is_code_11_within_the_bound() {
    let sim = SimHost::new("enin");
    let ctr = TestNs::new("eninc");
    let netns = ctr.path().display().to_string();
    let conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "eni", "eniMACAddress": MAC,
        "eniIPAddresses": ["10.0.1.17/24"]});
    // the bound from the environment
    let mut env = cni_env("ADD", "c", &netns, "eth0");
    env.push(("ENI_WAIT_TIMEOUT".into(), "300ms".into()));
    let start = Instant::now();
    let add = call(&bin("eni"), Some(&sim.host), &env, &conf);
    let took = start.elapsed();
    assert_eq!(add.status, 1, "{add:?}");
    let e = add.json();
    assert_eq!(e["code"], 11, "{e}");
    let msg = e["msg"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "ENI with MAC {MAC} not found in the host network namespace"
        )),
        "{msg}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // the bound from the config wins over the environment's
    let mut env = cni_env("ADD", "c", &netns, "eth0");
    env.push(("ENI_WAIT_TIMEOUT".into(), "20s".into()));
    let mut c = conf.clone();
    c["eniWaitTimeout"] = json!(0.1);
    let start = Instant::now();
    let add = call(&bin("eni"), Some(&sim.host), &env, &c);
    assert_eq!(add.json()["code"], 11);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn refuses_the_interface_carrying_the_default_route() {
    let f = Fix::new("enir");
    let primary = f.sim.add_primary_with_default_route();
    let mut conf = vpc_conf("1.0.0", &["10.0.1.17/24"], &["10.0.1.1"], true);
    conf["eniMACAddress"] = json!(primary.mac);
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 1, "{add:?}");
    let e = add.json();
    assert_eq!(e["code"], 7, "{e}");
    let msg = e["msg"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "refusing to move {} (index {}",
            primary.name, primary.index
        )) && msg.contains("default route 0.0.0.0/0 via 198.51.100.1"),
        "{msg}"
    );
    // by name too
    let conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "eni", "eniName": primary.name,
        "eniIPAddresses": ["10.0.1.17/24"]});
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.json()["code"], 7, "{add:?}");
    // the primary keeps its address and default route; nothing reached the container
    assert!(global_addrs(&f.sim.host, &primary.name).contains(&"198.51.100.2/24".to_string()));
    assert!(
        main_routes(&f.sim.host, "-4")
            .contains(&format!("default 198.51.100.1 {} -", primary.name))
    );
    f.assert_untouched("after refusing the primary");
}

#[test]
fn rollback_after_the_kernel_rejects_a_step() {
    let f = Fix::new("enib");
    // the gateway is in no connected subnet: the kernel refuses the default route, after the
    // ENI was moved, renamed, given MTU 9001, addresses and the IMDS blackholes
    let conf = ecs_conf(
        "1.0.0",
        &["10.0.1.17/24", "2001:db8:1::17/64"],
        &["10.9.9.1"],
    );
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 1, "{add:?}");
    let e = add.json();
    assert_eq!(e["code"], 100, "{e}");
    let msg = e["msg"].as_str().unwrap();
    assert!(
        msg.contains("add route 0.0.0.0/0 via 10.9.9.1 dev eth0"),
        "{msg}"
    );
    // back in the host with its name, MTU, alias and up state; nothing left in the container
    f.assert_untouched("after rollback");
    assert!(
        main_routes(&f.ctr, "-4").is_empty(),
        "{:?}",
        main_routes(&f.ctr, "-4")
    );
    assert!(
        main_routes(&f.ctr, "-6")
            .iter()
            .all(|r| !r.ends_with("blackhole"))
    );
    // and a correct ADD works afterwards
    let ok = f.call(
        "ADD",
        "eth0",
        &ecs_conf("1.0.0", &["10.0.1.17/24"], &["10.0.1.1"]),
    );
    assert_eq!(ok.status, 0, "{ok:?}");
    assert!(ping(&f.ctr, "10.0.1.1", "8000"));
}

#[test]
fn taken_ifname_leaves_the_eni_untouched() {
    let f = Fix::new("enit");
    f.ctr.ip_ok(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "other0",
    ]);
    let add = f.call(
        "ADD",
        "eth0",
        &ecs_conf("1.0.0", &["10.0.1.17/24"], &["10.0.1.1"]),
    );
    assert_eq!(add.status, 1, "{add:?}");
    let msg = add.json()["msg"].as_str().unwrap().to_string();
    assert_eq!(
        msg,
        format!(
            "an interface named eth0 already exists in container netns {}",
            f.netns()
        )
    );
    let link = f.sim.host.link(&f.eni.name).unwrap();
    assert_eq!(state(&link), (1500, true, String::new()));
}

#[test]
fn bad_input_is_refused_before_anything_moves() {
    let f = Fix::new("enix");
    let base = || ecs_conf("1.0.0", &["10.0.1.17/24"], &["10.0.1.1"]);
    let with = |k: &str, v: Value| {
        let mut c = base();
        c[k] = v;
        c
    };
    let cases = [
        (
            with("mac", json!("0a:1b:2c:3d:4e")),
            "eth0",
            7,
            "invalid network config: key \"mac\": malformed MAC address \"0a:1b:2c:3d:4e\"",
        ),
        (
            with("ip-addresses", json!(["10.0.1.17"])),
            "eth0",
            7,
            "invalid network config: key \"ip-addresses[0]\": \"10.0.1.17\" has no prefix length",
        ),
        (
            with("gateway-ip-addresses", json!(["10.0.1.1", "2001:db8:1::1"])),
            "eth0",
            7,
            "invalid network config: key \"gateway-ip-addresses\": \"2001:db8:1::1\": no IPv6 address is configured",
        ),
        (
            with("mtu", json!(70000)),
            "eth0",
            7,
            "invalid network config: key \"mtu\": 70000 is out of range",
        ),
        (
            with("mtu", json!(9001.5)),
            "eth0",
            7,
            "invalid network config: key \"mtu\": 9001.5 is not an integer",
        ),
        (
            with("block-instance-metadata", json!("true")),
            "eth0",
            7,
            "invalid network config: key \"block-instance-metadata\": expected a boolean, got a string",
        ),
        (
            base(),
            "averyveryverylongname",
            4,
            "invalid CNI_IFNAME \"averyveryverylongname\"",
        ),
    ];
    for (conf, ifname, code, want) in cases {
        let add = f.call("ADD", ifname, &conf);
        assert_eq!(add.status, 1, "{want}: {add:?}");
        let e = add.json();
        assert_eq!(e["code"], code, "{e}");
        let msg = e["msg"].as_str().unwrap();
        assert!(msg.starts_with(want), "{msg}\nwant: {want}");
        f.assert_untouched(want);
    }
}

#[test]
fn del_twice_and_after_the_netns_is_gone() {
    let f = Fix::new("enig");
    let conf = vpc_conf("1.1.0", &["10.0.1.17/24"], &["10.0.1.1"], true);
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    let netns = f.netns();
    let Fix { sim, eni, ctr } = f;
    // the container dies first: a veth stand-in dies with it (a physical ENI would return to
    // the host namespace instead)
    drop(ctr);
    assert!(!std::path::Path::new(&netns).exists());
    for round in 0..2 {
        let del = call(
            &bin("eni"),
            Some(&sim.host),
            &cni_env("DEL", "ctr-1", &netns, "eth0"),
            &with_prev_result(&conf, &add.json()),
        );
        assert_eq!(
            (del.status, del.stdout.as_str()),
            (0, ""),
            "DEL #{round}: {del:?}"
        );
    }
    assert!(sim.host.link(&eni.name).is_none());
    // without CNI_NETNS at all
    let del = call(
        &bin("eni"),
        Some(&sim.host),
        &cni_env("DEL", "ctr-1", "", "eth0"),
        &conf,
    );
    assert_eq!((del.status, del.stdout.as_str()), (0, ""), "{del:?}");
}

/// When a namespace dies, the kernel returns a physical ENI to the host under the container's
/// name or `devN`, still carrying our alias: DEL restores its name, MTU and alias there.
#[test]
fn del_restores_an_eni_the_kernel_returned() {
    let sim = SimHost::new("eniq");
    let eni = sim.add_fake_eni(MAC, Some(GW4), None, 9001);
    let orig = format!("q{}", netns_fixtures::unique_suffix());
    sim.host.ip_ok(&["link", "set", &eni.name, "down"]);
    sim.host.ip_ok(&[
        "link",
        "set",
        &eni.name,
        "alias",
        &format!("cni-eni:1:1500:{orig}:was here"),
    ]);
    let conf = vpc_conf("1.0.0", &["10.0.1.17/24"], &["10.0.1.1"], true);
    let del = call(
        &bin("eni"),
        Some(&sim.host),
        &cni_env("DEL", "ctr-1", "/run/netns/enq-gone-h4", "eth0"),
        &conf,
    );
    assert_eq!((del.status, del.stdout.as_str()), (0, ""), "{del:?}");
    let link = sim.host.link(&orig).expect("renamed back to its host name");
    assert_eq!(link["address"], MAC);
    assert_eq!(state(&link), (1500, false, "was here".to_string()));
    assert!(sim.host.link(&eni.name).is_none());
}

#[test]
fn check_names_what_differs() {
    let f = Fix::new("enic");
    let conf = ecs_conf(
        "1.0.0",
        &["10.0.1.17/24", "2001:db8:1::17/64"],
        &["10.0.1.1", "2001:db8:1::1"],
    );
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    let prev = with_prev_result(&conf, &add.json());
    f.ctr.ip_ok(&["link", "set", "eth0", "mtu", "1500"]);
    f.ctr
        .ip_ok(&["addr", "del", "2001:db8:1::17/64", "dev", "eth0"]);
    f.ctr
        .ip_ok(&["route", "del", "blackhole", "169.254.169.254"]);
    let check = f.call("CHECK", "eth0", &prev);
    assert_eq!(check.status, 1, "{check:?}");
    let e = check.json();
    assert_eq!(e["code"], 100);
    assert_eq!(
        e["msg"],
        format!(
            "CHECK of eth0 in netns {} failed: mtu is 1500 instead of 9001; address 2001:db8:1::17/64 is missing; route blackhole 169.254.169.254/32 is missing",
            f.netns()
        )
    );
    // a prevResult from someone else's interface
    let mut other = add.json();
    other["interfaces"][0]["mac"] = json!("0a:00:00:00:00:01");
    let check = f.call("CHECK", "eth0", &with_prev_result(&conf, &other));
    assert!(
        check.json()["msg"].as_str().unwrap().contains(&format!(
            "prevResult MAC 0a:00:00:00:00:01 differs from the interface's {MAC}"
        )),
        "{check:?}"
    );
    // CHECK without prevResult
    let check = f.call("CHECK", "eth0", &conf);
    assert_eq!(check.json()["code"], 7, "{check:?}");
}

#[test]
fn stay_down_only_moves() {
    let f = Fix::new("enis");
    let conf = json!({"cniVersion": "1.1.0", "name": "n", "type": "vpc-eni", "eniMACAddress": MAC,
        "eniIPAddresses": ["10.0.1.17/24"], "gatewayIPAddresses": ["10.0.1.1"], "opStateDown": true,
        "blockInstanceMetadata": true});
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(
        add.json(),
        json!({"cniVersion": "1.1.0",
               "interfaces": [{"name": f.eni.name, "mac": MAC, "mtu": 1500, "sandbox": f.netns()}],
               "ips": [{"interface": 0, "address": "10.0.1.17/24", "gateway": "10.0.1.1"}]})
    );
    // in the container under its host name, down, unconfigured
    let link = f.ctr.link(&f.eni.name).unwrap();
    assert_eq!(
        state(&link),
        (1500, false, format!("cni-eni:1:1500:{}:", f.eni.name))
    );
    assert!(global_addrs(&f.ctr, &f.eni.name).is_empty());
    assert!(main_routes(&f.ctr, "-4").is_empty());
    f.check_then_del("eth0", &conf, &add);
}

/// A veth in the container named as the ENI is in the host (its peer `peer`), so the ENI's host
/// name is taken there.
fn take_the_host_name_in_the_container(f: &Fix, peer: &str) {
    f.ctr.ip_ok(&[
        "link",
        "add",
        &f.eni.name,
        "type",
        "veth",
        "peer",
        "name",
        peer,
    ]);
}

#[test]
fn stay_down_with_the_host_name_taken_crosses_under_a_temporary_name() {
    let f = Fix::new("enst");
    take_the_host_name_in_the_container(&f, "xx0");
    let conf = json!({"cniVersion": "1.1.0", "name": "n", "type": "vpc-eni", "eniMACAddress": MAC,
        "eniIPAddresses": ["10.0.1.17/24"], "gatewayIPAddresses": ["10.0.1.1"], "opStateDown": true});
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    // eni + the last three bytes of the MAC
    assert_eq!(
        add.json()["interfaces"],
        json!([{"name": "eni3d4e5f", "mac": MAC, "mtu": 1500, "sandbox": f.netns()}])
    );
    let link = f.ctr.link("eni3d4e5f").unwrap();
    assert_eq!(
        state(&link),
        (1500, false, format!("cni-eni:1:1500:{}:", f.eni.name))
    );
    assert_ne!(f.ctr.link(&f.eni.name).unwrap()["address"], MAC);
    assert!(f.sim.host.link(&f.eni.name).is_none());
    f.check_then_del("eth0", &conf, &add);
    assert!(
        f.ctr.link(&f.eni.name).is_some(),
        "the container's own link is untouched"
    );
}

#[test]
fn host_name_taken_in_the_container_and_ipv6_disabled_there() {
    let f = Fix::new("enih");
    // the container already has a link with the ENI's host name, and IPv6 is off by default
    take_the_host_name_in_the_container(&f, "zz0");
    f.ctr.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
    f.ctr.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
    let conf = ecs_conf(
        "1.1.0",
        &["10.0.1.17/24", "2001:db8:1::17/64"],
        &["10.0.1.1", "2001:db8:1::1"],
    );
    let add = f.call("ADD", "eth1", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(f.ctr.sysctl_get("net.ipv6.conf.eth1.disable_ipv6"), "0");
    assert_eq!(
        global_addrs(&f.ctr, "eth1"),
        vec!["10.0.1.17/24", "2001:db8:1::17/64"]
    );
    assert!(ping(&f.ctr, "2001:db8:1::1", "8000"));
    // crossed back under a temporary name, renamed to its own in the host
    f.check_then_del("eth1", &conf, &add);
    assert!(
        f.ctr.link(&f.eni.name).is_some(),
        "the container's own link is untouched"
    );
}

#[test]
fn repeated_add_is_refused_at_once() {
    let f = Fix::new("enrr");
    let conf = vpc_conf("1.0.0", &["10.0.1.17/24"], &["10.0.1.1"], false);
    assert_eq!(f.call("ADD", "eth0", &conf).status, 0);
    let start = Instant::now();
    let again = f.call("ADD", "eth0", &conf);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "no wait for an ENI that is already in"
    );
    assert_eq!(again.json()["code"], 100, "{again:?}");
    assert_eq!(
        again.json()["msg"],
        format!(
            "ENI with MAC {MAC} is already in container netns {} as eth0",
            f.netns()
        )
    );
    assert_eq!(global_addrs(&f.ctr, "eth0"), vec!["10.0.1.17/24"]);
}

#[test]
fn non_string_cni_version_is_a_decode_error() {
    assert_non_string_cni_version_is_a_decode_error("eni");
}

#[test]
fn version_about_and_capabilities() {
    assert_version_about_and_capabilities("eni", &["awsvpc-network-mode"]);
}

#[test]
fn found_by_eni_name_whose_mac_must_match() {
    let f = Fix::new("enik");
    let wrong = json!({"cniVersion": "1.0.0", "name": "n", "type": "vpc-eni", "eniName": f.eni.name,
        "eniMACAddress": "0a:00:00:00:00:01", "eniIPAddresses": ["10.0.1.17/24"]});
    let add = f.call("ADD", "eth0", &wrong);
    assert_eq!(add.json()["code"], 7, "{add:?}");
    assert_eq!(
        add.json()["msg"],
        format!(
            "host interface {} has MAC {MAC}, but eniMACAddress is 0a:00:00:00:00:01",
            f.eni.name
        )
    );
    f.assert_untouched("after a MAC mismatch");
    // by name alone (the agent's eniName), DEL finds it by CNI_IFNAME and our record
    let conf = json!({"cniVersion": "1.0.0", "name": "n", "type": "vpc-eni", "eniName": f.eni.name,
        "eniIPAddresses": ["10.0.1.17/24"], "gatewayIPAddresses": ["10.0.1.1"]});
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(add.json()["interfaces"][0]["mac"], MAC);
    assert!(ping(&f.ctr, "10.0.1.1", "56"));
    f.check_ok("eth0", &with_prev_result(&conf, &add.json()));
    f.del_gives_the_eni_back("eth0", &conf);
}

/// By MAC, the device wins over a bridge carrying the same MAC and over a bridge port with a
/// shorter name (found from the kernel's "no master" dump); an ENI that is itself a bridge
/// port is still found (by the dump of every link).
#[test]
fn found_by_mac_among_links_sharing_it() {
    let f = Fix::new("enim");
    let h = &f.sim.host;
    h.ip_ok(&["link", "add", "name", "b", "address", MAC, "type", "bridge"]);
    h.ip_ok(&[
        "link", "add", "name", "e", "address", MAC, "master", "b", "type", "veth", "peer", "name",
        "ep",
    ]);
    let conf = vpc_conf("1.0.0", &["10.0.1.5/24"], &["10.0.1.1"], false);
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(f.in_host(), None, "the ENI moved");
    assert_eq!(harness::with_mac(h), ["b", "e"]);
    assert_eq!(harness::with_mac(&f.ctr), ["eth0"]);
    assert!(ping(&f.ctr, "10.0.1.1", "56"));
    f.check_then_del("eth0", &conf, &add);

    h.ip_ok(&["link", "del", "e"]);
    h.ip_ok(&["link", "set", &f.eni.name, "master", "b"]);
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    assert_eq!(harness::with_mac(h), ["b"]);
    assert_eq!(harness::with_mac(&f.ctr), ["eth0"]);
    f.del_gives_the_eni_back("eth0", &conf);
}

#[test]
fn rollback_when_the_host_name_is_taken_in_the_container() {
    let f = Fix::new("enio");
    take_the_host_name_in_the_container(&f, "yy0");
    let conf = ecs_conf("1.1.0", &["10.0.1.17/24"], &["10.9.9.1"]);
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.json()["code"], 100, "{add:?}");
    // back under its own name, MTU, no alias, up again; the container's link is untouched
    let link = f.sim.host.link(&f.eni.name).unwrap();
    assert_eq!(state(&link), (1500, true, String::new()));
    assert_eq!(link["address"], MAC);
    let mut names = ctr_links(&f.ctr);
    names.sort();
    let mut want = vec!["lo".to_string(), f.eni.name.clone(), "yy0".to_string()];
    want.sort();
    assert_eq!(names, want);
    assert_ne!(f.ctr.link(&f.eni.name).unwrap()["address"], MAC);
}

/// What the ECS agent sends for a dual-stack ENI: no IPv6 gateway (the VPC router's RAs supply
/// the IPv6 default route), so the plugin adds none and leaves RAs accepted.
#[test]
fn dual_stack_without_ipv6_gateway_leaves_router_advertisements_accepted() {
    let f = Fix::new("enip");
    let conf = vpc_conf(
        "1.1.0",
        &["10.0.1.17/24", "2001:db8:1::17/64"],
        &["10.0.1.1"],
        true,
    );
    let add = f.call("ADD", "eth0", &conf);
    assert_eq!(add.status, 0, "{add:?}");
    let r = add.json();
    assert_eq!(
        r["ips"],
        json!([
            {"interface": 0, "address": "10.0.1.17/24", "gateway": "10.0.1.1"},
            {"interface": 0, "address": "2001:db8:1::17/64"}
        ])
    );
    assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.0.1.1"}]));
    assert!(
        !main_routes(&f.ctr, "-6")
            .iter()
            .any(|r| r.starts_with("default")),
        "{:?}",
        main_routes(&f.ctr, "-6")
    );
    assert_eq!(f.ctr.sysctl_get("net.ipv6.conf.eth0.accept_ra"), "1");
    assert_eq!(f.ctr.sysctl_get("net.ipv6.conf.eth0.forwarding"), "0");
    assert_eq!(
        global_addrs(&f.ctr, "eth0"),
        vec!["10.0.1.17/24", "2001:db8:1::17/64"]
    );
    // the subnet is on-link: the IPv6 gateway answers without a default route
    assert!(ping(&f.ctr, "2001:db8:1::1", "56"));
    f.check_ok("eth0", &with_prev_result(&conf, &r));
}
