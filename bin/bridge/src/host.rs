//! Host-side links: the bridge (created once, race-safe, with a pinned MAC), the veth pair,
//! the bridge's gateway addresses and IP forwarding.

use std::os::fd::BorrowedFd;

use ipnetwork::IpNetwork;
use netns::Mac;
use nl::{BridgeSpec, Handle, Link, PortVlan, VethSpec, VlanRange};

use crate::config::{BridgeConfig, VlanConfig};
use crate::error::{BridgeError, StepExt};

/// How many random host-side veth names are tried.
pub const VETH_NAME_ATTEMPTS: usize = 10;

/// `veth` + 8 random hex digits.
pub fn veth_name() -> String {
    format!("veth{:08x}", netns::random_u64() as u32)
}

/// The bridge, created if absent. A link of that name that is not a bridge is an error. An
/// ADD racing with another one to create it loses with EEXIST and uses the winner's. A new
/// bridge gets `cfg.mtu` and a random locally administered MAC, which the kernel then keeps
/// (an address set by the user does not follow the ports as they come and go, so containers'
/// ARP entries for the gateway stay valid), and `vlan_filtering` when the config has VLANs.
/// An existing bridge without `vlan_filtering` gets it turned on (with a warning) when the
/// config has VLANs; a kernel without bridge VLAN filtering is then an error (code 101) before
/// anything is changed. Returns the link and whether we created it.
pub fn ensure_bridge(host: &mut Handle, cfg: &BridgeConfig) -> Result<(Link, bool), BridgeError> {
    let name = cfg.bridge.as_str();
    let filtering = cfg.vlan.filtering;
    let spec = BridgeSpec {
        name,
        mtu: cfg.mtu,
        mac: Some(Mac::random_local()),
        vlan_filtering: filtering,
    };
    let (link, created) = match host.link_by_name(name)? {
        Some(l) => (l, false),
        None => match host.create_bridge_with(&spec) {
            Ok(()) => (host.link(name)?, true),
            Err(e) if e.is_exists() => (host.link(name)?, false),
            Err(e) if filtering && e.is_not_supported() => {
                return Err(no_vlan_filtering(host, name, &cfg.vlan));
            }
            Err(e) => return Err(e.into()),
        },
    };
    if link.kind.as_deref() != Some("bridge") {
        return Err(BridgeError::NotABridge {
            name: name.to_owned(),
            kind: link.kind.clone().unwrap_or_else(|| "device".into()),
            netns: host.netns_label().to_owned(),
        });
    }
    if filtering && !created {
        ensure_vlan_filtering(host, &link, &cfg.vlan)?;
    }
    if !link.up {
        host.set_up(link.index)?;
    }
    if cfg.promisc {
        host.set_promisc(link.index, true)?;
    }
    Ok((link, created))
}

fn no_vlan_filtering(host: &Handle, bridge: &str, vlan: &VlanConfig) -> BridgeError {
    BridgeError::NoVlanFiltering {
        bridge: bridge.to_owned(),
        netns: host.netns_label().to_owned(),
        key: if vlan.vlan.is_some() {
            "vlan"
        } else {
            "vlanTrunk"
        },
    }
}

/// `vlan_filtering` on an existing bridge: checked, and turned on when off. The reference
/// plugin leaves an existing bridge as it is, so its VLANs would silently isolate nothing.
fn ensure_vlan_filtering(
    host: &mut Handle,
    bridge: &Link,
    vlan: &VlanConfig,
) -> Result<(), BridgeError> {
    let state = host.bridge_vlan_state(bridge.index)?;
    match state {
        Some(s) if s.default_pvid.is_none() => Err(no_vlan_filtering(host, &bridge.name, vlan)),
        Some(s) if !s.filtering => {
            cni_spec::log_warn!(
                "bridge {} in netns {} has vlan_filtering off: turning it on for the VLANs of this network",
                bridge.name,
                host.netns_label()
            );
            match host.set_bridge_vlan_filtering(bridge.index, true) {
                Ok(()) => Ok(()),
                Err(e) if e.is_not_supported() => Err(no_vlan_filtering(host, &bridge.name, vlan)),
                Err(e) => Err(e.into()),
            }
        }
        _ => Ok(()),
    }
}

/// The port VLAN requests of the reference bridge, in its order: `vlan` as PVID, egress
/// untagged; the trunk's ids tagged (consecutive ids as one range); a trunk without `vlan`
/// gets VLAN 1 as its native VLAN (PVID, untagged).
pub fn port_vlan_requests(vlan: Option<u16>, trunk: &[u16]) -> Vec<VlanRange> {
    let mut out = Vec::new();
    if let Some(v) = vlan {
        out.push(VlanRange::one(v, true, true));
    }
    out.extend(VlanRange::tagged(trunk));
    if vlan.is_none() && !trunk.is_empty() {
        out.push(VlanRange::one(1, true, true));
    }
    out
}

