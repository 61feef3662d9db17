//! nl against the kernel, inside throwaway namespaces (run as root). Every result is checked a
//! second way: with `ip -j` and/or a fresh dump.

// helpers outside #[test] functions are test code too
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use netns::{Mac, Netns};
use netns_fixtures::{TestNs, flags, unique_suffix};
use nl::{
    BridgeSpec, Family, Handle, IpNetwork, MacvlanMode, MacvlanSpec, PortVlan, RouteKind,
    RouteSpec, Scope, VethSpec, VlanRange, VlanSpec,
};

struct Env {
    ns: TestNs,
    netns: Netns,
    h: Handle,
}

fn env() -> Env {
    let ns = TestNs::new("nltest");
    let netns = Netns::open(ns.path()).unwrap();
    let h = Handle::open_in(&netns).unwrap();
    Env { ns, netns, h }
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A veth pair with both ends in `e`, both up; returns (index of `a`, index of `b`).
fn up_pair(e: &mut Env, a: &str, b: &str) -> (u32, u32) {
    e.h.create_veth(&VethSpec {
        name: a,
        peer_name: b,
        ..Default::default()
    })
    .unwrap();
    let ia = e.h.link_by_name(a).unwrap().unwrap().index;
    let ib = e.h.link_by_name(b).unwrap().unwrap().index;
    e.h.set_up(ia).unwrap();
    e.h.set_up(ib).unwrap();
    (ia, ib)
}

#[test]
fn handle_is_bound_to_its_namespace() {
    let mut e = env();
    let links = e.h.links().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].name, "lo");
    // from another thread, still the namespace's socket
    let other = std::thread::spawn(move || e.h.links().unwrap().len())
        .join()
        .unwrap();
    assert_eq!(other, 1);
    // the machine's own namespace has more than lo (otherwise the check above proves nothing)
    let own = Handle::current().unwrap().links().unwrap();
    assert!(own.iter().any(|l| l.name != "lo"), "{own:?}");

    let ino = std::fs::metadata(e.ns.path()).unwrap().ino();
    let seen = e
        .netns
        .run(|| std::fs::read_link("/proc/thread-self/ns/net").unwrap())
        .unwrap();
    assert_eq!(seen, Path::new(&format!("net:[{ino}]")));
    assert!(!e.netns.is_current().unwrap());
    assert!(e.netns.same_as(&Netns::open(e.ns.path()).unwrap()).unwrap());
}

#[test]
fn loopback_up_and_down() {
    let mut e = env();
    let lo = e.h.link_by_name("lo").unwrap().unwrap();
    assert!(lo.loopback);
    assert!(!lo.up);
    assert_eq!(lo.kind, None);
    assert_eq!(lo.mac, Some(Mac::ZERO));
    assert_eq!(e.h.link_by_index(lo.index).unwrap().unwrap().name, "lo");

    e.h.set_up(lo.index).unwrap();
    let now = e.h.link_by_name("lo").unwrap().unwrap();
    assert!(now.up && now.oper_up);
    assert!(flags(&e.ns.link("lo").unwrap()).contains(&"UP".to_string()));
    let addrs = e.h.addrs(Some(lo.index)).unwrap();
    assert!(
        addrs
            .iter()
            .any(|a| a.net == net("127.0.0.1/8") && a.scope == Scope::Host)
    );
    assert!(addrs.iter().any(|a| a.net == net("::1/128")));

    e.h.set_down(lo.index).unwrap();
    assert!(!e.h.link_by_name("lo").unwrap().unwrap().up);
    assert!(!flags(&e.ns.link("lo").unwrap()).contains(&"UP".to_string()));
}

