//! Our `bridge` against Debian's Go reference `bridge` (`/usr/lib/cni/bridge` with its
//! `host-local`, containernetworking-plugins 1.1.1) where a container is attached to several
//! networks with `isDefaultGateway` (Multus-style, or one network attached twice under two
//! ifnames): the same ADDs into two twin simulated hosts must leave the same routes in the
//! container (`ip -j route`, `ip -j -6 route`), after each ADD and after DEL of one attachment;
//! CHECK and DEL keep working. ecs-bridge keeps its one-way-out rule. Issue 11 §4.

use std::path::PathBuf;

use serde_json::{Value, json};
use test_support::bridge::*;
use test_support::*;

fn go_bridge() -> PathBuf {
    let p = PathBuf::from("/usr/lib/cni/bridge");
    assert!(
        p.is_file(),
        "{} is missing: install Debian's containernetworking-plugins (tests/run-all.sh does)",
        p.display()
    );
    p
}

/// One side of the comparison: a simulated host, its container, and which plugin runs there.
struct Side {
    w: World,
    ctr: TestNs,
    go: bool,
}

impl Side {
    fn new(tag: &str, go: bool) -> Side {
        Side {
            w: World::new(tag),
            ctr: TestNs::new(&format!("{tag}c")),
            go,
        }
    }

    /// Network `n` (1 or 2): bridge `<bridge><n>`, dual stack `10.6<n>.0.0/24` + `fd6<n>::/64`,
    /// `isDefaultGateway`.
    fn conf(&self, v: &str, n: u8) -> Value {
        let ipam_type = if self.go { "host-local" } else { "ipam" };
        json!({"cniVersion": v, "name": format!("{}-{n}", self.w.net), "type": "bridge",
            "bridge": format!("{}{n}", &self.w.bridge[..self.w.bridge.len().min(13)]),
            "isDefaultGateway": true,
            "ipam": {"type": ipam_type, "dataDir": self.w.data.display(),
                     "ranges": [[{"subnet": format!("10.6{n}.0.0/24")}],
                                [{"subnet": format!("fd6{n}::/64")}]]}})
    }

    fn run(&self, verb: &str, ifname: &str, conf: &Value) -> PluginOutput {
        let netns = self.ctr.path().display().to_string();
        let mut env = cni_env(verb, "multi", &netns, ifname);
        let plugin = if self.go {
            env.retain(|(k, _)| k != "CNI_PATH");
            env.push(("CNI_PATH".into(), "/usr/lib/cni".into()));
            go_bridge()
        } else {
            bin("bridge")
        };
        call(&plugin, Some(self.w.host()), &env, conf)
    }

    fn ok(&self, verb: &str, ifname: &str, conf: &Value) -> Value {
        let out = self.run(verb, ifname, conf);
        assert_eq!(out.status, 0, "{} {verb} {ifname}: {out:?}", self.who());
        if out.stdout.trim().is_empty() {
            Value::Null
        } else {
            out.json()
        }
    }

    fn who(&self) -> &'static str {
        if self.go { "Go bridge" } else { "our bridge" }
    }

    /// The container's main-table routes of one family, as `ip -j` prints them.
    fn routes(&self, fam: &str) -> Value {
        self.ctr.ip_json(&[fam, "route", "show", "table", "main"])
    }
}

/// The default routes of a family as `gateway dev` strings (paths of a multipath route
/// included), in the kernel's order.
fn defaults(routes: &Value) -> Vec<String> {
    routes
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["dst"] == json!("default"))
        .flat_map(|r| match r["nexthops"].as_array() {
            Some(hops) => hops.clone(),
            None => vec![r.clone()],
        })
        .map(|h| {
            format!(
                "{} {}",
                h["gateway"].as_str().unwrap(),
                h["dev"].as_str().unwrap()
            )
        })
        .collect()
}