/// What `bridge vlan show` lists for a new port of a bridge whose default PVID is
/// `default_pvid` (0 = none) once [`set_port_vlans`] has run: the kernel's rules applied to
/// [`port_vlan_requests`] (a request with PVID takes the PVID from any other id; a request
/// without it, for the id that is the PVID, clears it). Sorted by id.
pub fn expected_port_vlans(
    default_pvid: u16,
    vlan: Option<u16>,
    trunk: &[u16],
    preserve_default: bool,
) -> Vec<PortVlan> {
    let mut port: Vec<PortVlan> = Vec::new();
    if default_pvid != 0 && (preserve_default || (vlan.is_none() && trunk.is_empty())) {
        port.push(PortVlan {
            vid: default_pvid,
            pvid: true,
            untagged: true,
        });
    }
    for r in port_vlan_requests(vlan, trunk) {
        for vid in r.first..=r.last {
            if r.pvid {
                for p in port.iter_mut() {
                    p.pvid = false;
                }
            }
            let entry = PortVlan {
                vid,
                pvid: r.pvid,
                untagged: r.untagged,
            };
            match port.iter_mut().find(|p| p.vid == vid) {
                Some(p) => *p = entry,
                None => port.push(entry),
            }
        }
    }
    port.sort();
    port
}

/// Gives a new port of `bridge` its VLANs as the reference bridge does: unless
/// `preserveDefaultVlan`, the bridge's default VLAN (which the kernel gave the port) goes,
/// then [`port_vlan_requests`] in one request. Nothing happens without `vlan` or trunk ids.
pub fn set_port_vlans(
    host: &mut Handle,
    port: u32,
    bridge: &Link,
    vlan: Option<u16>,
    trunk: &[u16],
    preserve_default: bool,
) -> Result<(), BridgeError> {
    if vlan.is_none() && trunk.is_empty() {
        return Ok(());
    }
    if !preserve_default {
        let pvid = host
            .bridge_vlan_state(bridge.index)?
            .and_then(|s| s.default_pvid)
            .unwrap_or(0);
        if pvid != 0 {
            host.del_port_vlan(port, pvid)?;
        }
    }
    host.add_port_vlans(port, &port_vlan_requests(vlan, trunk))?;
    Ok(())
}

/// Tries up to [`VETH_NAME_ATTEMPTS`] random `veth<8 hex>` names: `attempt` returns `None`
/// when the name is taken.
fn with_random_veth_name<T>(
    mut attempt: impl FnMut(&str) -> Result<Option<T>, BridgeError>,
) -> Result<T, BridgeError> {
    let mut last = String::new();
    for _ in 0..VETH_NAME_ATTEMPTS {
        let name = veth_name();
        if let Some(done) = attempt(&name)? {
            return Ok(done);
        }
        last = name;
    }
    Err(BridgeError::NoVethName {
        attempts: VETH_NAME_ATTEMPTS,
        last,
    })
}

/// The reference bridge's gateway interface for a layer-3 network with a VLAN: a veth pair in
/// the plugin's namespace, `<bridge>.<vlan>` (which carries the gateway addresses) and a
/// `veth<8 hex>` port of the bridge whose PVID is the VLAN (egress untagged; the default VLAN
/// removed unless `preserveDefaultVlan`), both up, MTU of the bridge. Created once and shared
/// by every container of the VLAN, like the bridge (never deleted). An existing link of that
/// name must be a veth; one created by a concurrent ADD is used as it is.
pub fn ensure_vlan_gateway(
    host: &mut Handle,
    bridge: &Link,
    vlan: u16,
    preserve_default: bool,
) -> Result<Link, BridgeError> {
    let name = format!("{}.{vlan}", bridge.name);
    let existing = |host: &mut Handle, l: Link| {
        if l.kind.as_deref() == Some("veth") {
            Ok(l)
        } else {
            Err(BridgeError::NotAVlanGateway {
                name: l.name.clone(),
                kind: l.kind.clone().unwrap_or_else(|| "device".into()),
                netns: host.netns_label().to_owned(),
                bridge: bridge.name.clone(),
                vlan,
            })
        }
    };
    if let Some(l) = host.link_by_name(&name)? {
        return existing(host, l);
    }
    with_random_veth_name(|peer| {
        let spec = VethSpec {
            name: &name,
            peer_name: peer,
            mtu: Some(bridge.mtu),
            ..VethSpec::default()
        };
        match host.create_veth(&spec) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {
                return match host.link_by_name(&name)? {
                    Some(l) => existing(host, l).map(Some),
                    None => Ok(None),
                };
            }
            Err(e) => return Err(e.into()),
        }
        let made = vlan_gateway_up(host, bridge, &name, peer, vlan, preserve_default);
        if made.is_err() {
            // half-configured: ours alone, so it goes
            if let Ok(Some(l)) = host.link_by_name(&name) {
                let _ = host.delete_link(l.index);
            }
        }
        made.map(Some)
    })
}

