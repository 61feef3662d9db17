//! `ipam`: persistent, concurrency-safe address management; a drop-in for the reference
//! `host-local` and for Amazon's `ecs-ipam`. The plugin is a thin layer over the `ipam`
//! library (`crates/ipam`), which holds both dialects and every verb: this crate turns an
//! invocation into an [`ipam::Request`] and returns the library's [`IpamError`] as it is (a
//! [`cni_spec::PluginError`]: `cni_spec::main!` turns it into the CNI error object).

use cni_spec::{CniResult, Invocation, NetnsUse, Plugin};
use ipam::{IpamError, Request};

/// The IPAM plugin.
pub struct Ipam;

impl Plugin for Ipam {
    type Error = IpamError;
    const NAME: &'static str = "ipam";
    const ABOUT: &'static str = "host-local and ecs-ipam compatible address management";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];
    /// IPAM never enters the container's namespace; like host-local it does not open CNI_NETNS.
    const USES_NETNS: NetnsUse = NetnsUse::Ignore;

    fn add(&self, inv: &Invocation) -> Result<CniResult, IpamError> {
        ipam::add(&Request::of(inv))
    }

    fn del(&self, inv: &Invocation) -> Result<(), IpamError> {
        ipam::del(&Request::of(inv))
    }

    fn check(&self, inv: &Invocation) -> Result<(), IpamError> {
        ipam::check(&Request::of(inv), inv.conf.prev_result.as_ref())
    }

    fn status(&self, inv: &Invocation) -> Result<(), IpamError> {
        ipam::status(&Request::of(inv))
    }

    fn gc(&self, inv: &Invocation) -> Result<(), IpamError> {
        let valid = inv.conf.valid_attachments.as_deref().unwrap_or_default();
        ipam::gc(&Request::of(inv), valid)
    }
}
