//! Routes: dump, add, delete, lookup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric,
    RouteProtocol, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::{Error, Handle};

/// The main routing table.
pub const TABLE_MAIN: u32 = 254;
/// The local routing table (local and broadcast routes).
pub const TABLE_LOCAL: u32 = 255;

/// An IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn af(self) -> AddressFamily {
        match self {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        }
    }

    fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// Route and address scope (`RT_SCOPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Global (0).
    #[default]
    Universe,
    /// Site (200).
    Site,
    /// Directly attached, no gateway (253).
    Link,
    /// This host (254).
    Host,
    /// Nowhere (255).
    Nowhere,
    /// Any other value.
    Other(u8),
}

impl From<u8> for Scope {
    fn from(v: u8) -> Scope {
        match v {
            0 => Scope::Universe,
            200 => Scope::Site,
            253 => Scope::Link,
            254 => Scope::Host,
            255 => Scope::Nowhere,
            o => Scope::Other(o),
        }
    }
}

impl From<Scope> for u8 {
    fn from(s: Scope) -> u8 {
        match s {
            Scope::Universe => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
            Scope::Nowhere => 255,
            Scope::Other(o) => o,
        }
    }
}

/// Route type (`RTN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RouteKind {
    /// A gateway or directly attached route.
    #[default]
    Unicast,
    /// Silently drop (used to fence off the instance metadata service).
    Blackhole,
    /// Reject with "host unreachable".
    Unreachable,
    /// Reject with "administratively prohibited".
    Prohibit,
    /// A local address (local table).
    Local,
    /// A broadcast address (local table).
    Broadcast,
    /// Anything else.
    Other(u8),
}

impl From<RouteType> for RouteKind {
    fn from(t: RouteType) -> RouteKind {
        match t {
            RouteType::Unicast => RouteKind::Unicast,
            RouteType::BlackHole => RouteKind::Blackhole,
            RouteType::Unreachable => RouteKind::Unreachable,
            RouteType::Prohibit => RouteKind::Prohibit,
            RouteType::Local => RouteKind::Local,
            RouteType::Broadcast => RouteKind::Broadcast,
            other => RouteKind::Other(u8::from(other)),
        }
    }
}

impl From<RouteKind> for RouteType {
    fn from(k: RouteKind) -> RouteType {
        match k {
            RouteKind::Unicast => RouteType::Unicast,
            RouteKind::Blackhole => RouteType::BlackHole,
            RouteKind::Unreachable => RouteType::Unreachable,
            RouteKind::Prohibit => RouteType::Prohibit,
            RouteKind::Local => RouteType::Local,
            RouteKind::Broadcast => RouteType::Broadcast,
            RouteKind::Other(o) => RouteType::from(o),
        }
    }
}

/// One path of a multipath route (`RTA_MULTIPATH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nexthop {
    /// Gateway, if any.
    pub gw: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
}

/// A route as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network (`0.0.0.0/0` / `::/0` for a default route).
    pub dst: IpNetwork,
    /// Gateway, if any (for multipath routes: none; see [`Route::nexthops`]).
    pub gw: Option<IpAddr>,
    /// Output interface index (for multipath routes: none).
    pub oif: Option<u32>,
    /// The paths of a multipath route (IPv6 merges gateway routes to one destination added
    /// alongside each other into one, see [`Handle::add_route_alongside`]); empty otherwise.
    pub nexthops: Vec<Nexthop>,
    /// Route type.
    pub kind: RouteKind,
    /// Scope.
    pub scope: Scope,
    /// Table id.
    pub table: u32,
    /// Priority / metric (`RTA_PRIORITY`).
    pub priority: Option<u32>,
    /// Path MTU metric.
    pub mtu: Option<u32>,
    /// Advertised MSS metric.
    pub advmss: Option<u32>,
    /// The gateway is on-link (RTNH_F_ONLINK).
    pub onlink: bool,
    /// Preferred source address.
    pub prefsrc: Option<IpAddr>,
    /// `RTPROT_*` (2 kernel, 3 boot, 4 static ...).
    pub protocol: u8,
}

