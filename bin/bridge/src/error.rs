//! The crate's error type and its one mapping to CNI codes.
//!
//! Every verb returns a [`BridgeError`]; the dispatcher (`cni_spec::main!`) turns it into the CNI
//! error object once, at the edge. A failed step wraps its cause in [`BridgeError::Step`]
//! (`ADD: create veth eth0: ...`), which keeps the cause and its code; [`StepExt`] does the
//! wrapping at the call site.

use std::borrow::Cow;

use cni_spec::{PluginError, code};

use crate::nft::NftError;

/// What can go wrong in the bridge plugin, in its in-process IPAM and in the protocol layer.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The protocol layer: environment, the config (code 7, naming the key), a delegated
    /// IPAM's error object (its code and details kept).
    #[error(transparent)]
    Cni(#[from] cni_spec::Error),
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    #[error(transparent)]
    Netlink(#[from] nl::Error),
    /// A namespace or a sysctl could not be opened, entered, read or written.
    #[error(transparent)]
    Netns(#[from] netns::Error),
    #[error(transparent)]
    Ipconf(#[from] ipconf::Error),
    #[error(transparent)]
    Nft(#[from] NftError),
    /// A prefix length that does not fit the address (gateway/prefix, connected route).
    #[error(transparent)]
    Prefix(#[from] ipnetwork::IpNetworkError),
    #[error(
        "interface named {name} already exists in netns {netns}, but is a {kind}, not a bridge"
    )]
    NotABridge {
        name: String,
        kind: String,
        netns: String,
    },
    #[error(
        "bridge {bridge} in netns {netns}: the kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING), which \"{key}\" needs"
    )]
    NoVlanFiltering {
        bridge: String,
        netns: String,
        key: &'static str,
    },
    #[error(
        "interface named {name} already exists in netns {netns}, but is a {kind}, not the veth of bridge {bridge}'s VLAN {vlan} gateway"
    )]
    NotAVlanGateway {
        name: String,
        kind: String,
        netns: String,
        bridge: String,
        vlan: u16,
    },
    #[error("container interface {ifname} already exists in netns {netns}")]
    IfaceExists { ifname: String, netns: String },
    #[error(
        "no free host-side veth name after {attempts} random attempts in the plugin's netns (last: {last})"
    )]
    NoVethName { attempts: usize, last: String },
    #[error(
        "{bridge} in netns {netns} already has address {existing}, which differs from {wanted}{hint}"
    )]
    BridgeAddress {
        /// `bridge cni0`, or `VLAN gateway interface cni0.100`.
        bridge: String,
        netns: String,
        existing: String,
        wanted: String,
        hint: &'static str,
    },
    #[error("{plugin} ADD printed no result")]
    NoIpamResult { plugin: String },
    #[error("IPAM ({ipam}) result unusable: {reason}")]
    IpamResult { ipam: String, reason: String },
    #[error("key \"mtu\": {mtu} is below {min}, the minimum for IPv6 address {address}")]
    MtuBelowIpv6 {
        mtu: u32,
        min: u32,
        address: ipnetwork::IpNetwork,
    },
    /// What CHECK found different, every difference named.
    #[error("the kernel's state differs from prevResult: {}", .0.join("; "))]
    Check(Vec<String>),
    /// A step failed: `"{step}: {source}"`, with the source's code and details.
    #[error("{step}: {source}")]
    Step {
        step: Cow<'static, str>,
        source: Box<BridgeError>,
    },
    /// An ADD failed and undoing what it had done failed too: the original error, then what
    /// was left behind.
    #[error("{error}; rollback incomplete: {}", .failures.join("; "))]
    RollbackIncomplete {
        #[source]
        error: Box<BridgeError>,
        failures: Vec<String>,
    },
    /// STATUS: ADD could not be served now (code 50).
    #[error(transparent)]
    Unavailable(Box<BridgeError>),
    /// Several independent failures (GC), each named; the first one's code.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<BridgeError>),
}

impl PluginError for BridgeError {
    /// The CNI code: the protocol layer's and IPAM's own (11 for a busy store), 7 for
    /// configurations and IPAM results that cannot work, 101 when the kernel lacks a feature,
    /// 50 for STATUS's "cannot serve ADD", else 100. A wrapper has its cause's code.
    fn code(&self) -> u32 {
        use BridgeError as E;
        match self {
            E::Cni(e) => e.code(),
            E::Ipam(e) => e.code(),
            E::Netlink(e) => cni_glue::nl_code(e),
            E::Ipconf(e) => cni_glue::ipconf_code(e),
            E::Prefix(_) | E::IpamResult { .. } | E::MtuBelowIpv6 { .. } => code::INVALID_CONFIG,
            E::NoVlanFiltering { .. } => code::KERNEL_UNSUPPORTED,
            E::Netns(_)
            | E::Nft(_)
            | E::NotABridge { .. }
            | E::NotAVlanGateway { .. }
            | E::IfaceExists { .. }
            | E::NoVethName { .. }
            | E::BridgeAddress { .. }
            | E::NoIpamResult { .. }
            | E::Check(_) => code::OPERATION_FAILED,
            E::Step { source: e, .. } | E::RollbackIncomplete { error: e, .. } => e.code(),
            E::Unavailable(_) => code::UNAVAILABLE,
            E::Several(all) => all.first().map_or(code::OPERATION_FAILED, |e| e.code()),
        }
    }

