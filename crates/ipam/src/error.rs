//! The crate's error type and its CNI code. [`IpamError`] is a [`PluginError`]: the `ipam`
//! plugin returns it as it is, and `cni_spec::main!` turns it into the CNI error object once; a
//! plugin that calls IPAM in-process wraps it in its own error, keeping it as the source.

use cni_spec::gocompat::DurationError;
use cni_spec::{PluginError, code};
use ipam_store::boltdb;

/// What can go wrong in an IPAM operation.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// A value `cni-spec`'s readers refused: a wrong type in the `ipam` object or in
    /// `args.cni.ips` (code 7, naming the key), an unknown CNI_ARGS key (code 4).
    #[error(transparent)]
    Spec(#[from] cni_spec::Error),
    /// The `ipam` config cannot work; the message names the key and the value.
    #[error("invalid network config: {0}")]
    Config(String),
    /// `IPAM_DB_CONNECTION_TIMEOUT` is not a Go duration.
    #[error(
        "invalid network config: IPAM_DB_CONNECTION_TIMEOUT \"{value}\" is not a duration such as 5s, 500ms or 1m30s: {source}"
    )]
    ConnectionTimeout {
        value: String,
        #[source]
        source: DurationError,
    },
    /// CHECK without `prevResult`.
    #[error("invalid network config: CHECK requires prevResult, but the config has none")]
    NoPrevResult,
    /// The store refused or failed (a busy lock, a taken address, a file it cannot use).
    #[error(transparent)]
    Store(#[from] ipam_store::Error),
    /// CHECK: the owner holds nothing.
    #[error("no lease for container {id} interface {ifname} in network {network}")]
    NoLease {
        id: String,
        ifname: String,
        network: String,
    },
    /// CHECK: a `prevResult` address in our ranges is not the owner's.
    #[error(
        "prevResult address {address} is not leased to container {id} interface {ifname} in network {network} (it holds {held})"
    )]
    NotLeased {
        address: String,
        id: String,
        ifname: String,
        network: String,
        held: String,
    },
    /// STATUS: a range set has no free address.
    #[error("network {network}: {what}")]
    Exhausted { network: String, what: String },
    /// GC went through every lease, and some could not be handled.
    #[error("GC of network {network} finished with errors: {errors}")]
    Gc { network: String, errors: String },
}

impl IpamError {
    /// The CNI code: 7 for configurations that cannot work, 11 for a busy store ("try again
    /// later"), 50 for an exhausted pool (STATUS), that of `cni-spec`'s error, else 100.
    pub fn code(&self) -> u32 {
        match self {
            IpamError::Spec(e) => e.code(),
            IpamError::Config(_)
            | IpamError::ConnectionTimeout { .. }
            | IpamError::NoPrevResult => code::INVALID_CONFIG,
            IpamError::Store(e) => store_code(e),
            IpamError::Exhausted { .. } => code::UNAVAILABLE,
            IpamError::NoLease { .. } | IpamError::NotLeased { .. } | IpamError::Gc { .. } => {
                code::OPERATION_FAILED
            }
        }
    }
}

impl PluginError for IpamError {
    fn code(&self) -> u32 {
        IpamError::code(self)
    }

    /// A protocol-layer error keeps its details.
    fn details(&self) -> Option<String> {
        match self {
            IpamError::Spec(e) => PluginError::details(e),
            _ => None,
        }
    }
}

/// The store's errors: a lock wait past its bound is 11, a range or name that cannot work 7,
/// anything else (I/O, a corrupt or foreign store, an address that cannot be had) 100.
fn store_code(e: &ipam_store::Error) -> u32 {
    use ipam_store::Error as S;
    match e {
        S::LockTimeout { .. } => code::TRY_AGAIN_LATER,
        S::InvalidRange { .. } | S::InvalidName { .. } => code::INVALID_CONFIG,
        S::Db(db) => match db {
            boltdb::Error::LockTimeout { .. } => code::TRY_AGAIN_LATER,
            boltdb::Error::Io { .. }
            | boltdb::Error::Invalid { .. }
            | boltdb::Error::Usage { .. } => code::OPERATION_FAILED,
        },
        S::Io { .. }
        | S::Corrupt { .. }
        | S::Exhausted { .. }
        | S::AddressTaken { .. }
        | S::RequestedGateway { .. }
        | S::RequestedReserved { .. }
        | S::GatewayTaken { .. }
        | S::RequestedOutsideRanges { .. }
        | S::RequestedTwiceInSet { .. }
        | S::OwnerHoldsOther { .. } => code::OPERATION_FAILED,
    }
}
