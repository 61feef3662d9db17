//! Helpers shared by the bridge tests (netns tier `bridge`, system tier `bridge_vlan`): a simulated host with
//! a unique bridge name and a private IPAM data directory, config builders, and kernel-state
//! readers.

use std::path::Path;
use std::process::Command;

use crate::*;
use serde_json::{Value, json};

/// One test's world: a simulated host (the plugin runs in its "host" namespace), a unique
/// bridge name, a private IPAM data directory and a network name.
pub struct World {
    pub sim: SimHost,
    pub bridge: String,
    pub data: TempDir,
    pub net: String,
}

impl World {
    pub fn new(tag: &str) -> World {
        World {
            sim: SimHost::new(tag),
            bridge: format!("br{}", netns_fixtures::unique_suffix()),
            data: TempDir::new(tag),
            net: format!("net-{tag}"),
        }
    }

    pub fn host(&self) -> &TestNs {
        &self.sim.host
    }

    /// A reference-dialect config with our in-process IPAM over `ranges` (each one range set);
    /// `extra` keys are merged in at the top level.
    pub fn conf(&self, v: &str, ranges: &[&str], extra: Value) -> Value {
        let sets: Vec<Value> = ranges.iter().map(|s| json!([{"subnet": s}])).collect();
        let mut c = json!({
            "cniVersion": v, "name": self.net, "type": "bridge", "bridge": self.bridge,
            "ipam": {"type": "ipam", "dataDir": self.data.display(), "ranges": sets},
        });
        merge(&mut c, extra);
        c
    }

    /// ecs-bridge's config exactly as the ECS agent writes it (`id` = task ENI MAC).
    pub fn ecs_conf(&self, eni_mac: &str) -> Value {
        json!({"type":"ecs-bridge","cniVersion":"0.3.0","name":"network-name","bridge":self.bridge,
            "isGateway":false,"isDefaultGateway":false,"forceAddress":false,"ipMasq":false,"mtu":0,
            "hairpinMode":false,"ipam":{"type":"ecs-ipam","id":eni_mac,
            "ipv4-subnet":"169.254.172.0/22","ipv4-routes":[{"dst":"169.254.170.2/32"}]}})
    }

    /// Runs the bridge plugin in the simulated host.
    pub fn run(
        &self,
        verb: &str,
        cid: &str,
        ctr: Option<&TestNs>,
        ifname: &str,
        conf: &Value,
    ) -> PluginOutput {
        self.run_env(verb, cid, ctr, ifname, conf, &[])
    }

    /// [`World::run`] with extra environment variables.
    pub fn run_env(
        &self,
        verb: &str,
        cid: &str,
        ctr: Option<&TestNs>,
        ifname: &str,
        conf: &Value,
        extra: &[(&str, &str)],
    ) -> PluginOutput {
        let netns = ctr
            .map(|c| c.path().display().to_string())
            .unwrap_or_default();
        let mut env = cni_env(verb, cid, &netns, ifname);
        for (k, v) in extra {
            env.push(((*k).to_string(), (*v).to_string()));
        }
        call(&bin("bridge"), Some(self.host()), &env, conf)
    }

    /// ADD that must succeed; returns the result.
    pub fn add(&self, cid: &str, ctr: &TestNs, ifname: &str, conf: &Value) -> Value {
        let out = self.run("ADD", cid, Some(ctr), ifname, conf);
        assert_eq!(out.status, 0, "ADD failed: {out:?}");
        out.json()
    }

    /// DEL (with the ADD result as prevResult) that must succeed with no output.
    pub fn del(&self, cid: &str, ctr: Option<&TestNs>, ifname: &str, conf: &Value) {
        let out = self.run("DEL", cid, ctr, ifname, conf);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, ""),
            "DEL failed: {out:?}"
        );
    }

    /// The files of IPAM's store for this network: leased addresses only.
    pub fn leases(&self) -> Vec<String> {
        leases_in(&self.data.path().join(&self.net))
    }

    /// Names of the host's veth links.
    pub fn host_veths(&self) -> Vec<String> {
        links_of_kind(self.host(), "veth")
    }
}

