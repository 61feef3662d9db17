//! Black-box tests of the `branch-eni` binary.
//!
//! The host kernel has no 802.1Q, so the tests here cover what needs no VLAN: STATUS (code 50)
//! and ADD ("no 802.1Q support") on this kernel, config and CNI_ARGS errors, a missing trunk,
//! an MTU above the trunk's, a name clash, rollback of the trunk's up state, DEL when things
//! are gone, VERSION. Every ADD that fails is checked to leave nothing behind.
//!
//! The tests that need VLANs run inside user-mode-linux, in the system tier
//! (`tests/system/tests/branch_eni_vlan`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::{Value, json};
use test_support::branch_eni::*;
use test_support::*;

/// Whether this kernel can create 802.1Q links (asked with ip(8) in a throwaway namespace).
fn kernel_has_8021q() -> bool {
    let ns = TestNs::new("bek");
    ns.ip_ok(&["link", "add", "p0", "type", "veth", "peer", "name", "p1"]);
    ns.ip(&[
        "link", "add", "link", "p0", "name", "p0.5", "type", "vlan", "id", "5",
    ])
    .status
    .success()
}

#[test]
fn status_is_unavailable_without_8021q() {
    let t = Trunked::new("bes", 1500);
    let conf = vlan_conf("1.1.0", &t.name, 101, "0a:00:00:00:00:01");
    let out = t.call_env(cni_env("STATUS", "", "", ""), &conf);
    if kernel_has_8021q() {
        assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
        return;
    }
    assert_eq!(
        failure(&out),
        (
            50,
            "no 802.1Q VLAN support in this kernel (module 8021q missing and not loadable): \
             branch ENIs cannot be created"
                .to_string()
        )
    );
    // STATUS needs no trunk, no namespace, not even a valid branch config
    let out = t.call_env(
        cni_env("STATUS", "", "", ""),
        &json!({"cniVersion": "1.1.0", "name": "n", "type": "branch-eni"}),
    );
    assert_eq!(failure(&out).0, 50);
    // STATUS and GC exist from 1.1.0 on
    let out = t.call_env(
        cni_env("STATUS", "", "", ""),
        &vlan_conf("1.0.0", &t.name, 101, "0a:00:00:00:00:01"),
    );
    assert_eq!(failure(&out).0, 1);
    let out = t.call_env(cni_env("GC", "", "", ""), &conf);
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
}

#[test]
fn add_without_8021q_fails_clearly_and_restores_the_trunk() {
    if kernel_has_8021q() {
        let _ = writeln!(
            std::io::stderr(),
            "this kernel has 802.1Q: the VLAN tests run in the vm module instead"
        );
        return;
    }
    let t = Trunked::new("ben", 1500);
    let ctr = TestNs::new("ben");
    // a trunk that is down: ADD brings it up, and back down when it fails
    t.sim.host.ip_ok(&["link", "set", &t.name, "down"]);
    let before = t.host_links();
    for v in VERSIONS {
        for (conf, mode) in [
            (vlan_conf(v, &t.name, 101, "0a:00:00:00:00:01"), "vlan"),
            (
                json!({"cniVersion": v, "name": "n", "type": "vpc-branch-eni",
                       "trunkMACAddress": t.mac, "branchVlanID": 7, "branchMACAddress": "0a:00:00:00:00:07",
                       "interfaceType": "tap", "uid": "1000", "gid": "1000"}),
                "tap",
            ),
            (
                json!({"cniVersion": v, "name": "n", "type": "vpc-branch-eni",
                       "trunkName": t.name, "branchVlanID": "8", "branchMACAddress": "0a:00:00:00:00:08",
                       "interfaceType": "macvtap"}),
                "macvtap",
            ),
        ] {
            let out = t.call("ADD", "ctr-1", &ctr, "eth0", &conf);
            let (code, msg) = failure(&out);
            let vlan = conf["branchVlanID"].to_string().replace('"', "");
            assert_eq!(code, 101, "{v} {mode}: {msg}");
            assert_eq!(
                msg,
                format!(
                    "no 802.1Q VLAN support in this kernel (module 8021q missing and not loadable): \
                     cannot create VLAN {vlan} on trunk {}",
                    t.name
                ),
                "{v} {mode}"
            );
            assert_eq!(link_names(&ctr), only_lo(), "{v} {mode}: links left behind");
            assert_eq!(t.host_links(), before, "{v} {mode}");
            let flags = t.sim.host.link(&t.name).unwrap()["flags"].to_string();
            assert!(
                !flags.contains("\"UP\""),
                "{v} {mode}: trunk left up: {flags}"
            );
        }
    }
}

