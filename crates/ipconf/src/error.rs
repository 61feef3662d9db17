//! The crate's error type and its CNI code.

use crate::config::Invalid;

/// What can go wrong applying or checking an interface configuration.
///
/// Netlink failures keep their own message, which names the operation, the link and the
/// namespace; the other variants add what they are about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A netlink request failed.
    #[error(transparent)]
    Netlink(#[from] nl::Error),
    /// The configuration was rejected before anything was sent to the kernel.
    #[error("invalid interface configuration: {0}")]
    Invalid(#[from] Invalid),
    /// The kernel refused the MTU (above the device's maximum, or below its minimum).
    #[error("mtu {mtu} is not accepted by the kernel: {source}")]
    Mtu {
        /// The requested MTU.
        mtu: u32,
        /// The kernel's answer (names the link and namespace).
        #[source]
        source: Box<nl::Error>,
    },
    /// An IPv6 address was requested but the namespace has no IPv6 at all.
    #[error("IPv6 is not available in netns {netns}: cannot add {addr} to link {link}: {source}")]
    Ipv6Unavailable {
        /// Namespace label.
        netns: String,
        /// Link name.
        link: String,
        /// The address that could not be added.
        addr: String,
        /// The kernel's answer.
        #[source]
        source: Box<nl::Error>,
    },
    /// A different route to the same destination is in the way.
    #[error("route {wanted} conflicts with existing route {existing} in netns {netns}")]
    RouteConflict {
        /// The route we wanted.
        wanted: String,
        /// The route already there.
        existing: String,
        /// Namespace label.
        netns: String,
    },
    /// CHECK found differences between the kernel and the configuration.
    #[error("link {link} in netns {netns} does not match its configuration: {}", .diffs.join("; "))]
    Mismatch {
        /// The link (name and index, or what was looked for).
        link: String,
        /// Namespace label.
        netns: String,
        /// One entry per difference.
        diffs: Vec<String>,
    },
    /// A step failed, and removing what was already applied failed too.
    #[error("{error}; removing what was already applied also failed: {cleanup}")]
    Cleanup {
        /// The original failure.
        error: Box<Error>,
        /// The first cleanup failure.
        cleanup: String,
    },
}
