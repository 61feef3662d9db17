//! What an IPAM result turns into: the container's addresses, each with its gateway, and the
//! [`IfaceConfig`] that `ipconf` applies (the family gateways, the routes), refusing results
//! the configuration cannot use.
//!
//! Steps of [`plan`]: the addresses and their gateways (IPAM's, or subnet+1 for `isGateway`;
//! ecs-bridge needs one per address); the MTU against IPv6; the routes: ecs-bridge's on-link
//! routes to the gateways first, then IPAM's (each of a family the container has, without a
//! gateway going via the family's), then with `isDefaultGateway` the default route of each
//! family that has a gateway (unless IPAM already sets it via that gateway).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cni_spec::{CniResult, Dns, IpConfig};
use ipconf::{ExtraRoute, IfaceConfig, default_dst, family_name};
use ipnetwork::IpNetwork;
use netns::IPV6_MIN_MTU;
use nl::Family;

use crate::config::{BridgeConfig, Dialect};
use crate::ecs;
use crate::error::BridgeError;

/// One address for the container and its gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedIp {
    pub address: IpNetwork,
    pub gateway: Option<IpAddr>,
}

/// What the IPAM result turns into, in the order things are applied and reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The addresses, each with its own gateway (as the result reports them).
    pub ips: Vec<PlannedIp>,
    /// The container interface's configuration: the addresses, the first gateway of each
    /// family, the routes (IMDS blackholes are the config's, not IPAM's: see the ADD step).
    pub iface: IfaceConfig,
    pub dns: Dns,
}

impl Plan {
    /// The result's `ips`: each address with its gateway, on interface `interface`.
    pub fn ip_configs(&self, interface: usize) -> Vec<IpConfig> {
        self.ips
            .iter()
            .map(|i| IpConfig::new(i.address, i.gateway, Some(interface)))
            .collect()
    }

    /// `isGateway`: each gateway with its address's prefix, once, as the bridge carries it.
    pub fn gateway_addrs(&self) -> Result<Vec<IpNetwork>, BridgeError> {
        let mut wants: Vec<IpNetwork> = Vec::new();
        for ip in &self.ips {
            let Some(gw) = ip.gateway else { continue };
            let want = IpNetwork::new(gw, ip.address.prefix())?;
            if !wants.contains(&want) {
                wants.push(want);
            }
        }
        Ok(wants)
    }
}

/// The first address after the network address: the reference bridge's gateway when IPAM
/// names none.
pub fn subnet_plus_one(a: IpNetwork) -> IpAddr {
    match a.network() {
        IpAddr::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n).wrapping_add(1))),
        IpAddr::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n).wrapping_add(1))),
    }
}

/// Turns the result of IPAM `ipam` into a [`Plan`], refusing results the configuration
/// cannot use.
pub fn plan(cfg: &BridgeConfig, ipam: &str, r: &CniResult) -> Result<Plan, BridgeError> {
    let unusable = |reason: String| BridgeError::IpamResult {
        ipam: ipam.to_owned(),
        reason,
    };
    let ips = planned_ips(cfg, r).map_err(unusable)?;
    check_mtu(cfg.mtu, &ips)?;
    let mut iface = IfaceConfig {
        addresses: ips.iter().map(|i| i.address).collect(),
        gateways: first_gateways(&ips),
        default_routes: false,
        routes: Vec::new(),
        mtu: None,
        block_imds: cfg.block_imds,
    };
    if cfg.dialect == Dialect::Ecs {
        iface.routes = ecs::gateway_routes(&iface.gateways);
    }
    add_ipam_routes(&mut iface, r).map_err(unusable)?;
    if cfg.is_default_gateway {
        add_default_routes(&mut iface).map_err(unusable)?;
    }
    Ok(Plan {
        ips,
        iface,
        dns: r.dns.clone(),
    })
}

/// Every address with its gateway; a gateway is never the address itself, and of its family.
fn planned_ips(cfg: &BridgeConfig, r: &CniResult) -> Result<Vec<PlannedIp>, String> {
    if r.ips.is_empty() {
        return Err("it returned no IP address".into());
    }
    if cfg.dialect == Dialect::Ecs {
        ecs::check_ip_count(r.ips.len())?;
    }
    let mut ips = Vec::new();
    for ip in &r.ips {
        let gateway = match ip.gateway {
            Some(g) => Some(g),
            None if cfg.dialect == Dialect::Ecs => {
                return Err(format!("no gateway for address {}", ip.address));
            }
            None if cfg.is_gateway => Some(subnet_plus_one(ip.address)),
            None => None,
        };
        if let Some(g) = gateway {
            if g == ip.address.ip() {
                return Err(format!(
                    "gateway {g} is the container's own address {}",
                    ip.address
                ));
            }
            if Family::of(g) != Family::of(ip.address.ip()) {
                return Err(format!(
                    "gateway {g} is not of the family of address {}",
                    ip.address
                ));
            }
        }
        ips.push(PlannedIp {
            address: ip.address,
            gateway,
        });
    }
    Ok(ips)
}