#[test]
fn bad_input_gives_clear_errors_and_leaves_nothing() {
    let t = Trunked::new("beb", 1500);
    let ctr = TestNs::new("beb");
    let before = t.host_links();
    let base = vlan_conf("1.0.0", &t.name, 101, "0a:00:00:00:00:01");
    let with = |pairs: &[(&str, Value)]| {
        let mut c = base.clone();
        for (k, v) in pairs {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(*k);
            } else {
                c[*k] = v.clone();
            }
        }
        c
    };
    let t_name = t.name.clone();
    let cases: Vec<(Value, &str, u64, String)> = vec![
        (
            with(&[("branchVlanID", json!("0"))]),
            "",
            7,
            "invalid network config: key \"branchVlanID\": 0 is not a usable VLAN id (1..=4094)".into(),
        ),
        (
            with(&[("branchVlanID", json!(4095))]),
            "",
            7,
            "invalid network config: key \"branchVlanID\": 4095 is not a usable VLAN id (1..=4094)".into(),
        ),
        (
            with(&[("branchMACAddress", json!("0a:00:00:00:00:zz"))]),
            "",
            7,
            "invalid network config: key \"branchMACAddress\": \"0a:00:00:00:00:zz\" is not a MAC address (expected aa:bb:cc:dd:ee:ff)".into(),
        ),
        (
            with(&[("interfaceType", json!("tap"))]),
            "",
            7,
            "invalid network config: interfaceType \"tap\" requires key \"uid\" (the owner of the TAP device)".into(),
        ),
        (
            with(&[("interfaceType", json!("tap")), ("uid", json!("1000"))]),
            "",
            7,
            "invalid network config: interfaceType \"tap\" requires key \"gid\" (the owner of the TAP device)".into(),
        ),
        (
            with(&[("interfaceType", Value::Null)]),
            "",
            7,
            "invalid network config: interfaceType \"tap\" (the default) requires key \"uid\" (the owner of the TAP device)".into(),
        ),
        (
            with(&[("interfaceType", json!("ipvlan"))]),
            "",
            7,
            "invalid network config: key \"interfaceType\": unknown value \"ipvlan\" (expected \"vlan\", \"tap\" or \"macvtap\")".into(),
        ),
        (
            with(&[("trunkName", Value::Null)]),
            "",
            7,
            "invalid network config: missing required key \"trunkName\" or \"trunkMACAddress\"".into(),
        ),
        (
            base.clone(),
            "BranchVlanID=5000",
            4,
            "invalid CNI_ARGS \"BranchVlanID=5000\": 5000 is not a usable VLAN id (1..=4094)".into(),
        ),
        (
            base.clone(),
            "IgnoreUnknown=1;BranchMACAddress=01:00:5e:00:00:01",
            4,
            "invalid CNI_ARGS \"BranchMACAddress=01:00:5e:00:00:01\": \"01:00:5e:00:00:01\" is a multicast MAC address".into(),
        ),
        (
            with(&[("trunkName", json!("nosuchtrunk0"))]),
            "",
            11,
            "trunk interface nosuchtrunk0 not found in the host network namespace net:[".into(),
        ),
        (
            with(&[("trunkName", Value::Null), ("trunkMACAddress", json!("0a:ff:ff:ff:ff:01"))]),
            "",
            11,
            "trunk interface with MAC 0a:ff:ff:ff:ff:01 not found in the host network namespace net:[".into(),
        ),
        (
            with(&[("mtu", json!(9001))]),
            "",
            7,
            format!("key \"mtu\": 9001 is larger than the MTU 1500 of trunk {t_name}"),
        ),
    ];
    for (conf, args, code, msg) in cases {
        let mut env = cni_env("ADD", "ctr-1", &ctr.path().display().to_string(), "eth0");
        env.push(("CNI_ARGS".into(), args.into()));
        let out = t.call_env(env, &conf);
        let (got_code, got_msg) = failure(&out);
        assert_eq!(got_code, code, "{conf} {args}: {got_msg}");
        assert!(
            got_msg.starts_with(&msg),
            "{conf} {args}:\n  got  {got_msg}\n  want {msg}"
        );
        assert_eq!(link_names(&ctr), only_lo(), "{conf}");
        assert_eq!(t.host_links(), before, "{conf}");
    }
}

