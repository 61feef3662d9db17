//! Synchronous rtnetlink, one socket per network namespace.
//!
//! * [`Netns`] holds a namespace by fd, validates it, runs closures inside it on a short-lived
//!   scoped thread, reads and writes its sysctls, and opens a [`Handle`] in it.
//! * [`Handle`] is a blocking `NETLINK_ROUTE` socket bound to the namespace it was opened in,
//!   usable from any thread afterwards: links (lookup, up/down, MTU, MAC, rename, alias, master,
//!   move to another namespace, delete; create veth, bridge, vlan, macvlan, macvtap),
//!   addresses, routes and neighbours; bridge VLAN filtering (the bridge's switch, its ports'
//!   VLANs).
//! * [`create_tap`] makes a persistent TAP device through `/dev/net/tun`.
//!
//! ```no_run
//! # fn main() -> Result<(), nl::Error> {
//! use std::path::Path;
//! let ns = nl::Netns::open(Path::new("/run/netns/ctr"))?;
//! let mut host = nl::Handle::current()?;
//! host.create_veth(&nl::VethSpec {
//!     name: "veth1234",
//!     peer_name: "eth0",
//!     mtu: Some(9001),
//!     peer_netns: Some(ns.fd()),
//!     ..Default::default()
//! })?;
//! let mut ctr = ns.handle()?;
//! let eth0 = ctr.link_by_name("eth0")?.ok_or_else(|| nl::Error::Invalid {
//!     field: "interface name", value: "eth0".into(), reason: "vanished".into() })?;
//! ctr.add_addr(eth0.index, "10.0.0.2/24".parse().unwrap(), false)?;
//! ctr.set_up(eth0.index)?;
//! # Ok(()) }
//! ```
//!
//! Every request is acknowledged and matched by sequence number; dumps handle multipart
//! replies, NLMSG_DONE and NLMSG_ERROR, and are restarted (up to 5 times) when the kernel flags
//! them as interrupted. Errors keep the kernel's errno ([`Error::errno`]) and name the operation,
//! the interface and the namespace.

#![warn(missing_docs)]

mod addr;
mod bridge_vlan;
mod error;
mod handle;
mod link;
mod neigh;
mod netns;
mod route;
mod tap;

pub use addr::{Addr, addr_flags};
pub use bridge_vlan::{BridgeVlanState, MAX_VLAN_ID, PortVlan, VlanRange};
pub use error::Error;
pub use handle::Handle;
pub use ipnetwork::IpNetwork;
pub use link::{BridgeSpec, Link, MacvlanMode, MacvlanSpec, MacvtapSpec, VethSpec, VlanSpec};
pub use neigh::Neigh;
pub use netns::Netns;
pub use route::{Family, Nexthop, Route, RouteKind, RouteSpec, Scope, TABLE_LOCAL, TABLE_MAIN};
pub use tap::{create_tap, delete_tap};

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-` separators, any case) into 6 bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut mac = [0u8; 6];
    let mut parts = s.split(sep);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(mac)
}

/// Formats a MAC in lowercase colon form, `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_roundtrip() {
        let mac = parse_mac("0A:1b:2C:3d:4E:5f").unwrap();
        assert_eq!(mac, [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]);
        assert_eq!(format_mac(&mac), "0a:1b:2c:3d:4e:5f");
        assert_eq!(parse_mac("0a-1b-2c-3d-4e-5f"), Some(mac));
        for bad in [
            "",
            "0a:1b:2c:3d:4e",
            "0a:1b:2c:3d:4e:5f:60",
            "0a:1b:2c:3d:4e:5",
            "0a:1b:2c:3d:4e:zz",
            "0a:1b-2c:3d:4e:5f",
            "+a:1b:2c:3d:4e:5f",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
