//! ADD, as the list of its steps, and its rollback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cni_spec::{CniResult, Dns, Error, Interface, Invocation, IpConfig, Route};
use ipconf::{ExtraRoute, IfaceConfig};
use ipnetwork::IpNetwork;
use netns::{IPV6_MIN_MTU, Mac, Netns};
use nl::{Family, Handle, RouteSpec};

use crate::config::{BridgeConfig, Dialect, IpamKind};
use crate::error::{BridgeError, at, step};
use crate::host;
use crate::ipam_glue;
use crate::nft::{self, Nft};

/// Where the container interface sits in our part of `interfaces`: `[bridge, host veth,
/// container veth]`.
pub const CONTAINER_INDEX: usize = 2;

/// One address for the container and its gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedIp {
    pub address: IpNetwork,
    pub gateway: Option<IpAddr>,
}

/// What the IPAM result turns into: the container's addresses and routes (every gateway
/// resolved), in the order they are applied and reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub ips: Vec<PlannedIp>,
    pub routes: Vec<ExtraRoute>,
    pub dns: Dns,
}

fn fam_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn default_dst(f: Family) -> IpNetwork {
    let ip = match f {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    // a prefix of 0 is valid for both families; the fallback is never taken
    IpNetwork::new(ip, 0).unwrap_or(IpNetwork::from(ip))
}

/// The host route to a gateway: `/32` or `/128`.
fn host_route(ip: IpAddr) -> IpNetwork {
    IpNetwork::from(ip)
}

/// The first address after the network address: the reference bridge's gateway when IPAM
/// names none.
pub fn subnet_plus_one(a: IpNetwork) -> IpAddr {
    match a.network() {
        IpAddr::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n).wrapping_add(1))),
        IpAddr::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n).wrapping_add(1))),
    }
}

/// Turns an IPAM result into a [`Plan`], refusing results the configuration cannot use.
pub fn plan(cfg: &BridgeConfig, ipam: &str, r: &CniResult) -> Result<Plan, BridgeError> {
    let bad = |reason: String| BridgeError::IpamResult {
        ipam: ipam.to_owned(),
        reason,
    };
    if r.ips.is_empty() {
        return Err(bad("it returned no IP address".into()));
    }
    let ecs = cfg.dialect == Dialect::Ecs;
    if ecs && r.ips.len() > 2 {
        return Err(bad(format!(
            "expected 1 or 2 IP configs, got {}",
            r.ips.len()
        )));
    }
    let mut ips = Vec::new();
    for ip in &r.ips {
        let gateway = match ip.gateway {
            Some(g) => Some(g),
            None if ecs => {
                return Err(bad(format!("no gateway for address {}", ip.address)));
            }
            None if cfg.is_gateway => Some(subnet_plus_one(ip.address)),
            None => None,
        };
        if let Some(g) = gateway {
            if g == ip.address.ip() {
                return Err(bad(format!(
                    "gateway {g} is the container's own address {}",
                    ip.address
                )));
            }
            if Family::of(g) != Family::of(ip.address.ip()) {
                return Err(bad(format!(
                    "gateway {g} is not of the family of address {}",
                    ip.address
                )));
            }
        }
        ips.push(PlannedIp {
            address: ip.address,
            gateway,
        });
    }
    if let Some(mtu) = cfg.mtu {
        if mtu < IPV6_MIN_MTU {
            if let Some(v6) = ips.iter().find(|i| i.address.is_ipv6()) {
                return Err(BridgeError::Invalid(format!(
                    "key \"mtu\": {mtu} is below {}, the minimum for IPv6 address {}",
                    IPV6_MIN_MTU, v6.address
                )));
            }
        }
    }
    let has = |f: Family| ips.iter().any(|i| Family::of(i.address.ip()) == f);
    let gw_of = |f: Family| {
        ips.iter()
            .filter(|i| Family::of(i.address.ip()) == f)
            .find_map(|i| i.gateway)
    };
    let mut routes = Vec::new();
    if ecs {
        // on-link host routes to the gateways: the only way out once the connected routes go
        for f in [Family::V4, Family::V6] {
            if let Some(g) = gw_of(f) {
                routes.push(ExtraRoute {
                    dst: host_route(g),
                    gw: None,
                });
            }
        }
    }
    for rt in &r.routes {
        let f = Family::of(rt.dst.ip());
        if !has(f) {
            return Err(bad(format!(
                "route {} is {} but IPAM returned no {} address",
                rt.dst,
                fam_name(f),
                fam_name(f)
            )));
        }
        if let Some(g) = rt.gw {
            if Family::of(g) != f {
                return Err(bad(format!(
                    "route {} via {g}: gateway of the wrong family",
                    rt.dst
                )));
            }
        }
        routes.push(ExtraRoute {
            dst: rt.dst,
            gw: rt.gw.or_else(|| gw_of(f)),
        });
    }
    if cfg.is_default_gateway {
        for f in [Family::V4, Family::V6] {
            let Some(g) = gw_of(f) else { continue };
            let dst = default_dst(f);
            match routes.iter().find(|r| r.dst == dst) {
                Some(r) if r.gw.is_some_and(|rg| rg != g) => {
                    return Err(bad(format!(
                        "isDefaultGateway is ineffective because IPAM sets default route {dst} via {}",
                        r.gw.map(|g| g.to_string()).unwrap_or_default()
                    )));
                }
                Some(_) => {}
                None => routes.push(ExtraRoute { dst, gw: Some(g) }),
            }
        }
    }
    Ok(Plan {
        ips,
        routes,
        dns: r.dns.clone(),
    })
}