#[test]
fn an_interface_name_in_use_is_refused_before_anything_is_created() {
    let t = Trunked::new("bet", 1500);
    let ctr = TestNs::new("bet");
    ctr.ip_ok(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "other",
    ]);
    let out = t.call(
        "ADD",
        "ctr-1",
        &ctr,
        "eth0",
        &vlan_conf("1.1.0", &t.name, 101, "0a:00:00:00:00:01"),
    );
    assert_eq!(
        failure(&out),
        (
            100,
            format!(
                "interface eth0 already exists in netns {} (a veth link, not created by this \
                 plugin for this container and interface)",
                ctr.path().display()
            )
        )
    );
    let names: BTreeSet<String> = ["eth0", "lo", "other"].map(String::from).into();
    assert_eq!(link_names(&ctr), names);
}

#[test]
fn del_succeeds_when_things_are_gone_and_never_needs_the_trunk() {
    let t = Trunked::new("bed", 1500);
    let ctr = TestNs::new("bed");
    ctr.ip_ok(&[
        "link", "add", "keep0", "type", "veth", "peer", "name", "keep1",
    ]);
    let before = link_names(&ctr);
    let missing_trunk = json!({"cniVersion": "1.1.0", "name": "n", "type": "vpc-branch-eni",
        "trunkMACAddress": "0a:ff:ff:ff:ff:02", "branchVlanID": "101",
        "branchMACAddress": "0a:00:00:00:00:01", "interfaceType": "vlan"});
    let gone = TestNs::new("bed");
    let gone_path = gone.path().display().to_string();
    drop(gone);
    for conf in [
        vlan_conf("1.1.0", &t.name, 101, "0a:00:00:00:00:01"),
        missing_trunk,
    ] {
        for netns in [
            ctr.path().display().to_string(),
            gone_path.clone(),
            String::new(),
        ] {
            for round in 0..2 {
                let out = t.call_env(cni_env("DEL", "ctr-1", &netns, "eth0"), &conf);
                assert_eq!(
                    (out.status, out.stdout.as_str(), out.stderr.as_str()),
                    (0, "", ""),
                    "DEL #{round} netns {netns:?}: {out:?}"
                );
            }
        }
    }
    // the untagged veth in the namespace is not ours: untouched
    assert_eq!(link_names(&ctr), before);
    // a bad config is still an error on DEL
    let out = t.call(
        "DEL",
        "ctr-1",
        &ctr,
        "eth0",
        &json!({"cniVersion": "1.1.0", "name": "n", "trunkName": "x", "branchVlanID": "0"}),
    );
    assert_eq!(failure(&out).0, 7);
}

