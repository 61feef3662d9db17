//! Address arithmetic: both families as `u128` (IPv4 in the low 32 bits).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(crate) fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Inverse of [`to_u128`]; for IPv4 only the low 32 bits are used.
pub(crate) fn from_u128(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from((v & 0xffff_ffff) as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// `ip + 1`, wrapping inside its family.
pub(crate) fn next(ip: IpAddr) -> IpAddr {
    let v4 = ip.is_ipv4();
    let max = if v4 { u128::from(u32::MAX) } else { u128::MAX };
    let n = to_u128(ip);
    from_u128(if n == max { 0 } else { n + 1 }, v4)
}

pub(crate) fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

pub(crate) fn family_name(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_wraps_and_round_trips() {
        let a: IpAddr = "10.0.0.255".parse().unwrap();
        assert_eq!(next(a), "10.0.1.0".parse::<IpAddr>().unwrap());
        let b: IpAddr = "255.255.255.255".parse().unwrap();
        assert_eq!(next(b), "0.0.0.0".parse::<IpAddr>().unwrap());
        let c: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert_eq!(next(c), "2001:db8::1:0".parse::<IpAddr>().unwrap());
        for s in ["192.0.2.7", "2001:db8:1::24:19ff:fee1:c44a"] {
            let ip: IpAddr = s.parse().unwrap();
            assert_eq!(from_u128(to_u128(ip), ip.is_ipv4()), ip);
        }
    }
}