/// ADD, ADD, CHECK both, DEL one, CHECK the other, DEL it; after each step the container's
/// routes are those Debian's Go bridge leaves. `attach` gives each attachment's network.
fn compare(v: &str, tag: &str, attach: [(u8, &str); 2]) {
    let go = Side::new(&format!("{tag}g"), true);
    let ours = Side::new(&format!("{tag}o"), false);
    let go_v = if v == "1.1.0" { "1.0.0" } else { v };
    let mut results = Vec::new();
    for (n, ifname) in attach {
        go.ok("ADD", ifname, &go.conf(go_v, n));
        let res = ours.ok("ADD", ifname, &ours.conf(v, n));
        results.push(res);
        for fam in ["-4", "-6"] {
            assert_eq!(
                ours.routes(fam),
                go.routes(fam),
                "{v} {fam} routes after ADD {ifname}"
            );
        }
    }
    // the exact state: two IPv4 default routes (the newer first), one IPv6 multipath route
    let (n1, if1) = attach[0];
    let (n2, if2) = attach[1];
    assert_eq!(
        defaults(&ours.routes("-4")),
        [format!("10.6{n2}.0.1 {if2}"), format!("10.6{n1}.0.1 {if1}")],
        "{v}"
    );
    let v6 = ours.routes("-6");
    assert_eq!(
        defaults(&v6),
        [format!("fd6{n1}::1 {if1}"), format!("fd6{n2}::1 {if2}")],
        "{v}"
    );
    assert_eq!(
        v6.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["dst"] == json!("default"))
            .count(),
        1,
        "{v}: one IPv6 multipath default route: {v6}"
    );
    // every result lists its own default routes
    for (i, (n, _)) in attach.iter().enumerate() {
        assert_eq!(
            results[i]["routes"],
            json!([{"dst": "0.0.0.0/0", "gw": format!("10.6{n}.0.1")},
                   {"dst": "::/0", "gw": format!("fd6{n}::1")}]),
            "{v}"
        );
    }
    if allows_check(v) {
        for (i, (n, ifname)) in attach.iter().enumerate() {
            ours.ok(
                "CHECK",
                ifname,
                &with_prev_result(&ours.conf(v, *n), &results[i]),
            );
        }
    }
    // DEL of the first attachment leaves exactly the second one's routes
    go.ok("DEL", if1, &go.conf(go_v, n1));
    let del1 = if allows_check(v) {
        with_prev_result(&ours.conf(v, n1), &results[0])
    } else {
        ours.conf(v, n1)
    };
    ours.ok("DEL", if1, &del1);
    for fam in ["-4", "-6"] {
        assert_eq!(
            ours.routes(fam),
            go.routes(fam),
            "{v} {fam} routes after DEL {if1}"
        );
    }
    assert_eq!(
        defaults(&ours.routes("-4")),
        [format!("10.6{n2}.0.1 {if2}")]
    );
    assert_eq!(defaults(&ours.routes("-6")), [format!("fd6{n2}::1 {if2}")]);
    if allows_check(v) {
        ours.ok(
            "CHECK",
            if2,
            &with_prev_result(&ours.conf(v, n2), &results[1]),
        );
    }
    ours.ok("DEL", if2, &ours.conf(v, n2));
    assert!(ours.ctr.link(if1).is_none() && ours.ctr.link(if2).is_none());
    assert_eq!(defaults(&ours.routes("-4")), Vec::<String>::new());
    assert!(ours.w.leases().is_empty());
}

/// Two networks (two bridges, two subnets per family), both with `isDefaultGateway`, in one
/// container: the second ADD used to fail with "route 0.0.0.0/0 ... conflicts" and roll back.
#[test]
fn two_networks_with_default_gateways_in_one_container() {
    for v in VERSIONS {
        compare(v, "brm", [(1, "eth0"), (2, "net1")]);
    }
}

/// One network attached twice under two ifnames: both default routes go through the same
/// bridge's gateway, one per interface.
#[test]
fn one_network_attached_twice() {
    compare("1.0.0", "brt", [(1, "eth0"), (1, "eth1")]);
}

/// ecs-bridge keeps one way out: a route to the credentials endpoint through another device is
/// a conflict, and the error names both devices by name.
#[test]
fn ecs_bridge_keeps_the_strict_route_check() {
    let w = World::new("bre");
    let ctr = TestNs::new("brec");
    ctr.ip_ok(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ctr.ip_ok(&["addr", "add", "192.0.2.2/24", "dev", "x0"]);
    ctr.ip_ok(&["link", "set", "x0", "up"]);
    ctr.ip_ok(&["route", "add", "169.254.170.2/32", "via", "192.0.2.1"]);
    let db = w.data.0.join("eni-ipam.db").display().to_string();
    let out = w.run_env(
        "ADD",
        "ecs1",
        Some(&ctr),
        "ecs-eth0",
        &w.ecs_conf("0a:1b:2c:3d:4e:5f"),
        &[("IPAM_DB_PATH", &db)],
    );
    assert_eq!(out.status, 1, "{out:?}");
    let msg = out.json()["msg"].as_str().unwrap().to_string();
    assert_eq!(
        msg,
        format!(
            "ADD: configure ecs-eth0 in the container: route 169.254.170.2/32 via 169.254.172.1 \
             dev ecs-eth0 conflicts with existing route 169.254.170.2/32 via 192.0.2.1 dev x0 \
             proto boot in netns {}",
            ctr.path().display()
        )
    );
    assert!(ctr.link("ecs-eth0").is_none(), "veth left behind");
    assert!(w.host_veths().is_empty(), "host veth left behind");
}
