//! Applying an [`IfaceConfig`] to a link, and removing what was applied.

use ipnetwork::IpNetwork;
use netns::Netns;
use nl::{Family, Handle, Route, RouteKind, RouteSpec, TABLE_MAIN};

use crate::config::{IfaceConfig, imds_blackholes};
use crate::error::Error;

/// `RTPROT_RA`: a route learned from a router advertisement.
const RTPROT_RA: u8 = 9;

/// How [`apply_with`] adds a route when another route to the same destination exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RouteMode {
    /// A different route to the same destination is a conflict (an error naming both); only
    /// an IPv6 route learned from a router advertisement is replaced. What the ECS plugins
    /// need: a task has exactly one way out.
    #[default]
    Exclusive,
    /// Added alongside (`NLM_F_CREATE` without `NLM_F_EXCL`, as the reference plugins add
    /// routes): IPv4 keeps both routes, IPv6 merges gateway routes into one multipath route.
    /// Two networks with a default gateway in one container then both work, as with the
    /// reference bridge.
    Alongside,
}

/// What [`apply`] changed, so that a caller rolling back a later failure can remove it with
/// [`undo`]. Addresses and routes through the link also disappear when the link leaves the
/// namespace; the IMDS blackholes do not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The link configured.
    pub index: u32,
    /// Addresses added (not those already present).
    pub addresses_added: Vec<IpNetwork>,
    /// Routes added, blackholes included (not identical ones already present).
    pub routes_added: Vec<RouteSpec>,
    /// `disable_ipv6` was 1 on the link and had to be set to 0 for its IPv6 addresses.
    pub ipv6_enabled: bool,
    /// The IPv6 IMDS blackhole was skipped because the namespace has IPv6 disabled and the
    /// link carries no IPv6 address.
    pub imds_v6_skipped: bool,
}

/// Whether IPv6 is usable in a namespace, as far as a route to `fd00:ec2::254` is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv6State {
    /// `net.ipv6.conf.all.disable_ipv6` is 0.
    Enabled,
    /// `net.ipv6.conf.all.disable_ipv6` is 1.
    Disabled,
    /// There is no `net.ipv6` in the namespace (kernel booted with `ipv6.disable=1`).
    Absent,
}

/// Reads the namespace's IPv6 state from `net/ipv6/conf/all/disable_ipv6`. An unreadable value
/// other than a missing file counts as enabled (so nothing is skipped on a guess).
pub fn ipv6_state(netns: &Netns) -> Ipv6State {
    match netns.sysctl_get("net/ipv6/conf/all/disable_ipv6") {
        Ok(v) if v.trim() == "1" => Ipv6State::Disabled,
        Ok(_) => Ipv6State::Enabled,
        Err(e) if e.errno() == Some(libc::ENOENT) => Ipv6State::Absent,
        Err(_) => Ipv6State::Enabled,
    }
}

/// Whether a failed IPv6 IMDS blackhole may be skipped: only when the link gets no IPv6
/// address (otherwise `fd00:ec2::254` would be reachable through it) and IPv6 is disabled or
/// absent in the namespace, or the kernel has no IPv6 routing at all (EAFNOSUPPORT,
/// EOPNOTSUPP). This is the one failure [`apply`] tolerates (vpc-cni-plugins#106).
pub fn v6_block_skippable(errno: Option<i32>, state: Ipv6State, link_has_v6: bool) -> bool {
    if link_has_v6 {
        return false;
    }
    matches!(errno, Some(libc::EAFNOSUPPORT | libc::EOPNOTSUPP)) || state != Ipv6State::Enabled
}

/// Applies `cfg` to link `index` of the namespace `h` is bound to (`netns` is the same
/// namespace, used only for sysctls on the rare paths that need them).
///
/// Steps, in order: MTU; IMDS blackholes (first, so the metadata service is never reachable
/// through the interface); every address (IPv6 with `IFA_F_NODAD`; if the kernel refuses
/// because IPv6 is disabled on the link, `disable_ipv6` is set to 0 on that link and the
/// address retried); link up; default routes via each gateway; extra routes. An address or
/// route that is already there, identical, is fine; an IPv6 default route learned from a
/// router advertisement is replaced by the configured one. Nothing waits for DAD.
///
/// On failure, the addresses and routes added so far are removed again (the MTU, the up state
/// and a `disable_ipv6` change stay) and the error is returned.
pub fn apply(
    netns: &Netns,
    h: &mut Handle,
    index: u32,
    cfg: &IfaceConfig,
) -> Result<Applied, Error> {
    apply_with(netns, h, index, cfg, RouteMode::Exclusive)
}