/// `mtu` below 1280 cannot carry an IPv6 address.
fn check_mtu(mtu: Option<u32>, ips: &[PlannedIp]) -> Result<(), BridgeError> {
    let Some(mtu) = mtu.filter(|m| *m < IPV6_MIN_MTU) else {
        return Ok(());
    };
    match ips.iter().find(|i| i.address.is_ipv6()) {
        Some(v6) => Err(BridgeError::MtuBelowIpv6 {
            mtu,
            min: IPV6_MIN_MTU,
            address: v6.address,
        }),
        None => Ok(()),
    }
}

/// The first gateway of each family: what routes without a gateway go via.
fn first_gateways(ips: &[PlannedIp]) -> Vec<IpAddr> {
    [Family::V4, Family::V6]
        .into_iter()
        .filter_map(|f| {
            ips.iter()
                .filter(|i| Family::of(i.address.ip()) == f)
                .find_map(|i| i.gateway)
        })
        .collect()
}

/// IPAM's routes, each of a family the container has an address of; one without a gateway
/// goes via its family's.
fn add_ipam_routes(iface: &mut IfaceConfig, r: &CniResult) -> Result<(), String> {
    for rt in &r.routes {
        let f = Family::of(rt.dst.ip());
        if !iface.has_family(f) {
            return Err(format!(
                "route {} is {} but IPAM returned no {} address",
                rt.dst,
                family_name(f),
                family_name(f)
            ));
        }
        if let Some(g) = rt.gw {
            if Family::of(g) != f {
                return Err(format!(
                    "route {} via {g}: gateway of the wrong family",
                    rt.dst
                ));
            }
        }
        let gw = rt.gw.or_else(|| iface.gateway(f));
        iface.routes.push(ExtraRoute { dst: rt.dst, gw });
    }
    Ok(())
}

