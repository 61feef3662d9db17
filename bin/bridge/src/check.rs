//! CHECK: the kernel's state against `prevResult` and the config.

use cni_spec::{Command, Error, Invocation};
use ipconf::{ExtraRoute, IfaceConfig};
use ipnetwork::IpNetwork;
use netns::Mac;
use nl::{Family, Handle};

use crate::add::CONTAINER_INDEX;
use crate::config::{BridgeConfig, Dialect};
use crate::error::{BridgeError, at, step};
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

/// The container's bridge port has exactly the VLANs ADD gave it.
fn check_port_vlans(
    host: &mut Handle,
    bridge: &nl::Link,
    port: &nl::Link,
    cfg: &BridgeConfig,
    diffs: &mut Vec<String>,
) -> Result<(), BridgeError> {
    let pvid = host
        .bridge_vlan_state(bridge.index)?
        .and_then(|s| s.default_pvid)
        .unwrap_or(0);
    let v = &cfg.vlan;
    let want = host::expected_port_vlans(pvid, v.vlan, &v.trunk, v.preserve_default);
    let have = host.port_vlans(port.index)?;
    if have != want {
        diffs.push(format!(
            "bridge port {} has VLANs {} instead of {}",
            port.name,
            describe_vlans(&have),
            describe_vlans(&want)
        ));
    }
    Ok(())
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

/// Compares the bridge, the veth pair (peer indexes must cross-match), the host end's master,
/// MTU, MAC, the container's addresses and routes, ecs-bridge's missing connected routes and
/// the nftables rules with `prevResult`; runs IPAM CHECK first. Every difference is named.
pub fn check(inv: &Invocation) -> Result<(), Error> {
    let cfg = BridgeConfig::load(inv)?;
    let prev = inv.conf.require_prev_result("CHECK")?;
    ipam_glue::forward(inv, &cfg.ipam, Command::Check).map_err(|e| at("CHECK: IPAM CHECK", e))?;

    let ifname = inv.env.ifname.as_str();
    let netns = inv.netns()?;
    let sandbox = netns.path().display().to_string();
    let mut ctr = Handle::open_in(netns).map_err(step("CHECK: open netlink in container netns"))?;
    let mut host = Handle::current().map_err(step("CHECK: open netlink in the plugin's netns"))?;
    let mut diffs = Vec::new();
    let fail = |e: BridgeError| at("CHECK", e);

    // the bridge
    let bridge = host.link_by_name(&cfg.bridge).map_err(step("CHECK"))?;
    let prev_bridge = prev
        .interfaces
        .iter()
        .find(|i| i.name == cfg.bridge && i.sandbox.as_deref().unwrap_or("").is_empty());
    match &bridge {
        None => diffs.push(format!("bridge {} does not exist", cfg.bridge)),
        Some(b) if b.kind.as_deref() != Some("bridge") => diffs.push(format!(
            "{} is a {}, not a bridge",
            cfg.bridge,
            b.kind.as_deref().unwrap_or("device")
        )),
        Some(b) => {
            if let Some(mac) = prev_bridge.and_then(|i| i.mac.as_deref()) {
                if !same_mac(b.mac, mac) {
                    diffs.push(format!(
                        "bridge {} has MAC {} instead of {mac}",
                        cfg.bridge,
                        b.mac.map(|m| m.to_string()).unwrap_or_default()
                    ));
                }
            }
        }
    }

    // the container end, as prevResult lists it
    let Some(pos) = prev
        .interfaces
        .iter()
        .position(|i| i.name == ifname && i.sandbox.as_deref() == Some(sandbox.as_str()))
    else {
        diffs.push(format!(
            "prevResult lists no interface {ifname} with sandbox {sandbox}"
        ));
        return Err(fail(BridgeError::Check(diffs)));
    };
    let prev_ctr = &prev.interfaces[pos];
    let Some(link) = ctr.link_by_name(ifname).map_err(step("CHECK"))? else {
        diffs.push(format!(
            "interface {ifname} does not exist in netns {sandbox}"
        ));
        return Err(fail(BridgeError::Check(diffs)));
    };
    if link.kind.as_deref() != Some("veth") {
        diffs.push(format!(
            "{ifname} is a {}, not a veth",
            link.kind.as_deref().unwrap_or("device")
        ));
    }
    if let Some(mac) = prev_ctr.mac.as_deref() {
        if !same_mac(link.mac, mac) {
            diffs.push(format!(
                "{ifname} has MAC {} instead of {mac}",
                link.mac.map(|m| m.to_string()).unwrap_or_default()
            ));
        }
    }
    if let Some(mtu) = cfg.mtu {
        if link.mtu != mtu {
            diffs.push(format!("{ifname} has MTU {} instead of {mtu}", link.mtu));
        }
    }

    // the host end: the container end's peer, enslaved to the bridge, pointing back
    // ADD appends [bridge, host veth, container veth]: the host end is listed just before
    let prev_host = pos
        .checked_sub(1)
        .and_then(|p| prev.interfaces.get(p))
        .filter(|i| i.name != cfg.bridge && i.sandbox.as_deref().unwrap_or("").is_empty());
    let peer = match link.peer_index {
        Some(p) => host.link_by_index(p).map_err(step("CHECK"))?,
        None => None,
    };
    match peer {
        None => diffs.push(format!(
            "the peer of {ifname} (index {:?}) is not in the plugin's netns",
            link.peer_index
        )),
        Some(p) => {
            if p.kind.as_deref() != Some("veth") || p.peer_index != Some(link.index) {
                diffs.push(format!(
                    "host link {} (index {}) is not the veth peer of {ifname} (index {})",
                    p.name, p.index, link.index
                ));
            }
            if let Some(h) = prev_host {
                if h.name != p.name {
                    diffs.push(format!(
                        "the peer of {ifname} is {} instead of {}",
                        p.name, h.name
                    ));
                }
                if let Some(mac) = h.mac.as_deref() {
                    if !same_mac(p.mac, mac) {
                        diffs.push(format!(
                            "{} has MAC {} instead of {mac}",
                            p.name,
                            p.mac.map(|m| m.to_string()).unwrap_or_default()
                        ));
                    }
                }
            }
            if let Some(b) = &bridge {
                if p.master != Some(b.index) {
                    diffs.push(format!("{} is not attached to bridge {}", p.name, b.name));
                }
            }
            if let Some(mtu) = cfg.mtu {
                if p.mtu != mtu {
                    diffs.push(format!("{} has MTU {} instead of {mtu}", p.name, p.mtu));
                }
            }
            if !p.up {
                diffs.push(format!("{} is down", p.name));
            }
            if let Some(b) = &bridge {
                if cfg.vlan.configures_port() {
                    check_port_vlans(&mut host, b, &p, &cfg, &mut diffs).map_err(step("CHECK"))?;
                }
            }
        }
    }
    if cfg.vlan.filtering {
        if let Some(b) = &bridge {
            match host.bridge_vlan_state(b.index).map_err(step("CHECK"))? {
                Some(s) if s.filtering => {}
                Some(s) if s.default_pvid.is_none() => diffs.push(format!(
                    "bridge {}: the kernel has no bridge VLAN filtering",
                    b.name
                )),
                _ => diffs.push(format!("bridge {} has vlan_filtering off", b.name)),
            }
        }
    }
    if let (Some(name), Some(vlan), Some(b)) = (cfg.vlan_gateway_link(), cfg.vlan.vlan, &bridge) {
        let listed = prev
            .interfaces
            .iter()
            .find(|i| i.name == name && i.sandbox.as_deref().unwrap_or("").is_empty());
        if let Some(listed) = listed {
            check_vlan_gateway(&mut host, b, vlan, listed, &mut diffs).map_err(step("CHECK"))?;
        }
    }

    // addresses and routes
    let addresses: Vec<IpNetwork> = prev
        .ips
        .iter()
        .filter(|i| i.interface == Some(pos))
        .map(|i| i.address)
        .collect();
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
        block_imds: cfg.block_imds,
    };
    if !cfg.disable_container_interface {
        match ipconf::check(&mut ctr, link.index, &ifcfg) {
            Ok(()) => {}
            Err(ipconf::Error::Mismatch { diffs: d, .. }) => {
                diffs.extend(d.into_iter().map(|d| format!("{ifname}: {d}")));
            }
            Err(e) => return Err(fail(e.into())),
        }
    }
    if cfg.dialect == Dialect::Ecs {
        for f in [Family::V4, Family::V6] {
            let mine: Vec<&IpNetwork> = addresses
                .iter()
                .filter(|a| Family::of(a.ip()) == f)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let keep = match f {
                Family::V4 => cfg.connected_v4,
                Family::V6 => cfg.connected_v6,
            };
            for r in ctr.routes(f).map_err(step("CHECK"))? {
                let connected = mine
                    .iter()
                    .any(|a| r.dst.ip() == a.network() && r.dst.prefix() == a.prefix());
                if connected
                    && r.gw.is_none()
                    && r.oif == Some(link.index)
                    && keep != Some(r.dst.prefix())
                {
                    diffs.push(format!(
                        "{ifname}: connected route {} is present (tasks on the bridge could reach each other)",
                        r.dst
                    ));
                }
            }
        }
    }

    // nftables
    if cfg.uses_nft() && cfg.dialect == Dialect::Reference {
        let what = if cfg.ip_masq { "ipMasq" } else { "macspoofchk" };
        let nft = Nft::find(&inv.vars, what).map_err(step("CHECK"))?;
        let comment = nft::comment(&inv.conf.name, &inv.env.container_id, ifname);
        let rules: Vec<nft::Rule> = nft
            .rules()
            .map_err(step("CHECK"))?
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
            for a in &addresses {
                let fam = if a.is_ipv4() { "ip" } else { "ip6" };
                let want = addresses
                    .iter()
                    .filter(|b| b.is_ipv4() == a.is_ipv4())
                    .count();
                if count(fam, nft::NAT_TABLE) < want {
                    diffs.push(format!(
                        "masquerade rule for {} is missing from table {fam} {}",
                        a.ip(),
                        nft::NAT_TABLE
                    ));
                }
            }
        }
        if cfg.mac_spoof_check && count("bridge", nft::SPOOF_TABLE) == 0 {
            diffs.push(format!(
                "MAC spoof check rule is missing from table bridge {}",
                nft::SPOOF_TABLE
            ));
        }
    }

    if diffs.is_empty() {
        Ok(())
    } else {
        diffs.dedup();
        Err(fail(BridgeError::Check(diffs)))
    }
}
