//! CHECK: the kernel's state against `prevResult` and the config; every difference is named
//! in one error.
//!
//! 1. The config; `prevResult` required; IPAM CHECK.
//! 2. The bridge exists, is a bridge, has the result's MAC (`Checker::check_bridge`).
//! 3. The container interface of the result (name and sandbox) exists
//!    (`Checker::container_end`), is a veth with the result's MAC and the configured MTU
//!    (`Checker::check_container_veth`).
//! 4. Its peer is in the host namespace, a veth pointing back, with the result's name and MAC,
//!    up, enslaved to the bridge, with the VLANs ADD gave it (`Checker::check_veth_pair`).
//! 5. VLANs: the bridge filters, `<bridge>.<vlan>` is the VLAN's gateway
//!    (`Checker::check_bridge_vlans`).
//! 6. The result's addresses and routes are in the container (`Checker::check_container_ip`).
//! 7. ECS: no connected route ([`ecs::check_isolation`]).
//! 8. The nftables rules are there (`Checker::check_rules`).

use cni_spec::{CniResult, Command, Interface, Invocation};
use ipconf::{ExtraRoute, IfaceConfig};
use ipnetwork::IpNetwork;
use netns::Mac;
use nl::{Handle, Link};

use crate::add::CONTAINER_INDEX;
use crate::config::{BridgeConfig, Dialect};
use crate::ecs;
use crate::error::{BridgeError, StepExt};
use crate::host;
use crate::ipam_glue;
use crate::nft::{self, Nft};

fn same_mac(a: Option<Mac>, b: &str) -> bool {
    a.is_some() && a == Mac::parse(b).ok()
}