/// `isDefaultGateway`: the default route of each family via its gateway, after IPAM's routes
/// (as the reference bridge adds it); IPAM's own default route via another gateway is an
/// error.
fn add_default_routes(iface: &mut IfaceConfig) -> Result<(), String> {
    for g in iface.gateways.clone() {
        let dst = default_dst(Family::of(g));
        match iface.routes.iter().find(|r| r.dst == dst) {
            Some(r) if r.gw.is_some_and(|rg| rg != g) => {
                return Err(format!(
                    "isDefaultGateway is ineffective because IPAM sets default route {dst} via {}",
                    r.gw.map(|g| g.to_string()).unwrap_or_default()
                ));
            }
            Some(_) => {}
            None => iface.routes.push(ExtraRoute { dst, gw: Some(g) }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IpamKind;
    use cni_spec::PluginError;
    use serde_json::json;

    fn cfg(dialect: Dialect) -> BridgeConfig {
        BridgeConfig {
            dialect,
            bridge: "br0".into(),
            is_gateway: dialect == Dialect::Ecs,
            is_default_gateway: false,
            force_address: false,
            ip_masq: false,
            mtu: None,
            hairpin: false,
            promisc: false,
            port_isolation: false,
            mac_spoof_check: false,
            disable_container_interface: false,
            mac: None,
            block_imds: false,
            connected_v4: None,
            connected_v6: None,
            ipam: IpamKind::InProcess("ipam".into()),
            vlan: Default::default(),
        }
    }

    fn result(v: serde_json::Value) -> CniResult {
        CniResult::from_value(&v).unwrap()
    }

    /// The result's routes: `(dst, gw)`, gateways resolved as ipconf applies them.
    fn pairs(p: &Plan) -> Vec<(String, Option<String>)> {
        cni_glue::cni_routes(&p.iface)
            .iter()
            .map(|r| (r.dst.to_string(), r.gw.map(|g| g.to_string())))
            .collect()
    }

    #[test]
    fn reference_gateway_and_default_routes() {
        let mut c = cfg(Dialect::Reference);
        c.is_gateway = true;
        c.is_default_gateway = true;
        let r = result(
            json!({"ips": [{"address": "10.88.0.5/16"}, {"address": "fd00:88::5/64", "gateway": "fd00:88::fe"}],
            "routes": [{"dst": "192.168.0.0/16"}]}),
        );
        let p = plan(&c, "ipam", &r).unwrap();
        assert_eq!(p.ips[0].gateway, Some("10.88.0.1".parse().unwrap()));
        assert_eq!(p.ips[1].gateway, Some("fd00:88::fe".parse().unwrap()));
        assert_eq!(
            pairs(&p),
            vec![
                ("192.168.0.0/16".into(), Some("10.88.0.1".into())),
                ("0.0.0.0/0".into(), Some("10.88.0.1".into())),
                ("::/0".into(), Some("fd00:88::fe".into())),
            ]
        );
        // IPAM's own default route with another gateway makes isDefaultGateway ineffective
        let r = result(json!({"ips": [{"address": "10.88.0.5/16"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.254"}]}));
        let e = plan(&c, "ipam", &r).unwrap_err();
        assert!(e.to_string().contains("ineffective"), "{e}");
        // ... and via the same gateway (or none, which is the same), it is not added twice
        let r = result(json!({"ips": [{"address": "10.88.0.5/16"}],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.99.0.0/16"}]}));
        assert_eq!(
            pairs(&plan(&c, "ipam", &r).unwrap()),
            vec![
                ("0.0.0.0/0".into(), Some("10.88.0.1".into())),
                ("10.99.0.0/16".into(), Some("10.88.0.1".into())),
            ]
        );
    }

    #[test]
    fn no_gateway_without_is_gateway_gives_link_routes() {
        let c = cfg(Dialect::Reference);
        let r = result(
            json!({"ips": [{"address": "10.88.0.5/16"}], "routes": [{"dst": "10.99.0.0/16"}]}),
        );
        let p = plan(&c, "ipam", &r).unwrap();
        assert_eq!(p.ips[0].gateway, None);
        assert_eq!(pairs(&p), vec![("10.99.0.0/16".into(), None)]);
    }

    #[test]
    fn ecs_routes() {
        let c = cfg(Dialect::Ecs);
        let r = result(
            json!({"ips": [{"address": "169.254.172.2/22", "gateway": "169.254.172.1"}],
            "routes": [{"dst": "169.254.170.2/32"}]}),
        );
        let p = plan(&c, "ecs-ipam", &r).unwrap();
        assert_eq!(
            pairs(&p),
            vec![
                ("169.254.172.1/32".into(), None),
                ("169.254.170.2/32".into(), Some("169.254.172.1".into())),
            ]
        );
        assert_eq!(
            ecs::stable_mac(&p),
            Some(netns::Mac::new([0x0a, 0x58, 169, 254, 172, 2]))
        );
        let r = result(json!({"ips": [{"address": "169.254.172.2/22"}]}));
        assert!(
            plan(&c, "ecs-ipam", &r)
                .unwrap_err()
                .to_string()
                .contains("no gateway")
        );
    }

    #[test]
    fn unusable_results() {
        let c = cfg(Dialect::Reference);
        let e = plan(&c, "dhcp", &result(json!({}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "IPAM (dhcp) result unusable: it returned no IP address"
        );
        assert_eq!(e.code(), 7);
        let r = result(json!({"ips": [{"address": "10.88.0.5/16"}], "routes": [{"dst": "::/0"}]}));
        let e = plan(&c, "ipam", &r).unwrap_err();
        assert!(
            e.to_string()
                .contains("route ::/0 is IPv6 but IPAM returned no IPv6 address"),
            "{e}"
        );
        let r = result(json!({"ips": [{"address": "10.88.0.1/16", "gateway": "10.88.0.1"}]}));
        assert!(
            plan(&c, "ipam", &r)
                .unwrap_err()
                .to_string()
                .contains("own address")
        );
        let mut small = cfg(Dialect::Reference);
        small.mtu = Some(1000);
        let r = result(json!({"ips": [{"address": "fd00::5/64"}]}));
        let e = plan(&small, "ipam", &r).unwrap_err();
        assert!(e.to_string().contains("mtu"));
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            (
                7,
                "key \"mtu\": 1000 is below 1280, the minimum for IPv6 address fd00::5/64"
            )
        );
        let e = plan(
            &cfg(Dialect::Ecs),
            "ecs-ipam",
            &result(json!({"ips": [
            {"address": "10.0.0.2/24", "gateway": "10.0.0.1"},
            {"address": "10.0.1.2/24", "gateway": "10.0.1.1"},
            {"address": "fd00::2/64", "gateway": "fd00::1"}]})),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "IPAM (ecs-ipam) result unusable: expected 1 or 2 IP configs, got 3"
        );
    }

    #[test]
    fn gateway_arithmetic() {
        assert_eq!(
            subnet_plus_one("10.88.7.9/16".parse().unwrap()),
            "10.88.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            subnet_plus_one("fd00:1::9/64".parse().unwrap()),
            "fd00:1::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(default_dst(Family::V6).to_string(), "::/0");
    }
}
