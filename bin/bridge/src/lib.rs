//! `bridge`: connects a container to a Linux bridge through a veth pair. A drop-in for the
//! reference `bridge` plugin and for Amazon's `ecs-bridge` (see [`config`] for both dialects,
//! and the crate's README for every key).
//!
//! - ADD: the bridge (created once, MAC pinned, up); the veth pair, created from the container
//!   side with the host end born in the host namespace, MTU on both ends; the host end enslaved
//!   and up; IPAM (the `ipam` library in-process for `ipam`/`host-local`/`ecs-ipam`, see
//!   [`ipam_glue`]); the container's addresses (no DAD wait), routes; gateways on the bridge;
//!   masquerading and MAC spoof checks with nftables. ecs-bridge: on-link host routes to the gateways, no connected routes, no IPv6
//!   link-local address. Any failure after IPAM rolls everything back and names its step.
//! - DEL: container veth, IPAM release, nftables rules; success when they are already gone.
//!   The bridge stays.
//! - CHECK: bridge, veth pair, master, MTU, MACs, addresses, routes, rules; IPAM CHECK.
//! - STATUS: IPAM STATUS (and nft present when the config needs it). GC: IPAM GC and the
//!   nftables rules of attachments no longer valid.

pub mod add;
pub mod check;
pub mod config;
pub mod error;
pub mod host;
pub mod ipam_glue;
pub mod nft;

use std::collections::HashSet;

use cni_spec::{CniResult, Command, Error, Invocation, Plugin, code};

use crate::config::{BridgeConfig, Dialect};
use crate::error::{BridgeError, at};
use crate::nft::Nft;

/// The bridge plugin.
pub struct Bridge;

/// DEL's container half: the veth named CNI_IFNAME goes (its host end with it). A missing
/// link, or a link of another kind (not ours), is left alone.
fn delete_container_veth(inv: &Invocation, ns: &netns::Netns) -> Result<(), BridgeError> {
    let mut ctr = nl::Handle::open_in(ns)?;
    let Some(link) = ctr.link_by_name(&inv.env.ifname)? else {
        return Ok(());
    };
    if link.kind.as_deref() != Some("veth") {
        return Ok(());
    }
    match ctr.delete_link(link.index) {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Plugin for Bridge {
    type Error = cni_spec::Error;
    const NAME: &'static str = "bridge";
    const ABOUT: &'static str =
        "veth pairs on a Linux bridge (reference bridge and ecs-bridge dialects)";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];

    fn add(&self, inv: &Invocation) -> Result<CniResult, Error> {
        add::add(inv)
    }

    /// Best effort: every step runs, the first failure is reported.
    fn del(&self, inv: &Invocation) -> Result<(), Error> {
        let cfg = BridgeConfig::load(inv)?;
        let mut first: Option<Error> = None;
        if let Some(ns) = &inv.env.netns {
            if let Err(e) = delete_container_veth(inv, ns) {
                first.get_or_insert(at("DEL: delete the container veth", e));
            }
        }
        if let Err(e) = ipam_glue::del(inv, &cfg.ipam) {
            first.get_or_insert(at("DEL: IPAM DEL", e));
        }
        if cfg.uses_nft() && cfg.dialect == Dialect::Reference {
            // without nft there is nothing of ours in nftables to remove
            if let Ok(nft) = Nft::find(&inv.vars, "DEL") {
                let comment = nft::comment(&inv.conf.name, &inv.env.container_id, &inv.env.ifname);
                if let Err(e) = nft.delete_tagged(&comment) {
                    first.get_or_insert(at("DEL: remove nftables rules", BridgeError::from(e)));
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn check(&self, inv: &Invocation) -> Result<(), Error> {
        check::check(inv)
    }

    /// IPAM STATUS; code 50 when the config needs nft and there is none, or needs bridge VLAN
    /// filtering and the kernel lacks it.
    fn status(&self, inv: &Invocation) -> Result<(), Error> {
        let cfg = BridgeConfig::load(inv)?;
        if cfg.uses_nft() && cfg.dialect == Dialect::Reference {
            let what = if cfg.ip_masq { "ipMasq" } else { "macspoofchk" };
            if let Err(e) = Nft::find(&inv.vars, what) {
                return Err(Error::plugin(code::UNAVAILABLE, e.to_string()));
            }
        }
        if cfg.vlan.filtering && lacks_vlan_filtering(&cfg.bridge) {
            let e = BridgeError::NoVlanFiltering {
                bridge: cfg.bridge.clone(),
                netns: netns::Netns::current()
                    .map(|n| n.path().display().to_string())
                    .unwrap_or_default(),
                key: if cfg.vlan.vlan.is_some() {
                    "vlan"
                } else {
                    "vlanTrunk"
                },
            };
            return Err(Error::plugin(code::UNAVAILABLE, e.to_string()));
        }
        ipam_glue::forward(inv, &cfg.ipam, Command::Status)
            .map_err(|e| at("STATUS: IPAM STATUS", e))
    }

    /// IPAM GC, then the nftables rules of this network whose attachment is not valid.
    /// Continues past errors and reports them all.
    fn gc(&self, inv: &Invocation) -> Result<(), Error> {
        let cfg = BridgeConfig::load(inv)?;
        let mut errors: Vec<Error> = Vec::new();
        if let Err(e) = ipam_glue::forward(inv, &cfg.ipam, Command::Gc) {
            errors.push(at("GC: IPAM GC", e));
        }
        if let Ok(nft) = Nft::find(&inv.vars, "GC") {
            if let Err(e) = gc_rules(inv, &nft) {
                errors.push(at("GC: nftables rules", e));
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::plugin(
                errors[0].code(),
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}

/// Whether the kernel surely lacks bridge VLAN filtering: the existing bridge reports no
/// default PVID, or, with no bridge yet, one made with `vlan_filtering` in a throwaway
/// namespace is refused with EOPNOTSUPP. Anything that cannot be probed counts as present
/// (STATUS is informational; ADD gives the real answer).
fn lacks_vlan_filtering(bridge: &str) -> bool {
    let Ok(mut host) = nl::Handle::current() else {
        return false;
    };
    match host.link_by_name(bridge) {
        Ok(Some(l)) if l.kind.as_deref() == Some("bridge") => host
            .bridge_vlan_state(l.index)
            .ok()
            .flatten()
            .is_some_and(|s| s.default_pvid.is_none()),
        Ok(None) => netns::Netns::in_fresh(|| {
            nl::Handle::current().is_ok_and(|mut h| {
                h.create_bridge_with(&nl::BridgeSpec {
                    name: "cni-vlan-probe",
                    vlan_filtering: true,
                    ..nl::BridgeSpec::default()
                })
                .is_err_and(|e| e.is_not_supported())
            })
        })
        .unwrap_or(false),
        _ => false,
    }
}

/// Removes this network's rules whose (container ID, ifname) is not a valid attachment.
fn gc_rules(inv: &Invocation, nft: &Nft) -> Result<(), BridgeError> {
    let net = &inv.conf.name;
    let valid: HashSet<String> = inv
        .conf
        .valid_attachments
        .iter()
        .flatten()
        .map(|a| nft::comment(net, &a.container_id, &a.ifname))
        .collect();
    let prefix = nft::network_prefix(net);
    let stale: Vec<nft::Rule> = nft
        .rules()?
        .into_iter()
        .filter(|r| r.comment.starts_with(&prefix) && !valid.contains(&r.comment))
        .collect();
    nft.delete(&stale)?;
    Ok(())
}
