//! What an interface should carry, and its validation.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use netns::{IPV6_MIN_MTU, MAX_MTU, MIN_MTU};
use nl::{Family, RouteSpec};

/// The instance metadata service's IPv4 address.
pub const IMDS_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The instance metadata service's IPv6 address (Nitro instances).
pub const IMDS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// The two blackhole destinations that fence off IMDS: `169.254.169.254/32` and
/// `fd00:ec2::254/128`.
pub fn imds_blackholes() -> [IpNetwork; 2] {
    [
        IpNetwork::from(IpAddr::V4(IMDS_V4)),
        IpNetwork::from(IpAddr::V6(IMDS_V6)),
    ]
}

/// A route beyond the default routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraRoute {
    /// Destination network (host bits zero).
    pub dst: IpNetwork,
    /// Gateway; `None` means the gateway of `dst`'s family, or a link-scope route through the
    /// interface when the configuration has no gateway of that family or `dst` is the host
    /// route to that gateway (`/32`, `/128`: a gateway is reached on-link, never via itself).
    pub gw: Option<IpAddr>,
}

/// What an interface should carry. CNI-agnostic: plugins fill it from their own config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfaceConfig {
    /// Addresses with their subnet prefix (`10.0.1.17/24`, `2001:db8:1::17/64`).
    pub addresses: Vec<IpNetwork>,
    /// Gateways, at most one per family, each of a family that has an address.
    pub gateways: Vec<IpAddr>,
    /// Add a default route (`0.0.0.0/0`, `::/0`) through the interface via each gateway.
    pub default_routes: bool,
    /// Further routes through the interface.
    pub routes: Vec<ExtraRoute>,
    /// MTU to set (68..=65535, at least 1280 with IPv6 addresses); `None` leaves it.
    pub mtu: Option<u32>,
    /// Add blackhole routes for `169.254.169.254/32` and `fd00:ec2::254/128`.
    pub block_imds: bool,
}

/// Which part of an [`IfaceConfig`] is invalid (plugins map it to their own key names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// [`IfaceConfig::addresses`].
    Addresses,
    /// [`IfaceConfig::gateways`].
    Gateways,
    /// [`IfaceConfig::routes`].
    Routes,
    /// [`IfaceConfig::mtu`].
    Mtu,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Addresses => "addresses",
            Field::Gateways => "gateways",
            Field::Routes => "routes",
            Field::Mtu => "mtu",
        })
    }
}

/// A configuration rejected before anything was sent to the kernel.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?}: {reason}")]
pub struct Invalid {
    /// The offending part.
    pub field: Field,
    /// The offending value as written.
    pub value: String,
    /// Why it is rejected.
    pub reason: String,
}

