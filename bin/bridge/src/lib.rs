//! `bridge`: connects a container to a Linux bridge through a veth pair. A drop-in for the
//! reference `bridge` plugin and for Amazon's `ecs-bridge` (see [`config`] for both dialects,
//! and the crate's README for every key).
//!
//! Each verb is a list of named steps in its own module:
//!
//! - [`add`]: the bridge (created once, MAC pinned, up); the veth pair, created from the
//!   container side with the host end born in the host namespace, MTU on both ends; IPAM (the
//!   `ipam` library in-process for `ipam`/`host-local`/`ecs-ipam`, see [`ipam_glue`]) and its
//!   result as a [`plan::Plan`]; the host end enslaved and up; gateways on the bridge; the
//!   container's addresses (no DAD wait) and routes (applied by `ipconf`); masquerading and
//!   MAC spoof checks with nftables; the result. Any failure after the veth exists rolls back
//!   what was done and names its step.
//! - [`del`]: container veth, IPAM release, nftables rules; success when they are already
//!   gone. The bridge stays.
//! - [`check`]: bridge, veth pair, master, MTU, MACs, VLANs, addresses, routes, rules; IPAM
//!   CHECK first.
//! - [`status`]: nft present when the config needs it, bridge VLAN filtering when it needs
//!   it, IPAM STATUS. [`gc`]: IPAM GC and the nftables rules of attachments no longer valid.
//!
//! ecs-bridge's own steps (on-link host routes to the gateways, no connected routes, no IPv6
//! link-local address, a stable MAC) are in [`ecs`]; host-side links in [`host`]; nftables in
//! [`nft`]. Every verb returns a [`BridgeError`], converted into the CNI error object once,
//! by the dispatcher.

pub mod add;
pub mod check;
pub mod config;
pub mod del;
pub mod ecs;
pub mod error;
pub mod gc;
pub mod host;
pub mod ipam_glue;
pub mod nft;
pub mod plan;
pub mod status;

use cni_spec::{CniResult, Invocation, Plugin};

pub use crate::error::BridgeError;

/// The bridge plugin.
pub struct Bridge;

impl Plugin for Bridge {
    type Error = BridgeError;
    const NAME: &'static str = "bridge";
    const ABOUT: &'static str =
        "veth pairs on a Linux bridge (reference bridge and ecs-bridge dialects)";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];

    fn add(&self, inv: &Invocation) -> Result<CniResult, BridgeError> {
        add::add(inv)
    }

    fn del(&self, inv: &Invocation) -> Result<(), BridgeError> {
        del::del(inv)
    }

    fn check(&self, inv: &Invocation) -> Result<(), BridgeError> {
        check::check(inv)
    }

    fn status(&self, inv: &Invocation) -> Result<(), BridgeError> {
        status::status(inv)
    }

    fn gc(&self, inv: &Invocation) -> Result<(), BridgeError> {
        gc::gc(inv)
    }
}