/// `100 PVID untagged, 101, 200` (as `bridge vlan show` says it).
fn describe_vlans(v: &[nl::PortVlan]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|p| {
            let mut s = p.vid.to_string();
            if p.pvid {
                s.push_str(" PVID");
            }
            if p.untagged {
                s.push_str(" untagged");
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `<bridge>.<vlan>` is a veth with the result's MAC whose peer is a port of the bridge with
/// the VLAN as PVID, egress untagged.
fn check_vlan_gateway(
    host: &mut Handle,
    bridge: &nl::Link,
    vlan: u16,
    listed: &cni_spec::Interface,
    diffs: &mut Vec<String>,
) -> Result<(), BridgeError> {
    let name = &listed.name;
    let Some(gw) = host.link_by_name(name)? else {
        diffs.push(format!("VLAN gateway interface {name} does not exist"));
        return Ok(());
    };
    if gw.kind.as_deref() != Some("veth") {
        diffs.push(format!(
            "{name} is a {}, not a veth",
            gw.kind.as_deref().unwrap_or("device")
        ));
        return Ok(());
    }
    if let Some(mac) = listed.mac.as_deref() {
        if !same_mac(gw.mac, mac) {
            diffs.push(format!(
                "{name} has MAC {} instead of {mac}",
                gw.mac.map(|m| m.to_string()).unwrap_or_default()
            ));
        }
    }
    let port = match gw.peer_index {
        Some(i) => host.link_by_index(i)?,
        None => None,
    };
    match port {
        Some(p) if p.master == Some(bridge.index) => {
            let vlans = host.port_vlans(p.index)?;
            if !vlans.iter().any(|v| v.vid == vlan && v.pvid && v.untagged) {
                diffs.push(format!(
                    "bridge port {} of {name} has VLANs {} without {vlan} PVID untagged",
                    p.name,
                    describe_vlans(&vlans)
                ));
            }
        }
        _ => diffs.push(format!(
            "the peer of {name} is not a port of bridge {}",
            bridge.name
        )),
    }
    Ok(())
}

/// CHECK: IPAM CHECK, then the kernel against `prevResult` and the config.
pub fn check(inv: &Invocation) -> Result<(), BridgeError> {
    let cfg = BridgeConfig::load(inv)?;
    let prev = inv.conf.require_prev_result("CHECK")?;
    ipam_glue::forward(inv, &cfg.ipam, Command::Check).step("CHECK: IPAM CHECK")?;
    let netns = inv.netns()?;
    let mut c = Checker {
        inv,
        cfg: &cfg,
        prev,
        ifname: inv.env.ifname.as_str(),
        sandbox: netns.path().display().to_string(),
        ctr: Handle::open_in(netns).step("CHECK: open netlink in container netns")?,
        host: Handle::current().step("CHECK: open netlink in the plugin's netns")?,
        diffs: Vec::new(),
    };
    c.compare().step("CHECK")
}

/// One CHECK: what it compares, and the differences found so far.
struct Checker<'a> {
    inv: &'a Invocation,
    cfg: &'a BridgeConfig,
    prev: &'a CniResult,
    ifname: &'a str,
    /// The container's netns path, as the result's `sandbox` has it.
    sandbox: String,
    ctr: Handle,
    host: Handle,
    diffs: Vec<String>,
}

impl<'a> Checker<'a> {
    /// The steps of CHECK; every difference is named in one [`BridgeError::Check`].
    fn compare(&mut self) -> Result<(), BridgeError> {
        let bridge = self.check_bridge()?;
        let Some((pos, link)) = self.container_end()? else {
            return Err(BridgeError::Check(std::mem::take(&mut self.diffs)));
        };
        self.check_container_veth(&link, pos);
        self.check_veth_pair(&link, pos, bridge.as_ref())?;
        if let Some(b) = &bridge {
            self.check_bridge_vlans(b)?;
        }
        let addresses = self.check_container_ip(&link, pos)?;
        if self.cfg.dialect == Dialect::Ecs {
            let found = ecs::check_isolation(&mut self.ctr, self.cfg, &link, &addresses)?;
            self.diffs.extend(found);
        }
        self.check_rules(&addresses)?;
        if self.diffs.is_empty() {
            return Ok(());
        }
        self.diffs.dedup();
        Err(BridgeError::Check(std::mem::take(&mut self.diffs)))
    }

    /// A link of the plugin's namespace that `prevResult` lists (no sandbox) by `name`.
    fn listed_on_host(&self, name: &str) -> Option<&'a Interface> {
        self.prev
            .interfaces
            .iter()
            .find(|i| i.name == name && i.sandbox.as_deref().unwrap_or("").is_empty())
    }

    /// The bridge exists, is a bridge, has the result's MAC. Returns the link of that name.
    fn check_bridge(&mut self) -> Result<Option<Link>, BridgeError> {
        let name = &self.cfg.bridge;
        let bridge = self.host.link_by_name(name)?;
        match &bridge {
            None => self.diffs.push(format!("bridge {name} does not exist")),
            Some(b) if b.kind.as_deref() != Some("bridge") => self.diffs.push(format!(
                "{name} is a {}, not a bridge",
                b.kind.as_deref().unwrap_or("device")
            )),
            Some(b) => {
                if let Some(mac) = self.listed_on_host(name).and_then(|i| i.mac.as_deref()) {
                    if !same_mac(b.mac, mac) {
                        self.diffs.push(format!(
                            "bridge {name} has MAC {} instead of {mac}",
                            b.mac.map(|m| m.to_string()).unwrap_or_default()
                        ));
                    }
                }
            }
        }
        Ok(bridge)
    }

    /// The container end, as `prevResult` lists it (name and sandbox) and as the kernel has
    /// it: its position in the result's interfaces and its link. `None` when either is
    /// missing (a difference: nothing more can be compared).
    fn container_end(&mut self) -> Result<Option<(usize, Link)>, BridgeError> {
        let (ifname, sandbox) = (self.ifname, self.sandbox.as_str());
        let Some(pos) = self
            .prev
            .interfaces
            .iter()
            .position(|i| i.name == ifname && i.sandbox.as_deref() == Some(sandbox))
        else {
            self.diffs.push(format!(
                "prevResult lists no interface {ifname} with sandbox {sandbox}"
            ));
            return Ok(None);
        };
        let Some(link) = self.ctr.link_by_name(ifname)? else {
            self.diffs.push(format!(
                "interface {ifname} does not exist in netns {sandbox}"
            ));
            return Ok(None);
        };
        Ok(Some((pos, link)))
    }

    /// The container end is a veth with the result's MAC and the configured MTU.
    fn check_container_veth(&mut self, link: &Link, pos: usize) {
        let ifname = self.ifname;
        if link.kind.as_deref() != Some("veth") {
            self.diffs.push(format!(
                "{ifname} is a {}, not a veth",
                link.kind.as_deref().unwrap_or("device")
            ));
        }
        if let Some(mac) = self.prev.interfaces[pos].mac.as_deref() {
            if !same_mac(link.mac, mac) {
                self.diffs.push(format!(
                    "{ifname} has MAC {} instead of {mac}",
                    link.mac.map(|m| m.to_string()).unwrap_or_default()
                ));
            }
        }
        if let Some(mtu) = self.cfg.mtu {
            if link.mtu != mtu {
                self.diffs
                    .push(format!("{ifname} has MTU {} instead of {mtu}", link.mtu));
            }
        }
    }

    /// The host end: the container end's peer in the plugin's namespace, a veth pointing back,
    /// with the result's name and MAC, enslaved to the bridge, the configured MTU, up, with the
    /// VLANs ADD gave it.
    fn check_veth_pair(
        &mut self,
        link: &Link,
        pos: usize,
        bridge: Option<&Link>,
    ) -> Result<(), BridgeError> {
        let ifname = self.ifname;
        let peer = match link.peer_index {
            Some(p) => self.host.link_by_index(p)?,
            None => None,
        };
        let Some(p) = peer else {
            self.diffs.push(format!(
                "the peer of {ifname} (index {:?}) is not in the plugin's netns",
                link.peer_index
            ));
            return Ok(());
        };
        if p.kind.as_deref() != Some("veth") || p.peer_index != Some(link.index) {
            self.diffs.push(format!(
                "host link {} (index {}) is not the veth peer of {ifname} (index {})",
                p.name, p.index, link.index
            ));
        }
        // ADD appends [bridge, host veth, container veth]: the host end is listed just before
        let listed = pos
            .checked_sub(1)
            .and_then(|i| self.prev.interfaces.get(i))
            .filter(|i| i.name != self.cfg.bridge && i.sandbox.as_deref().unwrap_or("").is_empty());
        if let Some(h) = listed {
            self.check_listed_host_end(&p, h);
        }
        if let Some(b) = bridge {
            if p.master != Some(b.index) {
                self.diffs
                    .push(format!("{} is not attached to bridge {}", p.name, b.name));
            }
        }
        if let Some(mtu) = self.cfg.mtu {
            if p.mtu != mtu {
                self.diffs
                    .push(format!("{} has MTU {} instead of {mtu}", p.name, p.mtu));
            }
        }
        if !p.up {
            self.diffs.push(format!("{} is down", p.name));
        }
        if let (Some(b), true) = (bridge, self.cfg.vlan.configures_port()) {
            self.check_port_vlans(b, &p)?;
        }
        Ok(())
    }

    /// The host end has the name and MAC `prevResult` lists for it.
    fn check_listed_host_end(&mut self, p: &Link, listed: &Interface) {
        if listed.name != p.name {
            self.diffs.push(format!(
                "the peer of {} is {} instead of {}",
                self.ifname, p.name, listed.name
            ));
        }
        if let Some(mac) = listed.mac.as_deref() {
            if !same_mac(p.mac, mac) {
                self.diffs.push(format!(
                    "{} has MAC {} instead of {mac}",
                    p.name,
                    p.mac.map(|m| m.to_string()).unwrap_or_default()
                ));
            }
        }
    }

    /// The container's bridge port has exactly the VLANs ADD gave it.
    fn check_port_vlans(&mut self, bridge: &Link, port: &Link) -> Result<(), BridgeError> {
        let pvid = self
            .host
            .bridge_vlan_state(bridge.index)?
            .and_then(|s| s.default_pvid)
            .unwrap_or(0);
        let v = &self.cfg.vlan;
        let want = host::expected_port_vlans(pvid, v.vlan, &v.trunk, v.preserve_default);
        let have = self.host.port_vlans(port.index)?;
        if have != want {
            self.diffs.push(format!(
                "bridge port {} has VLANs {} instead of {}",
                port.name,
                describe_vlans(&have),
                describe_vlans(&want)
            ));
        }
        Ok(())
    }

    /// With VLANs: the bridge has `vlan_filtering` on, and `<bridge>.<vlan>` (when the result
    /// lists it) is the VLAN's gateway interface.
    fn check_bridge_vlans(&mut self, bridge: &Link) -> Result<(), BridgeError> {
        if self.cfg.vlan.filtering {
            match self.host.bridge_vlan_state(bridge.index)? {
                Some(s) if s.filtering => {}
                Some(s) if s.default_pvid.is_none() => self.diffs.push(format!(
                    "bridge {}: the kernel has no bridge VLAN filtering",
                    bridge.name
                )),
                _ => self
                    .diffs
                    .push(format!("bridge {} has vlan_filtering off", bridge.name)),
            }
        }
        if let (Some(name), Some(vlan)) = (self.cfg.vlan_gateway_link(), self.cfg.vlan.vlan) {
            if let Some(listed) = self.listed_on_host(&name) {
                check_vlan_gateway(&mut self.host, bridge, vlan, listed, &mut self.diffs)?;
            }
        }
        Ok(())
    }

    /// The result's addresses (not tentative) and routes are in the container (unless the
    /// container interface is left down). Returns the container's addresses.
    fn check_container_ip(
        &mut self,
        link: &Link,
        pos: usize,
    ) -> Result<Vec<IpNetwork>, BridgeError> {
        let prev = self.prev;
        let addresses: Vec<IpNetwork> = prev
            .ips
            .iter()
            .filter(|i| i.interface == Some(pos))
            .map(|i| i.address)
            .collect();
        if self.cfg.disable_container_interface {
            return Ok(addresses);
        }
        let ifcfg = IfaceConfig {
            addresses: addresses.clone(),
            gateways: Vec::new(),
            default_routes: false,
            // first in a chain, every route is ours; after other interface plugins, only those
            // whose gateway is in one of our subnets can be told apart as ours
            routes: prev
                .routes
                .iter()
                .filter(|r| {
                    pos <= CONTAINER_INDEX
                        || r.gw
                            .is_some_and(|g| addresses.iter().any(|a| a.contains(g)))
                })
                .map(|r| ExtraRoute {
                    dst: r.dst,
                    gw: r.gw,
                })
                .collect(),
            mtu: None,
            block_imds: self.cfg.block_imds,
        };
        match ipconf::check(&mut self.ctr, link.index, &ifcfg) {
            Ok(()) => {}
            Err(ipconf::Error::Mismatch { diffs, .. }) => {
                let ifname = self.ifname;
                self.diffs
                    .extend(diffs.into_iter().map(|d| format!("{ifname}: {d}")));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(addresses)
    }

    /// `ipMasq`: a masquerade rule per address; `macspoofchk`: the spoof check rule.
    fn check_rules(&mut self, addresses: &[IpNetwork]) -> Result<(), BridgeError> {
        let cfg = self.cfg;
        let Some(what) = cfg.nft_feature() else {
            return Ok(());
        };
        let (inv, env) = (self.inv, &self.inv.env);
        let nft = Nft::find(&inv.vars, what)?;
        let comment = nft::comment(&inv.conf.name, &env.container_id, &env.ifname);
        let rules: Vec<nft::Rule> = nft
            .rules()?
            .into_iter()
            .filter(|r| r.comment == comment)
            .collect();
        let count = |fam: &str, table: &str| {
            rules
                .iter()
                .filter(|r| r.family == fam && r.table == table)
                .count()
        };
        if cfg.ip_masq {
            for a in addresses {
                let fam = if a.is_ipv4() { "ip" } else { "ip6" };
                let want = addresses
                    .iter()
                    .filter(|b| b.is_ipv4() == a.is_ipv4())
                    .count();
                if count(fam, nft::NAT_TABLE) < want {
                    self.diffs.push(format!(
                        "masquerade rule for {} is missing from table {fam} {}",
                        a.ip(),
                        nft::NAT_TABLE
                    ));
                }
            }
        }
        if cfg.mac_spoof_check && count("bridge", nft::SPOOF_TABLE) == 0 {
            self.diffs.push(format!(
                "MAC spoof check rule is missing from table bridge {}",
                nft::SPOOF_TABLE
            ));
        }
        Ok(())
    }
}
