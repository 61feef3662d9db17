//! ADD, as the list of its steps, and its rollback.
//!
//! 1. The config ([`BridgeConfig::load`]; ecs-bridge needs IPAM); `nft` is located if the
//!    config needs it. Nothing is touched for a bad config.
//! 2. The bridge ([`host::ensure_bridge`]).
//! 3. The veth pair, from the container side, the host end born in the host namespace
//!    ([`host::create_veth`]). From here on each change is recorded as an `Undo` and, when a
//!    later step fails, undone newest first ([`cni_spec::Rollback`]).
//! 4. IPAM ADD, and its result turned into a [`Plan`].
//! 5. ECS: the container end's stable MAC ([`ecs::set_stable_mac`]).
//! 6. The host end: IPv6 off, enslaved, port flags, VLANs, up (`Add::attach_host_end`).
//! 7. `isGateway`: the gateways on the bridge (or `<bridge>.<vlan>`), forwarding on
//!    (`Add::ensure_gateways`).
//! 8. ECS: no IPv6 link-local address ([`ecs::no_link_local`]).
//! 9. The container end: addresses, up, routes, IMDS blackholes (`Add::configure_container`).
//! 10. ECS: the connected routes go ([`ecs::isolate`]).
//! 11. nftables rules (`Add::install_rules`).
//! 12. The result (`Add::result`).

use cni_spec::{CniResult, Interface, Invocation, Rollback};
use ipnetwork::IpNetwork;
use netns::Netns;
use nl::{Family, Handle, Link};

use crate::config::{BridgeConfig, Dialect};
use crate::ecs;
use crate::error::{BridgeError, StepExt};
use crate::host;
use crate::ipam_glue;
use crate::nft::{self, Nft};
use crate::plan::{Plan, plan};

/// Where the container interface sits in our part of `interfaces`: `[bridge, host veth,
/// container veth]`.
pub const CONTAINER_INDEX: usize = 2;

/// What a failed ADD undoes (newest first).
#[derive(Debug)]
enum Undo {
    /// The container veth, by index (its host end goes with it).
    Veth(u32),
    /// IPAM ADD ran: IPAM DEL.
    Ipam,
    /// What `ipconf` added in the container (routes, IMDS blackholes).
    Container(ipconf::Applied),
    /// The nftables rules carrying this comment.
    Rules(String),
}

/// ADD: steps 1 to 3, then the rest with rollback.
pub fn add(inv: &Invocation) -> Result<CniResult, BridgeError> {
    let cfg = BridgeConfig::load(inv)?;
    if cfg.dialect == Dialect::Ecs {
        ecs::require_ipam(&cfg)?;
    }
    let nft = match cfg.nft_feature() {
        Some(what) => Some(Nft::find(&inv.vars, what).step("ADD: find nft")?),
        None => None,
    };
    let netns = inv.netns()?;
    let mut ctr = Handle::open_in(netns).step("ADD: open netlink in container netns")?;
    let host_ns = Netns::current().step("ADD: open the plugin's netns")?;
    let mut host = Handle::current().step("ADD: open netlink in the plugin's netns")?;
    let (bridge, _created) = host::ensure_bridge(&mut host, &cfg)
        .step_with(|| format!("ADD: ensure bridge {}", cfg.bridge))?;
    // a container that already has CNI_IFNAME fails here, before anything needs undoing
    let ifname = inv.env.ifname.as_str();
    let host_name = host::create_veth(&mut ctr, host_ns.fd(), ifname, cfg.mtu, cfg.mac)
        .step_with(|| format!("ADD: create veth {ifname}"))?;
    let mut add = Add {
        inv,
        cfg: &cfg,
        netns,
        ctr,
        host,
        nft,
        bridge,
    };
    let mut rb = Rollback::new();
    match add.after_veth(&host_name, &mut rb) {
        Ok(result) => {
            rb.commit();
            Ok(result)
        }
        Err(error) => Err(add.roll_back(rb, error)),
    }
}

/// What the steps after the veth pair share.
struct Add<'a> {
    inv: &'a Invocation,
    cfg: &'a BridgeConfig,
    netns: &'a Netns,
    ctr: Handle,
    host: Handle,
    nft: Option<Nft>,
    bridge: Link,
}

