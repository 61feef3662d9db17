//! The error of namespace operations.

use std::io;
use std::path::PathBuf;

/// What can go wrong opening, entering or reading a network namespace.
///
/// Messages name the path the namespace was given as and what was attempted; system errors
/// keep their errno ([`Error::errno`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path does not exist (a CNI DEL treats this as "already gone").
    #[error("network namespace {path} does not exist")]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },
    /// The path exists but is not a network namespace file.
    #[error("{path} is not a network namespace: {reason}")]
    NotANetns {
        /// The path that was opened.
        path: PathBuf,
        /// Why it was rejected (filesystem, namespace type).
        reason: String,
    },
    /// A system call failed (open, setns, unshare, spawning the thread, /proc/sys).
    #[error("{op}: {source}")]
    Io {
        /// What was attempted, naming the path and namespace.
        op: String,
        /// The underlying error; its raw OS error is the errno.
        #[source]
        source: io::Error,
    },
    /// An argument was rejected before anything was touched.
    #[error(transparent)]
    Invalid(#[from] InvalidArg),
}

/// An argument rejected before anything was touched: `invalid <field> "<value>": <reason>`.
/// Shared by this crate's and `nl`'s errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: {reason}")]
pub struct InvalidArg {
    /// The parameter, e.g. `sysctl key`, `interface name`.
    pub field: &'static str,
    /// The offending value.
    pub value: String,
    /// Why it is invalid.
    pub reason: String,
}

impl InvalidArg {
    /// `field` had `value`, rejected because of `reason`.
    pub fn new(field: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        InvalidArg {
            field,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

impl Error {
    /// The errno behind this error, if there is one (ENOENT for [`Error::NotFound`]).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::NotFound { .. } => Some(libc::ENOENT),
            Error::Io { source, .. } => source.raw_os_error(),
            Error::NotANetns { .. } | Error::Invalid(_) => None,
        }
    }

    /// The namespace path, or the sysctl, does not exist (ENOENT).
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(libc::ENOENT)
    }

    /// The file cannot be written here: a read-only mount (EROFS, e.g. `/proc/sys` in a
    /// container) or no permission (EACCES, EPERM).
    pub fn is_read_only(&self) -> bool {
        matches!(self.errno(), Some(libc::EROFS | libc::EACCES | libc::EPERM))
    }

    pub(crate) fn io(op: impl Into<String>, source: impl Into<io::Error>) -> Error {
        Error::Io {
            op: op.into(),
            source: source.into(),
        }
    }
}