/// `0a:58:` + the IPv4 address: ecs-bridge's container MAC, stable per address so that ARP
/// caches stay right when an address is handed out again.
fn ecs_mac(plan: &Plan) -> Option<Mac> {
    plan.ips.iter().find_map(|i| match i.address.ip() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(Mac::new([0x0a, 0x58, o[0], o[1], o[2], o[3]]))
        }
        IpAddr::V6(_) => None,
    })
}

/// What a failed ADD has to undo, in reverse order of creation.
#[derive(Default)]
struct Rollback {
    ipam: bool,
    veth: Option<u32>,
    applied: Option<ipconf::Applied>,
    nft: Option<(Nft, String)>,
}

impl Rollback {
    /// Undoes everything recorded; returns `err`, noting cleanup failures in its message.
    fn run(self, inv: &Invocation, cfg: &BridgeConfig, ctr: &mut Handle, err: Error) -> Error {
        let mut failures = Vec::new();
        if let Some((nft, comment)) = &self.nft {
            if let Err(e) = nft.delete_tagged(comment) {
                failures.push(format!("remove nftables rules: {e}"));
            }
        }
        if let Some(applied) = &self.applied {
            if let Err(e) = ipconf::undo(ctr, applied) {
                failures.push(format!("remove container routes: {e}"));
            }
        }
        if let Some(index) = self.veth {
            match ctr.delete_link(index) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => failures.push(format!("delete veth: {e}")),
            }
        }
        if self.ipam {
            if let Err(e) = ipam_glue::del(inv, &cfg.ipam) {
                failures.push(format!("IPAM DEL: {e}"));
            }
        }
        if failures.is_empty() {
            err
        } else {
            Error::plugin(
                err.code(),
                format!("{err}; rollback incomplete: {}", failures.join("; ")),
            )
        }
    }
}

