//! GC (`cni.dev/valid-attachments`): IPAM GC, then every nftables rule of this network whose
//! attachment (container ID, ifname) is not valid. Continues past errors and reports them all.

use std::collections::HashSet;

use cni_spec::{Command, Invocation};

use crate::config::BridgeConfig;
use crate::error::{BridgeError, StepExt};
use crate::ipam_glue;
use crate::nft::{self, Nft};

/// GC's steps; every failure is reported.
pub fn gc(inv: &Invocation) -> Result<(), BridgeError> {
    let cfg = BridgeConfig::load(inv)?;
    let mut errors = Vec::new();
    if let Err(e) = ipam_glue::forward(inv, &cfg.ipam, Command::Gc).step("GC: IPAM GC") {
        errors.push(e);
    }
    // without nft there are no rules of ours
    if let Ok(nft) = Nft::find(&inv.vars, "GC") {
        if let Err(e) = remove_stale_rules(inv, &nft).step("GC: nftables rules") {
            errors.push(e);
        }
    }
    BridgeError::all(errors)
}

/// Removes this network's rules whose (container ID, ifname) is not a valid attachment.
fn remove_stale_rules(inv: &Invocation, nft: &Nft) -> Result<(), BridgeError> {
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
