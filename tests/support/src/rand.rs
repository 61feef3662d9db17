//! The one random generator of the tests.

/// A small xorshift generator for randomised tests. [`Rng::seeded`] prints its seed (taken
/// from `TEST_SEED` when set, else from the clock) so that a failing run can be replayed with
/// `TEST_SEED=<n>`; [`Rng::new`] is fixed.
pub struct Rng(u64);

impl Rng {
    /// A generator with a fixed seed (made odd: xorshift must not start at zero).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A generator seeded from `TEST_SEED` or the clock; prints `<tag>: TEST_SEED=<seed>`.
    pub fn seeded(tag: &str) -> Rng {
        let seed = std::env::var("TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("{tag}: TEST_SEED={seed}");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform-ish in `0..n` (`n` ≥ 1).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A duration in `0..max`, in whole microseconds.
    pub fn duration_below(&mut self, max: std::time::Duration) -> std::time::Duration {
        std::time::Duration::from_micros(self.below(max.as_micros() as u64))
    }
}

/// The delays of the `kill -9` tests: uniform below the time an uninterrupted run of one verb
/// takes now. The span is the median of the last few uninterrupted runs the test reports
/// ([`KillSpan::observe`], [`KillSpan::timed`]): it follows the machine when it speeds up or
/// slows down while the test runs (other tests run beside it), where a span measured once at
/// the start could leave most kills landing after the plugin has exited.
#[derive(Debug, Default)]
pub struct KillSpan {
    recent: std::collections::VecDeque<std::time::Duration>,
}

impl KillSpan {
    /// How many recent runs the median is taken over.
    const KEEP: usize = 7;

    pub fn new() -> KillSpan {
        KillSpan::default()
    }

    /// Records how long one uninterrupted run took.
    pub fn observe(&mut self, took: std::time::Duration) {
        if self.recent.len() == Self::KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(took);
    }

    /// Runs `f` (one uninterrupted run), records its wall time and returns its value.
    pub fn timed<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = std::time::Instant::now();
        let v = f();
        self.observe(t.elapsed());
        v
    }

    /// The median of the recent runs (1 ms before any).
    pub fn span(&self) -> std::time::Duration {
        let mut v: Vec<_> = self.recent.iter().copied().collect();
        v.sort();
        v.get(v.len() / 2)
            .copied()
            .unwrap_or(std::time::Duration::from_millis(1))
    }

    /// A kill delay: uniform below [`KillSpan::span`].
    pub fn delay(&self, rng: &mut Rng) -> std::time::Duration {
        rng.duration_below(self.span())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kill_span_is_the_median_of_the_recent_runs() {
        let mut s = KillSpan::new();
        assert_eq!(s.span(), Duration::from_millis(1));
        for ms in [9, 1, 5] {
            s.observe(Duration::from_millis(ms));
        }
        assert_eq!(s.span(), Duration::from_millis(5));
        // a machine that gets faster: the old slow runs age out
        for _ in 0..KillSpan::KEEP {
            s.observe(Duration::from_millis(2));
        }
        assert_eq!(s.span(), Duration::from_millis(2));
        let mut rng = Rng::new(7);
        assert!((0..100).all(|_| s.delay(&mut rng) < Duration::from_millis(2)));
        assert_eq!(s.timed(|| 42), 42);
    }
}
