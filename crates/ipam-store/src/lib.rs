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
//! See [`store`] for the on-disk layout, crash safety, the owner index and how leases other
//! writers add are taken in.

mod addr;
pub mod ecs;
pub mod error;
mod fsx;
pub mod index;
mod lock;
mod names;
pub mod owner;
pub mod range;
mod reconcile;
pub mod store;

pub use boltdb;
pub use ecs::EcsStore;
pub use error::Error;
pub use owner::{Holder, Owner};
pub use range::{FieldLabels, Range, RangeSet, RangeSpec, check_sets, validate_sets};
#[cfg(feature = "test-hooks")]
pub use store::__set_step_delay;
pub use store::{DEFAULT_DATA_DIR, DEFAULT_LOCK_TIMEOUT, Export, GcReport, Lease, Store};

/// The crate-private parsers of the on-disk files, for the fuzz targets (`fuzz/`) and their
/// corpus replay test. Not part of the API: only with the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
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

    /// The names log (`.owners/names`) replayed as the store reads it: `(name, inode,
    /// bucket)` of every known name, sorted, and the number of `+`/`-` lines.
    pub fn names_replay(text: &str) -> (Vec<(String, u64, Option<u8>)>, usize) {
        let r = crate::names::replay(text);
        let mut v: Vec<(String, u64, Option<u8>)> = r
            .live
            .iter()
            .map(|e| {
                let k = r.known(*e);
                (r.name(*e).to_string(), k.ino, k.bucket)
            })
            .collect();
        v.sort();
        (v, r.lines)
    }

    /// The names log line the store writes for a known name (with its newline).
    pub fn names_line_of(name: &str, ino: u64, bucket: Option<u8>) -> String {
        let mut s = String::new();
        crate::names::add_line(&mut s, name, crate::names::Known { ino, bucket });
        s
    }

    /// The stamp of a names log ending in `tail`: `(sec, nsec, live, lines)`.
    pub fn names_stamp(tail: &[u8]) -> Option<(i64, i64, usize, usize)> {
        crate::names::parse_tail(tail).map(|t| (t.stamp.sec, t.stamp.nsec, t.live, t.lines))
    }

    /// The stamp line the store writes (with its newline).
    pub fn names_stamp_line(sec: i64, nsec: i64, live: usize, lines: usize) -> String {
        let mut s = String::new();
        let t = crate::names::Tail {
            stamp: crate::fsx::Mtime { sec, nsec },
            live,
            lines,
        };
        crate::names::stamp_line(&mut s, &t);
        s
    }
}
