//! The steps only ecs-bridge takes, so that tasks on one bridge reach only the gateway-routed
//! destinations (`169.254.170.2/32` via the gateway), never each other:
//!
//! - ADD needs IPAM ([`require_ipam`]); IPAM gives 1 or 2 addresses, each with a gateway
//!   ([`check_ip_count`]);
//! - on-link host routes to the gateways come first ([`gateway_routes`]): the only way out once
//!   the connected routes go;
//! - the container end gets the stable MAC `0a:58:<IPv4 address>` ([`set_stable_mac`]);
//! - no IPv6 link-local address is generated, hence no `fe80::/64` route ([`no_link_local`]);
//! - the connected routes of the task's subnets are deleted ([`isolate`]); CHECK says when
//!   one is back ([`check_isolation`]).

use ipconf::ExtraRoute;
use ipnetwork::IpNetwork;
use netns::{Mac, Netns};
use nl::{Family, Handle, Link, RouteSpec};

use crate::config::BridgeConfig;
use crate::error::{BridgeError, StepExt};
use crate::plan::Plan;

/// ADD without IPAM is a config error (the agent's DEL config `"ipam": {}` is fine).
pub fn require_ipam(cfg: &BridgeConfig) -> Result<(), BridgeError> {
    if cfg.ipam == crate::config::IpamKind::None {
        return Err(cni_spec::Error::invalid_config(
            "key \"ipam\": the ecs-bridge dialect needs IPAM (e.g. ecs-ipam) for ADD",
        )
        .into());
    }
    Ok(())
}

/// ecs-bridge takes 1 or 2 addresses (IPv4, IPv6).
pub fn check_ip_count(n: usize) -> Result<(), String> {
    if n > 2 {
        return Err(format!("expected 1 or 2 IP configs, got {n}"));
    }
    Ok(())
}

/// An on-link host route (`/32`, `/128`) to each gateway.
pub fn gateway_routes(gateways: &[std::net::IpAddr]) -> Vec<ExtraRoute> {
    gateways
        .iter()
        .map(|g| ExtraRoute {
            dst: IpNetwork::from(*g),
            gw: None,
        })
        .collect()
}

/// `0a:58:` + the IPv4 address: ecs-bridge's container MAC, stable per address so that ARP
/// caches stay right when an address is handed out again.
pub fn stable_mac(plan: &Plan) -> Option<Mac> {
    plan.ips.iter().find_map(|i| match i.address.ip() {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(Mac::new([0x0a, 0x58, o[0], o[1], o[2], o[3]]))
        }
        std::net::IpAddr::V6(_) => None,
    })
}

/// The container end gets [`stable_mac`], unless a MAC is configured.
pub fn set_stable_mac(
    ctr: &mut Handle,
    link: &mut Link,
    plan: &Plan,
    cfg: &BridgeConfig,
) -> Result<(), BridgeError> {
    let Some(mac) = stable_mac(plan).filter(|_| cfg.mac.is_none()) else {
        return Ok(());
    };
    ctr.set_mac(link.index, mac)
        .step_with(|| format!("ADD: set the MAC of {}", link.name))?;
    link.mac = Some(mac);
    Ok(())
}

/// No IPv6 link-local address on the container end (`addr_gen_mode=1`), hence no
/// `fe80::/64` route to the other tasks (a kernel without IPv6 has nothing to turn off).
pub fn no_link_local(netns: &Netns, ifname: &str) -> Result<(), BridgeError> {
    let key = format!("net/ipv6/conf/{ifname}/addr_gen_mode");
    match netns.sysctl_set(&key, "1") {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(BridgeError::from(e).at("ADD: disable IPv6 link-local addresses")),
    }
}

/// The connected route's mask size to keep (`connectedSubnetMaskSize*`), for daemon tasks.
fn kept_mask(cfg: &BridgeConfig, f: Family) -> Option<u8> {
    match f {
        Family::V4 => cfg.connected_v4,
        Family::V6 => cfg.connected_v6,
    }
}

/// The connected routes of the container's subnets go (a configured
/// `connectedSubnetMaskSize*` keeps or re-adds one of that size).
pub fn isolate(
    ctr: &mut Handle,
    cfg: &BridgeConfig,
    index: u32,
    plan: &Plan,
) -> Result<(), BridgeError> {
    isolate_subnets(ctr, cfg, index, plan).step("ADD: remove the connected routes")
}

fn isolate_subnets(
    ctr: &mut Handle,
    cfg: &BridgeConfig,
    index: u32,
    plan: &Plan,
) -> Result<(), BridgeError> {
    for ip in &plan.ips {
        let connected = IpNetwork::new(ip.address.network(), ip.address.prefix())?;
        let keep = kept_mask(cfg, Family::of(ip.address.ip()));
        if keep == Some(ip.address.prefix()) {
            continue;
        }
        match ctr.del_route(&RouteSpec::link(connected, index)) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(m) = keep {
            let net =
                IpNetwork::new(ip.address.ip(), m).and_then(|n| IpNetwork::new(n.network(), m))?;
            match ctr.add_route(&RouteSpec::link(net, index)) {
                Ok(()) => {}
                Err(e) if e.is_exists() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// CHECK: no connected route of the container's subnets through `link` (other than one of
/// the kept size); each one found is a difference.
pub fn check_isolation(
    ctr: &mut Handle,
    cfg: &BridgeConfig,
    link: &Link,
    addresses: &[IpNetwork],
) -> Result<Vec<String>, BridgeError> {
    let mut diffs = Vec::new();
    for f in [Family::V4, Family::V6] {
        let mine: Vec<&IpNetwork> = addresses
            .iter()
            .filter(|a| Family::of(a.ip()) == f)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let keep = kept_mask(cfg, f);
        for r in ctr.routes(f)? {
            let connected = mine
                .iter()
                .any(|a| r.dst.ip() == a.network() && r.dst.prefix() == a.prefix());
            if connected
                && r.gw.is_none()
                && r.oif == Some(link.index)
                && keep != Some(r.dst.prefix())
            {
                diffs.push(format!(
                    "{}: connected route {} is present (tasks on the bridge could reach each other)",
                    link.name, r.dst
                ));
            }
        }
    }
    Ok(diffs)
}
