//! The environment a plugin was started with, as the dispatcher was given it.
//!
//! A plugin reads its environment only through [`crate::Invocation::vars`]: the CNI_*
//! variables (validated into [`crate::Env`]), and whatever else it needs (`IPAM_DB_PATH`,
//! `PATH` to find a tool, a wait bound). [`crate::run`] fills it from the process environment,
//! the one place that reads it; [`crate::run_with`] takes it from the caller, so that a test's
//! injected environment is the whole truth. A delegate ([`crate::delegate`]) is started with
//! exactly these variables (and the CNI_* ones of its call).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// Environment variables: names and values as the operating system gives them (not
/// necessarily UTF-8), one value per name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    map: BTreeMap<OsString, OsString>,
}

impl Vars {
    /// No variables.
    pub fn new() -> Vars {
        Vars::default()
    }

    /// The value of `name`, when set and UTF-8 (as `std::env::var(name).ok()` reads it). An
    /// empty value is returned as it is; callers that treat empty as unset say so.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(OsStr::new(name)).and_then(|v| v.to_str())
    }

    /// The value of `name` as the operating system gave it.
    pub fn get_os(&self, name: &str) -> Option<&OsStr> {
        self.map.get(OsStr::new(name)).map(OsString::as_os_str)
    }

    /// Sets `name` (a later value replaces an earlier one).
    pub fn set(&mut self, name: impl Into<OsString>, value: impl Into<OsString>) {
        self.map.insert(name.into(), value.into());
    }

    /// [`Vars::set`], by value (for building an environment in one expression).
    #[must_use]
    pub fn with(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Vars {
        self.set(name, value);
        self
    }

    /// Unsets `name`.
    pub fn remove(&mut self, name: &str) {
        self.map.remove(OsStr::new(name));
    }

    /// Every variable, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.map.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// The directories of a `PATH`-style variable (`:`-separated, empty entries skipped), in
    /// order; none when unset.
    pub fn dirs(&self, name: &str) -> Vec<PathBuf> {
        self.get_os(name)
            .map(|v| {
                std::env::split_paths(v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl<K: Into<OsString>, V: Into<OsString>> FromIterator<(K, V)> for Vars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Vars {
        let mut vars = Vars::new();
        for (k, v) in iter {
            vars.set(k, v);
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn lookups_as_the_process_environment_reads_them() {
        let mut v: Vars = [("A", "1"), ("PATH", "/x::/y:"), ("E", ""), ("A", "2")]
            .into_iter()
            .collect();
        v.set("RAW", OsStr::from_bytes(b"\xff\xfe"));
        assert_eq!(v.get("A"), Some("2"), "the later value wins");
        assert_eq!(v.get("E"), Some(""));
        assert_eq!(v.get("MISSING"), None);
        // not UTF-8: absent for `get`, kept as it is for `get_os` and delegation
        assert_eq!(v.get("RAW"), None);
        assert_eq!(v.get_os("RAW").map(OsStr::as_bytes), Some(&b"\xff\xfe"[..]));
        assert_eq!(
            v.dirs("PATH"),
            vec![PathBuf::from("/x"), PathBuf::from("/y")]
        );
        assert!(v.dirs("MISSING").is_empty());
        v.remove("A");
        assert_eq!(v.get("A"), None);
        let names: Vec<&OsStr> = v.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["E", "PATH", "RAW"].map(OsStr::new));
        assert_eq!(Vars::new().with("K", "v").get("K"), Some("v"));
    }
}