/// The new `<bridge>.<vlan>` pair: its peer `port` a port of the bridge in the VLAN, both up.
fn vlan_gateway_up(
    host: &mut Handle,
    bridge: &Link,
    name: &str,
    port: &str,
    vlan: u16,
    preserve_default: bool,
) -> Result<Link, BridgeError> {
    let port = host.link(port)?.index;
    host.set_master(port, bridge.index)?;
    set_port_vlans(host, port, bridge, Some(vlan), &[], preserve_default)?;
    host.set_up(port)?;
    let gw = host.link(name)?;
    host.set_up(gw.index)?;
    Ok(host.link(name)?)
}

/// Creates the veth pair from the container side: `ifname` in the container, the host end,
/// `veth<8 hex>`, born directly in the host namespace (`host_ns`), the MTU on both ends. A
/// taken host name is retried with another random one.
pub fn create_veth(
    ctr: &mut Handle,
    host_ns: BorrowedFd<'_>,
    ifname: &str,
    mtu: Option<u32>,
    mac: Option<Mac>,
) -> Result<String, BridgeError> {
    with_random_veth_name(|host_name| {
        let spec = VethSpec {
            name: ifname,
            peer_name: host_name,
            mtu,
            mac,
            peer_mac: None,
            netns: None,
            peer_netns: Some(host_ns),
        };
        match ctr.create_veth(&spec) {
            Ok(()) => Ok(Some(host_name.to_owned())),
            Err(e) if e.is_exists() => match ctr.link_by_name(ifname)? {
                Some(_) => Err(BridgeError::IfaceExists {
                    ifname: ifname.to_owned(),
                    netns: ctr.netns_label().to_owned(),
                }),
                None => Ok(None),
            },
            Err(e) => Err(e.into()),
        }
    })
}

