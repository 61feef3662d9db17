//! Comparing the kernel's state of a link with an [`IfaceConfig`].

use nl::{Family, Handle, Route, RouteKind, RouteSpec};

use crate::apply::{describe_spec, same_route};
use crate::config::{IfaceConfig, imds_blackholes};
use crate::error::Error;

/// Checks link `index` (in the namespace of `h`) against `cfg`: it exists and is up, has the
/// configured MTU, carries every configured address (not tentative, not failed DAD), and the
/// routes [`crate::apply`] adds (default routes via each gateway, extra routes) and, when asked,
/// both IMDS blackholes are in the main table. Things other plugins may add (more addresses,
/// more routes) are not differences. Every difference is named in one
/// [`Error::Mismatch`].
///
/// A missing IPv6 IMDS blackhole is tolerated only when the kernel cannot list IPv6 routes at
/// all and the link has no IPv6 address (the case [`crate::apply`] skips).
pub fn check(h: &mut Handle, index: u32, cfg: &IfaceConfig) -> Result<(), Error> {
    let netns = h.netns_label().to_string();
    let Some(link) = h.link_by_index(index)? else {
        return Err(Error::Mismatch {
            link: format!("index {index}"),
            netns,
            diffs: vec!["the link does not exist".into()],
        });
    };
    let mut diffs = Vec::new();
    if !link.up {
        diffs.push("the link is down".to_string());
    }
    if let Some(mtu) = cfg.mtu {
        if link.mtu != mtu {
            diffs.push(format!("mtu is {} instead of {mtu}", link.mtu));
        }
    }
    let addrs = h.addrs(Some(index))?;
    for want in &cfg.addresses {
        match addrs.iter().find(|a| a.net == *want) {
            None => diffs.push(format!("address {want} is missing")),
            Some(a) if a.is_dadfailed() => {
                diffs.push(format!("address {want} failed duplicate address detection"))
            }
            Some(a) if a.is_tentative() => {
                diffs.push(format!("address {want} is still tentative (DAD)"))
            }
            Some(_) => {}
        }
    }
    let mut wanted: Vec<RouteSpec> = cfg.route_specs(index);
    let [v4_block, v6_block] = imds_blackholes();
    if cfg.block_imds {
        wanted.push(RouteSpec::blackhole(v4_block));
        wanted.push(RouteSpec::blackhole(v6_block));
    }
    let needs = |f: Family| wanted.iter().any(|s| Family::of(s.dst.ip()) == f);
    let v4: Vec<Route> = if needs(Family::V4) {
        h.routes(Family::V4)?
    } else {
        Vec::new()
    };
    // None: the kernel cannot list IPv6 routes at all (no IPv6), tolerated without IPv6 addresses
    let v6: Option<Vec<Route>> = if needs(Family::V6) {
        match h.routes(Family::V6) {
            Ok(r) => Some(r),
            Err(e)
                if !cfg.has_family(Family::V6)
                    && matches!(e.errno(), Some(libc::EAFNOSUPPORT | libc::EOPNOTSUPP)) =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        Some(Vec::new())
    };
    for spec in &wanted {
        let routes: &[Route] = match (Family::of(spec.dst.ip()), &v6) {
            (Family::V4, _) => &v4,
            (Family::V6, Some(r)) => r,
            (Family::V6, None) if spec.kind == RouteKind::Blackhole => continue,
            (Family::V6, None) => &[],
        };
        if !routes.iter().any(|r| same_route(r, spec)) {
            let what = describe_spec(h, spec);
            diffs.push(format!("route {what} is missing"));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(Error::Mismatch {
            link: format!("{} (index {index})", link.name),
            netns,
            diffs,
        })
    }
}
