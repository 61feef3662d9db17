//! Chaining: our `bridge` (with our in-process `ipam`) followed by Debian's reference `portmap`
//! and `tuning` (`/usr/lib/cni`), driven the way libcni drives a conflist: ADD in order, each
//! with the previous result as `prevResult`, CHECK in order with the final result, DEL in
//! reverse. A port mapping reaches a listener in the container namespace, which proves our
//! result is consumable by the reference plugins. Everything runs in a simulated host.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::bridge::*;
use test_support::*;

const REFERENCE_DIR: &str = "/usr/lib/cni";

/// The plugin binary of a chain element: ours for `bridge`, Debian's for the rest.
fn plugin_bin(kind: &str) -> PathBuf {
    if kind == "bridge" {
        bin("bridge")
    } else {
        let p = Path::new(REFERENCE_DIR).join(kind);
        assert!(
            p.is_file(),
            "{} missing: apt-get install containernetworking-plugins",
            p.display()
        );
        p
    }
}

/// One plugin's stdin, as libcni builds it from a conflist element.
fn element(list: &Value, plugin: &Value, prev: Option<&Value>, runtime: Option<&Value>) -> Value {
    let mut c = plugin.clone();
    c["cniVersion"] = list["cniVersion"].clone();
    c["name"] = list["name"].clone();
    if let Some(p) = prev {
        c["prevResult"] = p.clone();
    }
    if let Some(r) = runtime {
        c["runtimeConfig"] = r.clone();
    }
    c
}

#[test]
fn bridge_portmap_tuning_chain_maps_a_port_into_the_container() {
    let w = World::new("bch");
    let ctr = TestNs::new("bchc");
    let netns = ctr.path().display().to_string();
    let tuned_mac = "c2:aa:bb:cc:dd:ee";
    let list = json!({
        "cniVersion": "1.0.0",
        "name": w.net,
        "plugins": [
            {"type": "bridge", "bridge": w.bridge, "isGateway": true, "ipMasq": true,
             "ipam": {"type": "ipam", "dataDir": w.data.display(),
                      "ranges": [[{"subnet": "10.44.0.0/24"}], [{"subnet": "fd44::/64"}]],
                      "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            {"type": "tuning", "mac": tuned_mac, "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}},
        ]
    });
    let runtime =
        json!({"portMappings": [{"hostPort": 18080, "containerPort": 8080, "protocol": "tcp"}]});
    let cni_path = format!("{}:{REFERENCE_DIR}", bin_dir().display());
    let env = |verb: &str| {
        let mut e = cni_env(verb, "chain-1", &netns, "eth0");
        e.retain(|(k, _)| k != "CNI_PATH");
        e.push(("CNI_PATH".into(), cni_path.clone()));
        e
    };
    let plugins = list["plugins"].as_array().unwrap().clone();
    let rt = |p: &Value| (p["type"] == json!("portmap")).then_some(&runtime);

    // ADD in order, each with the previous result
    let mut prev: Option<Value> = None;
    for p in &plugins {
        let kind = p["type"].as_str().unwrap();
        let conf = element(&list, p, prev.as_ref(), rt(p));
        let out = call(&plugin_bin(kind), Some(w.host()), &env("ADD"), &conf);
        assert_eq!(out.status, 0, "{kind} ADD: {out:?}");
        prev = Some(out.json());
    }
    let result = prev.unwrap();
    // the chain's result: ours, with tuning's MAC
    assert_eq!(result["cniVersion"], json!("1.0.0"));
    assert_eq!(result["interfaces"][0]["name"], json!(w.bridge));
    assert_eq!(
        result["interfaces"][2],
        json!({"name": "eth0", "mac": tuned_mac, "sandbox": netns})
    );
    assert_eq!(
        result["ips"],
        json!([{"interface": 2, "address": "10.44.0.2/24", "gateway": "10.44.0.1"},
               {"interface": 2, "address": "fd44::2/64", "gateway": "fd44::1"}])
    );
    assert_eq!(
        result["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "10.44.0.1"}, {"dst": "::/0", "gw": "fd44::1"}])
    );
    assert_eq!(mac(&ctr, "eth0"), tuned_mac);
    assert_eq!(ctr.sysctl_get("net.ipv4.conf.eth0.arp_notify"), "1");
    let nat = String::from_utf8_lossy(
        &w.host()
            .exec(Command::new("iptables").args(["-t", "nat", "-S"]))
            .stdout,
    )
    .into_owned();
    assert!(
        nat.contains("--dport 18080") && nat.contains("10.44.0.2:8080"),
        "{nat}"
    );

    // a listener in the container answers on the mapped host port
    let listener = ctr.run(|| TcpListener::bind("0.0.0.0:8080").unwrap());
    listener.set_nonblocking(true).unwrap();
    let got = std::thread::scope(|s| {
        let server = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.write_all(b"hello from the container").unwrap();
                        return Some(peer);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return None;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        let reply = w.host().run(|| {
            let to: SocketAddr = "10.44.0.1:18080".parse().unwrap();
            let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = String::new();
            c.read_to_string(&mut buf).unwrap();
            buf
        });
        (reply, server.join().unwrap())
    });
    assert_eq!(got.0, "hello from the container");
    assert!(got.1.is_some(), "the listener saw no connection");

    // CHECK in order with the final result. Debian's portmap 1.1.1 cannot CHECK its own
    // rules (it looks for the IPv4 DNAT rules in ip6tables and fails), so it is left out.
    for p in &plugins {
        let kind = p["type"].as_str().unwrap();
        if kind == "portmap" {
            continue;
        }
        let conf = element(&list, p, Some(&result), rt(p));
        let out = call(&plugin_bin(kind), Some(w.host()), &env("CHECK"), &conf);
        assert_eq!(out.status, 0, "{kind} CHECK: {out:?}");
    }

    // DEL in reverse
    for p in plugins.iter().rev() {
        let kind = p["type"].as_str().unwrap();
        let conf = element(&list, p, Some(&result), rt(p));
        let out = call(&plugin_bin(kind), Some(w.host()), &env("DEL"), &conf);
        assert_eq!(out.status, 0, "{kind} DEL: {out:?}");
    }
    assert!(ctr.link("eth0").is_none());
    assert!(w.host_veths().is_empty());
    assert!(w.leases().is_empty());
    assert!(
        nft_comments(w.host())
            .iter()
            .all(|c| !c.starts_with("cni-bridge"))
    );
    let nat = String::from_utf8_lossy(
        &w.host()
            .exec(Command::new("iptables").args(["-t", "nat", "-S"]))
            .stdout,
    )
    .into_owned();
    assert!(!nat.contains("18080"), "portmap rules left: {nat}");
}