/// A route to add or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination network; host bits must be zero (the kernel rejects them).
    pub dst: IpNetwork,
    /// Gateway; must have the family of `dst`.
    pub gw: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Unicast (default) or blackhole.
    pub kind: RouteKind,
    /// Scope; `None` picks `Link` for a unicast route without gateway, else `Universe`
    /// (and on delete: match any scope).
    pub scope: Option<Scope>,
    /// Table; `None` = main.
    pub table: Option<u32>,
    /// Priority / metric; `None` = kernel default (0 for IPv4, 1024 for IPv6); on delete:
    /// match any.
    pub priority: Option<u32>,
    /// MTU metric (add only).
    pub mtu: Option<u32>,
    /// Advertised MSS metric (add only).
    pub advmss: Option<u32>,
    /// Treat the gateway as on-link even if no address covers it.
    pub onlink: bool,
    /// Preferred source address.
    pub prefsrc: Option<IpAddr>,
}

/// The flags of [`Handle::add_route`]'s request: fail if an identical route exists.
pub(crate) const ADD_ROUTE: u16 = NLM_F_CREATE | NLM_F_EXCL;

impl RouteSpec {
    /// A unicast route to `dst`, with everything else unset.
    pub fn new(dst: IpNetwork) -> RouteSpec {
        RouteSpec {
            dst,
            gw: None,
            oif: None,
            kind: RouteKind::Unicast,
            scope: None,
            table: None,
            priority: None,
            mtu: None,
            advmss: None,
            onlink: false,
            prefsrc: None,
        }
    }

    /// `dst via gw dev oif`.
    pub fn via(dst: IpNetwork, gw: IpAddr, oif: u32) -> RouteSpec {
        RouteSpec {
            gw: Some(gw),
            oif: Some(oif),
            ..RouteSpec::new(dst)
        }
    }

    /// `dst dev oif scope link`.
    pub fn link(dst: IpNetwork, oif: u32) -> RouteSpec {
        RouteSpec {
            oif: Some(oif),
            ..RouteSpec::new(dst)
        }
    }

    /// `blackhole dst`.
    pub fn blackhole(dst: IpNetwork) -> RouteSpec {
        RouteSpec {
            kind: RouteKind::Blackhole,
            ..RouteSpec::new(dst)
        }
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        if self.kind != RouteKind::Unicast {
            s.push_str(&format!("{:?} ", self.kind).to_lowercase());
        }
        s.push_str(&self.dst.to_string());
        if let Some(gw) = self.gw {
            s.push_str(&format!(" via {gw}"));
        }
        if let Some(oif) = self.oif {
            s.push_str(&format!(" dev index {oif}"));
        }
        if self.onlink {
            s.push_str(" onlink");
        }
        if let Some(t) = self.table {
            s.push_str(&format!(" table {t}"));
        }
        if let Some(p) = self.priority {
            s.push_str(&format!(" metric {p}"));
        }
        s
    }

    fn check(&self) -> Result<(), Error> {
        let fam = Family::of(self.dst.ip());
        for (field, ip) in [("route gateway", self.gw), ("route prefsrc", self.prefsrc)] {
            if let Some(ip) = ip {
                if Family::of(ip) != fam {
                    return Err(Error::invalid(
                        field,
                        ip.to_string(),
                        format!("family differs from destination {}", self.dst),
                    ));
                }
            }
        }
        if self.dst.ip() != self.dst.network() {
            return Err(Error::invalid(
                "route destination",
                self.dst.to_string(),
                format!(
                    "host bits set (network is {}/{})",
                    self.dst.network(),
                    self.dst.prefix()
                ),
            ));
        }
        Ok(())
    }

    /// The RTM_NEWROUTE (or, to delete, RTM_DELROUTE) for this route, once it is checked.
    pub(crate) fn request(&self, delete: bool) -> Result<RouteNetlinkMessage, Error> {
        self.check()?;
        let msg = self.to_msg(delete);
        Ok(if delete {
            RouteNetlinkMessage::DelRoute(msg)
        } else {
            RouteNetlinkMessage::NewRoute(msg)
        })
    }

