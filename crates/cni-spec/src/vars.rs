//! The environment a plugin was started with, as the dispatcher was given it.
//!
//! A plugin reads its environment only through [`crate::Invocation::vars`]: the CNI_*
//! variables (validated into [`crate::Env`]), and whatever else it needs (`IPAM_DB_PATH`,
//! `PATH` to find a tool, a wait bound). [`crate::run_c_main`] fills it from the process
//! environment, the one place that reads it; [`crate::run_with`] takes it from the caller, so
//! that a test's injected environment is the whole truth. A delegate ([`crate::delegate`]) is
//! started with exactly these variables (and the CNI_* ones of its call).

use std::borrow::Cow;
use std::ffi::{CStr, OsStr, OsString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Environment variables: names and values as the operating system gives them (not
/// necessarily UTF-8), one value per name.
///
/// Filled from the process ([`Vars::from_envp`]), the variables are borrowed from the block the
/// kernel placed at the top of the stack: nothing is copied (a plugin's environment is often a
/// runtime's whole environment, and copying it was a tenth of a loopback ADD). Lookups scan the
/// handful of entries; set values are owned.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    /// (name, value) in the order given; a name appears once, except duplicates straight from
    /// the process, of which the first counts (as glibc's `getenv` and Go's `os.Getenv` read
    /// them).
    entries: Vec<(Cow<'static, OsStr>, Cow<'static, OsStr>)>,
}

impl Vars {
    /// No variables.
    pub fn new() -> Vars {
        Vars::default()
    }

    /// The process environment as `envp` (C `main`'s third argument) lists it, borrowed. An
    /// entry without `=` is skipped; a leading `=` belongs to the name (as `std::env` reads it).
    ///
    /// # Safety
    /// `envp` is null or the environment block the process started with: a null-terminated
    /// array of C strings that stay valid and unchanged until the process exits (the kernel's
    /// block at the top of the stack is never freed; `setenv` replaces array entries, not the
    /// strings).
    pub unsafe fn from_envp(envp: *const *const c_char) -> Vars {
        let mut entries = Vec::new();
        if envp.is_null() {
            return Vars { entries };
        }
        let mut at = envp;
        loop {
            // SAFETY: `at` points into the null-terminated array (the caller's contract); the
            // loop stops at its null entry.
            let p = unsafe { *at };
            if p.is_null() {
                break;
            }
            // SAFETY: a non-null entry is a C string valid for the rest of the process.
            let bytes: &'static [u8] = unsafe { CStr::from_ptr(p) }.to_bytes();
            if let Some(eq) = bytes.iter().skip(1).position(|&b| b == b'=') {
                let (name, value) = (&bytes[..=eq], &bytes[eq + 2..]);
                entries.push((
                    Cow::Borrowed(OsStr::from_bytes(name)),
                    Cow::Borrowed(OsStr::from_bytes(value)),
                ));
            }
            // SAFETY: the entry was not the terminating null, so the next one exists.
            at = unsafe { at.add(1) };
        }
        Vars { entries }
    }

    /// The value of `name`, when set and UTF-8 (as `std::env::var(name).ok()` reads it). An
    /// empty value is returned as it is; callers that treat empty as unset say so.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_os(name).and_then(OsStr::to_str)
    }

    /// The value of `name` as the operating system gave it.
    pub fn get_os(&self, name: &str) -> Option<&OsStr> {
        let name = OsStr::new(name);
        self.entries
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| &**v)
    }

    /// Sets `name` (a later value replaces an earlier one).
    pub fn set(&mut self, name: impl Into<OsString>, value: impl Into<OsString>) {
        let name = name.into();
        self.entries.retain(|(k, _)| &**k != name.as_os_str());
        self.entries
            .push((Cow::Owned(name), Cow::Owned(value.into())));
    }

    /// [`Vars::set`], by value (for building an environment in one expression).
    #[must_use]
    pub fn with(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Vars {
        self.set(name, value);
        self
    }

    /// Unsets `name`.
    pub fn remove(&mut self, name: &str) {
        let name = OsStr::new(name);
        self.entries.retain(|(k, _)| &**k != name);
    }

    /// Every variable, ordered by name (of duplicates, the one [`Vars::get`] reads).
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        let mut all: Vec<(&OsStr, &OsStr)> =
            self.entries.iter().map(|(k, v)| (&**k, &**v)).collect();
        all.sort_by(|a, b| a.0.cmp(b.0)); // stable: the first of duplicates stays first
        all.dedup_by(|later, first| later.0 == first.0);
        all.into_iter()
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

/// Equal when they give every name the same value, whatever the order they were set in.
impl PartialEq for Vars {
    fn eq(&self, other: &Vars) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Vars {}

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
    #[test]
    fn from_envp_borrows_the_block_and_reads_the_first_of_duplicates() {
        let strings: Vec<&'static CStr> = vec![
            c"CNI_COMMAND=ADD",
            c"NOEQUALS",
            c"=C:=C:\\",
            c"A=1",
            c"EMPTY=",
            c"A=2",
            c"RAW=\xff",
            c"X=a=b",
        ];
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: a null-terminated array of 'static C strings.
        let mut v = unsafe { Vars::from_envp(ptrs.as_ptr()) };
        assert_eq!(v.get("CNI_COMMAND"), Some("ADD"));
        assert_eq!(v.get("A"), Some("1"), "the first of duplicates, as getenv");
        assert_eq!(v.get("EMPTY"), Some(""));
        assert_eq!(v.get("X"), Some("a=b"));
        assert_eq!(v.get("=C:"), Some("C:\\"));
        assert_eq!(v.get("NOEQUALS"), None);
        assert_eq!(v.get("RAW"), None);
        assert_eq!(v.get_os("RAW").map(OsStr::as_bytes), Some(&b"\xff"[..]));
        let names: Vec<&OsStr> = v.iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            ["=C:", "A", "CNI_COMMAND", "EMPTY", "RAW", "X"].map(OsStr::new)
        );
        assert_eq!(
            v.iter().find(|(k, _)| *k == "A").map(|(_, v)| v),
            Some(OsStr::new("1"))
        );
        v.set("A", "3");
        assert_eq!(v.get("A"), Some("3"), "set replaces every copy");
        v.remove("A");
        assert_eq!(v.get("A"), None);
        // SAFETY: null is allowed.
        assert_eq!(unsafe { Vars::from_envp(std::ptr::null()) }, Vars::new());
        let a: Vars = [("P", "1"), ("Q", "2")].into_iter().collect();
        let b: Vars = [("Q", "2"), ("P", "1")].into_iter().collect();
        assert_eq!(a, b, "equality ignores the order of setting");
    }
}
