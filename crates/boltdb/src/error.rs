//! The crate's one error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong; every message names the file.
///
/// [`Error::Invalid`] means the file is not a BoltDB store this crate can read (truncated,
/// foreign, another format version, corrupt, or of a shape it does not handle); it is returned
/// before anything is written, so the file is never modified in that case.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call on the file failed.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What we were doing (`open`, `read`, `write`, `fdatasync`, ...).
        op: &'static str,
        /// The database file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Another process held the file's `flock` for longer than the configured wait.
    #[error("timed out after {} ms waiting for the lock (flock) of {}", .waited.as_millis(), .path.display())]
    LockTimeout {
        /// The database file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },

    /// The file is not a valid BoltDB store (or not one this crate handles).
    #[error("{} is not a valid BoltDB store: {problem}; the file was left untouched", .path.display())]
    Invalid {
        /// The database file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Problem,
    },

    /// A write was asked of a database opened for reading, or with an entry bolt refuses.
    #[error("{}: {reason}", .path.display())]
    Usage {
        /// The database file.
        path: PathBuf,
        /// What was refused.
        reason: String,
    },
}

/// Why a file is not a BoltDB store this crate can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The file ends before something it must hold.
    #[error("it is {len} bytes long, shorter than the {need} bytes {what}")]
    Truncated {
        /// The file's length.
        len: u64,
        /// The length needed.
        need: u64,
        /// What needs it (`two meta pages`, `the 6 pages its meta page counts`...).
        what: String,
    },
    /// Neither meta page carries bolt's magic number.
    #[error(
        "neither meta page has BoltDB's magic number 0xed0cdaed (found {m0:#010x} and {m1:#010x})"
    )]
    NotBolt {
        /// Magic of meta page 0.
        m0: u32,
        /// Magic of meta page 1.
        m1: u32,
    },
    /// The file is of another bolt format version.
    #[error("it is BoltDB format version {found}; only version 2 is supported")]
    Version {
        /// The version found.
        found: u32,
    },
    /// Both meta pages fail their checksum.
    #[error("both meta pages fail their checksum")]
    Checksum,
    /// A page size this crate does not handle.
    #[error("its page size {size} is not supported (a power of two from 1024 to 65536 is)")]
    PageSize {
        /// The page size found.
        size: u64,
    },
    /// Larger than this crate loads into memory.
    #[error("it is {len} bytes long, more than the {max} bytes this reader loads")]
    TooLarge {
        /// The file's length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The chosen meta page is inconsistent.
    #[error("meta page (txid {txid}): {reason}")]
    Meta {
        /// Its transaction id.
        txid: u64,
        /// What is wrong.
        reason: String,
    },
    /// A page is corrupt.
    #[error("page {page}: {reason}")]
    Page {
        /// The page id.
        page: u64,
        /// What is wrong.
        reason: String,
    },
    /// The freelist is corrupt.
    #[error("freelist: {reason}")]
    Freelist {
        /// What is wrong.
        reason: String,
    },
    /// A bucket's value is malformed.
    #[error("bucket {name:?}: {reason}")]
    Bucket {
        /// The bucket's key.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A top-level key that should be a bucket holds a plain value.
    #[error("top-level key {name:?} is a plain value, not a bucket")]
    NotABucket {
        /// The key.
        name: String,
    },
    /// A bucket holds a nested bucket, which this crate does not rewrite.
    #[error("bucket {bucket:?} holds a nested bucket {key:?}")]
    NestedBucket {
        /// The outer bucket.
        bucket: String,
        /// The nested bucket's key.
        key: String,
    },
}