#[test]
fn del_deletes_the_links_tagged_for_the_attachment_and_nothing_else() {
    let t = Trunked::new("bea", 1500);
    let ctr = TestNs::new("bea");
    for (name, peer, alias) in [
        ("eth0", "p0", Some("cni:ctr-1/eth0")),
        ("eth1", "p1", Some("cni:ctr-1/eth1")),
        ("eth2", "p2", Some("cni:ctr-2/eth0")),
        ("eth3", "p3", None),
    ] {
        ctr.ip_ok(&["link", "add", name, "type", "veth", "peer", "name", peer]);
        if let Some(a) = alias {
            ctr.ip_ok(&["link", "set", name, "alias", a]);
        }
    }
    let mut env = cni_env("DEL", "ctr-1", &ctr.path().display().to_string(), "eth0");
    env.push(("CNI_LOG_LEVEL".into(), "info".into()));
    let out = t.call_env(env, &vlan_conf("1.1.0", "gone0", 101, "0a:00:00:00:00:01"));
    assert_eq!((out.status, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(
        out.stderr.contains("deleting veth link eth0 (index"),
        "{}",
        out.stderr
    );
    let left: BTreeSet<String> = ["eth1", "eth2", "eth3", "lo", "p1", "p2", "p3"]
        .map(String::from)
        .into();
    assert_eq!(link_names(&ctr), left);
}

/// Keys in the spellings Go's `encoding/json` accepts (cni_spec::gojson) reach the kernel step
/// (the trunk and VLAN named by folded keys, `null` keys unset, the later spelling winning,
/// CNI_ARGS still case-sensitive and overriding), and errors name the key as written. The
/// VLAN itself is checked in the guest (vm::go_spellings_nulls_and_cni_args_every_version).
#[test]
fn go_spellings_are_read_and_errors_name_the_key_as_written() {
    let t = Trunked::new("beg", 1500);
    let ctr = TestNs::new("beg");
    let before = t.host_links();
    let conf = |v: &str| {
        json!({"cniVersion": v, "name": "n", "type": "vpc-branch-eni",
            "TRUNKNAME": "not-this-one", "trunkname": t.name, "TrunkMACAddress": null,
            "BranchVlanId": "101", "BRANCHMACADDRESS": "0a:00:00:00:00:01",
            "IpAddresses": ["10.101.0.5/24"], "GatewayIpAddresses": ["10.101.0.1"],
            "BlockInstanceMetadata": null, "InterfaceType": "vlan", "MTU": null})
    };
    if !kernel_has_8021q() {
        for v in VERSIONS {
            for (args, vlan) in [("", "101"), ("BranchVlanID=102;branchvlanid=7", "102")] {
                let mut env = cni_env("ADD", "ctr-1", &ctr.path().display().to_string(), "eth0");
                env.push(("CNI_ARGS".into(), format!("IgnoreUnknown=1;{args}")));
                let (code, msg) = failure(&t.call_env(env, &conf(v)));
                assert_eq!(code, 101, "{v}: {msg}");
                assert_eq!(
                    msg,
                    format!(
                        "no 802.1Q VLAN support in this kernel (module 8021q missing and not loadable): \
                         cannot create VLAN {vlan} on trunk {}",
                        t.name
                    ),
                    "{v} {args:?}"
                );
                assert_eq!(link_names(&ctr), only_lo(), "{v}");
                assert_eq!(t.host_links(), before, "{v}");
            }
        }
    }
    for (key, value, want) in [
        (
            "BranchVlanId",
            json!("0"),
            "invalid network config: key \"BranchVlanId\": 0 is not a usable VLAN id (1..=4094)",
        ),
        (
            "IpAddresses",
            json!(["10.101.0.5"]),
            "invalid network config: key \"IpAddresses\": \"10.101.0.5\" has no prefix length (expected e.g. 10.0.1.17/24)",
        ),
        (
            "trunkname",
            json!(7),
            "invalid network config: key \"trunkname\": expected a string, got 7",
        ),
    ] {
        let mut c = conf("1.0.0");
        c[key] = value;
        let out = t.call("ADD", "ctr-1", &ctr, "eth0", &c);
        assert_eq!(failure(&out), (7, want.to_string()), "{key}");
    }
}

#[test]
fn non_string_cni_version_is_a_decode_error() {
    assert_non_string_cni_version_is_a_decode_error("branch-eni");
}

#[test]
fn version_capabilities_and_about() {
    assert_version_about_and_capabilities("branch-eni", &["awsvpc-network-mode"]);
}