/// Leased addresses in a host-local style store directory (files named by an address).
pub fn leases_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Merges the keys of `extra` (an object) into `c`.
pub fn merge(c: &mut Value, extra: Value) {
    if let Value::Object(m) = extra {
        for (k, v) in m {
            c[k] = v;
        }
    }
}

/// Names of the links of `kind` in a namespace.
pub fn links_of_kind(ns: &TestNs, kind: &str) -> Vec<String> {
    ns.ip_json(&["-d", "link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["linkinfo"]["info_kind"] == json!(kind))
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

/// `ip -j addr show dev X` as `addr/prefix` strings, IPv6 link-local ones included.
pub fn all_addrs(ns: &TestNs, dev: &str) -> Vec<String> {
    let v = ns.ip_json(&["addr", "show", "dev", dev]);
    v[0]["addr_info"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| format!("{}/{}", i["local"].as_str().unwrap(), i["prefixlen"]))
                .collect()
        })
        .unwrap_or_default()
}

/// [`all_addrs`] without the IPv6 link-local (`fe80::/64`) ones the kernel adds by itself.
pub fn addrs(ns: &TestNs, dev: &str) -> Vec<String> {
    let mut v = all_addrs(ns, dev);
    v.retain(|a| !a.starts_with("fe80:"));
    v
}

/// One address's `addr_info` object, if present.
pub fn addr_info(ns: &TestNs, dev: &str, cidr: &str) -> Option<Value> {
    let v = ns.ip_json(&["addr", "show", "dev", dev]);
    v[0]["addr_info"]
        .as_array()?
        .iter()
        .find(|i| format!("{}/{}", i["local"].as_str().unwrap_or(""), i["prefixlen"]) == cidr)
        .cloned()
}

/// Routes of a family as `dst [via gw] [scope]` strings, `ip route` style, for one device.
pub fn routes(ns: &TestNs, fam: &str, dev: &str) -> Vec<String> {
    let v = ns.ip_json(&[fam, "route", "show", "dev", dev]);
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut s = r["dst"].as_str().unwrap().to_string();
            if let Some(gw) = r["gateway"].as_str() {
                s.push_str(&format!(" via {gw}"));
            }
            if let Some(sc) = r["scope"].as_str() {
                if sc != "global" {
                    s.push_str(&format!(" scope {sc}"));
                }
            }
            s
        })
        .collect();
    out.sort();
    out
}

/// Pings `dst` once from inside `ns`; true when a reply came.
pub fn ping(ns: &TestNs, dst: &str) -> bool {
    let out = ns.exec(Command::new("ping").args(["-c", "1", "-W", "2", dst]));
    out.status.success()
}

/// The link `dev` of `ns` (`ip -j -d link`), panicking if absent.
pub fn link(ns: &TestNs, dev: &str) -> Value {
    ns.link(dev)
        .unwrap_or_else(|| panic!("no link {dev} in netns {}", ns.name()))
}

/// A link's MTU.
pub fn mtu(ns: &TestNs, dev: &str) -> u64 {
    link(ns, dev)["mtu"].as_u64().unwrap()
}

/// A link's MAC.
pub fn mac(ns: &TestNs, dev: &str) -> String {
    link(ns, dev)["address"].as_str().unwrap().to_string()
}

/// `nft -j list ruleset` rule comments in the simulated host.
pub fn nft_comments(ns: &TestNs) -> Vec<String> {
    let out = ns.exec(Command::new("nft").args(["-j", "list", "ruleset"]));
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter_map(|r| r["comment"].as_str().map(str::to_string))
        .collect()
}

/// Waits up to 3 s for `f` to hold (the kernel tears a dead namespace's veths down
/// asynchronously).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(3) {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("timed out waiting until {what}");
}
