//! `netns`: the one home of network namespaces, and the kernel's rules for what names a link.
//!
//! The ground floor under `nl` (netlink) and `cni-spec` (the CNI protocol); it knows neither.
//!
//! * [`Netns`] holds a network namespace by fd. [`Netns::open`] is the only way to get one and
//!   the one rule for "is this path a network namespace": a file on nsfs whose namespace type
//!   is `CLONE_NEWNET` (opened without blocking, so a FIFO cannot hang the caller). It tells
//!   namespaces apart ([`Netns::id`], [`Netns::same_as`], [`Netns::is_current`] through
//!   `/proc/thread-self`, never `/proc/self`), runs a closure inside one ([`Netns::run`]) or
//!   inside a fresh, empty one ([`Netns::in_fresh`]) on the calling thread, which enters it
//!   and comes back (no thread is spawned; unwinding brings it back too), makes a child
//!   process enter one before it executes ([`Netns::enter_before_exec`]), and reads and
//!   writes its `net.*` sysctls ([`Netns::sysctl_set`]; those of the caller's own namespace:
//!   [`sysctl_set`]).
//! * `setns(2)` and `unshare(2)` are called here and nowhere else in the workspace:
//!   `clippy.toml` forbids them (`disallowed-methods`) outside this crate.
//! * [`IfName`] (1..=15 bytes, not `.`/`..`, no `/`, `:`, NUL or whitespace), [`Mac`]
//!   (parsing either separator, unicast checks, lowercase colon form, random locally
//!   administered addresses) and the MTU bounds ([`MIN_MTU`], [`MAX_MTU`], [`IPV6_MIN_MTU`])
//!   are validated here once, for CNI_IFNAME, netlink requests and every plugin's config.
//! * [`random_u64`] serves random MACs and temporary link names; [`fnv1a_32`] and
//!   [`fnv1a_64`] (Go's `hash/fnv`) are the stable hashes behind deterministic names.
//!
//! ```no_run
//! # fn main() -> Result<(), netns::Error> {
//! use std::path::Path;
//! let ns = netns::Netns::open(Path::new("/run/netns/ctr"))?;
//! assert!(!ns.is_current()?);
//! ns.sysctl_set("net.ipv4.conf.all.arp_notify", "1")?;
//! let links = ns.run(|| std::fs::read_dir("/sys/class/net").map(|d| d.count()))?;
//! # let _ = links; Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
mod fnv;
mod ifname;
mod mac;
mod ns;

pub use error::{Error, InvalidArg};
pub use fnv::{fnv1a_32, fnv1a_64};
pub use ifname::{IfName, IfNameProblem, InvalidIfName, MAX_IFNAME_LEN};
pub use mac::{InvalidMac, Mac, MacProblem};
pub use ns::{Netns, NsId, THREAD_SELF_NETNS, sysctl_get, sysctl_set};

/// The smallest MTU the kernel accepts for an Ethernet device (IPv4's minimum).
pub const MIN_MTU: u32 = 68;
/// The largest MTU any device can have.
pub const MAX_MTU: u32 = 65535;
/// Below this MTU the kernel removes IPv6 from an interface.
pub const IPV6_MIN_MTU: u32 = 1280;

/// 64 random bits, different on every call: std's per-process random hash keys (advanced on
/// every call), the process id and the time. For names and locally administered MACs, not for
/// secrets.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_u64_differs_between_calls() {
        let a: Vec<u64> = (0..16).map(|_| super::random_u64()).collect();
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), a.len(), "{a:?}");
    }
}