    fn to_msg(&self, delete: bool) -> RouteMessage {
        let fam = Family::of(self.dst.ip());
        let table = self.table.unwrap_or(TABLE_MAIN);
        let mut msg = RouteMessage::default();
        let h = &mut msg.header;
        h.address_family = fam.af();
        h.destination_prefix_length = self.dst.prefix();
        h.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        if delete {
            h.scope = self
                .scope
                .map_or(RouteScope::NoWhere, |s| u8::from(s).into());
            h.kind = match self.kind {
                RouteKind::Unicast => RouteType::Unspec,
                k => k.into(),
            };
        } else {
            h.protocol = RouteProtocol::Boot;
            let auto = if self.kind == RouteKind::Unicast && self.gw.is_none() {
                Scope::Link
            } else {
                Scope::Universe
            };
            h.scope = u8::from(self.scope.unwrap_or(auto)).into();
            h.kind = self.kind.into();
        }
        if self.onlink {
            h.flags = RouteFlags::Onlink;
        }
        if self.dst.prefix() > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(self.dst.ip().into()));
        }
        msg.attributes.push(RouteAttribute::Table(table));
        if let Some(gw) = self.gw {
            msg.attributes.push(RouteAttribute::Gateway(gw.into()));
        }
        if let Some(oif) = self.oif {
            msg.attributes.push(RouteAttribute::Oif(oif));
        }
        if let Some(p) = self.priority {
            msg.attributes.push(RouteAttribute::Priority(p));
        }
        if let Some(src) = self.prefsrc {
            msg.attributes.push(RouteAttribute::PrefSource(src.into()));
        }
        if !delete {
            let mut metrics = Vec::new();
            if let Some(mtu) = self.mtu {
                metrics.push(RouteMetric::Mtu(mtu));
            }
            if let Some(advmss) = self.advmss {
                metrics.push(RouteMetric::Advmss(advmss));
            }
            if !metrics.is_empty() {
                msg.attributes.push(RouteAttribute::Metrics(metrics));
            }
        }
        msg
    }
}

