//! Capped exponential backoff with full jitter.
//!
//! After the n-th consecutive failure, wait a random time in `[0, min(cap, base · 2ⁿ)]`. The
//! randomness ("full jitter") spreads the retries of many clients that failed together — after a
//! broker restart, say — so they do not all come back in the same instant.

use std::time::Duration;

use rand::Rng as _;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            failures: 0,
        }
    }

    /// The upper bound of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 2_u32.saturating_pow(self.failures.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    /// Forgets past failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(backoff.ceiling().as_millis());
            let delay = backoff.next_delay();
            assert!(delay <= Duration::from_secs(1));
        }
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut backoff = Backoff::new(Duration::from_millis(1000), Duration::from_secs(10));
            let delay = backoff.next_delay();
            assert!(delay <= Duration::from_millis(1000));
            seen.insert(delay.as_millis());
        }
        assert!(seen.len() > 10, "jitter spreads the delays: {seen:?}");
    }

    #[test]
    fn reset_starts_over_and_huge_failure_counts_do_not_overflow() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        for _ in 0..100 {
            backoff.next_delay();
        }
        assert_eq!(backoff.ceiling(), Duration::from_secs(5));
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(50));
    }
}
