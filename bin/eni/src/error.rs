//! The plugin's errors and their CNI codes, mapped once ([`PluginError`] for [`EniError`]). The
//! verbs return [`EniError`] as it is; `cni_spec::main!` turns it into the CNI error object.

use cni_spec::{PluginError, code};

/// Everything that can go wrong in the eni plugin.
#[derive(Debug, thiserror::Error)]
pub enum EniError {
    /// A CNI protocol error (missing CNI_NETNS, missing prevResult).
    #[error(transparent)]
    Cni(#[from] cni_spec::Error),
    /// A netlink request failed (the message names operation, link and namespace).
    #[error(transparent)]
    Netlink(#[from] nl::Error),
    /// Opening the plugin's own namespace failed.
    #[error(transparent)]
    Netns(#[from] netns::Error),
    /// Applying or checking the IP configuration failed.
    #[error(transparent)]
    Ip(#[from] ipconf::Error),
    /// A config key is missing, of the wrong type or has a bad value (code 7).
    #[error("invalid network config: key \"{key}\": {reason}")]
    Config {
        /// The key as written (with an index for list items, e.g. `ip-addresses[1]`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The ENI did not show up in the host namespace in time (code 11: try again later).
    #[error(
        "ENI with {what} not found in the host network namespace {netns} after waiting {waited_ms} ms (it may still be attaching; bound set by eniWaitTimeout / ENI_WAIT_TIMEOUT)"
    )]
    NotFound {
        /// `MAC 0a:..` / `name eth1`.
        what: String,
        /// The host namespace label.
        netns: String,
        /// How long ADD waited.
        waited_ms: u128,
    },
    /// The ENI is already inside the container (a repeated ADD).
    #[error("ENI with {what} is already in container netns {netns} as {ifname}")]
    AlreadyInContainer {
        /// `MAC 0a:..` / `name eth1`.
        what: String,
        /// The container namespace.
        netns: String,
        /// Its name there.
        ifname: String,
    },
    /// The config points at an interface the plugin must not move.
    #[error(
        "refusing to move {name} (index {index}, {what}) out of the host network namespace {netns}: {reason}"
    )]
    Refused {
        /// Host interface name.
        name: String,
        /// Host interface index.
        index: u32,
        /// `MAC 0a:..` / `name eth1`.
        what: String,
        /// The host namespace label.
        netns: String,
        /// Why (carries the default route, is the loopback).
        reason: String,
    },
    /// Found by name, but the MAC differs from the configured one.
    #[error("host interface {name} has MAC {found}, but {key} is {wanted}")]
    MacMismatch {
        /// Host interface name.
        name: String,
        /// Its MAC.
        found: String,
        /// The MAC key as written.
        key: String,
        /// The configured MAC.
        wanted: String,
    },
    /// CNI_IFNAME is taken in the container.
    #[error("an interface named {ifname} already exists in container netns {netns}")]
    IfnameTaken {
        /// CNI_IFNAME.
        ifname: String,
        /// The container namespace.
        netns: String,
    },
    /// The interface in the container differs from the config / prevResult (CHECK).
    #[error("CHECK of {ifname} in netns {netns} failed: {}", .diffs.join("; "))]
    Check {
        /// CNI_IFNAME (or the host name in stay-down mode).
        ifname: String,
        /// The container namespace.
        netns: String,
        /// Every difference found.
        diffs: Vec<String>,
    },
    /// A step of ADD failed and undoing what ADD had done failed too (the code is the original
    /// failure's).
    #[error(
        "{error}; rolling back (moving the ENI back to the host namespace) also failed: {rollback}"
    )]
    Rollback {
        /// The original failure.
        #[source]
        error: Box<EniError>,
        /// What could not be undone ([`cni_spec::Rollback::unwind`]'s failures, joined by `; `).
        rollback: String,
    },
}

impl PluginError for EniError {
    fn code(&self) -> u32 {
        match self {
            EniError::Cni(e) => e.code(),
            EniError::Netlink(e) => cni_glue::nl_code(e),
            EniError::Ip(e) => cni_glue::ipconf_code(e),
            EniError::Config { .. } | EniError::Refused { .. } | EniError::MacMismatch { .. } => {
                code::INVALID_CONFIG
            }
            EniError::NotFound { .. } => code::TRY_AGAIN_LATER,
            EniError::Netns(_)
            | EniError::AlreadyInContainer { .. }
            | EniError::IfnameTaken { .. }
            | EniError::Check { .. } => code::OPERATION_FAILED,
            EniError::Rollback { error, .. } => error.code(),
        }
    }

    /// A protocol error keeps its details (e.g. the versions of an incompatible one).
    fn details(&self) -> Option<String> {
        match self {
            EniError::Cni(e) => PluginError::details(e),
            _ => None,
        }
    }
}
