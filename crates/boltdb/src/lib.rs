//! A reader/writer of BoltDB (`go.etcd.io/bbolt`, `github.com/boltdb/bolt`) files, for the
//! subset the `ecs-ipam` lease store needs: top-level buckets of plain keys and values.
//!
//! Why in-house: the Rust ports we looked at map the file (`mmap`, `unsafe`), have no bounded
//! wait for the lock, and abort or misbehave on a corrupt file; this one is safe Rust, reads
//! with `pread` and writes with `pwrite`, and turns every malformed input into
//! [`Error::Invalid`] naming the file, before anything is written.
//!
//! - **Open** ([`Db::open`]): `flock` (`LOCK_EX` to write, `LOCK_SH` to read) polled until a
//!   bounded wait ([`Error::LockTimeout`]), like bolt's `Options.Timeout` (the polling is
//!   [`lock::flock_within`], which `ipam-store` uses for its host-local lock too); a zero-length file
//!   is laid out as bolt lays out a new one (2 meta pages, an empty freelist, an empty root
//!   leaf, page size = the OS page size).
//! - **Validate**: both meta pages (magic `0xED0CDAED`, version 2, FNV-1a 64 checksum), the
//!   valid one with the highest txid is used, as bolt does; then every page every bucket
//!   reaches (bounds, page ids, types, key order, no page reached twice, nesting depth) and the
//!   freelist (bounds, duplicates, no page both free and in use; `count == 0xFFFF` with the
//!   count in the first u64; a file without a persisted freelist gets its free set rebuilt from
//!   reachability, as bolt does).
//! - **Read** ([`Db::bucket`]): a top-level bucket into memory (inline or paged, with overflow
//!   pages); a plain value under that name or a nested bucket inside it is refused.
//! - **Write** ([`Db::put_bucket`]): one copy-on-write transaction replacing that bucket,
//!   keeping every other bucket and the bucket's sequence: new pages from the freelist or past
//!   the high-water mark (never a page the current meta reaches), a new freelist listing the
//!   pages the transaction freed, `fdatasync`, the meta page of `txid + 1` at page
//!   `(txid + 1) % 2`, `fdatasync`. A crash at any point leaves the previous transaction
//!   readable.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::path::Path;
//! use std::time::Duration;
//! use boltdb::{Access, Db};
//!
//! # fn main() -> Result<(), boltdb::Error> {
//! let mut db = Db::open(Path::new("/data/eni-ipam.db"), Access::Write, Duration::from_secs(5))?;
//! let mut entries = db.bucket(b"IPAM")?.map(|b| b.entries).unwrap_or_default();
//! entries.insert(b"169.254.172.2".to_vec(), b"\x01\0\0\0\0\0\0\0task".to_vec());
//! db.put_bucket(b"IPAM", &entries)?;
//! # let _: BTreeMap<Vec<u8>, Vec<u8>> = entries;
//! # Ok(())
//! # }
//! ```

mod db;
pub mod error;
mod format;
pub mod lock;

pub use db::{Access, Bucket, Db, MAX_FILE};
pub use error::{Error, Problem};