#[test]
fn missing_links_and_bad_names() {
    let mut e = env();
    assert_eq!(e.h.link_by_name("nope0").unwrap(), None);
    assert_eq!(e.h.link_by_name("waytoolongname12345").unwrap(), None);
    assert_eq!(e.h.link_by_index(4242).unwrap(), None);
    assert_eq!(e.h.link_by_mac(Mac::new([2, 0, 0, 0, 0, 9])).unwrap(), None);

    let err = e.h.set_mtu(4242, 1400).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.errno(), Some(libc::ENODEV));
    let msg = err.to_string();
    assert!(msg.contains("set mtu 1400 on link index 4242"), "{msg}");
    assert!(msg.contains(e.ns.path().to_str().unwrap()), "{msg}");

    let err = e.h.link("nope0").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string()
            .starts_with("find link nope0 in netns /run/netns/nltest-"),
        "{err}"
    );
    assert_eq!(e.h.link("lo").unwrap().name, "lo");

    let err = e.h.delete_link(4242).unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let err =
        e.h.create_veth(&VethSpec {
            name: "a/b",
            peer_name: "x",
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            nl::Error::Invalid(netns::InvalidArg {
                field: "interface name",
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn veth_peer_born_in_another_namespace_with_mtu_on_both_ends() {
    let mut a = env();
    let b = env();
    let (na, nb) = (format!("va{}", unique_suffix()), "eth0".to_string());
    let (ma, mb) = (
        Mac::new([0x02, 0, 0, 0, 0xaa, 1]),
        Mac::new([0x02, 0, 0, 0, 0xbb, 1]),
    );
    a.h.create_veth(&VethSpec {
        name: &na,
        peer_name: &nb,
        mtu: Some(9001),
        mac: Some(ma),
        peer_mac: Some(mb),
        peer_netns: Some(b.netns.fd()),
        ..Default::default()
    })
    .unwrap();

    let ja = a.ns.link(&na).unwrap();
    assert_eq!(ja["mtu"], 9001);
    assert_eq!(ja["address"], "02:00:00:00:aa:01");
    assert_eq!(ja["linkinfo"]["info_kind"], "veth");
    let jb = b.ns.link(&nb).unwrap();
    assert_eq!(jb["mtu"], 9001);
    assert_eq!(jb["address"], "02:00:00:00:bb:01");
    assert!(
        a.ns.link(&nb).is_none(),
        "peer must not exist in the first namespace"
    );

    let la = a.h.link_by_name(&na).unwrap().unwrap();
    assert_eq!(la.kind.as_deref(), Some("veth"));
    assert_eq!(la.mtu, 9001);
    assert_eq!(la.mac, Some(ma));
    assert_eq!(la.peer_index, Some(jb["ifindex"].as_u64().unwrap() as u32));
    assert!(la.link_netnsid.is_some());
    let mut hb = Handle::open_in(&b.netns).unwrap();
    let lb = hb.link_by_name(&nb).unwrap().unwrap();
    assert_eq!(lb.peer_index, Some(la.index));
    assert_eq!(lb.mtu, 9001);

    // the same names again: EEXIST
    let err =
        a.h.create_veth(&VethSpec {
            name: &na,
            peer_name: &nb,
            peer_netns: Some(b.netns.fd()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.is_exists(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "create veth {na} with peer eth0 in netns {}",
            b.ns.path().display()
        )),
        "{msg}"
    );
    assert!(msg.contains("File exists (errno 17)"), "{msg}");
    // a free first name but the peer name taken in its namespace: EEXIST too
    let err =
        a.h.create_veth(&VethSpec {
            name: "vfree",
            peer_name: &nb,
            peer_netns: Some(b.netns.fd()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.is_exists(), "{err}");

    // deleting one end removes both
    a.h.delete_link(la.index).unwrap();
    assert!(b.ns.link(&nb).is_none());
    assert_eq!(hb.link_by_name(&nb).unwrap(), None);
}

#[test]
fn mac_rename_alias_and_lookup_by_mac() {
    let mut e = env();
    e.h.create_veth(&VethSpec {
        name: "x0",
        peer_name: "x1",
        ..Default::default()
    })
    .unwrap();
    let x0 = e.h.link_by_name("x0").unwrap().unwrap();
    let mac = Mac::parse("02:12:34:56:78:9a").unwrap();
    e.h.set_mac(x0.index, mac).unwrap();
    assert_eq!(e.ns.link("x0").unwrap()["address"], "02:12:34:56:78:9a");
    assert_eq!(e.h.link_by_mac(mac).unwrap().unwrap().index, x0.index);

    e.h.rename(x0.index, "renamed0").unwrap();
    assert!(e.ns.link("x0").is_none());
    assert_eq!(e.ns.link("renamed0").unwrap()["ifindex"], x0.index);

    e.h.set_alias(x0.index, "eni-0123456789abcdef0").unwrap();
    assert_eq!(
        e.ns.link("renamed0").unwrap()["ifalias"],
        "eni-0123456789abcdef0"
    );
    let got = e.h.link_by_index(x0.index).unwrap().unwrap();
    assert_eq!(got.alias.as_deref(), Some("eni-0123456789abcdef0"));
    assert_eq!(got.name, "renamed0");
    e.h.set_alias(x0.index, "").unwrap();
    assert!(e.ns.link("renamed0").unwrap().get("ifalias").is_none());
    assert_eq!(e.h.link_by_index(x0.index).unwrap().unwrap().alias, None);

    // the same MAC on a shorter-named link: it wins
    e.h.create_bridge("b", None, Some(mac)).unwrap();
    assert_eq!(e.h.link_by_mac(mac).unwrap().unwrap().name, "b");

    // rename onto an existing name
    let err = e.h.rename(x0.index, "x1").unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(
        err.to_string().contains("rename to x1 on link renamed0"),
        "{err}"
    );
}

#[test]
fn move_a_link_to_another_namespace_and_back() {
    let mut a = env();
    let b = env();
    a.h.create_veth(&VethSpec {
        name: "mv0",
        peer_name: "mv1",
        mtu: Some(1400),
        mac: Some(Mac::new([2, 0, 0, 0, 0x11, 0x22])),
        ..Default::default()
    })
    .unwrap();
    let idx = a.h.link_by_name("mv0").unwrap().unwrap().index;
    a.h.set_netns(idx, b.netns.fd()).unwrap();
    assert!(a.ns.link("mv0").is_none());
    let moved = b.ns.link("mv0").unwrap();
    assert_eq!(moved["mtu"], 1400);
    assert_eq!(moved["address"], "02:00:00:00:11:22");

    let mut hb = Handle::open_in(&b.netns).unwrap();
    let in_b = hb
        .link_by_mac(Mac::new([2, 0, 0, 0, 0x11, 0x22]))
        .unwrap()
        .unwrap();
    assert_eq!(in_b.name, "mv0");
    hb.set_netns(in_b.index, a.netns.fd()).unwrap();
    assert!(b.ns.link("mv0").is_none());
    assert_eq!(a.ns.link("mv0").unwrap()["address"], "02:00:00:00:11:22");
    assert_eq!(a.h.link_by_name("mv0").unwrap().unwrap().mtu, 1400);
}

#[test]
fn bridge_and_enslave() {
    let mut e = env();
    let mac = Mac::new([0x02, 0xbb, 0, 0, 0, 1]);
    e.h.create_bridge("br0", Some(1400), Some(mac)).unwrap();
    let br = e.h.link_by_name("br0").unwrap().unwrap();
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert_eq!(br.mac, Some(mac));
    let jbr = e.ns.link("br0").unwrap();
    assert_eq!(jbr["linkinfo"]["info_kind"], "bridge");
    assert_eq!(jbr["mtu"], 1400);

    let err = e.h.create_bridge("br0", None, None).unwrap_err();
    assert!(err.is_exists(), "{err}");

    let (port, _) = up_pair(&mut e, "port0", "port1");
    e.h.set_master(port, br.index).unwrap();
    assert_eq!(e.ns.link("port0").unwrap()["master"], "br0");
    assert_eq!(
        e.h.link_by_index(port).unwrap().unwrap().master,
        Some(br.index)
    );
    e.h.set_nomaster(port).unwrap();
    assert!(e.ns.link("port0").unwrap().get("master").is_none());
    assert_eq!(e.h.link_by_index(port).unwrap().unwrap().master, None);
}

#[test]
fn macvlan_and_macvtap() {
    let mut a = env();
    let b = env();
    let (parent, _) = up_pair(&mut a, "par0", "par1");
    let mac = Mac::new([0x02, 0xee, 0, 0, 0, 7]);
    a.h.create_macvlan(&MacvlanSpec {
        name: "fakeeni",
        parent,
        mode: MacvlanMode::Bridge,
        mac: Some(mac),
        mtu: Some(1400),
        netns: Some(b.netns.fd()),
    })
    .unwrap();
    assert!(a.ns.link("fakeeni").is_none());
    let j = b.ns.link("fakeeni").unwrap();
    assert_eq!(j["linkinfo"]["info_kind"], "macvlan");
    assert_eq!(j["linkinfo"]["info_data"]["mode"], "bridge");
    assert_eq!(j["address"], "02:ee:00:00:00:07");
    assert_eq!(j["mtu"], 1400);
    let l = Handle::open_in(&b.netns)
        .unwrap()
        .link_by_name("fakeeni")
        .unwrap()
        .unwrap();
    assert_eq!(l.kind.as_deref(), Some("macvlan"));

    let (parent2, _) = up_pair(&mut a, "tp0", "tp1");
    a.h.create_macvtap(&MacvlanSpec {
        name: "mvtap0",
        parent: parent2,
        mode: MacvlanMode::Passthru,
        ..Default::default()
    })
    .unwrap();
    let j = a.ns.link("mvtap0").unwrap();
    assert_eq!(j["linkinfo"]["info_kind"], "macvtap");
    assert_eq!(j["linkinfo"]["info_data"]["mode"], "passthru");
    let l = a.h.link_by_name("mvtap0").unwrap().unwrap();
    assert_eq!(l.kind.as_deref(), Some("macvtap"));
    assert_eq!(l.peer_index, Some(parent2));
}

#[test]
fn vlan_needs_8021q() {
    let mut e = env();
    let (parent, _) = up_pair(&mut e, "trunk0", "trunk1");
    let other = env();
    let result = e.h.create_vlan(&VlanSpec {
        name: "vlan101",
        parent,
        vlan_id: 101,
        mtu: Some(1400),
        netns: Some(other.netns.fd()),
        ..Default::default()
    });
    if Path::new("/proc/net/vlan").exists() {
        result.unwrap();
        let l = Handle::open_in(&other.netns)
            .unwrap()
            .link_by_name("vlan101")
            .unwrap()
            .unwrap();
        assert_eq!(l.vlan_id, Some(101));
        assert_eq!(l.kind.as_deref(), Some("vlan"));
    } else {
        let err = result.unwrap_err();
        assert!(err.is_not_supported(), "{err}");
        let msg = err.to_string();
        let want = format!(
            "create vlan vlan101 id 101 on trunk0 (index {parent}) into netns {}",
            other.ns.path().display()
        );
        assert!(msg.contains(&want), "{msg}");
        assert!(
            msg.contains("Unknown device type: Operation not supported (errno 95)"),
            "{msg}"
        );
        assert!(msg.contains(e.ns.path().to_str().unwrap()), "{msg}");
        assert!(other.ns.link("vlan101").is_none());
    }
    let err =
        e.h.create_vlan(&VlanSpec {
            name: "v",
            parent,
            vlan_id: 4095,
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("vlan id"), "{err}");
}

#[test]
fn addresses_v4_v6_nodad() {
    let mut e = env();
    let (x, _) = up_pair(&mut e, "ad0", "ad1");
    e.h.add_addr(x, net("10.1.0.2/24"), false).unwrap();
    e.h.add_addr(x, net("2001:db8:1::2/64"), true).unwrap();
    e.h.add_addr(x, net("2001:db8:2::2/64"), false).unwrap();

    let j = e.ns.ip_json(&["addr", "show", "dev", "ad0"]);
    let infos = j[0]["addr_info"].as_array().unwrap();
    let find = |local: &str| {
        infos
            .iter()
            .find(|a| a["local"] == local)
            .unwrap_or_else(|| panic!("{local} missing in {infos:?}"))
    };
    assert_eq!(find("10.1.0.2")["prefixlen"], 24);
    assert_eq!(find("10.1.0.2")["broadcast"], "10.1.0.255");
    let nodad = find("2001:db8:1::2");
    assert_eq!(nodad["prefixlen"], 64);
    assert_eq!(nodad["nodad"], true);
    assert!(nodad.get("tentative").is_none(), "{nodad}");
    assert_eq!(find("2001:db8:2::2")["tentative"], true);

    let addrs = e.h.addrs(Some(x)).unwrap();
    let get = |n: &str| addrs.iter().find(|a| a.net == net(n)).unwrap().clone();
    let v4 = get("10.1.0.2/24");
    assert_eq!(
        (v4.index, v4.scope, v4.label.as_deref()),
        (x, Scope::Universe, Some("ad0"))
    );
    let v6 = get("2001:db8:1::2/64");
    assert!(v6.is_nodad() && !v6.is_tentative() && !v6.is_dadfailed());
    assert!(get("2001:db8:2::2/64").is_tentative());
    // the filter really filters: the other end's link-local is not listed, but is in the full dump
    assert!(addrs.iter().all(|a| a.index == x));
    assert!(e.h.addrs(None).unwrap().iter().any(|a| a.index != x));

    let err = e.h.add_addr(x, net("10.1.0.2/24"), false).unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(
        err.to_string()
            .contains("add address 10.1.0.2/24 to link ad0"),
        "{err}"
    );

    e.h.del_addr(x, net("10.1.0.2/24")).unwrap();
    e.h.del_addr(x, net("2001:db8:1::2/64")).unwrap();
    let left = e.h.addrs(Some(x)).unwrap();
    assert!(
        !left
            .iter()
            .any(|a| a.net == net("10.1.0.2/24") || a.net == net("2001:db8:1::2/64"))
    );
    let err = e.h.del_addr(x, net("10.1.0.2/24")).unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn routes_gateway_onlink_blackhole_and_lookup() {
    let mut e = env();
    let lo = e.h.link_by_name("lo").unwrap().unwrap().index;
    e.h.set_up(lo).unwrap();
    let (x, _) = up_pair(&mut e, "rt0", "rt1");
    e.h.add_addr(x, net("10.2.0.2/24"), false).unwrap();
    e.h.add_addr(x, net("2001:db8:3::2/64"), true).unwrap();

    let mut via = RouteSpec::via(net("10.3.0.0/16"), ip("10.2.0.1"), x);
    via.priority = Some(50);
    via.mtu = Some(1400);
    via.advmss = Some(1360);
    e.h.add_route(&via).unwrap();
    e.h.add_route(&RouteSpec::via(net("0.0.0.0/0"), ip("10.2.0.1"), x))
        .unwrap();
    let mut onlink = RouteSpec::via(net("10.4.0.0/16"), ip("192.0.2.1"), x);
    onlink.onlink = true;
    // without onlink the kernel refuses an unreachable gateway
    let err =
        e.h.add_route(&RouteSpec::via(net("10.4.0.0/16"), ip("192.0.2.1"), x))
            .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENETUNREACH), "{err}");
    e.h.add_route(&onlink).unwrap();
    e.h.add_route(&RouteSpec::link(net("10.5.0.0/24"), x))
        .unwrap();
    e.h.add_route(&RouteSpec::blackhole(net("169.254.169.254/32")))
        .unwrap();
    e.h.add_route(&RouteSpec::blackhole(net("fd00:ec2::254/128")))
        .unwrap();
    e.h.add_route(&RouteSpec::via(
        net("2001:db8:5::/64"),
        ip("2001:db8:3::1"),
        x,
    ))
    .unwrap();

    // checked with ip
    let j = e.ns.ip_json(&["route", "show", "10.3.0.0/16"]);
    assert_eq!(j[0]["gateway"], "10.2.0.1");
    assert_eq!(j[0]["dev"], "rt0");
    assert_eq!(j[0]["metric"], 50);
    let metrics = j[0]["metrics"].as_array().unwrap();
    assert!(metrics.iter().any(|m| m["mtu"] == 1400), "{metrics:?}");
    assert!(metrics.iter().any(|m| m["advmss"] == 1360), "{metrics:?}");
    let j = e.ns.ip_json(&["route", "show", "default"]);
    assert_eq!(j[0]["gateway"], "10.2.0.1");
    let j = e.ns.ip_json(&["route", "show", "10.4.0.0/16"]);
    assert!(
        j[0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "onlink"),
        "{j}"
    );
    let j = e.ns.ip_json(&["route", "show", "10.5.0.0/24"]);
    assert_eq!(j[0]["scope"], "link");
    let j = e.ns.ip_json(&["route", "show", "169.254.169.254"]);
    assert_eq!(j[0]["type"], "blackhole");
    let j = e.ns.ip_json(&["-6", "route", "show", "fd00:ec2::254"]);
    assert_eq!(j[0]["type"], "blackhole");
    let j = e.ns.ip_json(&["-6", "route", "show", "2001:db8:5::/64"]);
    assert_eq!(j[0]["gateway"], "2001:db8:3::1");

    // and with our own dump
    let v4 = e.h.routes(Family::V4).unwrap();
    let r = v4.iter().find(|r| r.dst == net("10.3.0.0/16")).unwrap();
    assert_eq!(
        (r.gw, r.oif, r.priority, r.mtu, r.advmss),
        (
            Some(ip("10.2.0.1")),
            Some(x),
            Some(50),
            Some(1400),
            Some(1360)
        )
    );
    assert_eq!(
        (r.kind, r.scope, r.table, r.protocol),
        (RouteKind::Unicast, Scope::Universe, 254, 3)
    );
    assert!(
        v4.iter()
            .any(|r| r.dst == net("0.0.0.0/0") && r.gw == Some(ip("10.2.0.1")))
    );
    assert!(v4.iter().any(|r| r.dst == net("10.4.0.0/16") && r.onlink));
    assert!(
        v4.iter()
            .any(|r| r.dst == net("10.5.0.0/24") && r.scope == Scope::Link && r.gw.is_none())
    );
    assert!(
        v4.iter()
            .any(|r| r.dst == net("169.254.169.254/32") && r.kind == RouteKind::Blackhole)
    );
    assert!(v4.iter().all(|r| r.table == 254));
    let v6 = e.h.routes(Family::V6).unwrap();
    assert!(
        v6.iter()
            .any(|r| r.dst == net("fd00:ec2::254/128") && r.kind == RouteKind::Blackhole)
    );
    assert!(
        v6.iter()
            .any(|r| r.dst == net("2001:db8:5::/64") && r.gw == Some(ip("2001:db8:3::1")))
    );
    let all = e.h.routes_in_table(Family::V4, None).unwrap();
    assert!(
        all.iter()
            .any(|r| r.table == nl::TABLE_LOCAL && r.kind == RouteKind::Local)
    );

    // lookups
    let got = e.h.route_get(ip("10.3.1.1")).unwrap().unwrap();
    assert_eq!((got.gw, got.oif), (Some(ip("10.2.0.1")), Some(x)));
    assert_eq!(got.dst, net("10.3.1.1/32"));
    let got = e.h.route_get(ip("2001:db8:5::9")).unwrap().unwrap();
    assert_eq!((got.gw, got.oif), (Some(ip("2001:db8:3::1")), Some(x)));
    assert_eq!(e.h.route_get(ip("169.254.169.254")).unwrap(), None);
    assert_eq!(e.h.route_get(ip("fd00:ec2::254")).unwrap(), None);
    assert_eq!(
        e.h.route_get(ip("2001:db9::1")).unwrap(),
        None,
        "no v6 default route"
    );

    // duplicates and deletes
    let err =
        e.h.add_route(&RouteSpec::blackhole(net("169.254.169.254/32")))
            .unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(
        err.to_string()
            .contains("add route blackhole 169.254.169.254/32"),
        "{err}"
    );
    e.h.del_route(&RouteSpec::blackhole(net("169.254.169.254/32")))
        .unwrap();
    e.h.del_route(&RouteSpec::blackhole(net("fd00:ec2::254/128")))
        .unwrap();
    e.h.del_route(&via).unwrap();
    assert!(
        e.ns.ip_json(&["route", "show", "10.3.0.0/16"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        e.ns.ip_json(&["route", "show", "169.254.169.254"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        e.ns.ip_json(&["-6", "route", "show", "fd00:ec2::254"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let err = e.h.del_route(&via).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err =
        e.h.del_route(&RouteSpec::blackhole(net("fd00:ec2::254/128")))
            .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // replace changes the gateway in place
    let mut repl = RouteSpec::via(net("0.0.0.0/0"), ip("10.2.0.9"), x);
    e.h.replace_route(&repl).unwrap();
    assert_eq!(
        e.ns.ip_json(&["route", "show", "default"])[0]["gateway"],
        "10.2.0.9"
    );
    repl.gw = None;
    repl.oif = None;
    e.h.del_route(&repl).unwrap();
    assert!(
        e.ns.ip_json(&["route", "show", "default"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn neighbours() {
    let mut e = env();
    let (x, _) = up_pair(&mut e, "nb0", "nb1");
    let mac1 = Mac::new([0x02, 0, 0, 0, 0, 0x31]);
    let mac2 = Mac::new([0x02, 0, 0, 0, 0, 0x32]);
    e.h.add_neigh(x, ip("10.6.0.1"), mac1).unwrap();
    e.h.add_neigh(x, ip("2001:db8:6::1"), mac1).unwrap();
    let j = e.ns.ip_json(&["neigh", "show", "dev", "nb0", "10.6.0.1"]);
    assert_eq!(j[0]["lladdr"], "02:00:00:00:00:31");
    assert!(
        j[0]["state"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "PERMANENT"),
        "{j}"
    );
    // replace
    e.h.add_neigh(x, ip("10.6.0.1"), mac2).unwrap();
    let j = e.ns.ip_json(&["neigh", "show", "dev", "nb0", "10.6.0.1"]);
    assert_eq!(j[0]["lladdr"], mac2.to_string());

    let all = e.h.neighs(Some(x)).unwrap();
    let n4 = all.iter().find(|n| n.ip == ip("10.6.0.1")).unwrap();
    assert_eq!((n4.index, n4.mac), (x, Some(mac2)));
    assert!(n4.is_permanent());
    let n6 = all.iter().find(|n| n.ip == ip("2001:db8:6::1")).unwrap();
    assert_eq!(n6.mac, Some(mac1));
    e.h.del_neigh(x, ip("10.6.0.1")).unwrap();
    assert!(
        e.ns.ip_json(&["neigh", "show", "dev", "nb0", "10.6.0.1"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(e.h.del_neigh(x, ip("10.6.0.1")).unwrap_err().is_not_found());
}

#[test]
fn sysctl_inside_a_namespace_does_not_touch_the_host() {
    let e = env();
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host.trim() == "1" { "0" } else { "1" };
    e.netns.sysctl_set("net.ipv4.ip_forward", want).unwrap();
    assert_eq!(e.netns.sysctl_get("net/ipv4/ip_forward").unwrap(), want);
    assert_eq!(e.ns.sysctl_get("net.ipv4.ip_forward"), want);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host
    );

    e.netns
        .sysctl_set("net/ipv6/conf/lo/accept_dad", "0")
        .unwrap();
    assert_eq!(
        e.netns.sysctl_get("net.ipv6.conf.lo.accept_dad").unwrap(),
        "0"
    );
    let err = e
        .netns
        .sysctl_get("net.ipv6.conf.nosuchdev.accept_dad")
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string().contains(e.ns.path().to_str().unwrap()),
        "{err}"
    );
    let err = e.netns.sysctl_set("kernel.hostname", "x").unwrap_err();
    assert!(matches!(err, netns::Error::Invalid(_)), "{err}");
}

#[test]
fn tap_in_a_namespace() {
    let mut e = env();
    e.netns
        .run(|| nl::create_tap("tap0", 4242, 4343, true, Some(1400)))
        .unwrap()
        .unwrap();
    let j = e.ns.link("tap0").unwrap();
    assert_eq!(j["mtu"], 1400);
    let info = &j["linkinfo"]["info_data"];
    assert_eq!(j["linkinfo"]["info_kind"], "tun");
    assert_eq!(info["type"], "tap");
    assert_eq!(info["pi"], false);
    assert_eq!(info["vnet_hdr"], true);
    assert_eq!(info["persist"], true);
    assert_eq!(info["user"], 4242);
    assert_eq!(info["group"], 4343);
    assert_eq!(
        e.h.link_by_name("tap0").unwrap().unwrap().kind.as_deref(),
        Some("tun")
    );
    // not in the machine's namespace
    assert!(
        !Path::new("/sys/class/net/tap0").exists()
            || Handle::current()
                .unwrap()
                .link_by_name("tap0")
                .unwrap()
                .is_none()
    );

    let err = e
        .netns
        .run(|| nl::create_tap("tap0", 0, 0, false, None))
        .unwrap()
        .unwrap_err();
    assert!(err.is_exists(), "{err}");

    e.netns
        .run(|| nl::create_tap("tap1", 0, 0, false, None))
        .unwrap()
        .unwrap();
    assert_eq!(
        e.ns.link("tap1").unwrap()["linkinfo"]["info_data"]["vnet_hdr"],
        false
    );
    e.netns.run(|| nl::delete_tap("tap1")).unwrap().unwrap();
    assert!(e.ns.link("tap1").is_none());
}

#[test]
fn large_dump_spans_many_datagrams() {
    let mut e = env();
    for i in 0..80 {
        e.h.create_veth(&VethSpec {
            name: &format!("d{i}a"),
            peer_name: &format!("d{i}b"),
            ..Default::default()
        })
        .unwrap();
    }
    let ours = e.h.links().unwrap();
    let theirs = e.ns.ip_json(&["link", "show"]);
    let theirs = theirs.as_array().unwrap();
    assert_eq!(ours.len(), 161);
    assert_eq!(ours.len(), theirs.len());
    for (l, j) in ours.iter().zip(theirs) {
        assert_eq!(l.name, j["ifname"].as_str().unwrap());
        assert_eq!(u64::from(l.index), j["ifindex"].as_u64().unwrap());
    }
}

/// Whether this kernel has bridge VLAN filtering, probed in a throwaway namespace.
fn has_bridge_vlan_filtering() -> bool {
    Netns::in_fresh(|| {
        let mut h = Handle::current().unwrap();
        h.create_bridge_with(&BridgeSpec {
            name: "probe0",
            vlan_filtering: true,
            ..Default::default()
        })
        .is_ok()
    })
    .unwrap()
}

/// Bridge VLAN filtering where the kernel has it (user-mode-linux); where it does not (this
/// project's host kernel) every request fails with EOPNOTSUPP naming the bridge, and a bridge
/// asked for with filtering is not left behind.
#[test]
fn bridge_vlan_filtering_where_the_kernel_has_it() {
    let mut e = env();
    let supported = has_bridge_vlan_filtering();
    // the probe's namespace is gone; ours saw nothing of it
    assert!(e.ns.link("probe0").is_none());
    let made = e.h.create_bridge_with(&BridgeSpec {
        name: "vbr0",
        mtu: Some(1400),
        vlan_filtering: true,
        ..Default::default()
    });
    if !supported {
        let err = made.unwrap_err();
        assert!(err.is_not_supported(), "{err}");
        assert!(
            err.to_string()
                .starts_with("create bridge vbr0 vlan_filtering 1 in netns"),
            "{err}"
        );
        assert!(e.ns.link("vbr0").is_none(), "bridge left behind");
        e.h.create_bridge("vbr0", None, None).unwrap();
        let br = e.h.link("vbr0").unwrap().index;
        let state = e.h.bridge_vlan_state(br).unwrap().unwrap();
        assert!(!state.filtering);
        assert_eq!(
            state.default_pvid, None,
            "no VLAN filtering, no default PVID"
        );
        let err = e.h.set_bridge_vlan_filtering(br, true).unwrap_err();
        assert!(err.is_not_supported(), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("set vlan_filtering 1 on bridge vbr0 (index {br})")),
            "{err}"
        );
        return;
    }
    made.unwrap();
    let br = e.h.link("vbr0").unwrap().index;
    let state = e.h.bridge_vlan_state(br).unwrap().unwrap();
    assert_eq!((state.filtering, state.default_pvid), (true, Some(1)));
    let (port, _) = up_pair(&mut e, "p0", "p1");
    e.h.set_master(port, br).unwrap();
    let v = |vid, pvid, untagged| PortVlan {
        vid,
        pvid,
        untagged,
    };
    assert_eq!(e.h.port_vlans(port).unwrap(), [v(1, true, true)]);
    e.h.del_port_vlan(port, 1).unwrap();
    let mut ranges = vec![VlanRange::one(100, true, true)];
    ranges.extend(VlanRange::tagged(&[101, 200, 201, 202]));
    e.h.add_port_vlans(port, &ranges).unwrap();
    assert_eq!(
        e.h.port_vlans(port).unwrap(),
        [
            v(100, true, true),
            v(101, false, false),
            v(200, false, false),
            v(201, false, false),
            v(202, false, false)
        ]
    );
    // deleting a VLAN the port is no member of is no error (6.1 answers 0)
    e.h.del_port_vlan(port, 300).unwrap();
    e.h.del_port_vlan(port, 101).unwrap();
    assert_eq!(e.h.port_vlans(port).unwrap().len(), 4);
    // the bridge device itself has the default VLAN
    assert_eq!(e.h.port_vlans(br).unwrap(), [v(1, true, true)]);
    e.h.set_bridge_vlan_filtering(br, false).unwrap();
    assert!(!e.h.bridge_vlan_state(br).unwrap().unwrap().filtering);
    // not a bridge
    assert_eq!(e.h.bridge_vlan_state(port).unwrap(), None);
}
