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