fn invalid(field: Field, value: impl ToString, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The name of a family in messages: `IPv4` or `IPv6`.
pub fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// The default destination of a family: `0.0.0.0/0` or `::/0`.
pub fn default_dst(f: Family) -> IpNetwork {
    let ip = match f {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    // a prefix of 0 is valid for both families; the fallback is never taken
    IpNetwork::new(ip, 0).unwrap_or(IpNetwork::from(ip))
}

fn bad_host_ip(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("is the unspecified address")
    } else if ip.is_multicast() {
        Some("is a multicast address")
    } else if ip.is_loopback() {
        Some("is a loopback address")
    } else {
        None
    }
}

impl IfaceConfig {
    /// Whether an address of this family is configured.
    pub fn has_family(&self, f: Family) -> bool {
        self.addresses.iter().any(|a| Family::of(a.ip()) == f)
    }

    /// The gateway of a family, if any.
    pub fn gateway(&self, f: Family) -> Option<IpAddr> {
        self.gateways.iter().copied().find(|g| Family::of(*g) == f)
    }

    /// Rejects what the kernel would reject or what makes no sense, naming the part: duplicate,
    /// unspecified, multicast or loopback addresses; a gateway of a family without an address,
    /// equal to one of the addresses, or a second one of a family; routes with host bits or a
    /// gateway of the wrong family; an MTU outside 68..=65535, or below 1280 with IPv6.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (i, a) in self.addresses.iter().enumerate() {
            if let Some(why) = bad_host_ip(a.ip()) {
                return Err(invalid(Field::Addresses, a, why));
            }
            if self.addresses[..i].iter().any(|b| b.ip() == a.ip()) {
                return Err(invalid(Field::Addresses, a, "is listed twice"));
            }
        }
        for (i, g) in self.gateways.iter().enumerate() {
            let fam = Family::of(*g);
            if let Some(why) = bad_host_ip(*g) {
                return Err(invalid(Field::Gateways, g, why));
            }
            if !self.has_family(fam) {
                return Err(invalid(
                    Field::Gateways,
                    g,
                    format!("no {} address is configured", family_name(fam)),
                ));
            }
            if self.addresses.iter().any(|a| a.ip() == *g) {
                return Err(invalid(
                    Field::Gateways,
                    g,
                    "is one of the interface's own addresses",
                ));
            }
            if self.gateways[..i].iter().any(|o| Family::of(*o) == fam) {
                return Err(invalid(
                    Field::Gateways,
                    g,
                    format!(
                        "a second {} gateway (only one default route per family)",
                        family_name(fam)
                    ),
                ));
            }
        }
        for r in &self.routes {
            if r.dst.ip() != r.dst.network() {
                return Err(invalid(
                    Field::Routes,
                    r.dst,
                    format!(
                        "host bits set (network is {}/{})",
                        r.dst.network(),
                        r.dst.prefix()
                    ),
                ));
            }
            if let Some(gw) = r.gw {
                if Family::of(gw) != Family::of(r.dst.ip()) {
                    return Err(invalid(
                        Field::Routes,
                        format!("{} via {gw}", r.dst),
                        "gateway and destination are of different families",
                    ));
                }
            }
        }
        if let Some(mtu) = self.mtu {
            if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
                return Err(invalid(
                    Field::Mtu,
                    mtu,
                    format!("must be within {MIN_MTU}..={MAX_MTU}"),
                ));
            }
            if mtu < IPV6_MIN_MTU && self.has_family(Family::V6) {
                return Err(invalid(
                    Field::Mtu,
                    mtu,
                    format!("IPv6 addresses need an MTU of at least {IPV6_MIN_MTU}"),
                ));
            }
        }
        Ok(())
    }

    /// The routes through link `index` this configuration asks for: default routes via each
    /// gateway (if [`IfaceConfig::default_routes`]), then the extra routes with their gateway
    /// resolved (a route without one goes via the family's gateway, except the host route to
    /// that gateway itself, which is on-link). IMDS blackholes are not included.
    pub fn route_specs(&self, index: u32) -> Vec<RouteSpec> {
        let mut out = Vec::new();
        if self.default_routes {
            for gw in &self.gateways {
                out.push(RouteSpec::via(default_dst(Family::of(*gw)), *gw, index));
            }
        }
        for r in &self.routes {
            let gw = r.gw.or_else(|| {
                self.gateway(Family::of(r.dst.ip()))
                    .filter(|g| r.dst != IpNetwork::from(*g))
            });
            out.push(match gw {
                Some(gw) => RouteSpec::via(r.dst, gw, index),
                None => RouteSpec::link(r.dst, index),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn dual() -> IfaceConfig {
        IfaceConfig {
            addresses: vec![net("10.0.1.17/24"), net("2001:db8:1::17/64")],
            gateways: vec![ip("10.0.1.1"), ip("2001:db8:1::1")],
            default_routes: true,
            routes: vec![
                ExtraRoute {
                    dst: net("169.254.170.2/32"),
                    gw: None,
                },
                ExtraRoute {
                    dst: net("fd00::/8"),
                    gw: Some(ip("2001:db8:1::fe")),
                },
            ],
            mtu: Some(9001),
            block_imds: true,
        }
    }

    #[test]
    fn valid_dual_stack() {
        dual().validate().unwrap();
        assert_eq!(dual().gateway(Family::V6), Some(ip("2001:db8:1::1")));
        assert!(dual().has_family(Family::V4));
    }

    #[test]
    fn imds_destinations() {
        let [v4, v6] = imds_blackholes();
        assert_eq!(v4, net("169.254.169.254/32"));
        assert_eq!(v6, net("fd00:ec2::254/128"));
    }

    #[test]
    fn route_specs_resolve_gateways() {
        let specs = dual().route_specs(7);
        let got: Vec<(String, Option<IpAddr>, Option<u32>)> = specs
            .iter()
            .map(|s| (s.dst.to_string(), s.gw, s.oif))
            .collect();
        assert_eq!(
            got,
            vec![
                ("0.0.0.0/0".into(), Some(ip("10.0.1.1")), Some(7)),
                ("::/0".into(), Some(ip("2001:db8:1::1")), Some(7)),
                ("169.254.170.2/32".into(), Some(ip("10.0.1.1")), Some(7)),
                ("fd00::/8".into(), Some(ip("2001:db8:1::fe")), Some(7)),
            ]
        );
        // no gateway of the family: a link-scope route
        let cfg = IfaceConfig {
            addresses: vec![net("10.0.1.17/24")],
            routes: vec![ExtraRoute {
                dst: net("10.9.0.0/16"),
                gw: None,
            }],
            ..IfaceConfig::default()
        };
        let specs = cfg.route_specs(3);
        assert_eq!(specs, vec![RouteSpec::link(net("10.9.0.0/16"), 3)]);
        // the host route to the gateway itself is on-link, never via the gateway
        let cfg = IfaceConfig {
            routes: vec![ExtraRoute {
                dst: net("10.0.1.1/32"),
                gw: None,
            }],
            ..dual()
        };
        assert_eq!(
            cfg.route_specs(2)[2..],
            [RouteSpec::link(net("10.0.1.1/32"), 2)]
        );
        assert_eq!(default_dst(Family::V6), net("::/0"));
        assert_eq!(family_name(Family::V4), "IPv4");
        // default routes off
        let cfg = IfaceConfig {
            default_routes: false,
            ..dual()
        };
        assert_eq!(cfg.route_specs(1).len(), 2);
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases: Vec<(IfaceConfig, Field, &str)> = vec![
            (
                IfaceConfig {
                    gateways: vec![ip("10.0.1.1")],
                    addresses: vec![net("2001:db8::5/64")],
                    ..IfaceConfig::default()
                },
                Field::Gateways,
                "no IPv4 address is configured",
            ),
            (
                IfaceConfig {
                    gateways: vec![ip("10.0.1.1"), ip("10.0.1.2")],
                    ..dual()
                },
                Field::Gateways,
                "a second IPv4 gateway",
            ),
            (
                IfaceConfig {
                    gateways: vec![ip("10.0.1.17")],
                    ..dual()
                },
                Field::Gateways,
                "own addresses",
            ),
            (
                IfaceConfig {
                    addresses: vec![net("10.0.1.17/24"), net("10.0.1.17/16")],
                    gateways: vec![],
                    ..dual()
                },
                Field::Addresses,
                "listed twice",
            ),
            (
                IfaceConfig {
                    addresses: vec![net("0.0.0.0/0")],
                    gateways: vec![],
                    ..dual()
                },
                Field::Addresses,
                "unspecified",
            ),
            (
                IfaceConfig {
                    mtu: Some(67),
                    ..dual()
                },
                Field::Mtu,
                "68..=65535",
            ),
            (
                IfaceConfig {
                    mtu: Some(65536),
                    ..dual()
                },
                Field::Mtu,
                "68..=65535",
            ),
            (
                IfaceConfig {
                    mtu: Some(1279),
                    ..dual()
                },
                Field::Mtu,
                "at least 1280",
            ),
            (
                IfaceConfig {
                    routes: vec![ExtraRoute {
                        dst: net("10.1.2.3/16"),
                        gw: None,
                    }],
                    ..dual()
                },
                Field::Routes,
                "host bits",
            ),
            (
                IfaceConfig {
                    routes: vec![ExtraRoute {
                        dst: net("10.1.0.0/16"),
                        gw: Some(ip("2001:db8::1")),
                    }],
                    ..dual()
                },
                Field::Routes,
                "different families",
            ),
        ];
        for (cfg, field, why) in cases {
            let e = cfg.validate().unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.reason.contains(why), "{e}");
        }
        // IPv4-only with a small MTU is fine
        IfaceConfig {
            addresses: vec![net("10.0.1.17/24")],
            mtu: Some(576),
            ..IfaceConfig::default()
        }
        .validate()
        .unwrap();
    }
}
