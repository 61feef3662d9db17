//! Ranges and range sets: host-local's defaults and validation, typed.
//!
//! A [`Range`] is a subnet with an inclusive allocation window `start..=end` and a gateway. A
//! [`RangeSet`] is a non-empty list of non-overlapping ranges of one address family; one address
//! is allocated per set (dual-stack = one IPv4 set + one IPv6 set).
//!
//! Defaults and checks are host-local's (`Range.Canonicalize`, `RangeSet.Canonicalize`):
//! the subnet has no host bits and room for addresses (prefix at most /30 for IPv4, /126 for
//! IPv6); the gateway defaults to network+1; `rangeStart` defaults to network+1, `rangeEnd` to
//! broadcast−1 (IPv4) or the last address (IPv6); both must lie in the subnet with start ≤ end.
//! Like host-local, an explicit gateway may lie outside the subnet (it is then reported as the
//! gateway and network+1 is handed out like any other address; see
//! [`Range::gateway_in_subnet`], which a dialect can use to warn or refuse); unlike host-local,
//! it must be of the subnet's family. On top of host-local, the network address and the IPv4
//! broadcast address are never handed out even when an explicit `rangeStart`/`rangeEnd`
//! includes them.

use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::addr::{family_name, from_u128, next, same_family, to_u128};
use crate::error::Error;

/// One validated range: `subnet`, inclusive window `start..=end`, `gateway`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Range {
    subnet: IpNetwork,
    start: IpAddr,
    end: IpAddr,
    gateway: IpAddr,
}

/// The names used for a range's four fields in error messages.
///
/// host-local's dialect uses [`FieldLabels::at`]`("ranges[0][1]")`; another dialect names its
/// own keys, e.g. ecs-ipam's `ipv4-subnet` / `ipv4-gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLabels {
    /// Label of the subnet, e.g. `ranges[0][1].subnet`.
    pub subnet: String,
    /// Label of the window start, e.g. `ranges[0][1].rangeStart`.
    pub range_start: String,
    /// Label of the window end, e.g. `ranges[0][1].rangeEnd`.
    pub range_end: String,
    /// Label of the gateway, e.g. `ranges[0][1].gateway`.
    pub gateway: String,
}

impl FieldLabels {
    /// host-local's key names under `path`: `{path}.subnet`, `{path}.rangeStart`, ...;
    /// the bare key names when `path` is empty.
    pub fn at(path: &str) -> FieldLabels {
        let key = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        FieldLabels {
            subnet: key("subnet"),
            range_start: key("rangeStart"),
            range_end: key("rangeEnd"),
            gateway: key("gateway"),
        }
    }
}

impl Default for FieldLabels {
    fn default() -> Self {
        FieldLabels::at("")
    }
}

/// A range as written in a configuration (all strings), validated into a [`Range`] by
/// [`RangeSpec::validate`] or, for a whole `ranges` list, by [`validate_sets`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSpec {
    /// CIDR, e.g. `10.0.0.0/24`.
    pub subnet: String,
    /// First allocatable address (default network+1).
    pub range_start: Option<String>,
    /// Last allocatable address (default broadcast−1 for IPv4, last address for IPv6).
    pub range_end: Option<String>,
    /// Gateway (default network+1).
    pub gateway: Option<String>,
}

impl RangeSpec {
    /// Parses and validates this range; errors name the field with `labels`.
    pub fn validate(&self, labels: &FieldLabels) -> Result<Range, Error> {
        if !self.subnet.contains('/') {
            return Err(Error::range(
                &labels.subnet,
                &self.subnet,
                "is not in CIDR notation (address/prefix)",
            ));
        }
        let subnet: IpNetwork = self.subnet.parse().map_err(|e| {
            Error::range(
                &labels.subnet,
                &self.subnet,
                format!("is not a valid CIDR ({e})"),
            )
        })?;
        let ip = |label: &str, v: &Option<String>| -> Result<Option<IpAddr>, Error> {
            match v {
                None => Ok(None),
                Some(s) => s
                    .parse::<IpAddr>()
                    .map(Some)
                    .map_err(|_| Error::range(label, s, "is not an IP address")),
            }
        };
        let start = ip(&labels.range_start, &self.range_start)?;
        let end = ip(&labels.range_end, &self.range_end)?;
        let gateway = ip(&labels.gateway, &self.gateway)?;
        Range::with_labels(subnet, start, end, gateway, labels)
    }
}

