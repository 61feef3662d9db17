//! The crate's one error type.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in this crate.
///
/// Messages name the field (as a path such as `ranges[0][1].rangeStart`), the value and the file
/// they concern. A plugin maps [`Error::LockTimeout`] to CNI code 11 ("try again later"), the
/// allocation errors ([`Error::Exhausted`], [`Error::AddressTaken`], ...) and [`Error::Io`] to its
/// own codes; the crate itself knows nothing of CNI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A range (or range-set list) is invalid. `field` is the path of the offending key.
    #[error("{field} {value} {reason}")]
    InvalidRange {
        /// Path of the key, e.g. `ranges[0][1].rangeStart`.
        field: String,
        /// The value as written (or as computed, for defaults).
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A network name, data directory or owner (id / ifname) is unusable, e.g. it would escape
    /// the store directory.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// Which input: `network name`, `dataDir`, `owner id`, `owner ifname`.
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// The store's `lock` file could not be locked within the configured wait.
    #[error("timed out after {} ms waiting for the lock {}", .waited.as_millis(), .path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },

    /// A file-system operation on the store failed.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What we were doing (`create`, `read`, `link`, `unlink`, ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A store entry is not what the store expects (e.g. `.owners` is not a directory, or the
    /// network directory is a symlink).
    #[error("{} {reason}", .path.display())]
    Corrupt {
        /// The entry.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Every allocatable address of a range set is leased.
    #[error("no IP addresses available in range set: {ranges}")]
    Exhausted {
        /// Index of the range set.
        set: usize,
        /// The set as `start-end,start-end`.
        ranges: String,
    },

    /// A requested address is leased to somebody else.
    #[error(
        "requested IP address {address} is not available in range set {ranges}: leased to {holder}"
    )]
    AddressTaken {
        /// The requested address.
        address: IpAddr,
        /// Index of the range set.
        set: usize,
        /// The set as `start-end,start-end`.
        ranges: String,
        /// The current holder as read from the lease file.
        holder: String,
    },

    /// A requested address is the gateway of its range.
    #[error("requested IP address {address} is the gateway of range {range}")]
    RequestedGateway {
        /// The requested address.
        address: IpAddr,
        /// The range as `start-end`.
        range: String,
    },

    /// A requested address is the network address (or the IPv4 broadcast address) of its subnet.
    #[error("requested IP address {address} is the {kind} address of subnet {subnet}")]
    RequestedReserved {
        /// The requested address.
        address: IpAddr,
        /// `network` or `broadcast`.
        kind: &'static str,
        /// The subnet.
        subnet: String,
    },

    /// The ecs-ipam BoltDB file could not be opened, locked, read or written, or is not a valid
    /// store (see [`boltdb::Error`]).
    #[error(transparent)]
    Db(#[from] boltdb::Error),

    /// A gateway address is held by something other than the gateway marker in the ecs-ipam
    /// store.
    #[error("gateway {gateway} is held by {holder} in {}, not by the gateway marker {marker:?}", .path.display())]
    GatewayTaken {
        /// The gateway.
        gateway: IpAddr,
        /// What the store says holds it.
        holder: String,
        /// The marker expected (`GateWay`, `GateWayV6`).
        marker: &'static str,
        /// The store file.
        path: PathBuf,
    },

    /// A requested address lies outside `rangeStart..=rangeEnd` of every range of every set.
    #[error("requested IP address {address} is outside every range: {ranges}")]
    RequestedOutsideRanges {
        /// The requested address.
        address: IpAddr,
        /// All sets, `;`-separated, each as `start-end,start-end`.
        ranges: String,
    },

    /// Two requested addresses fall in the same range set (one address is allocated per set).
    #[error(
        "requested IP addresses {first} and {second} are both in range set {set} ({ranges}); only one address is allocated per range set"
    )]
    RequestedTwiceInSet {
        /// The first requested address of the set.
        first: IpAddr,
        /// The second one.
        second: IpAddr,
        /// Index of the range set.
        set: usize,
        /// The set as `start-end,start-end`.
        ranges: String,
    },

    /// The owner already holds a different address in a set than the one it now requests.
    #[error("{owner} already holds {held} in range set {set} ({ranges}) but requested {requested}")]
    OwnerHoldsOther {
        /// The owner, as `id "..." ifname "..."`.
        owner: String,
        /// The address it holds.
        held: IpAddr,
        /// The address it requested.
        requested: IpAddr,
        /// Index of the range set.
        set: usize,
        /// The set as `start-end,start-end`.
        ranges: String,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: PathBuf, source: io::Error) -> Error {
        Error::Io { op, path, source }
    }

    pub(crate) fn range(field: &str, value: impl ToString, reason: impl Into<String>) -> Error {
        Error::InvalidRange {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