    /// A delegated IPAM's details, through any wrapping.
    fn details(&self) -> Option<String> {
        use BridgeError as E;
        match self {
            E::Cni(e) => PluginError::details(e),
            E::Step { source: e, .. } | E::RollbackIncomplete { error: e, .. } => e.details(),
            E::Ipam(_)
            | E::Netlink(_)
            | E::Netns(_)
            | E::Ipconf(_)
            | E::Nft(_)
            | E::Prefix(_)
            | E::NotABridge { .. }
            | E::NoVlanFiltering { .. }
            | E::NotAVlanGateway { .. }
            | E::IfaceExists { .. }
            | E::NoVethName { .. }
            | E::BridgeAddress { .. }
            | E::NoIpamResult { .. }
            | E::IpamResult { .. }
            | E::MtuBelowIpv6 { .. }
            | E::Check(_)
            | E::Unavailable(_)
            | E::Several(_) => None,
        }
    }
}

impl BridgeError {
    /// This error as the cause of a failed step.
    pub fn at(self, step: impl Into<Cow<'static, str>>) -> BridgeError {
        BridgeError::Step {
            step: step.into(),
            source: Box::new(self),
        }
    }

    /// STATUS's "ADD cannot be served" (code 50) for this cause.
    pub fn unavailable(self) -> BridgeError {
        BridgeError::Unavailable(Box::new(self))
    }

    /// Continues past failures: none is success, one is itself, more are [`BridgeError::Several`].
    pub fn all(mut errors: Vec<BridgeError>) -> Result<(), BridgeError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(BridgeError::Several(errors)),
        }
    }
}

/// `.step("ADD: ...")` on any result whose error converts into a [`BridgeError`].
pub trait StepExt<T> {
    /// Wraps an error as the cause of `step`.
    fn step(self, step: impl Into<Cow<'static, str>>) -> Result<T, BridgeError>;
    /// [`StepExt::step`] with a label built only on failure.
    fn step_with(self, step: impl FnOnce() -> String) -> Result<T, BridgeError>;
}

impl<T, E: Into<BridgeError>> StepExt<T> for Result<T, E> {
    fn step(self, step: impl Into<Cow<'static, str>>) -> Result<T, BridgeError> {
        self.map_err(|e| e.into().at(step))
    }

    fn step_with(self, step: impl FnOnce() -> String) -> Result<T, BridgeError> {
        self.map_err(|e| e.into().at(step()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_keep_their_cause_code_and_details() {
        let delegate = cni_spec::Error::plugin(11, "store busy").with_details("lock held");
        let e = BridgeError::from(delegate).at("ADD: IPAM ADD");
        assert_eq!(e.to_string(), "ADD: IPAM ADD: store busy");
        assert_eq!((e.code(), e.details().as_deref()), (11, Some("lock held")));
        let e = BridgeError::RollbackIncomplete {
            error: Box::new(e),
            failures: vec!["delete veth: gone".into(), "IPAM DEL: busy".into()],
        };
        assert_eq!(
            e.to_string(),
            "ADD: IPAM ADD: store busy; rollback incomplete: delete veth: gone; IPAM DEL: busy"
        );
        assert_eq!(e.code(), 11);
        let cfg = BridgeError::from(cni_spec::Error::invalid_config("key \"mtu\": 1")).at("CHECK");
        assert_eq!(
            (cfg.code(), cfg.to_string().as_str()),
            (7, "CHECK: invalid network config: key \"mtu\": 1")
        );
    }

    #[test]
    fn several_failures_and_unavailable() {
        assert!(BridgeError::all(Vec::new()).is_ok());
        let one = BridgeError::Check(vec!["a".into()]).at("GC: x");
        let e = BridgeError::all(vec![one]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "GC: x: the kernel's state differs from prevResult: a"
        );
        let e = BridgeError::all(vec![
            BridgeError::from(cni_spec::Error::try_again("busy")).at("GC: IPAM GC"),
            BridgeError::NoIpamResult { plugin: "p".into() }.at("GC: nftables rules"),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "GC: IPAM GC: busy; GC: nftables rules: p ADD printed no result"
        );
        assert_eq!(e.code(), 11);
        let e = BridgeError::NoVlanFiltering {
            bridge: "b".into(),
            netns: "n".into(),
            key: "vlan",
        };
        assert_eq!(e.code(), 101);
        let text = e.to_string();
        let e = e.unavailable();
        assert_eq!((e.code(), e.to_string()), (50, text));
    }
}