/// ADD: the bridge and the veth pair, then IPAM and everything else, with rollback of the veth
/// (and, once it ran, of IPAM) on failure.
pub fn add(inv: &Invocation) -> Result<CniResult, Error> {
    let cfg = BridgeConfig::load(inv)?;
    if cfg.dialect == Dialect::Ecs && cfg.ipam == IpamKind::None {
        return Err(Error::invalid_config(
            "key \"ipam\": the ecs-bridge dialect needs IPAM (e.g. ecs-ipam) for ADD",
        ));
    }
    let nft = if cfg.uses_nft() && cfg.dialect == Dialect::Reference {
        let what = if cfg.ip_masq { "ipMasq" } else { "macspoofchk" };
        Some(Nft::find(&inv.vars, what).map_err(step("ADD: find nft"))?)
    } else {
        None
    };
    let netns = inv.netns()?;
    let mut ctr = Handle::open_in(netns).map_err(step("ADD: open netlink in container netns"))?;
    let host_ns = Netns::current().map_err(step("ADD: open the plugin's netns"))?;
    let mut host = Handle::current().map_err(step("ADD: open netlink in the plugin's netns"))?;
    let (bridge, _created) = host::ensure_bridge(&mut host, &cfg)
        .map_err(|e| at(&format!("ADD: ensure bridge {}", cfg.bridge), e))?;

    // the veth pair, container side first, host end born in the host namespace; a container
    // that already has CNI_IFNAME fails here, before anything needs undoing
    let ifname = inv.env.ifname.as_str();
    let host_name = host::create_veth(&mut ctr, host_ns.fd(), ifname, cfg.mtu, cfg.mac)
        .map_err(step(&format!("ADD: create veth {ifname}")))?;
    let mut rb = Rollback::default();
    let mut s = Steps {
        inv,
        cfg: &cfg,
        netns,
        ctr: &mut ctr,
        host: &mut host,
        nft: nft.as_ref(),
        bridge: &bridge,
    };
    match s.run(&host_name, &mut rb) {
        Ok(r) => Ok(r),
        Err(e) => Err(rb.run(inv, &cfg, &mut ctr, e)),
    }
}

/// The steps after the veth pair exists (each failure is rolled back by the caller).
struct Steps<'a> {
    inv: &'a Invocation,
    cfg: &'a BridgeConfig,
    netns: &'a Netns,
    ctr: &'a mut Handle,
    host: &'a mut Handle,
    nft: Option<&'a Nft>,
    bridge: &'a nl::Link,
}

