//! CNI glue: result pieces and the one mapping of netlink errors to CNI codes.

use cni_spec::{IpConfig, Route, code};
use nl::Family;

use crate::config::IfaceConfig;

/// The CNI code of a netlink failure: 101 (`KERNEL_UNSUPPORTED`) when the kernel lacks the
/// feature ([`nl::Error::is_not_supported`]), else 100 (`OPERATION_FAILED`).
pub fn nl_code(e: &nl::Error) -> u32 {
    if e.is_not_supported() {
        code::KERNEL_UNSUPPORTED
    } else {
        code::OPERATION_FAILED
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

/// The CNI `routes[]` for the routes [`crate::apply`] puts in place (default routes and
/// extra routes, gateways resolved); IMDS blackholes have no CNI representation and are left
/// out.
pub fn cni_routes(cfg: &IfaceConfig) -> Vec<Route> {
    cfg.route_specs(0)
        .into_iter()
        .map(|s| Route::new(s.dst, s.gw))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExtraRoute;
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
        let e: cni_spec::Error = crate::Error::from(unsupported).into();
        assert_eq!(e.code(), 101);
        assert!(e.to_string().contains("create vlan"), "{e}");
    }
}
