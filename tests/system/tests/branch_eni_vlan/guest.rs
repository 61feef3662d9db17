//! The VLAN tests of `branch-eni` (module `guest` of the `branch_eni_vlan` test binary).
//!
//! They need 802.1Q, tun/tap and macvtap, which the host kernel lacks, so they are `#[ignore]`d
//! and run inside user-mode-linux: `vm_tests_pass_inside_user_mode_linux` boots one guest and
//! runs `branch_eni_vlan-<hash> --ignored --test-threads=1 guest::` there with `IN_UML=1`. Each test
//! refuses to run elsewhere, with a message saying so.
//!
//! The fixture: a trunk (a veth end in the simulated host namespace, where the plugin runs)
//! whose peer in the "subnet" namespace carries 802.1Q sub-interfaces `v101` and `v102` that
//! answer as gateways `10.<vlan>.0.1/24` and `fd00:<vlan>::1/64`. A branch reaches its gateway
//! only if its frames leave the trunk tagged with its VLAN id.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::*;

use test_support::branch_eni::*;

fn in_guest() {
    assert_eq!(
        std::env::var("IN_UML").as_deref(),
        Ok("1"),
        "this test needs 802.1Q and runs inside user-mode-linux: \
         cargo test --test branch_eni vm_tests_pass_inside_user_mode_linux"
    );
    assert!(
        Path::new("/proc/net/vlan").exists(),
        "8021q is not loaded in this kernel"
    );
}

/// A trunk with MTU `mtu` whose peer carries the VLAN 101 and 102 gateways.
fn subnet_with_vlans(prefix: &str, mtu: u32) -> Trunked {
    in_guest();
    let t = Trunked::new(prefix, mtu);
    for vlan in ["101", "102"] {
        let sub = format!("v{vlan}");
        let s = &t.sim.subnet;
        s.ip_ok(&[
            "link", "add", "link", &t.peer, "name", &sub, "type", "vlan", "id", vlan,
        ]);
        s.ip_ok(&["addr", "add", &format!("10.{vlan}.0.1/24"), "dev", &sub]);
        s.ip_ok(&[
            "addr",
            "add",
            &format!("fd00:{vlan}::1/64"),
            "dev",
            &sub,
            "nodad",
        ]);
        s.ip_ok(&["link", "set", &sub, "up"]);
    }
    t
}

/// One ping; `wait` seconds for the answer.
fn ping_within(ns: &TestNs, dst: &str, wait: u32) -> bool {
    let wait = wait.to_string();
    ns.exec(Command::new("ping").args(["-c", "1", "-W", &wait, dst]))
        .status
        .success()
}

fn ping(ns: &TestNs, dst: &str) -> bool {
    ping_within(ns, dst, 5)
}

/// The MAC the subnet namespace learned for `ip` on `dev`.
fn neighbour(ns: &TestNs, dev: &str, ip: &str) -> Option<String> {
    ns.ip_json(&["neigh", "show", "dev", dev])
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["dst"] == json!(ip))
        .and_then(|n| n["lladdr"].as_str().map(String::from))
}

/// `ip -j addr show dev` as `local/prefixlen` strings, failing on tentative addresses.
fn addresses(ns: &TestNs, dev: &str) -> Vec<String> {
    let v = ns.ip_json(&["addr", "show", "dev", dev]);
    v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["scope"] == json!("global"))
        .map(|a| {
            assert!(a.get("tentative").is_none(), "tentative address {a}");
            format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"])
        })
        .collect()
}

/// `(type, dst, gateway, dev)` of the main table's routes of one family.
fn routes(ns: &TestNs, family: &str) -> Vec<(String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    ns.ip_json(&[family, "route", "show", "table", "main"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("type").map(s).unwrap_or_else(|| "unicast".into()),
                s(&r["dst"]),
                s(&r["gateway"]),
                s(&r["dev"]),
            )
        })
        .collect()
}

fn route(kind: &str, dst: &str, gw: &str, dev: &str) -> (String, String, String, String) {
    (kind.into(), dst.into(), gw.into(), dev.into())
}

/// The vlan-mode ADD result as printed for version `v`.
fn vlan_result(
    v: &str,
    netns: &TestNs,
    mac: &str,
    mtu: u32,
    ips: &[(&str, Option<&str>)],
    gws: &[&str],
) -> Value {
    let mut iface =
        json!({"name": "eth0", "mac": mac, "sandbox": netns.path().display().to_string()});
    if v == "1.1.0" {
        iface["mtu"] = json!(mtu);
    }
    let ips: Vec<Value> = ips
        .iter()
        .map(|(addr, gw)| {
            let mut ip = json!({"interface": 0, "address": addr});
            if let Some(gw) = gw {
                ip["gateway"] = json!(gw);
            }
            if has_ip_version(v) {
                ip["version"] = json!(if addr.contains(':') { "6" } else { "4" });
            }
            ip
        })
        .collect();
    let routes: Vec<Value> = gws
        .iter()
        .map(|gw| {
            let dst = if gw.contains(':') {
                "::/0"
            } else {
                "0.0.0.0/0"
            };
            json!({"dst": dst, "gw": gw})
        })
        .collect();
    let mut want = json!({"cniVersion": v, "interfaces": [iface]});
    if !ips.is_empty() {
        want["ips"] = json!(ips);
    }
    if !routes.is_empty() {
        want["routes"] = json!(routes);
    }
    if v != "1.1.0" {
        want["dns"] = json!({});
    }
    want
}

