//! DEL: deletes the links of this attachment in the container namespace, found by their alias
//! (or, for links vpc-branch-eni made, by what it would have made for this config). Never
//! looks at the trunk; a missing namespace or link is success.

use cni_spec::log_info;
use netns::Netns;
use nl::{Handle, Link};

use crate::config::{BranchConf, Mode};
use crate::error::BranchEniError;
use crate::kernel::{self, is_kind, is_tagged, kind_of};

/// DEL: deletes the links of this attachment in the container namespace: those tagged
/// `cni:<containerID>/<ifname>`, or, when none is tagged (links made by vpc-branch-eni), the
/// untagged ones vpc-branch-eni would have made. Never looks at the trunk. A missing namespace
/// or link is success. IMDS blackholes stay (see the README).
pub fn del(
    conf: &BranchConf,
    netns: Option<&Netns>,
    container_id: &str,
    ifname: &str,
) -> Result<(), BranchEniError> {
    let Some(ns) = netns else {
        return Ok(());
    };
    let mut ctr = Handle::open_in(ns)?;
    let tag = kernel::owner_tag(container_id, ifname);
    let links = ctr.links()?;
    let mut doomed = attachment_links(conf, &links, &tag, ifname);
    doomed.sort_by_key(|l| del_rank(l));
    delete_links(&mut ctr, ns, &doomed)
}

/// What this attachment's ADD made: links tagged with its owner, the VLAN link still under
/// its temporary name (an ADD killed before tagging it), and, untagged, the links
/// vpc-branch-eni (or an ADD killed between creating and tagging) leaves for this config.
fn attachment_links<'l>(
    conf: &BranchConf,
    links: &'l [Link],
    tag: &str,
    ifname: &str,
) -> Vec<&'l Link> {
    let temp = kernel::temp_name(tag);
    links
        .iter()
        .filter(|l| {
            is_tagged(l, tag)
                || (l.name == temp && is_kind(l, "vlan"))
                || (untagged(l) && made_for_config(conf, l, ifname))
        })
        .collect()
}

/// Whether `l` carries no alias of this plugin.
fn untagged(l: &Link) -> bool {
    !l.alias
        .as_deref()
        .is_some_and(|a| a.starts_with(kernel::TAG_PREFIX))
}

/// Whether `l` is a link vpc-branch-eni makes for this config: CNI_IFNAME of the mode's kind,
/// `tapbr<vlan>` (tap mode), an 802.1Q link with the configured id.
fn made_for_config(conf: &BranchConf, l: &Link, ifname: &str) -> bool {
    let own_vlan = is_kind(l, "vlan") && l.vlan_id == Some(conf.vlan_id);
    match conf.mode {
        Mode::Vlan => l.name == ifname && own_vlan,
        Mode::Tap { .. } => {
            (l.name == ifname && is_kind(l, "tun"))
                || (l.name == kernel::bridge_name(conf.vlan_id) && is_kind(l, "bridge"))
                || own_vlan
        }
        Mode::Macvtap => (l.name == ifname && is_kind(l, "macvtap")) || own_vlan,
    }
}

/// Deletion order: what sits on top first (TAP, macvtap), then the 802.1Q link, then the bridge.
fn del_rank(l: &Link) -> u8 {
    match l.kind.as_deref() {
        Some("tun") | Some("macvtap") => 0,
        Some("vlan") => 1,
        _ => 2,
    }
}

/// Deletes every link of `doomed`, in order, continuing past failures; a link already gone is
/// fine. Returns the first real failure.
fn delete_links(ctr: &mut Handle, ns: &Netns, doomed: &[&Link]) -> Result<(), BranchEniError> {
    let mut first: Option<nl::Error> = None;
    for l in doomed {
        log_info!(
            "deleting {} link {} (index {}) in netns {}",
            kind_of(l),
            l.name,
            l.index,
            ns.path().display()
        );
        if let Err(e) = ctr.delete_link(l.index) {
            if !e.is_not_found() {
                first.get_or_insert(e);
            }
        }
    }
    match first {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
