//! The crate's error type.

use std::io;

/// Everything that can go wrong in this crate.
///
/// Messages name the operation, the interface (name and/or index) and the network namespace
/// when known. Kernel errors keep their errno, so callers can match on
/// [`Error::is_exists`], [`Error::is_not_found`] and [`Error::is_not_supported`] without parsing
/// strings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a netlink request (NLMSG_ERROR with a negative errno).
    #[error("{op} in netns {netns}: {msg} (errno {errno})")]
    Netlink {
        /// What was attempted, e.g. `set mtu 9001 on link eth0 (index 4)`.
        op: String,
        /// Label of the namespace the socket lives in (a path, or `net:[inode]`).
        netns: String,
        /// Positive errno, e.g. 17 for EEXIST.
        errno: i32,
        /// The kernel's extended-ack message if it sent one, plus the errno description.
        msg: String,
    },
    /// Opening or entering a network namespace failed (see [`netns::Error`]).
    #[error(transparent)]
    Netns(#[from] netns::Error),
    /// A system call failed (socket, /dev/net/tun ...).
    #[error("{op}: {source}")]
    Io {
        /// What was attempted, naming the path / interface / namespace.
        op: String,
        /// The underlying error; its raw OS error is the errno.
        #[source]
        source: io::Error,
    },
    /// A kernel reply could not be decoded.
    #[error("{op}: cannot decode kernel reply: {msg}")]
    Decode {
        /// What was attempted.
        op: String,
        /// Decoder message.
        msg: String,
    },
    /// An argument was rejected before anything was sent to the kernel.
    #[error(transparent)]
    Invalid(#[from] netns::InvalidArg),
}

impl Error {
    /// The errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Netns(e) => e.errno(),
            Error::Decode { .. } | Error::Invalid(_) => None,
        }
    }

    /// EEXIST: the link, address, route or neighbour already exists.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The object acted on does not exist: ENODEV (link), ENOENT (netns path, neighbour,
    /// sysctl), ESRCH (route) or EADDRNOTAVAIL (address on delete).
    ///
    /// Note that the kernel also answers EADDRNOTAVAIL when a route's preferred source is not
    /// a local address; only rely on this in delete paths.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }

    /// EOPNOTSUPP: the kernel lacks the feature, e.g. `Unknown device type` when the link kind
    /// (vlan without 8021q, dummy, ...) is not available.
    pub fn is_not_supported(&self) -> bool {
        self.errno() == Some(libc::EOPNOTSUPP)
    }

    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        field: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        Error::Invalid(netns::InvalidArg::new(field, value, reason))
    }
}