impl Range {
    /// Validates a range with host-local's defaults; errors use the bare key names
    /// (`subnet`, `rangeStart`, `rangeEnd`, `gateway`).
    pub fn new(
        subnet: IpNetwork,
        start: Option<IpAddr>,
        end: Option<IpAddr>,
        gateway: Option<IpAddr>,
    ) -> Result<Range, Error> {
        Range::with_labels(subnet, start, end, gateway, &FieldLabels::default())
    }

    /// Like [`Range::new`], naming fields with `labels` in errors.
    pub fn with_labels(
        subnet: IpNetwork,
        start: Option<IpAddr>,
        end: Option<IpAddr>,
        gateway: Option<IpAddr>,
        labels: &FieldLabels,
    ) -> Result<Range, Error> {
        let v4 = subnet.is_ipv4();
        let max_prefix = if v4 { 30 } else { 126 };
        if subnet.prefix() > max_prefix {
            return Err(Error::range(
                &labels.subnet,
                subnet,
                format!(
                    "is too small to allocate from (the prefix must be /{max_prefix} or shorter)"
                ),
            ));
        }
        let network = subnet.network();
        if subnet.ip() != network {
            return Err(Error::range(
                &labels.subnet,
                subnet,
                format!(
                    "has host bits set; for a /{} the network address is {network}",
                    subnet.prefix()
                ),
            ));
        }
        let subnet = IpNetwork::new(network, subnet.prefix()).map_err(|e| {
            Error::range(&labels.subnet, subnet, format!("is not a valid CIDR ({e})"))
        })?;
        let same_fam = |label: &str, ip: IpAddr| -> Result<IpAddr, Error> {
            if !same_family(ip, network) {
                return Err(Error::range(
                    label,
                    ip,
                    format!(
                        "is an {} address but subnet {subnet} is {}",
                        family_name(ip),
                        family_name(network)
                    ),
                ));
            }
            Ok(ip)
        };
        let inside = |label: &str, ip: IpAddr| -> Result<IpAddr, Error> {
            same_fam(label, ip)?;
            if !subnet.contains(ip) {
                return Err(Error::range(
                    label,
                    ip,
                    format!("is outside subnet {subnet}"),
                ));
            }
            Ok(ip)
        };
        let first = next(network);
        // host-local accepts a gateway outside the subnet (Range.Canonicalize never checks it)
        let gateway = match gateway {
            Some(g) => same_fam(&labels.gateway, g)?,
            None => first,
        };
        let start = match start {
            Some(s) => inside(&labels.range_start, s)?,
            None => first,
        };
        let end = match end {
            Some(e) => inside(&labels.range_end, e)?,
            None => last_default(subnet),
        };
        if to_u128(start) > to_u128(end) {
            return Err(Error::range(
                &labels.range_start,
                start,
                format!("is after {} {end}", labels.range_end),
            ));
        }
        Ok(Range {
            subnet,
            start,
            end,
            gateway,
        })
    }

    /// The subnet (network address / prefix), used for the prefix of leased addresses.
    pub fn subnet(&self) -> IpNetwork {
        self.subnet
    }

    /// First address of the allocation window.
    pub fn start(&self) -> IpAddr {
        self.start
    }

    /// Last address of the allocation window (inclusive).
    pub fn end(&self) -> IpAddr {
        self.end
    }

    /// The gateway (never allocated).
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// Whether the gateway lies inside the subnet. host-local accepts one outside it (and so do
    /// we, in its dialect, with a warning); ecs-ipam refuses it.
    pub fn gateway_in_subnet(&self) -> bool {
        self.subnet.contains(self.gateway)
    }

    /// Whether this is an IPv4 range.
    pub fn is_ipv4(&self) -> bool {
        self.subnet.is_ipv4()
    }