/// Deletes a link; one already gone is fine.
pub fn delete_link(h: &mut Handle, index: u32) -> Result<(), nl::Error> {
    match h.delete_link(index) {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Puts each of `wants` (gateway/prefix) on the bridge (or the VLAN gateway interface) unless
/// it is there, with one address dump for all of them.
///
/// Another global address of the same family that overlaps a wanted one is an error, or, with
/// `force`, is removed first (the reference bridge's `forceAddress`). `exclusive` (ecs-bridge)
/// treats any other global address of the family as a mismatch. Link-local addresses are
/// ignored. An address added meanwhile by a concurrent ADD is fine. A failure is the step
/// `add gateway <address> to <link>`.
pub fn ensure_bridge_addrs(
    host: &mut Handle,
    bridge: &Link,
    wants: &[IpNetwork],
    force: bool,
    exclusive: bool,
) -> Result<(), BridgeError> {
    let Some(first) = wants.first() else {
        return Ok(());
    };
    let step = |want: &IpNetwork| match bridge.kind.as_deref() {
        Some("bridge") => format!("add gateway {want} to bridge {}", bridge.name),
        _ => format!("add gateway {want} to {}", bridge.name),
    };
    let mut present: Vec<IpNetwork> = host
        .addrs(Some(bridge.index))
        .step_with(|| step(first))?
        .into_iter()
        .filter(|a| a.scope == nl::Scope::Universe)
        .map(|a| a.net)
        .collect();
    let mut gateway = GatewayAddrs {
        host,
        link: bridge,
        wants,
        force,
        exclusive,
    };
    for want in wants {
        gateway
            .ensure(*want, &mut present)
            .step_with(|| step(want))?;
    }
    Ok(())
}

/// One [`ensure_bridge_addrs`] call.
struct GatewayAddrs<'a> {
    host: &'a mut Handle,
    link: &'a Link,
    wants: &'a [IpNetwork],
    force: bool,
    exclusive: bool,
}

impl GatewayAddrs<'_> {
    /// `want` on the link: the addresses in its way removed (`force`) or refused, then added.
    fn ensure(&mut self, want: IpNetwork, present: &mut Vec<IpNetwork>) -> Result<(), BridgeError> {
        if present.contains(&want) {
            return Ok(());
        }
        let in_the_way: Vec<IpNetwork> = present
            .iter()
            .copied()
            .filter(|a| {
                a.is_ipv4() == want.is_ipv4()
                    && !self.wants.contains(a)
                    && (self.exclusive || a.contains(want.ip()) || want.contains(a.ip()))
            })
            .collect();
        for a in in_the_way {
            if !self.force || self.exclusive {
                return Err(self.address_in_the_way(a, want));
            }
            match self.host.del_addr(self.link.index, a) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            present.retain(|x| *x != a);
        }
        match self.host.add_addr(self.link.index, want, want.is_ipv6()) {
            Ok(()) => present.push(want),
            Err(e) if e.is_exists() => present.push(want),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn address_in_the_way(&self, existing: IpNetwork, want: IpNetwork) -> BridgeError {
        let what = if self.link.kind.as_deref() == Some("bridge") {
            "bridge"
        } else {
            "VLAN gateway interface"
        };
        BridgeError::BridgeAddress {
            bridge: format!("{what} {}", self.link.name),
            netns: self.host.netns_label().to_owned(),
            existing: existing.to_string(),
            wanted: want.to_string(),
            hint: if self.exclusive {
                " (mismatch in the bridge's address for this family)"
            } else {
                " (set forceAddress to replace it)"
            },
        }
    }
}

/// IPv6 off on a bridge port (a host end, before it is up). A port's own IPv6 is never used: the
/// port hands every frame it receives to the bridge, which carries the gateways and forwards the
/// tasks' IPv6 as before. With IPv6 on, the port still gets a link-local address and its routes,
/// and when it gets its carrier the kernel walks the host's whole IPv6 routing table under rtnl to
/// bring its routes up (about 1 ms with 1,000 ports that have IPv6). Turning it off costs one such
/// walk now and keeps the port out of every later one.
/// Skipped where it cannot be done: a kernel without IPv6, a read-only or unwritable `/proc/sys`.
pub fn port_without_ipv6(port: &str) -> Result<(), BridgeError> {
    let key = format!("net/ipv6/conf/{port}/disable_ipv6");
    match netns::sysctl_set(&key, "1") {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() || e.is_read_only() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sets a host (plugin namespace) sysctl to `1` unless it already is; a key that does not
/// exist (no IPv6 in the kernel) is skipped.
pub fn enable_sysctl(key: &str) -> Result<(), BridgeError> {
    match netns::sysctl_get(key) {
        Ok(v) if v.trim() == "1" => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        _ => Ok(netns::sysctl_set(key, "1")?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(vid: u16, pvid: bool, untagged: bool) -> PortVlan {
        PortVlan {
            vid,
            pvid,
            untagged,
        }
    }

    /// What `bridge vlan show` must list for the reference bridge's cases (checked against
    /// Debian's Go bridge where it has the key: vlan 100 with the default VLAN preserved).
    #[test]
    fn expected_port_vlans_of_the_reference_cases() {
        // vlan 100: the default VLAN goes
        assert_eq!(
            expected_port_vlans(1, Some(100), &[], false),
            [v(100, true, true)]
        );
        // preserveDefaultVlan: VLAN 1 stays, egress untagged, no longer the PVID (Go 1.1.1)
        assert_eq!(
            expected_port_vlans(1, Some(100), &[], true),
            [v(1, false, true), v(100, true, true)]
        );
        // a trunk: tagged ids, VLAN 1 native
        let trunk: Vec<u16> = std::iter::once(101).chain(200..=210).collect();
        let mut want = vec![v(1, true, true), v(101, false, false)];
        want.extend((200..=210).map(|i| v(i, false, false)));
        assert_eq!(expected_port_vlans(1, None, &trunk, false), want);
        assert_eq!(expected_port_vlans(1, None, &trunk, true), want);
        // vlan + trunk: vlan is the native VLAN
        let mut want = vec![v(100, true, true), v(101, false, false)];
        want.extend((200..=210).map(|i| v(i, false, false)));
        assert_eq!(expected_port_vlans(1, Some(100), &trunk, false), want);
        // a trunk id equal to vlan makes it tagged (the later request wins)
        assert_eq!(
            expected_port_vlans(1, Some(100), &[100], false),
            [v(100, false, false)]
        );
        // no VLANs: the kernel's default only
        assert_eq!(expected_port_vlans(1, None, &[], false), [v(1, true, true)]);
        assert_eq!(
            expected_port_vlans(0, Some(5), &[], true),
            [v(5, true, true)]
        );
        assert_eq!(
            port_vlan_requests(None, &[7, 8]),
            [
                VlanRange {
                    first: 7,
                    last: 8,
                    pvid: false,
                    untagged: false
                },
                VlanRange::one(1, true, true)
            ]
        );
    }

    #[test]
    fn random_names_and_macs() {
        let n = veth_name();
        assert_eq!(n.len(), 12);
        assert!(n[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(veth_name(), veth_name());
        for _ in 0..100 {
            let m = Mac::random_local().octets();
            assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast");
        }
    }
}
