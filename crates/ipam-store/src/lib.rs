//! Address allocation over ranges, on host-local's on-disk lease store or Amazon ecs-ipam's BoltDB
//! store ([`ecs`]), with a bounded lock.
//!
//! This crate knows nothing of CNI JSON: a plugin parses its dialect (host-local's `ranges`,
//! ecs-ipam's `ipv4-subnet`...) into [`RangeSpec`]s or [`Range`]s, names the owner of a lease
//! ([`Owner`]: an opaque id plus an interface name) and calls a [`Store`].
//!
//! ```no_run
//! use std::net::IpAddr;
//! use std::path::Path;
//! use ipam_store::{DEFAULT_LOCK_TIMEOUT, Owner, RangeSpec, Store, validate_sets};
//!
//! # fn main() -> Result<(), ipam_store::Error> {
//! let sets = validate_sets(
//!     &[vec![RangeSpec { subnet: "10.0.0.0/24".into(), ..Default::default() }]],
//!     "ranges",
//! )?;
//! let store = Store::open(Path::new("/var/lib/cni/networks"), "mynet", DEFAULT_LOCK_TIMEOUT)?;
//! let owner = Owner::new("container-id", "eth0")?;
//! for lease in store.allocate(&owner, &sets, &[])? {
//!     // address: 10.0.0.2/24, gateway: 10.0.0.1
//!     let _ = (lease.network(), lease.gateway());
//! }
//! let _released: Vec<IpAddr> = store.release_by_owner(&owner)?;
//! # Ok(())
//! # }
//! ```
//!
//! ecs-ipam's model maps onto the same range types: one [`RangeSet`] per family holding one
//! [`Range`] (e.g. `169.254.172.0/22`, gateway `169.254.172.1`), the static `ipv4-address` as a
//! requested address; its leases live in Amazon's BoltDB file, see [`ecs`] ([`EcsStore`]:
//! allocate for an `id`, release by id or by address, find, free counts).
//!
//! See [`store`] for the on-disk layout, crash safety and the owner index.

mod addr;
pub mod ecs;
pub mod error;
mod fsx;
pub mod index;
mod lock;
pub mod owner;
pub mod range;
pub mod store;

pub use boltdb;
pub use ecs::EcsStore;
pub use error::Error;
pub use owner::{Holder, Owner};
pub use range::{FieldLabels, Range, RangeSet, RangeSpec, check_sets, validate_sets};
pub use store::{
    __set_step_delay, DEFAULT_DATA_DIR, DEFAULT_LOCK_TIMEOUT, Export, GcReport, Lease, Store,
};

/// The crate-private parsers of the on-disk files, for the fuzz targets (`fuzz/`) and their
/// corpus replay test. Not part of the API.
#[doc(hidden)]
pub mod __fuzz {
    use std::net::IpAddr;

    use crate::{Holder, Owner};

    /// A lease file's content as the store reads it.
    pub fn lease_content(bytes: &[u8]) -> Result<Holder, &'static str> {
        Holder::parse(bytes)
    }

    /// The lease file content the store writes for `owner`.
    pub fn owner_content(owner: &Owner) -> String {
        owner.content()
    }

    /// One owner-index line as the store reads it: `(added, address, holder)`.
    pub fn index_line(line: &str) -> Option<(bool, IpAddr, Holder)> {
        crate::index::parse_line(line)
    }

    /// The owner-index line the store writes for an entry (with its newline).
    pub fn index_line_of(added: bool, ip: IpAddr, holder: &Holder) -> String {
        crate::index::line(if added { '+' } else { '-' }, ip, holder)
    }

    /// The index bucket file (under `.owners/`) of an owner id.
    pub fn bucket_name(id: &str) -> String {
        crate::index::bucket_name(id)
    }
}