    /// Whether `ip` lies in `start..=end` (same family). host-local's `Range.Contains`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        same_family(ip, self.start) && {
            let n = to_u128(ip);
            to_u128(self.start) <= n && n <= to_u128(self.end)
        }
    }

    /// Whether the windows of two ranges of the same family share an address.
    pub fn overlaps(&self, other: &Range) -> bool {
        same_family(self.start, other.start)
            && to_u128(self.start) <= to_u128(other.end)
            && to_u128(other.start) <= to_u128(self.end)
    }

    /// Why `ip` may never be allocated from this range: `Some("gateway" | "network" |
    /// "broadcast")`, or `None`.
    pub fn reserved_kind(&self, ip: IpAddr) -> Option<&'static str> {
        if ip == self.gateway {
            Some("gateway")
        } else if ip == self.subnet.network() {
            Some("network")
        } else if self.is_ipv4() && ip == self.subnet.broadcast() {
            Some("broadcast")
        } else {
            None
        }
    }

    /// Number of allocatable addresses: the window minus gateway, network and IPv4 broadcast.
    pub fn capacity(&self) -> u128 {
        let size = (to_u128(self.end) - to_u128(self.start)).saturating_add(1);
        let mut special = vec![self.gateway, self.subnet.network()];
        if self.is_ipv4() {
            special.push(self.subnet.broadcast());
        }
        special.sort();
        special.dedup();
        let inside = special.iter().filter(|ip| self.contains(**ip)).count();
        size - inside as u128
    }
}

/// `start-end`, as host-local prints a range.
impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

fn last_default(subnet: IpNetwork) -> IpAddr {
    let last = subnet.broadcast();
    if subnet.is_ipv4() {
        from_u128(to_u128(last) - 1, true)
    } else {
        last
    }
}

/// A validated, non-empty list of non-overlapping ranges of one family. One address is
/// allocated per set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeSet(Vec<Range>);

impl RangeSet {
    /// Checks that `ranges` is non-empty, of one family and without overlaps; errors call the
    /// set `ranges`.
    pub fn new(ranges: Vec<Range>) -> Result<RangeSet, Error> {
        check_set(&ranges, "ranges")?;
        Ok(RangeSet(ranges))
    }

    /// The ranges, in allocation order.
    pub fn ranges(&self) -> &[Range] {
        &self.0
    }

    /// Whether this set is IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.0.first().is_some_and(Range::is_ipv4)
    }

    /// Whether some range's window contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.range_for(ip).is_some()
    }

    /// The range whose window contains `ip`.
    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.0.iter().find(|r| r.contains(ip))
    }

    /// Whether any range of `self` overlaps any range of `other`.
    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.0.iter().any(|a| other.0.iter().any(|b| a.overlaps(b)))
    }

    /// Number of allocatable addresses in the whole set.
    pub fn capacity(&self) -> u128 {
        self.0
            .iter()
            .fold(0u128, |acc, r| acc.saturating_add(r.capacity()))
    }

    /// Allocation candidates in host-local's round-robin order: from the address after
    /// `last_reserved` (when it lies in a range of the set) or from the first range's start,
    /// across the ranges in order, wrapping, for one full lap, skipping reserved addresses.
    pub(crate) fn candidates(&self, last_reserved: Option<IpAddr>) -> Candidates<'_> {
        let total = self.0.iter().fold(0u128, |acc, r| {
            acc.saturating_add((to_u128(r.end) - to_u128(r.start)).saturating_add(1))
        });
        let mut c = Candidates {
            set: self,
            range: 0,
            cur: self.0.first().map(|r| to_u128(r.start)).unwrap_or(0),
            remaining: total,
        };
        if let Some(last) = last_reserved
            && let Some(idx) = self.0.iter().position(|r| r.contains(last))
        {
            c.range = idx;
            c.cur = to_u128(last);
            c.advance();
        }
        c
    }
}

/// `start-end,start-end`, as host-local prints a range set.
impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Iterator over allocation candidates of a set; see [`RangeSet::candidates`].
pub(crate) struct Candidates<'a> {
    set: &'a RangeSet,
    range: usize,
    cur: u128,
    /// Positions (including reserved ones) left in the lap.
    remaining: u128,
}

impl Candidates<'_> {
    /// Moves to the next position: the next address, or the next range's start after an end.
    fn advance(&mut self) {
        let ranges = &self.set.0;
        let Some(r) = ranges.get(self.range) else {
            return;
        };
        if self.cur >= to_u128(r.end) {
            self.range = (self.range + 1) % ranges.len();
            self.cur = ranges
                .get(self.range)
                .map(|r| to_u128(r.start))
                .unwrap_or(0);
        } else {
            self.cur += 1;
        }
    }
}

impl Iterator for Candidates<'_> {
    /// The candidate and the index of its range in the set.
    type Item = (IpAddr, usize);

    fn next(&mut self) -> Option<Self::Item> {
        while self.remaining > 0 {
            let r = self.set.0.get(self.range)?;
            let ip = from_u128(self.cur, r.is_ipv4());
            let idx = self.range;
            self.remaining -= 1;
            self.advance();
            if r.reserved_kind(ip).is_none() {
                return Some((ip, idx));
            }
        }
        None
    }
}