fn dual_stack_conf(v: &str, trunk: &str, vlan: u16, mac: &str) -> Value {
    let mut c = vlan_conf(v, trunk, vlan, mac);
    c["ipAddresses"] = json!([format!("10.{vlan}.0.5/24"), format!("fd00:{vlan}::5/64")]);
    c["gatewayIPAddresses"] = json!([format!("10.{vlan}.0.1"), format!("fd00:{vlan}::1")]);
    c
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn two_branches_reach_their_own_gateways_over_tagged_frames() {
    let t = subnet_with_vlans("bev", 9001);
    // the trunk starts down: ADD brings it up
    t.sim.host.ip_ok(&["link", "set", &t.name, "down"]);
    let (a, b) = (TestNs::new("bea"), TestNs::new("beb"));

    // A: VLAN 101 by trunk name, dual-stack, the trunk's MTU
    let conf_a = dual_stack_conf("1.1.0", &t.name, 101, "0a:00:00:00:01:01");
    let out = t.call("ADD", "ctr-a", &a, "eth0", &conf_a);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(
        out.json(),
        vlan_result(
            "1.1.0",
            &a,
            "0a:00:00:00:01:01",
            9001,
            &[
                ("10.101.0.5/24", Some("10.101.0.1")),
                ("fd00:101::5/64", Some("fd00:101::1"))
            ],
            &["10.101.0.1", "fd00:101::1"]
        )
    );
    assert!(is_up(&t.sim.host.link(&t.name).unwrap()), "trunk not up");

    // B: found by the trunk's MAC (as the ECS agent does), everything per container from
    // CNI_ARGS, MTU 1500
    let conf_b = json!({"cniVersion": "0.3.0", "name": "network-name", "type": "vpc-branch-eni",
        "trunkMACAddress": t.mac.to_uppercase(), "branchVlanID": "999",
        "branchMACAddress": "0a:00:00:00:09:99", "ipAddresses": ["10.9.9.9/24"],
        "gatewayIPAddresses": ["10.9.9.1"], "blockInstanceMetadata": false,
        "interfaceType": "vlan", "mtu": 1500});
    let mut env = cni_env("ADD", "ctr-b", &b.path().display().to_string(), "eth0");
    env.push((
        "CNI_ARGS".into(),
        "K8S_POD_NAME=x;BranchVlanID=102;BranchMACAddress=0a:00:00:00:01:02;\
         IPAddresses=10.102.0.5/24;GatewayIPAddresses=10.102.0.1"
            .into(),
    ));
    let out = t.call_env(env, &conf_b);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(
        out.json(),
        vlan_result(
            "0.3.0",
            &b,
            "0a:00:00:00:01:02",
            1500,
            &[("10.102.0.5/24", Some("10.102.0.1"))],
            &["10.102.0.1"]
        )
    );

    // kernel state of each branch
    for (ns, ctr, vlan, mac, mtu) in [
        (&a, "ctr-a", 101, "0a:00:00:00:01:01", 9001),
        (&b, "ctr-b", 102, "0a:00:00:00:01:02", 1500),
    ] {
        let l = ns.link("eth0").unwrap();
        assert_eq!(l["linkinfo"]["info_kind"], json!("vlan"), "{l}");
        assert_eq!(l["linkinfo"]["info_data"]["protocol"], json!("802.1Q"));
        assert_eq!(l["linkinfo"]["info_data"]["id"], json!(vlan));
        assert_eq!(l["address"], json!(mac));
        assert_eq!(l["mtu"], json!(mtu));
        assert_eq!(l["ifalias"], json!(format!("cni:{ctr}/eth0")));
        assert!(
            l["link_netnsid"].is_number(),
            "parent not in another netns: {l}"
        );
        assert!(is_up(&l), "{l}");
        assert_eq!(link_names(ns), ["eth0", "lo"].map(String::from).into());
    }
    assert_eq!(addresses(&a, "eth0"), ["10.101.0.5/24", "fd00:101::5/64"]);
    assert_eq!(addresses(&b, "eth0"), ["10.102.0.5/24"]);
    let v4 = routes(&a, "-4");
    assert!(
        v4.contains(&route("unicast", "default", "10.101.0.1", "eth0")),
        "{v4:?}"
    );
    let v6 = routes(&a, "-6");
    assert!(
        v6.contains(&route("unicast", "default", "fd00:101::1", "eth0")),
        "{v6:?}"
    );
    // no IMDS blackholes unless asked for
    assert!(!v4.iter().any(|r| r.0 == "blackhole"), "{v4:?}");

    // traffic: each branch reaches the gateway of its own VLAN, over IPv4 and IPv6
    assert!(
        ping(&a, "10.101.0.1"),
        "A cannot reach its VLAN 101 gateway"
    );
    assert!(
        ping(&a, "fd00:101::1"),
        "A cannot reach its VLAN 101 IPv6 gateway"
    );
    assert!(
        ping(&b, "10.102.0.1"),
        "B cannot reach its VLAN 102 gateway"
    );
    // ... and the subnet saw each branch's MAC on the right VLAN only
    let s = &t.sim.subnet;
    assert_eq!(
        neighbour(s, "v101", "10.101.0.5").as_deref(),
        Some("0a:00:00:00:01:01")
    );
    assert_eq!(
        neighbour(s, "v101", "fd00:101::5").as_deref(),
        Some("0a:00:00:00:01:01")
    );
    assert_eq!(
        neighbour(s, "v102", "10.102.0.5").as_deref(),
        Some("0a:00:00:00:01:02")
    );
    assert_eq!(neighbour(s, "v102", "10.101.0.5"), None);
    assert_eq!(neighbour(s, "v101", "10.102.0.5"), None);
    // no untagged frame was answered on the trunk's peer itself
    assert_eq!(
        s.ip_json(&["-4", "neigh", "show", "dev", &t.peer]),
        json!([])
    );
    // the subnet does not route between the VLANs: B cannot reach A
    assert!(
        !ping_within(&b, "10.101.0.5", 1),
        "VLANs 101 and 102 are not isolated"
    );

    for (ns, ctr, conf) in [(&a, "ctr-a", &conf_a), (&b, "ctr-b", &conf_b)] {
        assert_ok_silent(&t.call("DEL", ctr, ns, "eth0", conf), "DEL");
        assert_eq!(link_names(ns), only_lo());
    }
    // the trunk stays up after DEL
    assert!(is_up(&t.sim.host.link(&t.name).unwrap()));
}

/// Keys in the spellings Go's `encoding/json` accepts (cni_spec::gojson): any case, `null` for
/// unset, the later of two spellings winning; CNI_ARGS (case-sensitive, as vpc-branch-eni)
/// still override the config. Every version.
#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn go_spellings_nulls_and_cni_args_every_version() {
    let t = subnet_with_vlans("beg", 9001);
    let a = TestNs::new("bega");
    for v in VERSIONS {
        let conf = json!({"cniVersion": v, "name": "n", "type": "vpc-branch-eni",
            "TRUNKNAME": "not-this-one", "trunkname": t.name, "TrunkMACAddress": null,
            "BranchVlanId": "999", "BRANCHMACADDRESS": "0a:00:00:00:03:01",
            "IpAddresses": ["10.101.0.7/24"], "GatewayIpAddresses": ["10.101.0.1"],
            "BlockInstanceMetadata": null, "InterfaceType": "vlan", "MTU": 1500, "mtu": null});
        // the VLAN id comes from CNI_ARGS (an exact-case key; a folded one is not read)
        let mut env = cni_env("ADD", "ctr-g", &a.path().display().to_string(), "eth0");
        env.push((
            "CNI_ARGS".into(),
            "IgnoreUnknown=1;BranchVlanID=101;branchvlanid=102".into(),
        ));
        let out = t.call_env(env, &conf);
        assert_eq!(out.status, 0, "{v}: {out:?}");
        assert_eq!(
            out.json(),
            vlan_result(
                v,
                &a,
                "0a:00:00:00:03:01",
                1500,
                &[("10.101.0.7/24", Some("10.101.0.1"))],
                &["10.101.0.1"]
            ),
            "{v}"
        );
        let l = a.link("eth0").unwrap();
        assert_eq!(l["linkinfo"]["info_data"]["id"], json!(101), "{v}: {l}");
        assert_eq!(l["address"], json!("0a:00:00:00:03:01"), "{v}");
        assert_eq!(l["mtu"], json!(1500), "{v}");
        assert_eq!(addresses(&a, "eth0"), ["10.101.0.7/24"], "{v}");
        assert!(!routes(&a, "-4").iter().any(|r| r.0 == "blackhole"), "{v}");
        assert!(ping(&a, "10.101.0.1"), "{v}: VLAN 101 gateway unreachable");
        let mut conf_101 = conf.clone();
        conf_101["BranchVlanId"] = json!(101);
        let with_prev = with_prev_result(&conf_101, &out.json());
        if allows_check(v) {
            assert_ok_silent(&t.call("CHECK", "ctr-g", &a, "eth0", &with_prev), "CHECK");
        }
        assert_ok_silent(&t.call("DEL", "ctr-g", &a, "eth0", &with_prev), "DEL");
        assert_eq!(link_names(&a), only_lo(), "{v}");
    }
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn instance_metadata_is_blocked_when_asked() {
    let t = subnet_with_vlans("bem", 1500);
    let a = TestNs::new("bem");
    let mut conf = dual_stack_conf("1.0.0", &t.name, 101, "0a:00:00:00:02:01");
    conf["blockInstanceMetadata"] = json!(true);
    let out = t.call("ADD", "ctr-m", &a, "eth0", &conf);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(routes(&a, "-4").contains(&route("blackhole", "169.254.169.254", "", "")));
    assert!(routes(&a, "-6").contains(&route("blackhole", "fd00:ec2::254", "", "lo")));
    assert!(!ping_within(&a, "169.254.169.254", 1));
    assert!(ping(&a, "10.101.0.1"), "the gateway must stay reachable");
    let with_prev = with_prev_result(&conf, &out.json());
    assert_ok_silent(&t.call("CHECK", "ctr-m", &a, "eth0", &with_prev), "CHECK");
    // a removed blackhole is a difference CHECK names
    a.ip_ok(&["route", "del", "blackhole", "169.254.169.254"]);
    let (code, msg) = failure(&t.call("CHECK", "ctr-m", &a, "eth0", &with_prev));
    assert_eq!(code, 100);
    assert!(
        msg.ends_with("route blackhole 169.254.169.254/32 is missing"),
        "{msg}"
    );
    assert_ok_silent(&t.call("DEL", "ctr-m", &a, "eth0", &with_prev), "DEL");
    assert_eq!(link_names(&a), only_lo());
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn tap_mode_bridges_a_tap_owned_by_uid_and_gid() {
    let t = subnet_with_vlans("bep", 9001);
    let a = TestNs::new("bep");
    let netns = a.path().display().to_string();
    let conf = json!({"cniVersion": "1.1.0", "name": "fc", "type": "vpc-branch-eni",
        "trunkName": t.name, "branchVlanID": "101", "branchMACAddress": "0a:00:00:00:03:01",
        "ipAddresses": ["10.101.0.5/24"], "gatewayIPAddresses": ["10.101.0.1"],
        "interfaceType": "tap", "uid": "1234", "gid": 5678, "blockInstanceMetadata": true});
    let out = t.call("ADD", "ctr-t", &a, "tap0", &conf);
    assert_eq!(out.status, 0, "{out:?}");
    let res = out.json();
    let vlan_name = format!("{}.101", t.name);
    let br_mac = res["interfaces"][1]["mac"].as_str().unwrap().to_string();
    assert_eq!(
        res,
        json!({"cniVersion": "1.1.0",
            "interfaces": [
                {"name": "tap0", "mac": "0a:00:00:00:03:01", "mtu": 9001, "sandbox": netns},
                {"name": "tapbr101", "mac": br_mac, "mtu": 9001, "sandbox": netns},
                {"name": vlan_name, "mac": br_mac, "mtu": 9001, "sandbox": netns}],
            "ips": [{"interface": 0, "address": "10.101.0.5/24", "gateway": "10.101.0.1"}]})
    );
    let first = u8::from_str_radix(&br_mac[..2], 16).unwrap();
    assert_eq!(
        first & 3,
        2,
        "bridge MAC {br_mac} is not locally administered unicast"
    );

    let tap = a.link("tap0").unwrap();
    assert_eq!(tap["linkinfo"]["info_kind"], json!("tun"));
    assert_eq!(
        tap["linkinfo"]["info_data"],
        json!({"type": "tap", "pi": false, "vnet_hdr": true, "multi_queue": false,
            "persist": true, "user": 1234, "group": 5678})
    );
    assert_eq!(tap["master"], json!("tapbr101"));
    assert_eq!(tap["mtu"], json!(9001));
    assert!(is_up(&tap));
    let sysfs = a.exec(
        Command::new("ip")
            .args(["netns", "exec", a.name(), "cat"])
            .args(["owner", "group", "tun_flags"].map(|f| format!("/sys/class/net/tap0/{f}"))),
    );
    let sysfs = String::from_utf8_lossy(&sysfs.stdout).to_string();
    let lines: Vec<&str> = sysfs.lines().collect();
    assert_eq!(&lines[..2], ["1234", "5678"], "{sysfs}");
    let tun_flags = u32::from_str_radix(lines[2].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(tun_flags & 0x4000, 0x4000, "IFF_VNET_HDR missing: {sysfs}");
    assert_eq!(tun_flags & 0x0002, 0x0002, "IFF_TAP missing: {sysfs}");

    let br = a.link("tapbr101").unwrap();
    assert_eq!(br["linkinfo"]["info_kind"], json!("bridge"));
    assert_eq!(br["mtu"], json!(9001));
    assert_eq!(br["address"], json!(br_mac));
    assert!(is_up(&br));
    let vlan = a.link(&vlan_name).unwrap();
    assert_eq!(vlan["linkinfo"]["info_kind"], json!("vlan"));
    assert_eq!(vlan["linkinfo"]["info_data"]["id"], json!(101));
    assert_eq!(vlan["master"], json!("tapbr101"));
    assert_eq!(vlan["address"], json!(br_mac));
    assert!(is_up(&vlan));
    for l in [&tap, &br, &vlan] {
        assert_eq!(l["ifalias"], json!("cni:ctr-t/tap0"), "{l}");
    }
    assert!(routes(&a, "-4").contains(&route("blackhole", "169.254.169.254", "", "")));

    let with_prev = with_prev_result(&conf, &res);
    assert_ok_silent(&t.call("CHECK", "ctr-t", &a, "tap0", &with_prev), "CHECK");
    // a retried ADD succeeds with the same links
    let again = t.call("ADD", "ctr-t", &a, "tap0", &conf);
    assert_eq!(again.status, 0, "{again:?}");
    assert_eq!(again.json(), res);
    // the TAP leaves the bridge: CHECK says so
    a.ip_ok(&["link", "set", "tap0", "nomaster"]);
    let (_, msg) = failure(&t.call("CHECK", "ctr-t", &a, "tap0", &with_prev));
    assert!(msg.contains("tap0 is not enslaved to a bridge"), "{msg}");
    assert_ok_silent(&t.call("DEL", "ctr-t", &a, "tap0", &with_prev), "DEL");
    assert_eq!(link_names(&a), only_lo());
    assert_ok_silent(&t.call("DEL", "ctr-t", &a, "tap0", &with_prev), "DEL again");
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn macvtap_mode_puts_a_passthru_macvtap_on_the_vlan() {
    let t = subnet_with_vlans("bec", 9001);
    let a = TestNs::new("bec");
    let netns = a.path().display().to_string();
    let conf = json!({"cniVersion": "1.0.0", "name": "vm", "type": "vpc-branch-eni",
        "trunkName": t.name, "branchVlanID": 102, "branchMACAddress": "0a:00:00:00:04:02",
        "interfaceType": "macvtap"});
    let out = t.call("ADD", "ctr-v", &a, "eth0", &conf);
    assert_eq!(out.status, 0, "{out:?}");
    let vlan_name = format!("{}.102", t.name);
    assert_eq!(
        out.json(),
        json!({"cniVersion": "1.0.0",
            "interfaces": [
                {"name": "eth0", "mac": "0a:00:00:00:04:02", "sandbox": netns},
                {"name": vlan_name, "mac": "0a:00:00:00:04:02", "sandbox": netns}],
            "dns": {}})
    );
    let mvt = a.link("eth0").unwrap();
    assert_eq!(mvt["linkinfo"]["info_kind"], json!("macvtap"));
    assert_eq!(mvt["linkinfo"]["info_data"]["mode"], json!("passthru"));
    assert_eq!(mvt["link"], json!(vlan_name));
    assert_eq!(mvt["address"], json!("0a:00:00:00:04:02"));
    assert!(is_up(&mvt));
    let vlan = a.link(&vlan_name).unwrap();
    assert_eq!(vlan["linkinfo"]["info_data"]["id"], json!(102));
    assert_eq!(vlan["address"], json!("0a:00:00:00:04:02"));
    assert_eq!(vlan["mtu"], json!(9001));
    assert!(is_up(&vlan));
    // the macvtap's character device exists
    let ifindex = mvt["ifindex"].as_u64().unwrap();
    assert!(Path::new(&format!("/dev/tap{ifindex}")).exists());
    let with_prev = with_prev_result(&conf, &out.json());
    assert_ok_silent(&t.call("CHECK", "ctr-v", &a, "eth0", &with_prev), "CHECK");
    assert_ok_silent(&t.call("DEL", "ctr-v", &a, "eth0", &with_prev), "DEL");
    assert_eq!(link_names(&a), only_lo());
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn a_vlan_id_in_use_is_refused_naming_its_owner_but_a_retried_add_succeeds() {
    let t = subnet_with_vlans("beu", 1500);
    let (a, b) = (TestNs::new("beu"), TestNs::new("beu"));
    let conf = dual_stack_conf("1.1.0", &t.name, 101, "0a:00:00:00:05:01");
    let first = t.call("ADD", "ctr-a", &a, "eth0", &conf);
    assert_eq!(first.status, 0, "{first:?}");
    // the same container and interface again: a retry, same result, same single link
    let index = a.ifindex("eth0");
    let again = t.call("ADD", "ctr-a", &a, "eth0", &conf);
    assert_eq!(again.status, 0, "{again:?}");
    assert_eq!(again.json(), first.json());
    assert_eq!(a.ifindex("eth0"), index);
    assert_eq!(link_names(&a), ["eth0", "lo"].map(String::from).into());
    assert!(ping(&a, "10.101.0.1"));
    // another container: refused, naming trunk, VLAN id and where it is used
    let owner = format!(
        "VLAN 101 on trunk {} is already in use by link eth0 (container ctr-a, interface eth0) in netns {}",
        t.name,
        a.path().display()
    );
    let out = t.call("ADD", "ctr-b", &b, "eth0", &conf);
    assert_eq!(failure(&out), (100, owner.clone()));
    assert_eq!(link_names(&b), only_lo());
    // the same container under another interface name: refused too
    let out = t.call("ADD", "ctr-a", &a, "eth1", &conf);
    assert_eq!(failure(&out), (100, owner));
    assert_eq!(link_names(&a), ["eth0", "lo"].map(String::from).into());
    // the same name with another VLAN id is not a retry
    let out = t.call(
        "ADD",
        "ctr-a",
        &a,
        "eth0",
        &dual_stack_conf("1.1.0", &t.name, 102, "0a:00:00:00:05:01"),
    );
    let (code, msg) = failure(&out);
    assert_eq!(code, 100);
    assert!(
        msg.ends_with(&format!(
            "(created by an earlier ADD for this container, but not as VLAN 102 on trunk {}; DEL it first)",
            t.name
        )),
        "{msg}"
    );
    // a VLAN held in the host namespace itself
    let held = format!("{}.102", t.name);
    t.sim.host.ip_ok(&[
        "link", "add", "link", &t.name, "name", &held, "type", "vlan", "id", "102",
    ]);
    let out = t.call(
        "ADD",
        "ctr-b",
        &b,
        "eth0",
        &dual_stack_conf("1.1.0", &t.name, 102, "0a:00:00:00:05:02"),
    );
    assert_eq!(
        failure(&out),
        (
            100,
            format!(
                "VLAN 102 on trunk {} is already in use by link {held} in the host network namespace",
                t.name
            )
        )
    );
    assert_eq!(link_names(&b), only_lo());
    assert_ok_silent(&t.call("DEL", "ctr-a", &a, "eth0", &conf), "DEL");
    // now free: B gets VLAN 101
    let out = t.call("ADD", "ctr-b", &b, "eth0", &conf);
    assert_eq!(out.status, 0, "{out:?}");
    assert_ok_silent(&t.call("DEL", "ctr-b", &b, "eth0", &conf), "DEL");
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn del_succeeds_after_the_trunk_or_the_namespace_is_gone() {
    let t = subnet_with_vlans("beg", 1500);
    let a = TestNs::new("beg");
    let conf = dual_stack_conf("1.1.0", &t.name, 101, "0a:00:00:00:06:01");
    let out = t.call("ADD", "ctr-a", &a, "eth0", &conf);
    assert_eq!(out.status, 0, "{out:?}");
    let with_prev = with_prev_result(&conf, &out.json());
    // the trunk goes away, and with it the branch
    t.sim.host.ip_ok(&["link", "del", &t.name]);
    assert_eq!(link_names(&a), only_lo());
    for round in 0..2 {
        assert_ok_silent(
            &t.call("DEL", "ctr-a", &a, "eth0", &with_prev),
            &format!("DEL #{round} without trunk"),
        );
    }
    let (code, msg) = failure(&t.call("CHECK", "ctr-a", &a, "eth0", &with_prev));
    assert_eq!(code, 11, "{msg}");
    let (code, msg) = failure(&t.call("ADD", "ctr-a", &a, "eth0", &conf));
    assert_eq!(code, 11);
    assert!(
        msg.starts_with(&format!("trunk interface {} not found", t.name)),
        "{msg}"
    );

    // the namespace goes away
    let t = subnet_with_vlans("beg", 1500);
    let c = TestNs::new("beg");
    let conf = dual_stack_conf("1.1.0", &t.name, 101, "0a:00:00:00:06:02");
    let out = t.call("ADD", "ctr-c", &c, "eth0", &conf);
    assert_eq!(out.status, 0, "{out:?}");
    let path = c.path().display().to_string();
    drop(c);
    for round in 0..2 {
        assert_ok_silent(
            &t.call_env(cni_env("DEL", "ctr-c", &path, "eth0"), &conf),
            &format!("DEL #{round} without netns"),
        );
    }
    // the kernel frees the VLAN id with the namespace (asynchronously)
    let d = TestNs::new("beg");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = t.call("ADD", "ctr-d", &d, "eth0", &conf);
        if out.status == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "VLAN 101 never freed: {out:?}");
        assert_eq!(link_names(&d), only_lo());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ok_silent(&t.call("DEL", "ctr-d", &d, "eth0", &conf), "DEL");
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn check_names_what_differs() {
    let t = subnet_with_vlans("bek", 1500);
    let a = TestNs::new("bek");
    let conf = dual_stack_conf("0.4.0", &t.name, 101, "0a:00:00:00:07:01");
    let out = t.call("ADD", "ctr-a", &a, "eth0", &conf);
    assert_eq!(out.status, 0, "{out:?}");
    let with_prev = with_prev_result(&conf, &out.json());
    assert_ok_silent(&t.call("CHECK", "ctr-a", &a, "eth0", &with_prev), "CHECK");
    let head = format!(
        "interface eth0 in netns {} does not match its configuration: ",
        a.path().display()
    );
    // an address removed by hand
    a.ip_ok(&["addr", "del", "fd00:101::5/64", "dev", "eth0"]);
    let (code, msg) = failure(&t.call("CHECK", "ctr-a", &a, "eth0", &with_prev));
    assert_eq!(code, 100);
    assert_eq!(msg, format!("{head}address fd00:101::5/64 is missing"));
    a.ip_ok(&["addr", "add", "fd00:101::5/64", "dev", "eth0", "nodad"]);
    assert_ok_silent(
        &t.call("CHECK", "ctr-a", &a, "eth0", &with_prev),
        "CHECK restored",
    );
    // the config disagrees with the kernel: VLAN id, MAC, MTU
    let mut other = with_prev.clone();
    other["branchVlanID"] = json!("102");
    other["branchMACAddress"] = json!("0a:00:00:00:07:99");
    other["mtu"] = json!(1400);
    let (_, msg) = failure(&t.call("CHECK", "ctr-a", &a, "eth0", &other));
    assert_eq!(
        msg,
        format!(
            "{head}eth0 has VLAN id 101 instead of 102; eth0 has MAC 0a:00:00:00:07:01 instead of \
             0a:00:00:00:07:99; eth0 has mtu 1500 instead of 1400"
        )
    );
    // the link is gone
    a.ip_ok(&["link", "del", "eth0"]);
    let (_, msg) = failure(&t.call("CHECK", "ctr-a", &a, "eth0", &with_prev));
    assert_eq!(msg, format!("{head}link eth0 does not exist"));
    // CHECK needs a prevResult
    let (code, _) = failure(&t.call("CHECK", "ctr-a", &a, "eth0", &conf));
    assert_eq!(code, 7);
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn every_verb_in_every_advertised_version() {
    let t = subnet_with_vlans("bev", 1500);
    for v in VERSIONS {
        let a = TestNs::new("bev");
        let mut conf = vlan_conf(v, &t.name, 101, "0a:00:00:00:08:01");
        conf["ipAddresses"] = json!(["10.101.0.5/24"]);
        conf["gatewayIPAddresses"] = json!(["10.101.0.1"]);
        let out = t.call("ADD", "ctr-v", &a, "eth0", &conf);
        assert_eq!(out.status, 0, "{v}: {out:?}");
        assert_eq!(out.stderr, "", "{v}");
        assert_eq!(
            out.json(),
            vlan_result(
                v,
                &a,
                "0a:00:00:00:08:01",
                1500,
                &[("10.101.0.5/24", Some("10.101.0.1"))],
                &["10.101.0.1"]
            ),
            "{v}"
        );
        assert!(ping(&a, "10.101.0.1"), "{v}");
        let with_prev = with_prev_result(&conf, &out.json());
        let check = t.call("CHECK", "ctr-v", &a, "eth0", &with_prev);
        if allows_check(v) {
            assert_ok_silent(&check, &format!("{v} CHECK"));
        } else {
            assert_eq!(failure(&check).0, 1, "{v} CHECK");
        }
        for verb in ["STATUS", "GC"] {
            let out = t.call_env(cni_env(verb, "", "", ""), &conf);
            if allows_gc_status(v) {
                assert_ok_silent(&out, &format!("{v} {verb}"));
            } else {
                assert_eq!(failure(&out).0, 1, "{v} {verb}");
            }
        }
        for round in 0..2 {
            assert_ok_silent(
                &t.call("DEL", "ctr-v", &a, "eth0", &with_prev),
                &format!("{v} DEL #{round}"),
            );
            assert_eq!(link_names(&a), only_lo(), "{v}");
        }
    }
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn a_failing_later_step_rolls_everything_back() {
    let t = subnet_with_vlans("ber", 1500);
    // the trunk starts down and must end down
    t.sim.host.ip_ok(&["link", "set", &t.name, "down"]);
    let a = TestNs::new("ber");
    // vlan mode: a default route already in the namespace conflicts with the gateway's
    a.ip_ok(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    a.ip_ok(&["addr", "add", "192.0.2.2/24", "dev", "x0"]);
    a.ip_ok(&["link", "set", "x0", "up"]);
    a.ip_ok(&["route", "add", "default", "via", "192.0.2.1"]);
    let before = link_names(&a);
    let mut conf = dual_stack_conf("1.1.0", &t.name, 101, "0a:00:00:00:09:01");
    conf["blockInstanceMetadata"] = json!(true);
    let (code, msg) = failure(&t.call("ADD", "ctr-r", &a, "eth0", &conf));
    assert_eq!(code, 100, "{msg}");
    assert!(
        msg.starts_with(
            "route 0.0.0.0/0 via 10.101.0.1 dev eth0 conflicts with existing route 0.0.0.0/0 via 192.0.2.1 dev x0 proto boot"
        ),
        "{msg}"
    );
    assert_eq!(link_names(&a), before);
    // the blackholes apply() added were removed as well
    assert!(!routes(&a, "-4").iter().any(|r| r.0 == "blackhole"));
    assert!(!routes(&a, "-6").iter().any(|r| r.0 == "blackhole"));
    assert!(!is_up(&t.sim.host.link(&t.name).unwrap()), "trunk left up");

    // tap mode: the 802.1Q link's name is taken, after the bridge and the link were made
    let vlan_name = format!("{}.101", t.name);
    a.ip_ok(&[
        "link", "add", &vlan_name, "type", "veth", "peer", "name", "y1",
    ]);
    let before = link_names(&a);
    let tap = json!({"cniVersion": "1.1.0", "name": "fc", "type": "vpc-branch-eni",
        "trunkName": t.name, "branchVlanID": "101", "branchMACAddress": "0a:00:00:00:09:02",
        "interfaceType": "tap", "uid": 0, "gid": 0});
    let (code, msg) = failure(&t.call("ADD", "ctr-r", &a, "tap0", &tap));
    assert_eq!(code, 100);
    assert_eq!(
        msg,
        format!(
            "interface {vlan_name} already exists in netns {} (a veth link)",
            a.path().display()
        )
    );
    assert_eq!(link_names(&a), before);
    assert!(!is_up(&t.sim.host.link(&t.name).unwrap()), "trunk left up");
    // the VLAN id is free again: nothing of the failed ADDs holds it
    let b = TestNs::new("ber");
    let out = t.call(
        "ADD",
        "ctr-b",
        &b,
        "eth0",
        &vlan_conf("1.1.0", &t.name, 101, "0a:00:00:00:09:03"),
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert_ok_silent(
        &t.call(
            "DEL",
            "ctr-b",
            &b,
            "eth0",
            &vlan_conf("1.1.0", &t.name, 101, "0a:00:00:00:09:03"),
        ),
        "DEL",
    );
}

#[test]
#[ignore = "needs 802.1Q: runs inside user-mode-linux (vm_tests_pass_inside_user_mode_linux)"]
fn kill_9_during_add_then_del_strands_no_vlan() {
    use std::io::Write;
    use std::process::Stdio;
    // Hardening (issue 5): kill -9 the plugin at random points of ADD, then DEL: no VLAN link is
    // left in the task or on the host, the VLAN id is free again, and the next ADD works.
    let t = subnet_with_vlans("bek", 1500);
    let a = TestNs::new("bek");
    let conf = dual_stack_conf("1.0.0", &t.name, 101, "0a:00:00:00:07:01");
    let netns = a.path().display().to_string();
    let host_links = link_names(&t.sim.host);
    // how long an undisturbed ADD takes here, to spread the kills over it
    let started = Instant::now();
    let out = t.call("ADD", "ctr-k", &a, "eth0", &conf);
    assert_eq!(out.status, 0, "ADD (timing): {out:?}");
    let span = started.elapsed().as_micros().max(1000) as u64;
    assert_ok_silent(&t.call("DEL", "ctr-k", &a, "eth0", &conf), "DEL (timing)");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut killed = 0;
    for round in 0..30 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_micros((seed >> 33) % span);
        let mut cmd = Command::new(bin("branch-eni"));
        cmd.env_clear()
            .envs(cni_env("ADD", "ctr-k", &netns, "eth0"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = t.sim.host.spawn(&mut cmd);
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes());
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_ok_silent(
            &t.call("DEL", "ctr-k", &a, "eth0", &conf),
            &format!("DEL after kill #{round}"),
        );
        assert_eq!(
            link_names(&a),
            only_lo(),
            "round {round}: a link was left in the task"
        );
        assert_eq!(
            link_names(&t.sim.host),
            host_links,
            "round {round}: a link was left on the host"
        );
    }
    eprintln!("30 ADDs killed at random points ({killed} while running), DEL after each");
    let out = t.call("ADD", "ctr-k", &a, "eth0", &conf);
    assert_eq!(out.status, 0, "ADD after the kills: {out:?}");
    assert!(
        ping(&a, "10.101.0.1"),
        "the branch's gateway is unreachable after the kills"
    );
    assert_ok_silent(&t.call("DEL", "ctr-k", &a, "eth0", &conf), "final DEL");
}
