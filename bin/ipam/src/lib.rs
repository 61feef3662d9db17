//! `ipam`: persistent, concurrency-safe address management; a drop-in for the reference
//! `host-local` and for Amazon's `ecs-ipam`. The plugin is a thin layer over the `ipam`
//! library (`crates/ipam`), which holds both dialects and every verb: this crate turns an
//! invocation into an [`ipam::Request`] and the library's errors into CNI error objects.

use cni_spec::{CniResult, Error, Invocation, NetnsUse, Plugin};
use ipam::{IpamError, Request};

/// The IPAM plugin.
pub struct Ipam;

/// The CNI error object of a library error: its code and message.
fn cni(e: IpamError) -> Error {
    Error::plugin(e.code(), e.to_string())
}

impl Plugin for Ipam {
    type Error = cni_spec::Error;
    const NAME: &'static str = "ipam";
    const ABOUT: &'static str = "host-local and ecs-ipam compatible address management";
    const CAPABILITIES: &'static [&'static str] = &["awsvpc-network-mode"];
    /// IPAM never enters the container's namespace; like host-local it does not open CNI_NETNS.
    const USES_NETNS: NetnsUse = NetnsUse::Ignore;

    fn add(&self, inv: &Invocation) -> Result<CniResult, Error> {
        ipam::add(&Request::of(inv)).map_err(cni)
    }

    fn del(&self, inv: &Invocation) -> Result<(), Error> {
        ipam::del(&Request::of(inv)).map_err(cni)
    }

    fn check(&self, inv: &Invocation) -> Result<(), Error> {
        ipam::check(&Request::of(inv), inv.conf.prev_result.as_ref()).map_err(cni)
    }

    fn status(&self, inv: &Invocation) -> Result<(), Error> {
        ipam::status(&Request::of(inv)).map_err(cni)
    }

    fn gc(&self, inv: &Invocation) -> Result<(), Error> {
        let valid = inv.conf.valid_attachments.as_deref().unwrap_or_default();
        ipam::gc(&Request::of(inv), valid).map_err(cni)
    }
}
