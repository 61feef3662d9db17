//! `branch-eni`: ENI trunking. A branch ENI is an 802.1Q VLAN on the instance's trunk ENI; this
//! plugin gives a task its branch, in the task's network namespace, in one of three forms:
//!
//! - **vlan**: the 802.1Q link itself, born in the container namespace under a temporary name,
//!   renamed to CNI_IFNAME, with the branch MAC, the addresses, a default route per gateway
//!   and optional IMDS blackholes (the same IP code as `eni`, crate `ipconf`).
//! - **tap** (VMs such as Firecracker): a bridge `tapbr<vlan>` joining the 802.1Q link and a
//!   TAP named CNI_IFNAME owned by `uid`/`gid`, with vnet headers and MTU 9001.
//! - **macvtap**: a passthru macvtap named CNI_IFNAME on the 802.1Q link.
//!
//! Every link ADD creates carries the alias `cni:<containerID>/<ifname>`: a retried ADD
//! recognises its own links, the error for a VLAN id already in use names its owner, and DEL
//! finds what to delete without looking at the trunk. A failed ADD undoes its earlier steps.
//! CHECK compares the links, addresses and routes with the config; STATUS reports code 50
//! when the kernel has no 802.1Q support; GC has nothing to collect (the links die with their
//! namespace).
//!
//! One module per verb, each a list of named steps: [`add()`] (first ADD, retried ADD,
//! rollback), [`del()`], [`check()`]; `config` reads the dialect, `kernel` holds the trunk
//! lookup, the 802.1Q probe, names and tags; every verb returns a [`BranchEniError`].

mod add;
mod check;
mod config;
mod del;
mod error;
mod kernel;

pub use add::add;
pub use check::check;
pub use config::{ARG_KEYS, BranchConf, KEYS, Mode, TAP_MTU, TrunkRef, parse_unicast_mac};
pub use del::del;
pub use error::BranchEniError;
pub use kernel::{owner_tag, vlan_supported};

use cni_spec::{CniResult, Invocation, Plugin};

/// The branch-eni plugin.
pub struct BranchEni;

/// Reads the config and the per-container CNI_ARGS of an invocation.
fn conf_of(inv: &Invocation) -> Result<BranchConf, BranchEniError> {
    Ok(BranchConf::parse(&inv.conf.raw, &inv.env.args)?)
}

impl Plugin for BranchEni {
    type Error = BranchEniError;
    const NAME: &'static str = "branch-eni";
    const ABOUT: &'static str =
        "ENI trunking: a branch ENI (802.1Q VLAN on the trunk) as a vlan, tap or macvtap interface";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];

    fn add(&self, inv: &Invocation) -> Result<CniResult, BranchEniError> {
        let conf = conf_of(inv)?;
        let ns = inv.netns()?;
        let mut result = add(&conf, ns, &inv.env.container_id, &inv.env.ifname)?;
        if let Some(dns) = &inv.conf.dns {
            result.dns = dns.clone();
        }
        Ok(result)
    }

    fn del(&self, inv: &Invocation) -> Result<(), BranchEniError> {
        let conf = conf_of(inv)?;
        del(
            &conf,
            inv.env.netns.as_ref(),
            &inv.env.container_id,
            &inv.env.ifname,
        )
    }

    fn check(&self, inv: &Invocation) -> Result<(), BranchEniError> {
        let conf = conf_of(inv)?;
        let prev = inv.conf.require_prev_result("CHECK")?;
        check(&conf, inv.netns()?, &inv.env.ifname, prev)
    }

    /// Code 50 unless the kernel can create 802.1Q links ([`vlan_supported`]).
    fn status(&self, _inv: &Invocation) -> Result<(), BranchEniError> {
        match kernel::vlan_supported() {
            Ok(true) => Ok(()),
            Ok(false) => Err(BranchEniError::Unavailable),
            Err(e) => Err(BranchEniError::Probe(e)),
        }
    }
}
