//! `flock` with a bounded wait, the one home of the lock polling that the bolt file and the
//! host-local lease store (`ipam-store`) both use.
//!
//! `flock(LOCK_NB)` is polled with short randomised sleeps, doubling from a first to a longest
//! step, until the deadline: neither SIGALRM nor a helper thread is needed, and a stuck holder
//! turns into [`FlockError::Timeout`] instead of a hung caller. Each sleep is a random 50–100 %
//! of the current step, so waiters do not wake in lockstep.

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
pub use nix::fcntl::{Flock, FlockArg, Flockable};

/// How the wait grows: the first sleep between two attempts, doubled up to the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first sleep between two attempts.
    pub first: Duration,
    /// The longest sleep between two attempts.
    pub max: Duration,
}

/// Why [`flock_within`] did not take the lock.
#[derive(Debug, thiserror::Error)]
pub enum FlockError {
    /// `flock` failed with an error other than "held by someone else" or EINTR.
    #[error("{0}")]
    Sys(#[source] io::Error),
    /// Still held by someone else after waiting this long.
    #[error("still locked after {waited:?}")]
    Timeout {
        /// How long we waited.
        waited: Duration,
    },
}

/// Takes the lock `arg` (one of the `*Nonblock` arguments) on `file`, polling until `timeout`.
pub fn flock_within<T: Flockable>(
    mut file: T,
    arg: FlockArg,
    timeout: Duration,
    backoff: Backoff,
) -> Result<Flock<T>, FlockError> {
    let began = Instant::now();
    let mut sleep = backoff.first;
    let mut rng = seed();
    loop {
        match Flock::lock(file, arg) {
            Ok(f) => return Ok(f),
            Err((back, Errno::EWOULDBLOCK | Errno::EINTR)) => file = back,
            Err((_, e)) => return Err(FlockError::Sys(e.into())),
        }
        let waited = began.elapsed();
        if waited >= timeout {
            return Err(FlockError::Timeout { waited });
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let step = sleep.as_nanos() as u64;
        let nap = Duration::from_nanos(step / 2 + rng % (step / 2 + 1));
        std::thread::sleep(nap.min(timeout - waited));
        sleep = (sleep * 2).min(backoff.max);
    }
}

/// A per-process, per-call seed for the sleep jitter (not for secrets).
fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (u64::from(std::process::id()) << 32) ^ u64::from(t) ^ 0x9e37_79b9_7f4a_7c15
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Backoff = Backoff {
        first: Duration::from_micros(50),
        max: Duration::from_millis(1),
    };

    fn temp_file(name: &str) -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("boltdb-lock-{}-{name}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (path, file)
    }

    #[test]
    fn a_held_lock_times_out_and_a_free_one_is_taken() {
        let (path, a) = temp_file("held");
        let held = flock_within(a, FlockArg::LockExclusiveNonblock, Duration::ZERO, QUICK).unwrap();
        let b = std::fs::File::open(&path).unwrap();
        let e = flock_within(
            b,
            FlockArg::LockSharedNonblock,
            Duration::from_millis(20),
            QUICK,
        )
        .unwrap_err();
        assert!(matches!(e, FlockError::Timeout { .. }), "{e}");
        drop(held);
        let c = std::fs::File::open(&path).unwrap();
        flock_within(c, FlockArg::LockSharedNonblock, Duration::ZERO, QUICK).unwrap();
        std::fs::remove_file(path).unwrap();
    }
}