fn route_ip(a: RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

impl Route {
    fn from_msg(msg: RouteMessage) -> Option<Route> {
        let fam = match msg.header.address_family {
            AddressFamily::Inet => Family::V4,
            AddressFamily::Inet6 => Family::V6,
            _ => return None,
        };
        let mut route = Route {
            dst: IpNetwork::new(fam.unspecified(), 0).ok()?,
            gw: None,
            oif: None,
            nexthops: Vec::new(),
            kind: msg.header.kind.into(),
            scope: Scope::from(u8::from(msg.header.scope)),
            table: u32::from(msg.header.table),
            priority: None,
            mtu: None,
            advmss: None,
            onlink: msg.header.flags.contains(RouteFlags::Onlink),
            prefsrc: None,
            protocol: u8::from(msg.header.protocol),
        };
        let mut dst = fam.unspecified();
        for attr in msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => dst = route_ip(a)?,
                RouteAttribute::Gateway(a) => route.gw = route_ip(a),
                RouteAttribute::Via(RouteVia::Inet(v4)) => route.gw = Some(IpAddr::V4(v4)),
                RouteAttribute::Via(RouteVia::Inet6(v6)) => route.gw = Some(IpAddr::V6(v6)),
                RouteAttribute::Oif(o) => route.oif = Some(o),
                RouteAttribute::Table(t) => route.table = t,
                RouteAttribute::Priority(p) => route.priority = Some(p),
                RouteAttribute::PrefSource(a) => route.prefsrc = route_ip(a),
                RouteAttribute::MultiPath(hops) => {
                    route.nexthops = hops
                        .into_iter()
                        .map(|h| Nexthop {
                            gw: h.attributes.into_iter().find_map(|a| match a {
                                RouteAttribute::Gateway(a) => route_ip(a),
                                RouteAttribute::Via(RouteVia::Inet(v4)) => Some(IpAddr::V4(v4)),
                                RouteAttribute::Via(RouteVia::Inet6(v6)) => Some(IpAddr::V6(v6)),
                                _ => None,
                            }),
                            oif: (h.interface_index != 0).then_some(h.interface_index),
                        })
                        .collect();
                }
                RouteAttribute::Metrics(metrics) => {
                    for m in metrics {
                        match m {
                            RouteMetric::Mtu(v) => route.mtu = Some(v),
                            RouteMetric::Advmss(v) => route.advmss = Some(v),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        route.dst = IpNetwork::new(dst, msg.header.destination_prefix_length).ok()?;
        Some(route)
    }
}

/// The routes of a dump's messages, cached clones left out.
fn uncloned_routes(msgs: Vec<RouteNetlinkMessage>) -> impl Iterator<Item = Route> {
    msgs.into_iter().filter_map(|m| match m {
        RouteNetlinkMessage::NewRoute(r) if !r.header.flags.contains(RouteFlags::Cloned) => {
            Route::from_msg(r)
        }
        _ => None,
    })
}

impl Handle {
    /// Routes of the main table for one family (cached clones excluded).
    pub fn routes(&mut self, family: Family) -> Result<Vec<Route>, Error> {
        self.routes_in_table(family, Some(TABLE_MAIN))
    }

    /// Routes of one table (`None`: all tables, including local) for one family.
    pub fn routes_in_table(
        &mut self,
        family: Family,
        table: Option<u32>,
    ) -> Result<Vec<Route>, Error> {
        let mut req = RouteMessage::default();
        req.header.address_family = family.af();
        let msgs = self
            .dump_raw(RouteNetlinkMessage::GetRoute(req))
            .map_err(|raw| self.fail(format!("list {family:?} routes"), raw))?;
        Ok(uncloned_routes(msgs)
            .filter(|r| table.is_none_or(|t| r.table == t))
            .collect())
    }

    /// Routes of the main table that leave through link `oif`, for one family. The kernel
    /// filters the dump (strict checking: table and output interface), so a host with
    /// thousands of links and their link-local routes answers with a handful of messages;
    /// a kernel that ignores the filter is filtered here.
    pub fn routes_via(&mut self, family: Family, oif: u32) -> Result<Vec<Route>, Error> {
        let mut req = RouteMessage::default();
        req.header.address_family = family.af();
        req.header.table = TABLE_MAIN as u8;
        req.attributes.push(RouteAttribute::Oif(oif));
        let msgs = self
            .dump_raw(RouteNetlinkMessage::GetRoute(req))
            .map_err(|raw| self.fail(format!("list {family:?} routes via index {oif}"), raw))?;
        Ok(uncloned_routes(msgs)
            .filter(|r| r.table == TABLE_MAIN && r.oif == Some(oif))
            .collect())
    }

    /// Adds a route (EEXIST if an identical one exists).
    pub fn add_route(&mut self, r: &RouteSpec) -> Result<(), Error> {
        self.route_op(r, false, ADD_ROUTE, "add route")
    }

    /// Adds a route next to existing routes to the same destination (`NLM_F_CREATE` without
    /// `NLM_F_EXCL`, as Go's `netlink.RouteAddEcmp`, which the reference plugins use): IPv4
    /// keeps both routes (the new one listed first), IPv6 merges gateway routes of the same
    /// metric into one multipath route. EEXIST only when an identical route exists.
    pub fn add_route_alongside(&mut self, r: &RouteSpec) -> Result<(), Error> {
        self.route_op(r, false, NLM_F_CREATE, "add route")
    }

    /// Adds or replaces a route (`ip route replace`).
    pub fn replace_route(&mut self, r: &RouteSpec) -> Result<(), Error> {
        self.route_op(r, false, NLM_F_CREATE | NLM_F_REPLACE, "replace route")
    }

    /// Deletes a route; unset fields of `r` match anything ([`Error::is_not_found`] = ESRCH
    /// when no route matches).
    pub fn del_route(&mut self, r: &RouteSpec) -> Result<(), Error> {
        self.route_op(r, true, 0, "delete route")
    }

    fn route_op(
        &mut self,
        r: &RouteSpec,
        delete: bool,
        flags: u16,
        what: &str,
    ) -> Result<(), Error> {
        let req = r.request(delete)?;
        match self.ack_raw(req, flags) {
            Ok(()) => Ok(()),
            Err(raw) => {
                let mut desc = r.describe();
                if let Some(oif) = r.oif {
                    let link = self.describe_link(oif);
                    desc = desc.replace(&format!("dev index {oif}"), &format!("dev {link}"));
                }
                Err(self.fail(format!("{what} {desc}"), raw))
            }
        }
    }

    /// Asks the kernel which route it would use for `dst` (`ip route get`).
    ///
    /// Returns `Ok(None)` when the kernel has no usable route: ENETUNREACH (no route),
    /// EHOSTUNREACH (unreachable route), EACCES (prohibit route) and EINVAL, which is what both
    /// IPv4 and IPv6 answer for a **blackhole** route. Other errors are returned.
    pub fn route_get(&mut self, dst: IpAddr) -> Result<Option<Route>, Error> {
        let fam = Family::of(dst);
        let mut req = RouteMessage::default();
        req.header.address_family = fam.af();
        req.header.destination_prefix_length = match fam {
            Family::V4 => 32,
            Family::V6 => 128,
        };
        req.attributes.push(RouteAttribute::Destination(dst.into()));
        match self.get_raw(RouteNetlinkMessage::GetRoute(req)) {
            Ok(RouteNetlinkMessage::NewRoute(r)) => Ok(Route::from_msg(r)),
            Ok(_) => Ok(None),
            Err(raw)
                if matches!(
                    raw.errno(),
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EACCES | libc::EINVAL)
                ) =>
            {
                Ok(None)
            }
            Err(raw) => Err(self.fail(format!("look up route to {dst}"), raw)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `routes_via` returns the main-table routes through one link only, whatever else the
    /// namespace holds.
    #[test]
    #[ignore = "needs root: runs in the namespace tier (cargo xtask test netns)"]
    fn routes_via_one_link() {
        netns::Netns::in_fresh(|| {
            let mut h = Handle::current().unwrap();
            let mut idx = Vec::new();
            for (a, b, net) in [("ra", "rb", "10.9.1.2/24"), ("rc", "rd", "10.9.2.2/24")] {
                h.create_veth(&crate::VethSpec {
                    name: a,
                    peer_name: b,
                    ..Default::default()
                })
                .unwrap();
                let (ia, ib) = (h.link(a).unwrap().index, h.link(b).unwrap().index);
                h.set_up(ib).unwrap();
                h.set_up(ia).unwrap();
                h.add_addr(ia, net.parse().unwrap(), true).unwrap();
                idx.push(ia);
            }
            let gw: IpAddr = "10.9.1.1".parse().unwrap();
            h.add_route(&RouteSpec::via("0.0.0.0/0".parse().unwrap(), gw, idx[0]))
                .unwrap();
            let via0 = h.routes_via(Family::V4, idx[0]).unwrap();
            assert!(
                via0.iter()
                    .all(|r| r.oif == Some(idx[0]) && r.table == TABLE_MAIN)
            );
            assert!(
                via0.iter().any(|r| r.dst.prefix() == 0 && r.gw == Some(gw)),
                "{via0:?}"
            );
            let via1 = h.routes_via(Family::V4, idx[1]).unwrap();
            assert!(!via1.is_empty(), "the connected route of rc");
            assert!(
                via1.iter()
                    .all(|r| r.oif == Some(idx[1]) && r.dst.prefix() != 0),
                "{via1:?}"
            );
        })
        .unwrap();
    }

    #[test]
    fn spec_checks() {
        let dst: IpNetwork = "10.0.0.0/8".parse().unwrap();
        let gw6: IpAddr = "fe80::1".parse().unwrap();
        let err = RouteSpec::via(dst, gw6, 1).check().unwrap_err();
        assert!(err.to_string().contains("route gateway"), "{err}");
        let err = RouteSpec::new("10.0.0.1/8".parse().unwrap())
            .check()
            .unwrap_err();
        assert!(err.to_string().contains("host bits"), "{err}");
        RouteSpec::blackhole("169.254.169.254/32".parse().unwrap())
            .check()
            .unwrap();
    }

    #[test]
    fn scope_roundtrip() {
        for v in [0u8, 200, 253, 254, 255, 7] {
            assert_eq!(u8::from(Scope::from(v)), v);
        }
    }

    #[test]
    fn default_route_has_no_dst_attr() {
        let spec = RouteSpec::via("0.0.0.0/0".parse().unwrap(), "10.0.0.1".parse().unwrap(), 3);
        let msg = spec.to_msg(false);
        assert!(
            !msg.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Destination(_)))
        );
        assert_eq!(msg.header.scope, RouteScope::Universe);
        assert_eq!(msg.header.table, 254);
        let link = RouteSpec::link("10.0.0.0/24".parse().unwrap(), 3).to_msg(false);
        assert_eq!(link.header.scope, RouteScope::Link);
    }
}
