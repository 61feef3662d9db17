//! Running IPAM: the `ipam` library in this process for `ipam`, `host-local` and `ecs-ipam`
//! (no second exec), any other `ipam.type` as a delegate binary on CNI_PATH (started with the
//! invocation's environment, CNI_ARGS as given).

use cni_spec::{CniResult, Command, Invocation, delegate};

use crate::config::IpamKind;
use crate::error::BridgeError;

/// CNI_ARGS keys the bridge reads itself. The in-process IPAM does not count them as unknown
/// (host-local style IPAM refuses keys it does not know unless `IgnoreUnknown` is set).
const BRIDGE_ARGS: &[&str] = &["MAC"];

/// The in-process IPAM's request: the invocation's, with the bridge's CNI_ARGS keys known.
fn request(inv: &Invocation) -> ipam::Request<'_> {
    ipam::Request {
        callers_args: BRIDGE_ARGS,
        ..ipam::Request::of(inv)
    }
}

fn delegated(
    inv: &Invocation,
    plugin: &str,
    command: Command,
) -> Result<Option<CniResult>, BridgeError> {
    Ok(delegate(inv, plugin, command)?)
}

/// IPAM ADD: the abbreviated result (addresses with gateways, routes, DNS); `None` without
/// IPAM.
pub fn add(inv: &Invocation, kind: &IpamKind) -> Result<Option<CniResult>, BridgeError> {
    match kind {
        IpamKind::None => Ok(None),
        IpamKind::InProcess(_) => Ok(Some(ipam::add(&request(inv))?)),
        IpamKind::Delegate(p) => match delegated(inv, p, Command::Add)? {
            Some(r) => Ok(Some(r)),
            None => Err(BridgeError::NoIpamResult { plugin: p.clone() }),
        },
    }
}

/// IPAM DEL (also used to roll back a failed ADD).
pub fn del(inv: &Invocation, kind: &IpamKind) -> Result<(), BridgeError> {
    match kind {
        IpamKind::None => Ok(()),
        IpamKind::InProcess(_) => Ok(ipam::del(&request(inv))?),
        IpamKind::Delegate(p) => delegated(inv, p, Command::Del).map(drop),
    }
}

/// IPAM CHECK, STATUS or GC.
pub fn forward(inv: &Invocation, kind: &IpamKind, command: Command) -> Result<(), BridgeError> {
    match kind {
        IpamKind::None => Ok(()),
        IpamKind::InProcess(_) => {
            let req = request(inv);
            let done = match command {
                Command::Check => ipam::check(&req, inv.conf.prev_result.as_ref()),
                Command::Status => ipam::status(&req),
                Command::Gc => ipam::gc(
                    &req,
                    inv.conf.valid_attachments.as_deref().unwrap_or_default(),
                ),
                Command::Add => ipam::add(&req).map(drop),
                Command::Del => ipam::del(&req),
                Command::Version => Ok(()),
            };
            Ok(done?)
        }
        IpamKind::Delegate(p) => delegated(inv, p, command).map(drop),
    }
}