/// [`apply`], adding routes as `mode` says.
pub fn apply_with(
    netns: &Netns,
    h: &mut Handle,
    index: u32,
    cfg: &IfaceConfig,
    mode: RouteMode,
) -> Result<Applied, Error> {
    cfg.validate()?;
    let mut applied = Applied {
        index,
        ..Applied::default()
    };
    match apply_steps(netns, h, index, cfg, mode, &mut applied) {
        Ok(()) => Ok(applied),
        Err(error) => match undo(h, &applied) {
            Ok(()) => Err(error),
            Err(cleanup) => Err(Error::Cleanup {
                error: Box::new(error),
                cleanup: cleanup.to_string(),
            }),
        },
    }
}

fn apply_steps(
    netns: &Netns,
    h: &mut Handle,
    index: u32,
    cfg: &IfaceConfig,
    mode: RouteMode,
    applied: &mut Applied,
) -> Result<(), Error> {
    if let Some(mtu) = cfg.mtu {
        h.set_mtu(index, mtu).map_err(|source| Error::Mtu {
            mtu,
            source: Box::new(source),
        })?;
    }
    if cfg.block_imds {
        let [v4, v6] = imds_blackholes();
        if add_route_idempotent(h, &RouteSpec::blackhole(v4), RouteMode::Exclusive)? {
            applied.routes_added.push(RouteSpec::blackhole(v4));
        }
        match add_route_idempotent(h, &RouteSpec::blackhole(v6), RouteMode::Exclusive) {
            Ok(true) => applied.routes_added.push(RouteSpec::blackhole(v6)),
            Ok(false) => {}
            Err(Error::Netlink(e))
                if v6_block_skippable(e.errno(), ipv6_state(netns), cfg.has_family(Family::V6)) =>
            {
                applied.imds_v6_skipped = true;
            }
            Err(e) => return Err(e),
        }
    }
    for addr in &cfg.addresses {
        if add_addr(netns, h, index, *addr, applied)? {
            applied.addresses_added.push(*addr);
        }
    }
    h.set_up(index)?;
    for spec in cfg.route_specs(index) {
        if add_route_idempotent(h, &spec, mode)? {
            applied.routes_added.push(spec);
        }
    }
    Ok(())
}

