//! Linux interface names, validated once.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// The longest interface name the kernel accepts: `IFNAMSIZ` (16) less the terminating NUL.
pub const MAX_IFNAME_LEN: usize = 15;

/// A name the kernel accepts for a network interface (its `dev_valid_name`): 1 to 15 bytes, not
/// `.` or `..`, without `/`, `:`, NUL or whitespace.
///
/// Derefs to `&str`, so it goes wherever a name is read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

/// Why a string is not an [`IfName`]; displays as the reason, e.g. `is empty`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IfNameProblem {
    /// The empty string.
    #[error("is empty")]
    Empty,
    /// More than [`MAX_IFNAME_LEN`] bytes.
    #[error("is longer than 15 bytes (the kernel's IFNAMSIZ limit)")]
    TooLong,
    /// `.` or `..`.
    #[error("must not be \".\" or \"..\"")]
    Dots,
    /// Contains `/`, `:`, NUL or whitespace.
    #[error("must not contain '/', ':', NUL or whitespace")]
    BadChar,
}

/// A string that is not a valid interface name: `invalid interface name "a/b": must not contain
/// ...`. Callers with their own wording use [`InvalidIfName::problem`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid interface name {name:?}: {problem}")]
pub struct InvalidIfName {
    /// The rejected string.
    pub name: String,
    /// What is wrong with it.
    pub problem: IfNameProblem,
}

impl IfName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<IfName, InvalidIfName> {
        let name = name.into();
        match IfName::problem(&name) {
            None => Ok(IfName(name)),
            Some(problem) => Err(InvalidIfName { name, problem }),
        }
    }

    /// What is wrong with `name` as an interface name, if anything.
    pub fn problem(name: &str) -> Option<IfNameProblem> {
        if name.is_empty() {
            // found by fuzzing CNI_IFNAME (fuzz/regressions/cni_args): "" once passed
            Some(IfNameProblem::Empty)
        } else if name.len() > MAX_IFNAME_LEN {
            Some(IfNameProblem::TooLong)
        } else if name == "." || name == ".." {
            Some(IfNameProblem::Dots)
        } else if name
            .chars()
            .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
        {
            Some(IfNameProblem::BadChar)
        } else {
            None
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for IfName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for IfName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IfName {
    type Err = InvalidIfName;
    fn from_str(s: &str) -> Result<IfName, InvalidIfName> {
        IfName::new(s)
    }
}

impl TryFrom<String> for IfName {
    type Error = InvalidIfName;
    fn try_from(s: String) -> Result<IfName, InvalidIfName> {
        IfName::new(s)
    }
}

impl TryFrom<&str> for IfName {
    type Error = InvalidIfName;
    fn try_from(s: &str) -> Result<IfName, InvalidIfName> {
        IfName::new(s)
    }
}

impl From<IfName> for String {
    fn from(n: IfName) -> String {
        n.0
    }
}

impl PartialEq<str> for IfName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for IfName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        for ok in [
            "eth0",
            "ecs-eth0",
            "a",
            "123456789012345",
            "eth0.100",
            "ü",
            "veth1234567890a",
        ] {
            let n = IfName::new(ok).unwrap();
            assert_eq!(n, ok);
            assert_eq!(n.to_string(), ok);
            assert_eq!(ok.parse::<IfName>().unwrap(), n);
        }
        for (bad, problem) in [
            ("", IfNameProblem::Empty),
            ("1234567890123456", IfNameProblem::TooLong),
            ("veth1234567890ab", IfNameProblem::TooLong),
            // 8 two-byte characters: 16 bytes
            ("üüüüüüüü", IfNameProblem::TooLong),
            (".", IfNameProblem::Dots),
            ("..", IfNameProblem::Dots),
            ("a/b", IfNameProblem::BadChar),
            ("a:b", IfNameProblem::BadChar),
            ("a b", IfNameProblem::BadChar),
            ("a\tb", IfNameProblem::BadChar),
            ("a\0b", IfNameProblem::BadChar),
            ("a\u{a0}b", IfNameProblem::BadChar),
        ] {
            let e = IfName::new(bad).unwrap_err();
            assert_eq!(e.problem, problem, "{bad:?}");
            assert_eq!(e.name, bad);
            assert_eq!(IfName::problem(bad), Some(problem));
        }
        assert_eq!(
            IfName::new("a/b").unwrap_err().to_string(),
            "invalid interface name \"a/b\": must not contain '/', ':', NUL or whitespace"
        );
    }
}
