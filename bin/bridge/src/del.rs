//! DEL: best effort; every step runs and the first failure is reported. A repeated DEL
//! succeeds.
//!
//! 1. The container veth named CNI_IFNAME goes, its host end with it (a missing netns or link
//!    is fine; a link of another kind is not ours and stays).
//! 2. IPAM DEL, always, also when the netns is gone (`"ipam": {}` has none to call).
//! 3. This attachment's nftables rules.
//!
//! The bridge stays: other containers may be attached to it, and it carries host-side state.

use cni_spec::Invocation;

use crate::config::BridgeConfig;
use crate::error::{BridgeError, StepExt};
use crate::host;
use crate::ipam_glue;
use crate::nft::{self, Nft};

/// DEL's steps; the first failure is reported.
pub fn del(inv: &Invocation) -> Result<(), BridgeError> {
    let cfg = BridgeConfig::load(inv)?;
    let mut first: Option<BridgeError> = None;
    let mut note = |step: Result<(), BridgeError>| {
        if let Err(e) = step {
            first.get_or_insert(e);
        }
    };
    if let Some(ns) = &inv.env.netns {
        note(delete_container_veth(inv, ns).step("DEL: delete the container veth"));
    }
    note(ipam_glue::del(inv, &cfg.ipam).step("DEL: IPAM DEL"));
    note(remove_rules(inv, &cfg).step("DEL: remove nftables rules"));
    first.map_or(Ok(()), Err)
}

/// The veth named CNI_IFNAME in the container, if it is one.
fn delete_container_veth(inv: &Invocation, ns: &netns::Netns) -> Result<(), BridgeError> {
    let mut ctr = nl::Handle::open_in(ns)?;
    let Some(link) = ctr.link_by_name(&inv.env.ifname)? else {
        return Ok(());
    };
    if link.kind.as_deref() != Some("veth") {
        return Ok(());
    }
    Ok(host::delete_link(&mut ctr, link.index)?)
}

/// This attachment's nftables rules, when the config makes any (without `nft` there are
/// none of ours to remove).
fn remove_rules(inv: &Invocation, cfg: &BridgeConfig) -> Result<(), BridgeError> {
    if cfg.nft_feature().is_none() {
        return Ok(());
    }
    let Ok(nft) = Nft::find(&inv.vars, "DEL") else {
        return Ok(());
    };
    let comment = nft::comment(&inv.conf.name, &inv.env.container_id, &inv.env.ifname);
    nft.delete_tagged(&comment)?;
    Ok(())
}
