//! Ethernet MAC addresses: parsing, formatting, random locally administered ones.

use std::fmt;
use std::str::FromStr;

use crate::random_u64;

/// A 48-bit Ethernet (EUI-48) address. Displays in lowercase colon form, `0a:1b:2c:3d:4e:5f`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

/// Why a string is not the MAC wanted; displays as the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MacProblem {
    /// Not six two-digit hex groups separated by `:` (or all by `-`).
    #[error("is not a MAC address (expected aa:bb:cc:dd:ee:ff)")]
    Malformed,
    /// `00:00:00:00:00:00`, where a link address is wanted.
    #[error("is the all-zero MAC address")]
    Zero,
    /// The group bit is set (multicast or broadcast), where a link address is wanted.
    #[error("is a multicast MAC address")]
    Multicast,
}

/// A string that is not the MAC wanted: `"0a:1b" is not a MAC address (...)`. Callers with
/// their own wording use [`InvalidMac::problem`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} {problem}")]
pub struct InvalidMac {
    /// The rejected string.
    pub value: String,
    /// What is wrong with it.
    pub problem: MacProblem,
}

impl Mac {
    /// `00:00:00:00:00:00`, e.g. the address of `lo`.
    pub const ZERO: Mac = Mac([0; 6]);

    /// The address of these six bytes.
    pub const fn new(bytes: [u8; 6]) -> Mac {
        Mac(bytes)
    }

    /// The six bytes.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, any case. Any address is accepted
    /// (use [`Mac::parse_unicast`] for a link address).
    pub fn parse(s: &str) -> Result<Mac, InvalidMac> {
        Mac::parse_bytes(s).map(Mac).ok_or_else(|| InvalidMac {
            value: s.to_string(),
            problem: MacProblem::Malformed,
        })
    }

    /// [`Mac::parse`], then refuses what cannot be a link's own address: all zeros, or a
    /// multicast/broadcast address.
    pub fn parse_unicast(s: &str) -> Result<Mac, InvalidMac> {
        let mac = Mac::parse(s)?;
        let problem = if mac.is_zero() {
            MacProblem::Zero
        } else if mac.is_multicast() {
            MacProblem::Multicast
        } else {
            return Ok(mac);
        };
        Err(InvalidMac {
            value: s.to_string(),
            problem,
        })
    }

    fn parse_bytes(s: &str) -> Option<[u8; 6]> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut mac = [0u8; 6];
        let mut parts = s.split(sep);
        for byte in &mut mac {
            let part = parts.next()?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(mac)
    }

    /// A random, locally administered, unicast address (`x2:`, `x6:`, `xa:` or `xe:` first).
    pub fn random_local() -> Mac {
        let r = random_u64().to_le_bytes();
        Mac([(r[0] & 0xfe) | 0x02, r[1], r[2], r[3], r[4], r[5]])
    }

    /// All six bytes zero.
    pub fn is_zero(self) -> bool {
        self.0 == [0; 6]
    }

    /// The group bit is set (multicast, or broadcast).
    pub fn is_multicast(self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The locally administered bit is set.
    pub fn is_local(self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Mac {
    type Err = InvalidMac;
    fn from_str(s: &str) -> Result<Mac, InvalidMac> {
        Mac::parse(s)
    }
}

impl From<[u8; 6]> for Mac {
    fn from(bytes: [u8; 6]) -> Mac {
        Mac(bytes)
    }
}

impl From<Mac> for [u8; 6] {
    fn from(mac: Mac) -> [u8; 6] {
        mac.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let mac = Mac::parse("0A:1b:2C:3d:4E:5f").unwrap();
        assert_eq!(mac.octets(), [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]);
        assert_eq!(mac.to_string(), "0a:1b:2c:3d:4e:5f");
        assert_eq!(format!("{mac:?}"), "0a:1b:2c:3d:4e:5f");
        assert_eq!(Mac::parse("0a-1b-2c-3d-4e-5f"), Ok(mac));
        assert_eq!("0a:1b:2c:3d:4e:5f".parse::<Mac>(), Ok(mac));
        for bad in [
            "",
            "0a:1b:2c:3d:4e",
            "0a:1b:2c:3d:4e:5f:60",
            "0a:1b:2c:3d:4e:5",
            "0a:1b:2c:3d:4e:zz",
            "0a:1b-2c:3d:4e:5f",
            "+a:1b:2c:3d:4e:5f",
        ] {
            let e = Mac::parse(bad).unwrap_err();
            assert_eq!(e.problem, MacProblem::Malformed, "{bad}");
            assert_eq!(e.value, bad);
        }
        assert_eq!(
            Mac::parse("nope").unwrap_err().to_string(),
            "\"nope\" is not a MAC address (expected aa:bb:cc:dd:ee:ff)"
        );
    }

    #[test]
    fn unicast() {
        assert!(Mac::parse_unicast("0a:00:00:00:00:01").is_ok());
        let zero = Mac::parse_unicast("00:00:00:00:00:00").unwrap_err();
        assert_eq!(zero.problem, MacProblem::Zero);
        for multi in [
            "01:00:5e:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "03:00:00:00:00:00",
        ] {
            let e = Mac::parse_unicast(multi).unwrap_err();
            assert_eq!(e.problem, MacProblem::Multicast, "{multi}");
        }
        // parse() takes any address
        assert!(Mac::parse("ff:ff:ff:ff:ff:ff").unwrap().is_multicast());
        assert!(Mac::ZERO.is_zero());
    }

    #[test]
    fn random_ones_are_local_unicast_and_differ() {
        let macs: Vec<Mac> = (0..64).map(|_| Mac::random_local()).collect();
        for m in &macs {
            assert!(m.is_local() && !m.is_multicast() && !m.is_zero(), "{m}");
        }
        let distinct: std::collections::HashSet<_> = macs.iter().collect();
        assert!(distinct.len() > 60, "{macs:?}");
    }
}
