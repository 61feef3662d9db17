//! `loopback`: brings `lo` up in the container's network namespace so the processes of a task
//! talk over localhost.
//!
//! - ADD: `lo` up; refuse an `lo` carrying a non-loopback address; pass `prevResult` through
//!   when chained, else report `lo` and its first IPv4/IPv6 loopback addresses.
//! - DEL: `lo` down; success when the namespace is already gone.
//! - CHECK: `lo` is up. STATUS and GC: nothing to do (no state).

use cni_spec::{CniResult, Error, Interface, Invocation, IpConfig, Plugin, code};
use netns::Netns;
use nl::Handle;

/// What can go wrong, mapped to CNI codes in one place ([`From<LoopbackError>`]).
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    #[error(transparent)]
    Netlink(#[from] nl::Error),
    #[error("no \"lo\" interface in network namespace {netns}")]
    NoLoopback { netns: String },
    #[error("\"lo\" in network namespace {netns} carries non-loopback address {addr}")]
    ForeignAddress { netns: String, addr: String },
    #[error("\"lo\" in network namespace {netns} is down")]
    Down { netns: String },
}

impl From<LoopbackError> for Error {
    fn from(e: LoopbackError) -> Error {
        let code = match &e {
            LoopbackError::Netlink(n) => cni_glue::nl_code(n),
            _ => code::OPERATION_FAILED,
        };
        Error::plugin(code, e.to_string())
    }
}

/// The loopback plugin.
pub struct Loopback;

/// Opens a netlink socket in the invocation's namespace and finds `lo` there.
fn open_lo(ns: &Netns) -> Result<(Handle, nl::Link, String), LoopbackError> {
    let label = ns.path().display().to_string();
    let mut h = Handle::open_in(ns)?;
    let lo = h
        .link_by_name("lo")?
        .ok_or_else(|| LoopbackError::NoLoopback {
            netns: label.clone(),
        })?;
    Ok((h, lo, label))
}

impl Plugin for Loopback {
    type Error = cni_spec::Error;
    const NAME: &'static str = "loopback";
    const ABOUT: &'static str = "brings lo up in the container network namespace";

    fn add(&self, inv: &Invocation) -> Result<CniResult, Error> {
        let (mut h, lo, netns) = open_lo(inv.netns()?)?;
        h.set_up(lo.index).map_err(LoopbackError::from)?;
        let addrs = h.addrs(Some(lo.index)).map_err(LoopbackError::from)?;
        if let Some(a) = addrs.iter().find(|a| !a.net.ip().is_loopback()) {
            return Err(LoopbackError::ForeignAddress {
                netns,
                addr: a.net.to_string(),
            }
            .into());
        }
        if let Some(prev) = &inv.conf.prev_result {
            return Ok(prev.clone());
        }
        let first = |v4: bool| addrs.iter().find(|a| a.net.is_ipv4() == v4);
        let ips = [first(true), first(false)]
            .into_iter()
            .flatten()
            .map(|a| IpConfig::new(a.net, None, Some(0)))
            .collect();
        Ok(CniResult {
            interfaces: vec![Interface::new(
                "lo",
                Some("00:00:00:00:00:00".into()),
                Some(netns),
            )],
            ips,
            ..CniResult::default()
        })
    }

    fn del(&self, inv: &Invocation) -> Result<(), Error> {
        // A namespace that is gone (or never given) has nothing left to undo.
        let Some(ns) = &inv.env.netns else {
            return Ok(());
        };
        let (mut h, lo, _) = open_lo(ns)?;
        h.set_down(lo.index).map_err(LoopbackError::from)?;
        Ok(())
    }

    fn check(&self, inv: &Invocation) -> Result<(), Error> {
        let (_, lo, netns) = open_lo(inv.netns()?)?;
        if lo.up {
            Ok(())
        } else {
            Err(LoopbackError::Down { netns }.into())
        }
    }
}
