//! The store lock: `flock(LOCK_EX)` on the `lock` file, with a bounded wait.
//!
//! host-local takes the same lock (blocking, unbounded); we poll `LOCK_EX | LOCK_NB` with short
//! randomised sleeps until the deadline, so neither SIGALRM nor a helper thread is needed, and
//! a stuck holder turns into [`Error::LockTimeout`] instead of a hung plugin. `flock` belongs
//! to the open file description, so every acquisition opens the file anew: two threads of one
//! process exclude each other exactly like two processes.

use std::os::fd::OwnedFd;
use std::time::Duration;

use boltdb::lock::{Backoff, Flock, FlockArg, FlockError, flock_within};

use crate::error::Error;
use crate::fsx::Dir;

/// Name of the lock file in the network directory (host-local's).
pub(crate) const LOCK: &str = "lock";

/// The sleeps between two attempts: 50 µs, doubling up to 2 ms.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_micros(50),
    max: Duration::from_millis(2),
};

/// A held lock; released (and the fd closed) on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    _flock: Flock<OwnedFd>,
}

/// Locks `dir/lock`, waiting at most `timeout` (polling as [`boltdb::lock`] does).
pub(crate) fn acquire(dir: &Dir, timeout: Duration) -> Result<Lock, Error> {
    let path = dir.join(LOCK);
    let fd = dir
        .open_or_create(LOCK)
        .map_err(|e| Error::io("open lock", path.clone(), e))?;
    match flock_within(fd, FlockArg::LockExclusiveNonblock, timeout, BACKOFF) {
        Ok(flock) => Ok(Lock { _flock: flock }),
        Err(FlockError::Sys(e)) => Err(Error::io("flock", path, e)),
        Err(FlockError::Timeout { waited }) => Err(Error::LockTimeout { path, waited }),
    }
}
