//! Lease owners and the lease-file content format.

use std::fmt;

use crate::error::Error;

/// Who holds a lease: an opaque `id` (a container ID for host-local, an ENI MAC or netns path
/// for ecs-ipam) plus an interface name.
///
/// Written to the lease file as `<id>\r\n<ifname>` (no trailing newline), exactly as host-local.
/// The `id` is trimmed of surrounding whitespace (host-local trims the container ID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    /// Opaque owner key; non-empty after trimming, no control characters.
    pub id: String,
    /// Interface name; non-empty, no whitespace or control characters.
    pub ifname: String,
}

/// Longest accepted `id` or `ifname`, in bytes.
const MAX_FIELD: usize = 1024;

impl Owner {
    /// Builds an owner, trimming `id`, and validates it (see [`Owner::validate`]).
    pub fn new(id: &str, ifname: &str) -> Result<Owner, Error> {
        let o = Owner {
            id: id.trim().to_string(),
            ifname: ifname.to_string(),
        };
        o.validate()?;
        Ok(o)
    }

    /// Checks that the owner can be written to and read back from a lease file unchanged:
    /// `id` is non-empty, has no surrounding whitespace and no control characters (`\r`, `\n`,
    /// NUL...); `ifname` is non-empty without whitespace or control characters; both are at
    /// most 1024 bytes.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what, reason| {
            Err(Error::InvalidName {
                what,
                value: if what == "owner id" {
                    self.id.clone()
                } else {
                    self.ifname.clone()
                },
                reason,
            })
        };
        if self.id.is_empty() {
            return bad("owner id", "is empty");
        }
        if self.id.trim() != self.id {
            return bad("owner id", "has leading or trailing whitespace");
        }
        if self.id.chars().any(char::is_control) {
            return bad(
                "owner id",
                "contains a control character (e.g. NUL, CR, LF)",
            );
        }
        if self.id.len() > MAX_FIELD {
            return bad("owner id", "is longer than 1024 bytes");
        }
        if self.ifname.is_empty() {
            return bad("owner ifname", "is empty");
        }
        if self
            .ifname
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return bad("owner ifname", "contains whitespace or a control character");
        }
        if self.ifname.len() > MAX_FIELD {
            return bad("owner ifname", "is longer than 1024 bytes");
        }
        Ok(())
    }

    /// The lease-file content: `<id>\r\n<ifname>`.
    pub(crate) fn content(&self) -> String {
        format!("{}\r\n{}", self.id, self.ifname)
    }
}

/// `id "<id>" ifname "<ifname>"`.
impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id {:?} ifname {:?}", self.id, self.ifname)
    }
}

/// The holder of a lease as read from its file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    /// `<id>\r\n<ifname>` (host-local since CNI 0.7, and this crate).
    Owner(Owner),
    /// Legacy content: only the ID (host-local before ifnames were recorded). Matches the
    /// owner `(id, any ifname)`. An empty file reads as `Legacy("")`, which matches nobody.
    Legacy(String),
}

impl Holder {
    /// Parses lease-file content the way host-local matches it: whitespace-trimmed; split at
    /// the first `\r\n` into id and ifname, else a legacy ID-only file.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Holder, &'static str> {
        let s = std::str::from_utf8(bytes).map_err(|_| "content is not UTF-8")?;
        let t = s.trim();
        Ok(match t.split_once("\r\n") {
            Some((id, ifname)) => Holder::Owner(Owner {
                id: id.to_string(),
                ifname: ifname.to_string(),
            }),
            None => Holder::Legacy(t.to_string()),
        })
    }

    /// Whether this is exactly `owner` (new-style content).
    pub(crate) fn is(&self, owner: &Owner) -> bool {
        matches!(self, Holder::Owner(o) if o == owner)
    }

    /// Whether this is a legacy ID-only lease of `owner.id`.
    pub(crate) fn is_legacy_of(&self, owner: &Owner) -> bool {
        matches!(self, Holder::Legacy(id) if !id.is_empty() && *id == owner.id)
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Owner(o) => o.fmt(f),
            Holder::Legacy(id) if id.is_empty() => f.write_str("nobody (empty lease file)"),
            Holder::Legacy(id) => write!(f, "id {id:?} (legacy ID-only lease)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_trims_id_and_rejects_bad_values() {
        let o = Owner::new("  dummy \n", "eth0").unwrap();
        assert_eq!(o.id, "dummy");
        assert_eq!(o.content(), "dummy\r\neth0");
        for (id, ifname, want) in [
            ("", "eth0", "invalid owner id \"\": is empty"),
            (" \t", "eth0", "invalid owner id \"\": is empty"),
            (
                "a\r\nb",
                "eth0",
                "invalid owner id \"a\\r\\nb\": contains a control character (e.g. NUL, CR, LF)",
            ),
            (
                "a\0b",
                "eth0",
                "invalid owner id \"a\\0b\": contains a control character (e.g. NUL, CR, LF)",
            ),
            ("abc", "", "invalid owner ifname \"\": is empty"),
            (
                "abc",
                "eth 0",
                "invalid owner ifname \"eth 0\": contains whitespace or a control character",
            ),
        ] {
            assert_eq!(Owner::new(id, ifname).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn parse_matches_host_local() {
        let me = Owner::new("dummy", "eth0").unwrap();
        let h = Holder::parse(b"dummy\r\neth0").unwrap();
        assert!(h.is(&me));
        let h = Holder::parse(b"  dummy\r\neth0\n").unwrap();
        assert!(h.is(&me));
        let h = Holder::parse(b"dummy").unwrap();
        assert_eq!(h, Holder::Legacy("dummy".into()));
        assert!(!h.is(&me) && h.is_legacy_of(&me));
        let h = Holder::parse(b"dummy\r\neth1").unwrap();
        assert!(!h.is(&me) && !h.is_legacy_of(&me));
        let h = Holder::parse(b"").unwrap();
        assert_eq!(h, Holder::Legacy(String::new()));
        assert!(!h.is_legacy_of(&me));
        assert!(Holder::parse(b"\xff\xfe").is_err());
    }
}
