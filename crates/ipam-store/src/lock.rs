//! The store lock: `flock(LOCK_EX)` on the `lock` file, with a bounded wait.
//!
//! host-local takes the same lock (blocking, unbounded); we poll `LOCK_EX | LOCK_NB` with short
//! randomised sleeps until the deadline, so neither SIGALRM nor a helper thread is needed, and
//! a stuck holder turns into [`Error::LockTimeout`] instead of a hung plugin. `flock` belongs
//! to the open file description, so every acquisition opens the file anew: two threads of one
//! process exclude each other exactly like two processes.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::Error;
use crate::fsx::Dir;

/// Name of the lock file in the network directory (host-local's).
pub(crate) const LOCK: &str = "lock";

/// First sleep between two attempts; doubles up to [`MAX_SLEEP`].
const FIRST_SLEEP: Duration = Duration::from_micros(50);
/// Longest sleep between two attempts.
const MAX_SLEEP: Duration = Duration::from_millis(2);

/// A held lock; released (and the fd closed) on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    _flock: Flock<OwnedFd>,
}

/// Locks `dir/lock`, waiting at most `timeout`.
pub(crate) fn acquire(dir: &Dir, timeout: Duration) -> Result<Lock, Error> {
    let path = dir.join(LOCK);
    let mut fd = dir
        .open_or_create(LOCK)
        .map_err(|e| Error::io("open lock", path.clone(), e))?;
    let began = Instant::now();
    let mut sleep = FIRST_SLEEP;
    let mut rng = seed();
    loop {
        match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => return Ok(Lock { _flock: flock }),
            Err((back, Errno::EWOULDBLOCK | Errno::EINTR)) => fd = back,
            Err((_, e)) => return Err(Error::io("flock", path, e.into())),
        }
        let waited = began.elapsed();
        if waited >= timeout {
            return Err(Error::LockTimeout { path, waited });
        }
        // Sleep a random 50-100% of the current step so waiters do not wake in lockstep.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let step = sleep.as_nanos() as u64;
        let nap = Duration::from_nanos(step / 2 + rng % (step / 2 + 1));
        std::thread::sleep(nap.min(timeout - waited));
        sleep = (sleep * 2).min(MAX_SLEEP);
    }
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (u64::from(std::process::id()) << 32) ^ u64::from(t) ^ 0x9e37_79b9_7f4a_7c15
}