impl Steps<'_> {
    fn run(&mut self, host_name: &str, rb: &mut Rollback) -> Result<CniResult, Error> {
        let cfg = self.cfg;
        let inv = self.inv;
        let ifname = inv.env.ifname.as_str();
        let mut ctr_link = self
            .ctr
            .link(ifname)
            .map_err(step("ADD: look up the new container interface"))?;
        rb.veth = Some(ctr_link.index);
        let host_link = self
            .host
            .link(host_name)
            .map_err(step("ADD: look up the new host veth"))?;

        // IPAM, and what its result means for the container
        let ipam = ipam_glue::add(inv, &cfg.ipam).map_err(|e| at("ADD: IPAM ADD", e))?;
        rb.ipam = ipam.is_some();
        let plan = match &ipam {
            Some(r) => plan(cfg, cfg.ipam.type_name(), r).map_err(step("ADD: IPAM result"))?,
            None => Plan::default(),
        };
        if cfg.mac.is_none() && cfg.dialect == Dialect::Ecs {
            if let Some(mac) = ecs_mac(&plan) {
                self.ctr
                    .set_mac(ctr_link.index, mac)
                    .map_err(step(&format!("ADD: set the MAC of {ifname}")))?;
                ctr_link.mac = Some(mac);
            }
        }

        // host end: enslaved, port flags, up
        let attach = format!("ADD: attach {host_name} to bridge {}", cfg.bridge);
        self.host
            .set_master(host_link.index, self.bridge.index)
            .map_err(step(&attach))?;
        if cfg.hairpin || cfg.port_isolation {
            self.host
                .set_bridge_port(host_link.index, cfg.hairpin, cfg.port_isolation)
                .map_err(step(&attach))?;
        }
        if cfg.vlan.configures_port() {
            let v = &cfg.vlan;
            host::set_port_vlans(
                self.host,
                host_link.index,
                self.bridge,
                v.vlan,
                &v.trunk,
                v.preserve_default,
            )
            .map_err(step(&format!(
                "ADD: set the VLANs of bridge port {host_name}"
            )))?;
        }
        self.host.set_up(host_link.index).map_err(step(&attach))?;

        // the gateways on the bridge (or, with a VLAN, on <bridge>.<vlan>), forwarding on
        let mut vlan_gateway: Option<nl::Link> = None;
        if cfg.is_gateway {
            let mut wants: Vec<IpNetwork> = Vec::new();
            for ip in &plan.ips {
                let Some(gw) = ip.gateway else { continue };
                let want = IpNetwork::new(gw, ip.address.prefix())
                    .map_err(|e| BridgeError::Invalid(e.to_string()))
                    .map_err(step("ADD: bridge gateway address"))?;
                if !wants.contains(&want) {
                    wants.push(want);
                }
            }
            if let (Some(name), Some(vlan), false) =
                (cfg.vlan_gateway_link(), cfg.vlan.vlan, wants.is_empty())
            {
                let gw = host::ensure_vlan_gateway(
                    self.host,
                    self.bridge,
                    vlan,
                    cfg.vlan.preserve_default,
                )
                .map_err(step(&format!("ADD: ensure VLAN gateway interface {name}")))?;
                vlan_gateway = Some(gw);
            }
            let (gw_link, gw_what) = match &vlan_gateway {
                Some(l) => (l, ""),
                None => (self.bridge, "bridge "),
            };
            host::ensure_bridge_addrs(
                self.host,
                gw_link,
                &wants,
                cfg.force_address,
                cfg.dialect == Dialect::Ecs,
            )
            .map_err(|b| {
                let (want, e) = *b;
                at(
                    &format!("ADD: add gateway {want} to {gw_what}{}", gw_link.name),
                    e,
                )
            })?;
            let fams: Vec<Family> = wants.iter().map(|w| Family::of(w.ip())).collect();
            if cfg.dialect == Dialect::Reference {
                if fams.contains(&Family::V4) {
                    host::enable_sysctl("net/ipv4/ip_forward")
                        .map_err(step("ADD: enable IPv4 forwarding"))?;
                }
                if fams.contains(&Family::V6) {
                    host::enable_sysctl("net/ipv6/conf/all/forwarding")
                        .map_err(step("ADD: enable IPv6 forwarding"))?;
                }
            }
        }

        // the container end: addresses (nodad), up, routes
        if cfg.dialect == Dialect::Ecs {
            // no IPv6 link-local address, hence no fe80::/64 route to the other tasks
            let key = format!("net/ipv6/conf/{ifname}/addr_gen_mode");
            match self.netns.sysctl_set(&key, "1") {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Err(at(
                        "ADD: disable IPv6 link-local addresses",
                        BridgeError::from(e),
                    ));
                }
            }
        }
        let ifcfg = IfaceConfig {
            addresses: plan.ips.iter().map(|i| i.address).collect(),
            gateways: Vec::new(),
            default_routes: false,
            routes: plan.routes.clone(),
            mtu: None,
            block_imds: cfg.block_imds,
        };
        if !cfg.disable_container_interface {
            // the reference bridge adds routes next to those of the container's other networks
            // (two networks with isDefaultGateway: two IPv4 default routes, one IPv6 multipath
            // route); a task of ecs-bridge has exactly one way out
            let mode = match cfg.dialect {
                Dialect::Reference => ipconf::RouteMode::Alongside,
                Dialect::Ecs => ipconf::RouteMode::Exclusive,
            };
            let applied = ipconf::apply_with(self.netns, self.ctr, ctr_link.index, &ifcfg, mode)
                .map_err(step(&format!("ADD: configure {ifname} in the container")))?;
            rb.applied = Some(applied);
        }
        if cfg.dialect == Dialect::Ecs {
            self.isolate(ctr_link.index, &plan)
                .map_err(step("ADD: remove the connected routes"))?;
        }

        // nftables: masquerade, MAC spoof check
        let ctr_mac = ctr_link.mac.map(|m| m.to_string());
        if let Some(nft) = self.nft {
            let comment = nft::comment(&inv.conf.name, &inv.env.container_id, ifname);
            let mut script = String::new();
            if cfg.ip_masq {
                script.push_str(&nft::masquerade_script(&ifcfg.addresses, &comment));
            }
            if cfg.mac_spoof_check {
                if let Some(m) = &ctr_mac {
                    script.push_str(&nft::spoof_script(host_name, m, &comment));
                }
            }
            if !script.is_empty() {
                rb.nft = Some((nft.clone(), comment));
                nft.apply(&script)
                    .map_err(step("ADD: install nftables rules"))?;
            }
        }

        // the result; the bridge re-read: one we did not create (without a pinned MAC) takes
        // the lowest MAC of its ports, so its MAC may have changed when our veth joined
        let iface = |l: &nl::Link, sandbox: Option<String>| Interface {
            mtu: Some(l.mtu),
            ..Interface::new(l.name.clone(), l.mac.map(|m| m.to_string()), sandbox)
        };
        let sandbox = inv.env.netns_path.as_ref().map(|p| p.display().to_string());
        let mut result = inv.conf.prev_result.clone().unwrap_or_default();
        let base = result.interfaces.len();
        result.cni_version = None;
        let bridge = match self.host.link_by_index(self.bridge.index) {
            Ok(Some(b)) => b,
            _ => self.bridge.clone(),
        };
        result.interfaces.push(iface(&bridge, None));
        result.interfaces.push(iface(&host_link, None));
        result.interfaces.push(iface(&ctr_link, sandbox));
        if let Some(gw) = &vlan_gateway {
            result.interfaces.push(iface(gw, None));
        }
        result.ips.extend(
            plan.ips
                .iter()
                .map(|i| IpConfig::new(i.address, i.gateway, Some(base + CONTAINER_INDEX))),
        );
        result
            .routes
            .extend(plan.routes.iter().map(|r| Route::new(r.dst, r.gw)));
        match &inv.conf.dns {
            Some(d) if !d.is_empty() => result.dns = d.clone(),
            _ if !plan.dns.is_empty() => result.dns = plan.dns.clone(),
            _ => {}
        }
        Ok(result)
    }

    /// ecs-bridge's isolation: the connected routes of the container's subnets go, so tasks on
    /// one bridge reach only the gateway-routed destinations (a configured
    /// `connectedSubnetMaskSize*` keeps or re-adds one of that size, for daemon tasks).
    fn isolate(&mut self, index: u32, plan: &Plan) -> Result<(), BridgeError> {
        for ip in &plan.ips {
            let fam = Family::of(ip.address.ip());
            let connected = IpNetwork::new(ip.address.network(), ip.address.prefix())
                .map_err(|e| BridgeError::Invalid(e.to_string()))?;
            let keep = match fam {
                Family::V4 => self.cfg.connected_v4,
                Family::V6 => self.cfg.connected_v6,
            };
            if keep == Some(ip.address.prefix()) {
                continue;
            }
            match self.ctr.del_route(&RouteSpec::link(connected, index)) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(m) = keep {
                let net = IpNetwork::new(ip.address.ip(), m)
                    .and_then(|n| IpNetwork::new(n.network(), m))
                    .map_err(|e| BridgeError::Invalid(e.to_string()))?;
                match self.ctr.add_route(&RouteSpec::link(net, index)) {
                    Ok(()) => {}
                    Err(e) if e.is_exists() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IpamKind;
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

    fn pairs(p: &Plan) -> Vec<(String, Option<String>)> {
        p.routes
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
        assert_eq!(ecs_mac(&p), Some(Mac::new([0x0a, 0x58, 169, 254, 172, 2])));
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
        assert!(
            plan(&small, "ipam", &r)
                .unwrap_err()
                .to_string()
                .contains("mtu")
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
