//! The plugin's error type and its one mapping to CNI codes.

use cni_spec::code;

/// What can go wrong in ADD, DEL, CHECK and STATUS once the config has been read (config
/// errors are `cni_spec::Error`s straight away, codes 4 and 7).
#[derive(Debug, thiserror::Error)]
pub enum BranchEniError {
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
    /// A step of ADD failed and undoing the earlier steps failed too.
    #[error("{error}; rolling back also failed: {rollback}")]
    Rollback {
        /// The original failure.
        error: Box<BranchEniError>,
        /// The first failure of the rollback.
        rollback: String,
    },
    /// STATUS: ADD cannot be served.
    #[error("{0}")]
    Unavailable(String),
}

impl BranchEniError {
    /// The CNI error code.
    pub fn code(&self) -> u32 {
        match self {
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
            BranchEniError::Unavailable(_) => code::UNAVAILABLE,
        }
    }
}

impl From<BranchEniError> for cni_spec::Error {
    fn from(e: BranchEniError) -> cni_spec::Error {
        cni_spec::Error::plugin(e.code(), e.to_string())
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
        assert_eq!(cni_spec::Error::from(e).code(), 101);
        let e = BranchEniError::Rollback {
            error: Box::new(BranchEniError::MtuAboveTrunk {
                mtu: 9001,
                trunk_mtu: 1500,
                trunk: "eth1".into(),
            }),
            rollback: "x".into(),
        };
        assert_eq!(e.code(), 7);
        assert_eq!(
            BranchEniError::Unavailable("no".into()).code(),
            code::UNAVAILABLE
        );
    }
}
