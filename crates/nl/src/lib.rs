//! Synchronous rtnetlink, one socket per network namespace.
//!
//! * [`Handle`] is a blocking `NETLINK_ROUTE` socket bound to the namespace it was opened in
//!   ([`Handle::current`], or [`Handle::open_in`] a [`netns::Netns`]), usable from any thread
//!   afterwards: links (lookup, up/down, MTU, MAC, rename, alias, master, move to another
//!   namespace, delete; create veth, bridge, vlan, macvlan, macvtap), addresses, routes and
//!   neighbours; bridge VLAN filtering (the bridge's switch, its ports' VLANs).
//! * [`LinkWatch`] waits for a link to appear, on the kernel's link notifications.
//! * [`create_tap`] makes a persistent TAP device through `/dev/net/tun`.
//! * Namespaces themselves (open, validate, run inside, sysctls), interface names
//!   ([`netns::IfName`]), MACs ([`netns::Mac`]) and MTU bounds belong to the `netns` crate;
//!   names and MTUs are checked against its rules before anything is sent.
//!
//! ```no_run
//! # fn main() -> Result<(), nl::Error> {
//! use std::path::Path;
//! let ns = netns::Netns::open(Path::new("/run/netns/ctr"))?;
//! let mut host = nl::Handle::current()?;
//! host.create_veth(&nl::VethSpec {
//!     name: "veth1234",
//!     peer_name: "eth0",
//!     mtu: Some(9001),
//!     peer_netns: Some(ns.fd()),
//!     ..Default::default()
//! })?;
//! let mut ctr = nl::Handle::open_in(&ns)?;
//! let eth0 = ctr.link("eth0")?;
//! ctr.add_addr(eth0.index, "10.0.0.2/24".parse().unwrap(), false)?;
//! ctr.set_up(eth0.index)?;
//! # Ok(()) }
//! ```
//!
//! Every request is acknowledged and matched by sequence number; dumps handle multipart
//! replies, NLMSG_DONE and NLMSG_ERROR, and are restarted (up to 5 times) when the kernel flags
//! them as interrupted. Errors keep the kernel's errno ([`Error::errno`]) and name the operation,
//! the interface and the namespace; the kernel's extended-ack message, when it sends one, is
//! part of the message. Requests are built apart from the socket, and their bytes, like the
//! parsing of extended acks, are checked by unit tests that need no privileges.

#![warn(missing_docs)]

mod addr;
mod bridge_vlan;
mod error;
#[cfg(test)]
mod golden;
mod handle;
mod link;
mod neigh;
mod route;
mod tap;
mod watch;

pub use addr::{Addr, addr_flags};
pub use bridge_vlan::{BridgeVlanState, MAX_VLAN_ID, PortVlan, VlanRange};
pub use error::Error;
pub use handle::Handle;
pub use ipnetwork::IpNetwork;
pub use link::{BridgeSpec, Link, MacvlanMode, MacvlanSpec, MacvtapSpec, VethSpec, VlanSpec};
pub use neigh::Neigh;
pub use route::{Family, Nexthop, Route, RouteKind, RouteSpec, Scope, TABLE_LOCAL, TABLE_MAIN};
pub use tap::{create_tap, delete_tap};
pub use watch::{LinkEvent, LinkWatch};
