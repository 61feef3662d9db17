//! The plugin's error type and its one mapping to CNI codes.
//!
//! Every verb of [`crate::BranchEni`] returns a [`BranchEniError`]; `cni_spec::main!` turns it
//! into the CNI error object once, at the edge (its `Display` is the message, [`PluginError`]
//! gives the code). Config and CNI_ARGS errors are the protocol layer's own
//! ([`BranchEniError::Spec`], codes 4 and 7), wrapped unchanged.

use cni_spec::{PluginError, code};

/// What can go wrong in ADD, DEL, CHECK and STATUS.
#[derive(Debug, thiserror::Error)]
pub enum BranchEniError {
    /// The protocol layer: the CNI_* environment, the config and CNI_ARGS
    /// ([`crate::BranchConf::parse`]), a missing prevResult.
    #[error(transparent)]
    Spec(#[from] cni_spec::Error),
    /// A netlink request failed; the message names the operation, the link and the namespace.
    #[error(transparent)]
    Netlink(#[from] nl::Error),
    /// Applying or checking the IP configuration failed.
    #[error(transparent)]
    Ipconf(#[from] ipconf::Error),
    /// No link with the configured name or MAC in the plugin's (host) namespace.
    #[error(
        "trunk interface {trunk} not found in the host network namespace {netns} (is the trunk ENI attached?)"
    )]
    TrunkNotFound {
        /// `"eth1"` or `with MAC 0a:..`.
        trunk: String,
        /// The namespace searched.
        netns: String,
    },
    /// The kernel cannot create 802.1Q links at all.
    #[error(
        "no 802.1Q VLAN support in this kernel (module 8021q missing and not loadable): cannot create VLAN {vlan_id} on trunk {trunk}"
    )]
    NoVlanSupport {
        /// The trunk's name.
        trunk: String,
        /// The VLAN id asked for.
        vlan_id: u16,
    },
    /// The kernel has 802.1Q, but this trunk device cannot carry VLANs.
    #[error("trunk {trunk} cannot carry 802.1Q VLANs: {source}")]
    TrunkWithoutVlans {
        /// The trunk's name.
        trunk: String,
        /// The kernel's answer.
        #[source]
        source: nl::Error,
    },
    /// `mtu` is above the trunk's MTU.
    #[error("key \"mtu\": {mtu} is larger than the MTU {trunk_mtu} of trunk {trunk}")]
    MtuAboveTrunk {
        /// The configured MTU.
        mtu: u32,
        /// The trunk's MTU.
        trunk_mtu: u32,
        /// The trunk's name.
        trunk: String,
    },
    /// The kernel refused a second VLAN with this id on the trunk.
    #[error("VLAN {vlan_id} on trunk {trunk} is already in use by {owner}")]
    VlanInUse {
        /// The trunk's name.
        trunk: String,
        /// The VLAN id.
        vlan_id: u16,
        /// Where it is used: the link, its owner and its namespace, as far as they were found.
        owner: String,
    },
    /// A link ADD wants to create already exists in the container namespace.
    #[error("interface {name} already exists in netns {netns}{detail}")]
    NameTaken {
        /// The link name.
        name: String,
        /// The container namespace.
        netns: String,
        /// What it is, e.g. ` (a veth, not created by this plugin for this container)`.
        detail: String,
    },
    /// CHECK found differences.
    #[error("interface {ifname} in netns {netns} does not match its configuration: {}", .diffs.join("; "))]
    Mismatch {
        /// CNI_IFNAME.
        ifname: String,
        /// The container namespace.
        netns: String,
        /// One entry per difference.
        diffs: Vec<String>,
    },
    /// A step of ADD failed and undoing the earlier steps failed too: the original error (whose
    /// code this keeps) and what [`cni_spec::Rollback::unwind`] could not undo.
    #[error("{error}; rolling back also failed: {}", .failures.join("; "))]
    Rollback {
        /// The original failure.
        error: Box<BranchEniError>,
        /// The failures of the rollback, in the order they happened (never empty).
        failures: Vec<String>,
    },
    /// STATUS: the kernel cannot create 802.1Q links, so ADD cannot be served.
    #[error(
        "no 802.1Q VLAN support in this kernel (module 8021q missing and not loadable): branch ENIs cannot be created"
    )]
    Unavailable,
    /// STATUS: the 802.1Q probe itself failed.
    #[error("cannot tell whether this kernel supports 802.1Q VLANs: {0}")]
    Probe(#[source] nl::Error),
}