/// Set-level checks: non-empty, one family, no overlaps. `path` names the set (`ranges[0]`).
fn check_set(ranges: &[Range], path: &str) -> Result<(), Error> {
    let Some(first) = ranges.first() else {
        return Err(Error::range(path, "[]", "is an empty range set"));
    };
    for (j, r) in ranges.iter().enumerate().skip(1) {
        if r.is_ipv4() != first.is_ipv4() {
            return Err(Error::range(
                &format!("{path}[{j}].subnet"),
                r.subnet,
                format!(
                    "is {} but {path}[0].subnet {} is {}; a range set holds one address family",
                    family_name(r.start),
                    first.subnet,
                    family_name(first.start)
                ),
            ));
        }
    }
    for (j, a) in ranges.iter().enumerate() {
        for (k, b) in ranges.iter().enumerate().skip(j + 1) {
            if a.overlaps(b) {
                return Err(Error::range(
                    &format!("{path}[{k}]"),
                    b,
                    format!("overlaps {path}[{j}] {a}"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks that no two sets overlap; `field` names the list (`ranges`).
pub fn check_sets(sets: &[RangeSet], field: &str) -> Result<(), Error> {
    for (i, a) in sets.iter().enumerate() {
        for (k, b) in sets.iter().enumerate().skip(i + 1) {
            for ra in &a.0 {
                if let Some(rb) = b.0.iter().find(|rb| ra.overlaps(rb)) {
                    return Err(Error::range(
                        &format!("{field}[{k}]"),
                        b,
                        format!("overlaps {field}[{i}] {a} (ranges {rb} and {ra})"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Validates host-local's `ranges` list (a list of range sets, each a list of ranges) with
/// host-local's defaults. Errors name the key as `{field}[i][j].rangeStart` etc., e.g.
/// `ranges[0][1].rangeStart 10.0.1.5 is outside subnet 10.0.0.0/24`.
pub fn validate_sets(raw: &[Vec<RangeSpec>], field: &str) -> Result<Vec<RangeSet>, Error> {
    if raw.is_empty() {
        return Err(Error::range(field, "[]", "has no range set"));
    }
    let mut sets = Vec::with_capacity(raw.len());
    for (i, specs) in raw.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let ranges = specs
            .iter()
            .enumerate()
            .map(|(j, s)| s.validate(&FieldLabels::at(&format!("{path}[{j}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        check_set(&ranges, &path)?;
        sets.push(RangeSet(ranges));
    }
    check_sets(&sets, field)?;
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn spec(subnet: &str, start: Option<&str>, end: Option<&str>, gw: Option<&str>) -> RangeSpec {
        RangeSpec {
            subnet: subnet.into(),
            range_start: start.map(Into::into),
            range_end: end.map(Into::into),
            gateway: gw.map(Into::into),
        }
    }

    fn range(subnet: &str) -> Range {
        Range::new(net(subnet), None, None, None).unwrap()
    }

    fn err(r: Result<Range, Error>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn defaults_for_a_clean_v4_prefix() {
        let r = range("192.0.2.0/24");
        assert_eq!(r.subnet(), net("192.0.2.0/24"));
        assert_eq!(r.start(), ip("192.0.2.1"));
        assert_eq!(r.end(), ip("192.0.2.254"));
        assert_eq!(r.gateway(), ip("192.0.2.1"));
        assert_eq!(r.to_string(), "192.0.2.1-192.0.2.254");
        // .1 is the gateway; .2-.254 remain.
        assert_eq!(r.capacity(), 253);
    }

    #[test]
    fn defaults_for_smaller_v4_subnets() {
        let r = range("192.0.2.0/25");
        assert_eq!((r.start(), r.end()), (ip("192.0.2.1"), ip("192.0.2.126")));
        let r = range("10.0.0.0/30");
        assert_eq!(
            (r.start(), r.end(), r.gateway()),
            (ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.1"))
        );
        assert_eq!(r.capacity(), 1);
        let r = range("169.254.172.0/22");
        assert_eq!(r.end(), ip("169.254.175.254"));
        assert_eq!(r.capacity(), 1021);
    }

    #[test]
    fn defaults_for_v6() {
        let r = range("2001:DB8:1::/64");
        assert_eq!(r.start(), ip("2001:db8:1::1"));
        assert_eq!(r.end(), ip("2001:db8:1::ffff:ffff:ffff:ffff"));
        assert_eq!(r.gateway(), ip("2001:db8:1::1"));
        let r = range("fd00::/126");
        assert_eq!((r.start(), r.end()), (ip("fd00::1"), ip("fd00::3")));
        // ::1 gateway, ::2 and ::3 allocatable (v6 has no broadcast).
        assert_eq!(r.capacity(), 2);
    }

    #[test]
    fn host_bits_rejected() {
        let cases = [
            (
                "192.0.2.12/24",
                "subnet 192.0.2.12/24 has host bits set; for a /24 the network address is 192.0.2.0",
            ),
            (
                "192.168.127.0/23",
                "subnet 192.168.127.0/23 has host bits set; for a /23 the network address is 192.168.126.0",
            ),
            (
                "2001:DB8:1::24:19ff:fee1:c44a/64",
                "subnet 2001:db8:1:0:24:19ff:fee1:c44a/64 has host bits set; for a /64 the network address is 2001:db8:1::",
            ),
            (
                "2001:DB8:24:19ff::/63",
                "subnet 2001:db8:24:19ff::/63 has host bits set; for a /63 the network address is 2001:db8:24:19fe::",
            ),
        ];
        for (subnet, want) in cases {
            assert_eq!(err(Range::new(net(subnet), None, None, None)), want);
        }
    }

    #[test]
    fn too_small_networks_rejected() {
        for s in ["192.0.2.0/31", "192.0.2.1/32", "fd00::/127", "fd00::1/128"] {
            let e = err(Range::new(net(s), None, None, None));
            assert!(e.contains("is too small to allocate from"), "{s}: {e}");
        }
        assert_eq!(
            err(Range::new(net("192.0.2.0/31"), None, None, None)),
            "subnet 192.0.2.0/31 is too small to allocate from (the prefix must be /30 or shorter)"
        );
    }

    #[test]
    fn bad_start_end_and_gateway_rejected() {
        let l = FieldLabels::at("ranges[0][0]");
        let cases = [
            (
                spec("192.0.2.0/24", Some("192.0.3.0"), None, None),
                "ranges[0][0].rangeStart 192.0.3.0 is outside subnet 192.0.2.0/24",
            ),
            (
                spec("192.0.2.0/24", None, Some("192.0.4.0"), None),
                "ranges[0][0].rangeEnd 192.0.4.0 is outside subnet 192.0.2.0/24",
            ),
            (
                spec("192.0.2.0/24", Some("192.0.2.50"), Some("192.0.2.40"), None),
                "ranges[0][0].rangeStart 192.0.2.50 is after ranges[0][0].rangeEnd 192.0.2.40",
            ),
            (
                spec("10.0.0.0/24", None, None, Some("2001:db8::1")),
                "ranges[0][0].gateway 2001:db8::1 is an IPv6 address but subnet 10.0.0.0/24 is IPv4",
            ),
            (
                spec("10.0.0.0", None, None, None),
                "ranges[0][0].subnet 10.0.0.0 is not in CIDR notation (address/prefix)",
            ),
            (
                spec("10.0.0.0/24", Some("10.0.0.x"), None, None),
                "ranges[0][0].rangeStart 10.0.0.x is not an IP address",
            ),
        ];
        for (s, want) in cases {
            assert_eq!(err(s.validate(&l)), want);
        }
    }

    /// host-local hands out network+1 and reports the foreign gateway (checked against Debian's
    /// Go host-local 1.1.1: `10.77.0.0/29` with gateway `10.99.0.1` gives `.1` .. `.6`).
    #[test]
    fn gateway_outside_the_subnet_is_accepted() {
        let r = spec("10.77.0.0/29", None, None, Some("10.99.0.1"))
            .validate(&FieldLabels::at("ranges[0][0]"))
            .unwrap();
        assert!(!r.gateway_in_subnet());
        assert_eq!(
            (r.start(), r.end(), r.gateway()),
            (ip("10.77.0.1"), ip("10.77.0.6"), ip("10.99.0.1"))
        );
        assert_eq!(r.capacity(), 6);
        let set = RangeSet::new(vec![r]).unwrap();
        assert_eq!(
            order(&set, None),
            [
                "10.77.0.1",
                "10.77.0.2",
                "10.77.0.3",
                "10.77.0.4",
                "10.77.0.5",
                "10.77.0.6"
            ]
        );
        let r6 = spec("fd00:77::/125", None, None, Some("fd00:99::1"))
            .validate(&FieldLabels::default())
            .unwrap();
        assert!(!r6.gateway_in_subnet());
        assert_eq!(r6.capacity(), 7);
        assert!(range("10.0.0.0/24").gateway_in_subnet());
    }

    #[test]
    fn all_fields_parsed() {
        let r = spec(
            "192.0.2.0/24",
            Some("192.0.2.40"),
            Some("192.0.2.50"),
            Some("192.0.2.254"),
        )
        .validate(&FieldLabels::default())
        .unwrap();
        assert_eq!(
            (r.subnet(), r.start(), r.end(), r.gateway()),
            (
                net("192.0.2.0/24"),
                ip("192.0.2.40"),
                ip("192.0.2.50"),
                ip("192.0.2.254")
            )
        );
        // Gateway outside the window: all 11 addresses are allocatable.
        assert_eq!(r.capacity(), 11);
    }

    #[test]
    fn contains_v4_and_v6() {
        let r = Range::new(
            net("192.0.2.0/24"),
            Some(ip("192.0.2.40")),
            Some(ip("192.0.2.50")),
            Some(ip("192.0.2.254")),
        )
        .unwrap();
        assert!(!r.contains(ip("192.0.3.0")));
        assert!(!r.contains(ip("192.0.2.39")));
        assert!(r.contains(ip("192.0.2.40")));
        assert!(r.contains(ip("192.0.2.50")));
        assert!(!r.contains(ip("192.0.2.51")));
        assert!(!r.contains(ip("::ffff:192.0.2.45")));
        let r = Range::new(
            net("2001:DB8:1::/64"),
            Some(ip("2001:db8:1::40")),
            Some(ip("2001:db8:1::50")),
            None,
        )
        .unwrap();
        assert!(!r.contains(ip("2001:db8:2::")));
        assert!(!r.contains(ip("2001:db8:1::39")));
        assert!(r.contains(ip("2001:db8:1::40")));
        assert!(r.contains(ip("2001:db8:1::50")));
        assert!(!r.contains(ip("2001:db8:1::51")));
    }

    #[test]
    fn overlap_table() {
        let with = |s: &str, start: Option<&str>, end: Option<&str>| {
            Range::new(net(s), start.map(ip), end.map(ip), None).unwrap()
        };
        let cases = [
            (
                "non-overlapping",
                range("10.0.0.0/24"),
                range("10.0.1.0/24"),
                false,
            ),
            (
                "different families",
                range("0.0.0.0/24"),
                range("::/24"),
                false,
            ),
            (
                "identical",
                range("10.0.0.0/24"),
                range("10.0.0.0/24"),
                true,
            ),
            (
                "containing",
                range("10.0.0.0/20"),
                range("10.0.1.0/24"),
                true,
            ),
            (
                "same subnet, disjoint windows",
                with("10.0.0.0/24", None, Some("10.0.0.127")),
                with("10.0.0.0/24", Some("10.0.0.128"), None),
                false,
            ),
            (
                "same subnet, windows share .127",
                with("10.0.0.0/24", None, Some("10.0.0.127")),
                with("10.0.0.0/24", Some("10.0.0.127"), None),
                true,
            ),
            (
                "different subnets, overlapping windows",
                with("10.0.0.0/24", Some("10.0.0.1"), None),
                with("10.0.0.0/20", Some("10.0.0.2"), None),
                true,
            ),
            ("v6 identical", range("fd00::/64"), range("fd00::/64"), true),
            (
                "v6 disjoint",
                range("fd00::/64"),
                range("fd00:0:0:1::/64"),
                false,
            ),
        ];
        for (name, a, b, want) in cases {
            assert_eq!(a.overlaps(&b), want, "{name}");
            assert_eq!(b.overlaps(&a), want, "{name} (commuted)");
        }
    }

    #[test]
    fn validate_sets_checks_families_and_overlaps() {
        let ok = validate_sets(
            &[
                vec![spec("10.0.0.0/24", None, None, None)],
                vec![spec("fd00::/64", None, None, None)],
            ],
            "ranges",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok[0].is_ipv4() && !ok[1].is_ipv4());

        let e = validate_sets(
            &[vec![
                spec("10.0.0.0/24", None, None, None),
                spec("10.0.1.0/24", Some("10.0.1.5"), None, None),
            ]],
            "ranges",
        )
        .unwrap();
        assert_eq!(e[0].to_string(), "10.0.0.1-10.0.0.254,10.0.1.5-10.0.1.254");

        let cases: [(Vec<Vec<RangeSpec>>, &str); 6] = [
            (
                vec![vec![
                    spec("10.0.0.0/24", None, None, None),
                    spec("10.0.1.0/24", Some("10.0.2.5"), None, None),
                ]],
                "ranges[0][1].rangeStart 10.0.2.5 is outside subnet 10.0.1.0/24",
            ),
            (
                vec![vec![
                    spec("10.0.0.0/24", None, None, None),
                    spec("fd00::/64", None, None, None),
                ]],
                "ranges[0][1].subnet fd00::/64 is IPv6 but ranges[0][0].subnet 10.0.0.0/24 is IPv4; a range set holds one address family",
            ),
            (
                vec![vec![
                    spec("10.0.0.0/24", None, None, None),
                    spec("10.0.0.0/20", Some("10.0.0.100"), None, None),
                ]],
                "ranges[0][1] 10.0.0.100-10.0.15.254 overlaps ranges[0][0] 10.0.0.1-10.0.0.254",
            ),
            (
                vec![
                    vec![spec("10.0.0.0/24", None, None, None)],
                    vec![spec("10.0.0.0/24", Some("10.0.0.200"), None, None)],
                ],
                "ranges[1] 10.0.0.200-10.0.0.254 overlaps ranges[0] 10.0.0.1-10.0.0.254 (ranges 10.0.0.200-10.0.0.254 and 10.0.0.1-10.0.0.254)",
            ),
            (vec![vec![]], "ranges[0] [] is an empty range set"),
            (vec![], "ranges [] has no range set"),
        ];
        for (raw, want) in cases {
            assert_eq!(validate_sets(&raw, "ranges").unwrap_err().to_string(), want);
        }
        // Two IPv4 sets that do not overlap are fine (host-local allows them from 0.3.0 on).
        assert!(
            validate_sets(
                &[
                    vec![spec("10.0.0.0/24", None, None, None)],
                    vec![spec("10.0.1.0/24", None, None, None)],
                ],
                "ranges"
            )
            .is_ok()
        );
    }

    fn order(set: &RangeSet, last: Option<&str>) -> Vec<String> {
        set.candidates(last.map(ip))
            .map(|(a, _)| a.to_string())
            .collect()
    }

    #[test]
    fn candidates_loop_from_start_middle_and_end() {
        let set = RangeSet::new(vec![range("192.168.1.0/29")]).unwrap();
        let all = [
            "192.168.1.2",
            "192.168.1.3",
            "192.168.1.4",
            "192.168.1.5",
            "192.168.1.6",
        ];
        assert_eq!(order(&set, None), all);
        // From the end: wraps to the start; the last reserved one comes last.
        assert_eq!(order(&set, Some("192.168.1.6")), all);
        assert_eq!(
            order(&set, Some("192.168.1.3")),
            [
                "192.168.1.4",
                "192.168.1.5",
                "192.168.1.6",
                "192.168.1.2",
                "192.168.1.3"
            ]
        );
        // Out of every range: start from the beginning.
        assert_eq!(order(&set, Some("10.0.0.128")), all);
    }

    #[test]
    fn candidates_cross_ranges_and_skip_network_and_broadcast() {
        let set = RangeSet::new(vec![
            Range::new(
                net("192.168.1.0/29"),
                Some(ip("192.168.1.0")),
                Some(ip("192.168.1.3")),
                None,
            )
            .unwrap(),
            Range::new(
                net("192.168.2.0/29"),
                Some(ip("192.168.2.4")),
                Some(ip("192.168.2.7")),
                None,
            )
            .unwrap(),
        ])
        .unwrap();
        // Last reserved at the end of range 0 → the first address of range 1 comes first.
        assert_eq!(
            order(&set, Some("192.168.1.3")),
            [
                "192.168.2.4",
                "192.168.2.5",
                "192.168.2.6",
                "192.168.1.2",
                "192.168.1.3"
            ]
        );
        assert_eq!(set.capacity(), 5);
        let (_, idx) = set.candidates(Some(ip("192.168.1.3"))).next().unwrap();
        assert_eq!(idx, 1);
    }
}
