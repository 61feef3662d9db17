//! CNI specification versions this suite speaks, and what each allows.

use std::fmt;

/// A CNI specification version we implement.
///
/// 0.1.0 and 0.2.0 (the `ip4`/`ip6` result shape) are refused with code 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpecVersion {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl SpecVersion {
    /// Every version we advertise, oldest first.
    pub const ALL: [SpecVersion; 5] = [
        SpecVersion::V0_3_0,
        SpecVersion::V0_3_1,
        SpecVersion::V0_4_0,
        SpecVersion::V1_0_0,
        SpecVersion::V1_1_0,
    ];

    /// The newest version, reported by VERSION.
    pub const LATEST: SpecVersion = SpecVersion::V1_1_0;

    pub fn as_str(self) -> &'static str {
        match self {
            SpecVersion::V0_3_0 => "0.3.0",
            SpecVersion::V0_3_1 => "0.3.1",
            SpecVersion::V0_4_0 => "0.4.0",
            SpecVersion::V1_0_0 => "1.0.0",
            SpecVersion::V1_1_0 => "1.1.0",
        }
    }

    /// Parses an exact version string; anything else is unsupported.
    pub fn parse(s: &str) -> Option<SpecVersion> {
        SpecVersion::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// CHECK exists from 0.4.0 on.
    pub fn allows_check(self) -> bool {
        self >= SpecVersion::V0_4_0
    }

    /// GC and STATUS exist from 1.1.0 on.
    pub fn allows_gc_and_status(self) -> bool {
        self >= SpecVersion::V1_1_0
    }

    /// Results below 1.0.0 carry `ips[].version`.
    pub fn has_ip_version_field(self) -> bool {
        self < SpecVersion::V1_0_0
    }

    /// Interface `mtu`/`socketPath`/`pciID` and route `mtu`/`advmss`/`priority`/`table`/`scope`.
    pub fn has_1_1_fields(self) -> bool {
        self >= SpecVersion::V1_1_0
    }

    /// The advertised versions as strings, oldest first.
    pub fn supported_strings() -> Vec<&'static str> {
        SpecVersion::ALL.iter().map(|v| v.as_str()).collect()
    }
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_every_version() {
        for v in SpecVersion::ALL {
            assert_eq!(SpecVersion::parse(v.as_str()), Some(v));
        }
        for bad in ["0.1.0", "0.2.0", "1.0", "", "1.2.0", " 1.0.0"] {
            assert_eq!(SpecVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn verb_and_field_gates() {
        use SpecVersion::*;
        assert!(!V0_3_1.allows_check());
        assert!(V0_4_0.allows_check());
        assert!(!V1_0_0.allows_gc_and_status());
        assert!(V1_1_0.allows_gc_and_status());
        assert!(V0_4_0.has_ip_version_field());
        assert!(!V1_0_0.has_ip_version_field());
        assert!(!V1_0_0.has_1_1_fields());
    }
}