impl Add<'_> {
    /// Steps 4 to 12; every change is recorded in `rb`.
    fn after_veth(
        &mut self,
        host_name: &str,
        rb: &mut Rollback<Undo>,
    ) -> Result<CniResult, BridgeError> {
        let ecs = self.cfg.dialect == Dialect::Ecs;
        let ifname = self.inv.env.ifname.as_str();
        let mut ctr_link = self
            .ctr
            .link(ifname)
            .step("ADD: look up the new container interface")?;
        rb.record(Undo::Veth(ctr_link.index));
        let host_link = self
            .host
            .link(host_name)
            .step("ADD: look up the new host veth")?;
        let plan = self.ipam_add(rb)?;
        if ecs {
            ecs::set_stable_mac(&mut self.ctr, &mut ctr_link, &plan, self.cfg)?;
        }
        self.attach_host_end(&host_link)?;
        let vlan_gateway = self.ensure_gateways(&plan)?;
        if ecs {
            ecs::no_link_local(self.netns, ifname)?;
        }
        self.configure_container(&ctr_link, &plan, rb)?;
        if ecs {
            ecs::isolate(&mut self.ctr, self.cfg, ctr_link.index, &plan)?;
        }
        self.install_rules(&host_link, &ctr_link, &plan, rb)?;
        Ok(self.result(&host_link, &ctr_link, vlan_gateway.as_ref(), &plan))
    }

    /// IPAM ADD (recorded for rollback) and what its result means for the container; no IPAM,
    /// no addresses.
    fn ipam_add(&mut self, rb: &mut Rollback<Undo>) -> Result<Plan, BridgeError> {
        let cfg = self.cfg;
        let Some(r) = ipam_glue::add(self.inv, &cfg.ipam).step("ADD: IPAM ADD")? else {
            let iface = ipconf::IfaceConfig {
                block_imds: cfg.block_imds,
                ..ipconf::IfaceConfig::default()
            };
            return Ok(Plan {
                iface,
                ..Plan::default()
            });
        };
        rb.record(Undo::Ipam);
        plan(cfg, cfg.ipam.type_name(), &r).step("ADD: IPAM result")
    }

    /// The host end: IPv6 off, enslaved to the bridge, port flags and VLANs if asked, up.
    fn attach_host_end(&mut self, port: &Link) -> Result<(), BridgeError> {
        let cfg = self.cfg;
        let attach = || format!("ADD: attach {} to bridge {}", port.name, cfg.bridge);
        host::port_without_ipv6(&port.name)
            .step_with(|| format!("ADD: turn IPv6 off on bridge port {}", port.name))?;
        self.host
            .set_master(port.index, self.bridge.index)
            .step_with(attach)?;
        if cfg.hairpin || cfg.port_isolation {
            self.host
                .set_bridge_port(port.index, cfg.hairpin, cfg.port_isolation)
                .step_with(attach)?;
        }
        if cfg.vlan.configures_port() {
            let v = &cfg.vlan;
            host::set_port_vlans(
                &mut self.host,
                port.index,
                &self.bridge,
                v.vlan,
                &v.trunk,
                v.preserve_default,
            )
            .step_with(|| format!("ADD: set the VLANs of bridge port {}", port.name))?;
        }
        self.host.set_up(port.index).step_with(attach)
    }

    /// `isGateway`: each gateway/prefix on the bridge, or, with `vlan`, on `<bridge>.<vlan>`
    /// (created if absent, and returned); IP forwarding on (reference dialect).
    fn ensure_gateways(&mut self, plan: &Plan) -> Result<Option<Link>, BridgeError> {
        let cfg = self.cfg;
        if !cfg.is_gateway {
            return Ok(None);
        }
        let wants = plan.gateway_addrs().step("ADD: bridge gateway address")?;
        let vlan_gateway = match (cfg.vlan_gateway_link(), cfg.vlan.vlan) {
            (Some(name), Some(vlan)) if !wants.is_empty() => Some(
                host::ensure_vlan_gateway(
                    &mut self.host,
                    &self.bridge,
                    vlan,
                    cfg.vlan.preserve_default,
                )
                .step_with(|| format!("ADD: ensure VLAN gateway interface {name}"))?,
            ),
            _ => None,
        };
        let link = vlan_gateway.as_ref().unwrap_or(&self.bridge);
        let exclusive = cfg.dialect == Dialect::Ecs;
        host::ensure_bridge_addrs(&mut self.host, link, &wants, cfg.force_address, exclusive)
            .step("ADD")?;
        if cfg.dialect == Dialect::Reference {
            enable_forwarding(&wants)?;
        }
        Ok(vlan_gateway)
    }

    /// The container end: addresses (no DAD wait), up, routes, IMDS blackholes (recorded for
    /// rollback). The reference bridge adds routes next to those of the container's other
    /// networks (two networks with `isDefaultGateway`: two IPv4 default routes, one IPv6
    /// multipath route); a task of ecs-bridge has exactly one way out.
    fn configure_container(
        &mut self,
        link: &Link,
        plan: &Plan,
        rb: &mut Rollback<Undo>,
    ) -> Result<(), BridgeError> {
        if self.cfg.disable_container_interface {
            return Ok(());
        }
        let mode = match self.cfg.dialect {
            Dialect::Reference => ipconf::RouteMode::Alongside,
            Dialect::Ecs => ipconf::RouteMode::Exclusive,
        };
        let applied = ipconf::apply_with(self.netns, &mut self.ctr, link.index, &plan.iface, mode)
            .step_with(|| format!("ADD: configure {} in the container", link.name))?;
        rb.record(Undo::Container(applied));
        Ok(())
    }

    /// nftables (recorded for rollback): masquerade (`ipMasq`), MAC spoof check
    /// (`macspoofchk`), one transaction.
    fn install_rules(
        &mut self,
        host_link: &Link,
        ctr_link: &Link,
        plan: &Plan,
        rb: &mut Rollback<Undo>,
    ) -> Result<(), BridgeError> {
        let Some(nft) = &self.nft else {
            return Ok(());
        };
        let (cfg, env) = (self.cfg, &self.inv.env);
        let comment = nft::comment(&self.inv.conf.name, &env.container_id, &env.ifname);
        let mut script = String::new();
        if cfg.ip_masq {
            script.push_str(&nft::masquerade_script(&plan.iface.addresses, &comment));
        }
        if let (true, Some(mac)) = (cfg.mac_spoof_check, ctr_link.mac) {
            let mac = mac.to_string();
            script.push_str(&nft::spoof_script(&host_link.name, &mac, &comment));
        }
        if script.is_empty() {
            return Ok(());
        }
        rb.record(Undo::Rules(comment));
        nft.apply(&script).step("ADD: install nftables rules")
    }

    /// `interfaces` `[bridge, host veth, container veth (sandbox), <bridge>.<vlan>?]` appended
    /// to a `prevResult`'s, the addresses with their gateways, the routes as installed, `dns`
    /// (the config's over IPAM's). The bridge is re-read: one we did not create (without a
    /// pinned MAC) takes the lowest MAC of its ports, so its MAC may have changed when our
    /// veth joined.
    fn result(
        &mut self,
        host_link: &Link,
        ctr_link: &Link,
        vlan_gateway: Option<&Link>,
        plan: &Plan,
    ) -> CniResult {
        let iface = |l: &Link, sandbox: Option<String>| Interface {
            mtu: Some(l.mtu),
            ..Interface::new(l.name.clone(), l.mac.map(|m| m.to_string()), sandbox)
        };
        let inv = self.inv;
        let sandbox = inv.env.netns_path.as_ref().map(|p| p.display().to_string());
        let mut result = inv.conf.prev_result.clone().unwrap_or_default();
        let base = result.interfaces.len();
        result.cni_version = None;
        let bridge = match self.host.link_by_index(self.bridge.index) {
            Ok(Some(b)) => b,
            _ => self.bridge.clone(),
        };
        result.interfaces.push(iface(&bridge, None));
        result.interfaces.push(iface(host_link, None));
        result.interfaces.push(iface(ctr_link, sandbox));
        result
            .interfaces
            .extend(vlan_gateway.map(|gw| iface(gw, None)));
        result.ips.extend(plan.ip_configs(base + CONTAINER_INDEX));
        result.routes.extend(cni_glue::cni_routes(&plan.iface));
        match &inv.conf.dns {
            Some(d) if !d.is_empty() => result.dns = d.clone(),
            _ if !plan.dns.is_empty() => result.dns = plan.dns.clone(),
            _ => {}
        }
        result
    }

    /// Undoes what `rb` recorded, newest first; returns `error`, with what could not be undone.
    fn roll_back(&mut self, rb: Rollback<Undo>, error: BridgeError) -> BridgeError {
        let failures = rb.unwind(|u| self.undo(u));
        if failures.is_empty() {
            error
        } else {
            BridgeError::RollbackIncomplete {
                error: Box::new(error),
                failures,
            }
        }
    }

    fn undo(&mut self, undo: Undo) -> Result<(), BridgeError> {
        match undo {
            Undo::Rules(comment) => match &self.nft {
                Some(nft) => nft
                    .delete_tagged(&comment)
                    .map(drop)
                    .step("remove nftables rules"),
                None => Ok(()),
            },
            Undo::Container(applied) => {
                ipconf::undo(&mut self.ctr, &applied).step("remove container routes")
            }
            Undo::Ipam => ipam_glue::del(self.inv, &self.cfg.ipam).step("IPAM DEL"),
            Undo::Veth(index) => host::delete_link(&mut self.ctr, index).step("delete veth"),
        }
    }
}

/// IP forwarding on in the plugin's namespace for each family that has a gateway (written
/// only when off).
fn enable_forwarding(gateways: &[IpNetwork]) -> Result<(), BridgeError> {
    let has = |f: Family| gateways.iter().any(|w| Family::of(w.ip()) == f);
    if has(Family::V4) {
        host::enable_sysctl("net/ipv4/ip_forward").step("ADD: enable IPv4 forwarding")?;
    }
    if has(Family::V6) {
        host::enable_sysctl("net/ipv6/conf/all/forwarding").step("ADD: enable IPv6 forwarding")?;
    }
    Ok(())
}
