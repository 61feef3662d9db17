//! `loopback`: brings `lo` up in the container's network namespace so the processes of a task
//! talk over localhost.
//!
//! - ADD: `lo` up; refuse an `lo` carrying a non-loopback address; pass `prevResult` through
//!   when chained, else report `lo` and its first IPv4/IPv6 loopback addresses.
//! - DEL: `lo` down; success when the namespace is already gone.
//! - CHECK: `lo` is up. STATUS and GC: nothing to do (no state).

use cni_spec::{CniResult, Interface, Invocation, IpConfig, Plugin, PluginError, code};
use netns::Netns;
use nl::{Handle, Link};

/// What can go wrong; the verbs return it as it is and `cni_spec::main!` turns it into the CNI
/// error object, with the code of [`PluginError::code`].
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    /// A protocol error (CNI_NETNS missing for ADD or CHECK).
    #[error(transparent)]
    Cni(#[from] cni_spec::Error),
    /// A netlink request failed (the message names operation, link and namespace).
    #[error(transparent)]
    Netlink(#[from] nl::Error),
    #[error("no \"lo\" interface in network namespace {netns}")]
    NoLoopback { netns: String },
    #[error("\"lo\" in network namespace {netns} carries non-loopback address {addr}")]
    ForeignAddress { netns: String, addr: String },
    #[error("\"lo\" in network namespace {netns} is down")]
    Down { netns: String },
}

impl PluginError for LoopbackError {
    fn code(&self) -> u32 {
        match self {
            LoopbackError::Cni(e) => e.code(),
            LoopbackError::Netlink(e) => cni_glue::nl_code(e),
            LoopbackError::NoLoopback { .. }
            | LoopbackError::ForeignAddress { .. }
            | LoopbackError::Down { .. } => code::OPERATION_FAILED,
        }
    }

    fn details(&self) -> Option<String> {
        match self {
            LoopbackError::Cni(e) => PluginError::details(e),
            _ => None,
        }
    }
}

/// The loopback plugin.
pub struct Loopback;

/// The loopback device's index, the same in every network namespace (the kernel's
/// `LOOPBACK_IFINDEX`): ADD and DEL address it without looking it up.
const LO_INDEX: u32 = 1;

/// A netlink socket in the container's namespace, which `lo` belongs to.
struct Lo {
    handle: Handle,
    /// The namespace path, for messages and the result's `sandbox`.
    netns: String,
}

impl Lo {
    /// Moves this single-threaded process into `ns` for good (nothing of its work is left in
    /// its own namespace, so no thread is spawned: [`Handle::enter`]) and opens a netlink
    /// socket there.
    fn open(ns: &Netns) -> Result<Lo, LoopbackError> {
        let netns = ns.path().display().to_string();
        let handle = Handle::enter(ns)?;
        Ok(Lo { handle, netns })
    }

    /// Sets `lo` up or down: one request, by its fixed index.
    fn set(&mut self, up: bool) -> Result<(), LoopbackError> {
        let r = if up {
            self.handle.set_up(LO_INDEX)
        } else {
            self.handle.set_down(LO_INDEX)
        };
        r.map_err(|e| self.missing(e))
    }

    /// `lo` as the kernel reports it (CHECK).
    fn link(&mut self) -> Result<Link, LoopbackError> {
        match self.handle.link_by_index(LO_INDEX)? {
            Some(link) if link.loopback => Ok(link),
            _ => Err(LoopbackError::NoLoopback {
                netns: self.netns.clone(),
            }),
        }
    }

    /// ENODEV (no device at the loopback index) as [`LoopbackError::NoLoopback`].
    fn missing(&self, e: nl::Error) -> LoopbackError {
        if e.is_not_found() {
            LoopbackError::NoLoopback {
                netns: self.netns.clone(),
            }
        } else {
            e.into()
        }
    }
}

impl Plugin for Loopback {
    type Error = LoopbackError;
    const NAME: &'static str = "loopback";
    const ABOUT: &'static str = "brings lo up in the container network namespace";

    fn add(&self, inv: &Invocation) -> Result<CniResult, LoopbackError> {
        let mut lo = Lo::open(inv.netns()?)?;
        lo.set(true)?;
        let addrs = lo.handle.addrs(Some(LO_INDEX))?;
        if let Some(a) = addrs.iter().find(|a| !a.net.ip().is_loopback()) {
            return Err(LoopbackError::ForeignAddress {
                netns: lo.netns,
                addr: a.net.to_string(),
            });
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
                Some(lo.netns),
            )],
            ips,
            ..CniResult::default()
        })
    }

    fn del(&self, inv: &Invocation) -> Result<(), LoopbackError> {
        // A namespace that is gone (or never given) has nothing left to undo.
        let Some(ns) = &inv.env.netns else {
            return Ok(());
        };
        Lo::open(ns)?.set(false)
    }

    fn check(&self, inv: &Invocation) -> Result<(), LoopbackError> {
        let mut lo = Lo::open(inv.netns()?)?;
        if lo.link()?.up {
            Ok(())
        } else {
            Err(LoopbackError::Down { netns: lo.netns })
        }
    }
}