impl PluginError for BranchEniError {
    /// The CNI error code.
    fn code(&self) -> u32 {
        match self {
            BranchEniError::Spec(e) => e.code(),
            BranchEniError::Netlink(e) => cni_glue::nl_code(e),
            BranchEniError::Ipconf(e) => cni_glue::ipconf_code(e),
            // the trunk ENI is attached asynchronously: the runtime may retry
            BranchEniError::TrunkNotFound { .. } => code::TRY_AGAIN_LATER,
            BranchEniError::NoVlanSupport { .. } => code::KERNEL_UNSUPPORTED,
            BranchEniError::TrunkWithoutVlans { .. } | BranchEniError::MtuAboveTrunk { .. } => {
                code::INVALID_CONFIG
            }
            BranchEniError::VlanInUse { .. }
            | BranchEniError::NameTaken { .. }
            | BranchEniError::Mismatch { .. } => code::OPERATION_FAILED,
            BranchEniError::Rollback { error, .. } => error.code(),
            BranchEniError::Unavailable | BranchEniError::Probe(_) => code::UNAVAILABLE,
        }
    }

    /// The protocol layer's details (e.g. the supported versions), kept through a rollback.
    fn details(&self) -> Option<String> {
        match self {
            BranchEniError::Spec(e) => PluginError::details(e),
            BranchEniError::Rollback { error, .. } => error.details(),
            BranchEniError::Netlink(_)
            | BranchEniError::Ipconf(_)
            | BranchEniError::TrunkNotFound { .. }
            | BranchEniError::NoVlanSupport { .. }
            | BranchEniError::TrunkWithoutVlans { .. }
            | BranchEniError::MtuAboveTrunk { .. }
            | BranchEniError::VlanInUse { .. }
            | BranchEniError::NameTaken { .. }
            | BranchEniError::Mismatch { .. }
            | BranchEniError::Unavailable
            | BranchEniError::Probe(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let e = BranchEniError::TrunkNotFound {
            trunk: "eth1".into(),
            netns: "net:[1]".into(),
        };
        assert_eq!(e.code(), 11);
        assert!(e.to_string().contains("trunk interface eth1 not found"));
        let e = BranchEniError::NoVlanSupport {
            trunk: "eth1".into(),
            vlan_id: 101,
        };
        assert_eq!(cni_spec::Error::from_plugin(&e).code(), 101);
        let e = BranchEniError::Rollback {
            error: Box::new(BranchEniError::MtuAboveTrunk {
                mtu: 9001,
                trunk_mtu: 1500,
                trunk: "eth1".into(),
            }),
            failures: vec!["x".into()],
        };
        assert_eq!(e.code(), 7);
        assert_eq!(BranchEniError::Unavailable.code(), code::UNAVAILABLE);
    }

    /// Protocol-layer errors keep their code, message and details through the wrapper; a
    /// failed rollback keeps the original's code and names every cleanup failure.
    #[test]
    fn wrapped_errors_keep_code_message_and_details() {
        let e = BranchEniError::from(cni_spec::Error::invalid_config("key \"mtu\": 1 is bad"));
        let edge = cni_spec::Error::from_plugin(&e);
        assert_eq!(edge.code(), 7);
        assert_eq!(
            edge.to_json("1.1.0").to_string(),
            r#"{"cniVersion":"1.1.0","code":7,"msg":"invalid network config: key \"mtu\": 1 is bad"}"#
        );
        let spec = cni_spec::Error::plugin(11, "busy").with_details("try later");
        let e = BranchEniError::Rollback {
            error: Box::new(BranchEniError::from(spec)),
            failures: vec!["delete link 7: EBUSY".into(), "set eth1 down: EPERM".into()],
        };
        assert_eq!(e.code(), 11);
        assert_eq!(e.details().as_deref(), Some("try later"));
        assert_eq!(
            e.to_string(),
            "busy; rolling back also failed: delete link 7: EBUSY; set eth1 down: EPERM"
        );
    }
}
