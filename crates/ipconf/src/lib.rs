//! `ipconf`: apply an IP configuration to an interface inside a network namespace, check it
//! against the kernel, and build the CNI result pieces that describe it.
//!
//! Shared by every plugin that configures an interface (`eni`, `branch-eni`, `bridge`), so they
//! behave alike:
//!
//! * [`IfaceConfig`] says what the interface should carry: addresses, gateways (one default
//!   route per gateway when [`IfaceConfig::default_routes`] is set), extra routes (a missing
//!   gateway means the family's gateway), MTU, and whether the instance metadata service
//!   (IMDS, `169.254.169.254` / `fd00:ec2::254`) is fenced off with blackhole routes.
//! * [`apply`] does it with as few netlink round trips as it can: MTU, IMDS blackholes, every
//!   address (IPv6 with `IFA_F_NODAD`, so nothing waits for duplicate address detection), link
//!   up, routes. `disable_ipv6` is only written when the kernel refuses an IPv6 address because
//!   IPv6 is disabled on the interface. Identical routes that already exist are fine. When
//!   IPv6 is off in the namespace and the interface gets no IPv6 address, a failing IPv6 IMDS
//!   blackhole is skipped ([`Applied::imds_v6_skipped`], vpc-cni-plugins#106); that is the only
//!   failure tolerated. If a step fails, what [`apply`] added is removed again.
//! * [`check`] compares the kernel's state with an [`IfaceConfig`] and names every difference.
//! * The CNI side of all this (error codes, result pieces) is in the `cni-glue` crate: this
//!   crate knows nothing of CNI.
//!
//! Router advertisements: nothing here touches `accept_ra`. A namespace's interfaces accept RAs
//! by default (forwarding is off), so a dual-stack interface without an IPv6 gateway gets its
//! IPv6 default route from the router, as the ECS agent expects.

#![warn(missing_docs)]

mod apply;
mod check;
mod config;
mod error;

pub use apply::{
    Applied, Ipv6State, RouteMode, apply, apply_with, ipv6_state, undo, v6_block_skippable,
};
pub use check::check;
pub use config::{
    ExtraRoute, Field, IMDS_V4, IMDS_V6, IfaceConfig, Invalid, default_dst, family_name,
    imds_blackholes,
};
pub use error::Error;
