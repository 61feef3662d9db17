//! `cni-glue`: the one small place where the kernel-facing crates meet the CNI protocol.
//!
//! `nl` and `ipconf` know nothing of CNI; `cni-spec` knows nothing of netlink. A plugin's error
//! type asks here for the CNI code of a netlink or IP-configuration failure ([`nl_code`],
//! [`ipconf_code`]), and builds the `ips`/`routes` of its result from the configuration it
//! applied ([`ip_configs`], [`cni_routes`]).

#![warn(missing_docs)]

use cni_spec::{IpConfig, Route, code};
use ipconf::IfaceConfig;
use nl::Family;

/// The CNI code of a netlink failure: 11 (`TRY_AGAIN_LATER`) when a process limit or memory
/// ran out (EMFILE, ENFILE, ENOMEM, EAGAIN: RLIMIT_NOFILE, a pids or memory limit, a thread
/// that could not be spawned), 101 (`KERNEL_UNSUPPORTED`) when the kernel lacks the feature
/// ([`nl::Error::is_not_supported`]), else 100 (`OPERATION_FAILED`).
pub fn nl_code(e: &nl::Error) -> u32 {
    if e.errno().is_some_and(cni_spec::errno_is_exhaustion) {
        code::TRY_AGAIN_LATER
    } else if e.is_not_supported() {
        code::KERNEL_UNSUPPORTED
    } else {
        code::OPERATION_FAILED
    }
}

/// The CNI code of an IP-configuration failure: 7 for a configuration the kernel or validation
/// rejects (invalid values, an MTU the device refuses), 101 when the kernel lacks a feature
/// (IPv6, a link kind), else 100.
pub fn ipconf_code(e: &ipconf::Error) -> u32 {
    use ipconf::Error as E;
    match e {
        E::Netlink(e) => nl_code(e),
        E::Invalid(_) => code::INVALID_CONFIG,
        E::Mtu { source, .. } => match source.errno() {
            Some(libc::EINVAL | libc::ERANGE) | None => code::INVALID_CONFIG,
            Some(_) => nl_code(source),
        },
        E::Ipv6Unavailable { .. } => code::KERNEL_UNSUPPORTED,
        E::RouteConflict { .. } | E::Mismatch { .. } => code::OPERATION_FAILED,
        E::Cleanup { error, .. } => ipconf_code(error),
    }
}

/// One CNI `ips[]` entry per address, in configuration order, each with its family's gateway
/// and `interface` set to the given index into the result's `interfaces`.
pub fn ip_configs(cfg: &IfaceConfig, interface: usize) -> Vec<IpConfig> {
    cfg.addresses
        .iter()
        .map(|a| IpConfig::new(*a, cfg.gateway(Family::of(a.ip())), Some(interface)))
        .collect()
}

/// The CNI `routes[]` for the routes [`ipconf::apply`] puts in place (default routes and
/// extra routes, gateways resolved); IMDS blackholes have no CNI representation and are left
/// out.
pub fn cni_routes(cfg: &IfaceConfig) -> Vec<Route> {
    cfg.route_specs(0)
        .into_iter()
        .map(|s| Route::new(s.dst, s.gw))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ipconf::ExtraRoute;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn result_pieces() {
        let cfg = IfaceConfig {
            addresses: vec![
                "10.0.1.17/24".parse().unwrap(),
                "10.0.1.18/24".parse().unwrap(),
                "2001:db8:1::17/64".parse().unwrap(),
            ],
            gateways: vec![ip("10.0.1.1")],
            default_routes: true,
            routes: vec![ExtraRoute {
                dst: "169.254.170.2/32".parse().unwrap(),
                gw: None,
            }],
            mtu: None,
            block_imds: true,
        };
        let ips = ip_configs(&cfg, 0);
        let got: Vec<(String, Option<IpAddr>, Option<usize>)> = ips
            .iter()
            .map(|c| (c.address.to_string(), c.gateway, c.interface))
            .collect();
        assert_eq!(
            got,
            vec![
                ("10.0.1.17/24".into(), Some(ip("10.0.1.1")), Some(0)),
                ("10.0.1.18/24".into(), Some(ip("10.0.1.1")), Some(0)),
                ("2001:db8:1::17/64".into(), None, Some(0)),
            ]
        );
        let routes: Vec<(String, Option<IpAddr>)> = cni_routes(&cfg)
            .iter()
            .map(|r| (r.dst.to_string(), r.gw))
            .collect();
        assert_eq!(
            routes,
            vec![
                ("0.0.0.0/0".into(), Some(ip("10.0.1.1"))),
                ("169.254.170.2/32".into(), Some(ip("10.0.1.1"))),
            ]
        );
    }

    #[test]
    fn netlink_codes() {
        let unsupported = nl::Error::Netlink {
            op: "create vlan".into(),
            netns: "x".into(),
            errno: libc::EOPNOTSUPP,
            msg: "Unknown device type".into(),
        };
        assert_eq!(nl_code(&unsupported), 101);
        let exists = nl::Error::Netlink {
            op: "add".into(),
            netns: "x".into(),
            errno: libc::EEXIST,
            msg: "File exists".into(),
        };
        assert_eq!(nl_code(&exists), 100);
        let e = ipconf::Error::from(unsupported);
        assert_eq!(ipconf_code(&e), 101);
        assert!(e.to_string().contains("create vlan"), "{e}");
    }
}