/// Adds one address; `Ok(false)` when it was already there.
fn add_addr(
    netns: &Netns,
    h: &mut Handle,
    index: u32,
    addr: IpNetwork,
    applied: &mut Applied,
) -> Result<bool, Error> {
    let v6 = addr.is_ipv6();
    match h.add_addr(index, addr, v6) {
        Ok(()) => Ok(true),
        Err(e) if e.is_exists() => Ok(false),
        Err(e) if v6 && e.errno() == Some(libc::EACCES) && !applied.ipv6_enabled => {
            // IPv6 is disabled on this link (the namespace's default was copied to it when it
            // arrived): enable it on the link only, then retry.
            let name = h
                .link_by_index(index)?
                .map_or_else(|| format!("index {index}"), |l| l.name);
            let key = format!("net/ipv6/conf/{name}/disable_ipv6");
            netns
                .sysctl_set(&key, "0")
                .map_err(|source| Error::Ipv6Unavailable {
                    netns: netns.path().display().to_string(),
                    link: name.clone(),
                    addr: addr.to_string(),
                    source: Box::new(nl::Error::from(source)),
                })?;
            applied.ipv6_enabled = true;
            add_addr(netns, h, index, addr, applied)
        }
        Err(e) if v6 && matches!(e.errno(), Some(libc::EAFNOSUPPORT | libc::EOPNOTSUPP)) => {
            Err(Error::Ipv6Unavailable {
                netns: netns.path().display().to_string(),
                link: format!("index {index}"),
                addr: addr.to_string(),
                source: Box::new(e),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the kernel's route `r` is the route `spec` asks for (one path of it, for a
/// multipath route).
pub(crate) fn same_route(r: &Route, spec: &RouteSpec) -> bool {
    let path = |gw: Option<std::net::IpAddr>, oif: Option<u32>| {
        gw == spec.gw && spec.oif.is_none_or(|o| oif == Some(o))
    };
    r.dst == spec.dst
        && r.kind == spec.kind
        && (path(r.gw, r.oif) || r.nexthops.iter().any(|n| path(n.gw, n.oif)))
        && r.table == spec.table.unwrap_or(TABLE_MAIN)
        && spec.priority.is_none_or(|p| r.priority == Some(p))
}

/// `dev eth0`, or `dev index 4` when the link cannot be found.
fn dev(h: &mut Handle, index: u32) -> String {
    match h.link_by_index(index) {
        Ok(Some(l)) => format!("dev {}", l.name),
        _ => format!("dev index {index}"),
    }
}

/// `blackhole 169.254.169.254/32`, `0.0.0.0/0 via 10.0.1.1 dev eth0`, ...
pub(crate) fn describe_spec(h: &mut Handle, s: &RouteSpec) -> String {
    describe_spec_with(s, &mut |i| dev(h, i))
}

fn describe_spec_with(s: &RouteSpec, dev: &mut dyn FnMut(u32) -> String) -> String {
    let mut out = match s.kind {
        RouteKind::Blackhole => format!("blackhole {}", s.dst),
        _ => s.dst.to_string(),
    };
    if let Some(gw) = s.gw {
        out.push_str(&format!(" via {gw}"));
    }
    if let Some(oif) = s.oif {
        out.push_str(&format!(" {}", dev(oif)));
    }
    out
}

/// `ip route` style: `0.0.0.0/0 via 10.0.1.254 dev eth1 proto boot`, a multipath route as
/// `::/0 nexthop via fd00::1 dev eth0 nexthop via fd01::1 dev eth1 metric 1024 proto boot`.
fn describe_route(h: &mut Handle, r: &Route) -> String {
    describe_route_with(r, &mut |i| dev(h, i))
}

fn describe_route_with(r: &Route, dev: &mut dyn FnMut(u32) -> String) -> String {
    let mut out = match r.kind {
        RouteKind::Unicast => r.dst.to_string(),
        k => format!("{} {}", format!("{k:?}").to_lowercase(), r.dst),
    };
    let mut path = |prefix: &str, gw: Option<std::net::IpAddr>, oif: Option<u32>| {
        out.push_str(prefix);
        if let Some(gw) = gw {
            out.push_str(&format!(" via {gw}"));
        }
        if let Some(oif) = oif {
            out.push_str(&format!(" {}", dev(oif)));
        }
    };
    path("", r.gw, r.oif);
    for n in &r.nexthops {
        path(" nexthop", n.gw, n.oif);
    }
    if let Some(p) = r.priority {
        out.push_str(&format!(" metric {p}"));
    }
    let proto = match r.protocol {
        2 => "kernel".to_string(),
        3 => "boot".to_string(),
        4 => "static".to_string(),
        RTPROT_RA => "ra".to_string(),
        p => p.to_string(),
    };
    out.push_str(&format!(" proto {proto}"));
    out
}

/// Adds a route; `Ok(false)` when an identical one is already there. [`RouteMode::Exclusive`]:
/// a route learned from a router advertisement in the way is replaced; any other route in the
/// way is a conflict. [`RouteMode::Alongside`]: the kernel keeps both.
fn add_route_idempotent(h: &mut Handle, spec: &RouteSpec, mode: RouteMode) -> Result<bool, Error> {
    let added = match mode {
        RouteMode::Exclusive => h.add_route(spec),
        RouteMode::Alongside => h.add_route_alongside(spec),
    };
    let err = match added {
        Ok(()) => return Ok(true),
        Err(e) if e.is_exists() => e,
        Err(e) => return Err(e.into()),
    };
    let fam = Family::of(spec.dst.ip());
    let table = spec.table.unwrap_or(TABLE_MAIN);
    let routes = h.routes_in_table(fam, Some(table))?;
    if routes.iter().any(|r| same_route(r, spec)) {
        return Ok(false);
    }
    let in_the_way: Vec<&Route> = routes.iter().filter(|r| r.dst == spec.dst).collect();
    if !in_the_way.is_empty()
        && in_the_way
            .iter()
            .all(|r| r.protocol == RTPROT_RA && r.kind == RouteKind::Unicast)
    {
        h.replace_route(spec)?;
        return Ok(true);
    }
    match in_the_way.first() {
        Some(existing) => {
            let existing = (*existing).clone();
            Err(Error::RouteConflict {
                wanted: describe_spec(h, spec),
                existing: describe_route(h, &existing),
                netns: h.netns_label().to_string(),
            })
        }
        None => Err(err.into()),
    }
}

/// Removes what [`apply`] added: routes in reverse order, then addresses. Routes and addresses
/// already gone are fine. Returns the first failure, after trying everything.
pub fn undo(h: &mut Handle, applied: &Applied) -> Result<(), Error> {
    let mut first: Option<Error> = None;
    for spec in applied.routes_added.iter().rev() {
        if let Err(e) = h.del_route(spec) {
            if !e.is_not_found() {
                first.get_or_insert(e.into());
            }
        }
    }
    for addr in applied.addresses_added.iter().rev() {
        if let Err(e) = h.del_addr(applied.index, *addr) {
            if !e.is_not_found() && e.errno() != Some(libc::ENODEV) {
                first.get_or_insert(e.into());
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_v6_less_link_in_a_v6_less_namespace_may_skip_the_v6_block() {
        use Ipv6State::*;
        // the kernel has no IPv6 routing
        assert!(v6_block_skippable(Some(libc::EAFNOSUPPORT), Absent, false));
        assert!(v6_block_skippable(Some(libc::EOPNOTSUPP), Enabled, false));
        // IPv6 switched off in the namespace, whatever the errno
        assert!(v6_block_skippable(Some(libc::EACCES), Disabled, false));
        assert!(v6_block_skippable(None, Absent, false));
        // IPv6 on: a failure is a failure
        assert!(!v6_block_skippable(Some(libc::EACCES), Enabled, false));
        assert!(!v6_block_skippable(Some(libc::ENOMEM), Enabled, false));
        // the link carries IPv6: never skip
        assert!(!v6_block_skippable(Some(libc::EAFNOSUPPORT), Absent, true));
        assert!(!v6_block_skippable(Some(libc::EACCES), Disabled, true));
    }

    #[test]
    fn route_identity() {
        let spec = RouteSpec::via("0.0.0.0/0".parse().unwrap(), "10.0.1.1".parse().unwrap(), 4);
        let mut r = Route {
            dst: "0.0.0.0/0".parse().unwrap(),
            gw: Some("10.0.1.1".parse().unwrap()),
            oif: Some(4),
            nexthops: Vec::new(),
            kind: RouteKind::Unicast,
            scope: nl::Scope::Universe,
            table: TABLE_MAIN,
            priority: None,
            mtu: None,
            advmss: None,
            onlink: false,
            prefsrc: None,
            protocol: 3,
        };
        assert!(same_route(&r, &spec));
        r.gw = Some("10.0.1.2".parse().unwrap());
        assert!(!same_route(&r, &spec));
        let mut name = |i: u32| format!("dev eth{i}");
        assert_eq!(
            describe_route_with(&r, &mut name),
            "0.0.0.0/0 via 10.0.1.2 dev eth4 proto boot"
        );
        r.gw = Some("10.0.1.1".parse().unwrap());
        r.oif = Some(5);
        assert!(!same_route(&r, &spec));
        // a blackhole matches whatever device the kernel reports for it
        let bh = RouteSpec::blackhole("169.254.169.254/32".parse().unwrap());
        let r = Route {
            dst: "169.254.169.254/32".parse().unwrap(),
            gw: None,
            oif: Some(1),
            kind: RouteKind::Blackhole,
            ..r
        };
        assert!(same_route(&r, &bh));
        assert_eq!(
            describe_spec_with(&bh, &mut name),
            "blackhole 169.254.169.254/32"
        );
    }

    /// A route added alongside another one to an IPv6 destination is one path of a multipath
    /// route (reference bridge, two networks with isDefaultGateway).
    #[test]
    fn a_path_of_a_multipath_route_matches() {
        let hop = |gw: &str, oif: u32| nl::Nexthop {
            gw: Some(gw.parse().unwrap()),
            oif: Some(oif),
        };
        let r = Route {
            dst: "::/0".parse().unwrap(),
            gw: None,
            oif: None,
            nexthops: vec![hop("fd61::1", 4), hop("fd62::1", 5)],
            kind: RouteKind::Unicast,
            scope: nl::Scope::Universe,
            table: TABLE_MAIN,
            priority: Some(1024),
            mtu: None,
            advmss: None,
            onlink: false,
            prefsrc: None,
            protocol: 3,
        };
        let dst = "::/0".parse().unwrap();
        assert!(same_route(
            &r,
            &RouteSpec::via(dst, "fd62::1".parse().unwrap(), 5)
        ));
        assert!(same_route(
            &r,
            &RouteSpec::via(dst, "fd61::1".parse().unwrap(), 4)
        ));
        assert!(!same_route(
            &r,
            &RouteSpec::via(dst, "fd62::1".parse().unwrap(), 4)
        ));
        assert!(!same_route(
            &r,
            &RouteSpec::via(dst, "fd63::1".parse().unwrap(), 5)
        ));
        assert_eq!(
            describe_route_with(&r, &mut |i| format!("dev eth{i}")),
            "::/0 nexthop via fd61::1 dev eth4 nexthop via fd62::1 dev eth5 metric 1024 proto boot"
        );
    }
}
