//! Capped exponential backoff with full jitter.
//!
//! After the n-th consecutive failure, wait a random time in `[0, min(cap, base · 2ⁿ)]`.
//!
//! * **Exponential**: each failure doubles the ceiling, so a client backs off quickly from an
//!   upstream that is struggling instead of adding to its load at a constant rate.
//! * **Capped**: the ceiling stops growing at `cap`, so recovery is noticed within `cap` rather
//!   than after a wait that doubled itself into minutes.
//! * **Full jitter**: the delay is drawn uniformly from the whole range `[0, ceiling]`. Clients
//!   that failed together — every caller of a replica that just restarted — otherwise retry
//!   together, in synchronised waves that knock the upstream over again. Drawing from the whole
//!   range spreads them out best (see "Exponential Backoff And Jitter", AWS Architecture Blog).
//!
//! The maths lives in [`Backoff::ceiling_for`], a pure function, so it is tested exactly; only
//! [`Backoff::next_delay`] touches randomness.

use std::time::Duration;

use rand::Rng;

/// Backoff state for one sequence of attempts: the ceiling grows with each recorded failure and
/// [`reset`](Self::reset) starts over after a success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// `base` is the ceiling after the first failure; `cap` bounds every ceiling.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            failures: 0,
        }
    }

    /// The ceiling after `failures` consecutive failures: `min(cap, base · 2^failures)`.
    ///
    /// Pure and saturating: no failure count, however large, overflows.
    pub fn ceiling_for(&self, failures: u32) -> Duration {
        let factor = 2_u32.saturating_pow(failures.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The upper bound of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        self.ceiling_for(self.failures)
    }

    /// How many failures have been recorded since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure and returns how long to wait before the next attempt: a uniformly
    /// random duration in `[0, ceiling]`.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_with(&mut rand::rng())
    }

    /// [`next_delay`](Self::next_delay) with a caller-supplied random source (a seeded one in
    /// tests, for reproducible sequences).
    pub fn next_delay_with<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        // u64 nanoseconds reach ~584 years: far beyond any sensible cap.
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// Forgets past failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng as _, rngs::StdRng};

    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(1))
    }

    #[test]
    fn the_ceiling_doubles_from_the_base_up_to_the_cap() {
        let backoff = backoff();
        let ceilings: Vec<u128> = (0..7)
            .map(|failures| backoff.ceiling_for(failures).as_millis())
            .collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000, 1000]);
    }

    #[test]
    fn the_ceiling_follows_the_recorded_failures() {
        let mut backoff = backoff();
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(backoff.ceiling().as_millis());
            let delay = backoff.next_delay();
            assert!(delay <= Duration::from_secs(1));
        }
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.failures(), 6);
    }

    #[test]
    fn huge_failure_counts_saturate_at_the_cap() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::MAX);
        assert_eq!(backoff.ceiling_for(31), Duration::from_secs(1 << 31));
        assert_eq!(backoff.ceiling_for(32), backoff.ceiling_for(31));
        assert_eq!(backoff.ceiling_for(u32::MAX), backoff.ceiling_for(31));
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.ceiling_for(u32::MAX), Duration::MAX);
    }

    #[test]
    fn a_base_above_the_cap_is_capped_from_the_first_failure() {
        let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(2));
        assert_eq!(backoff.ceiling_for(0), Duration::from_secs(2));
    }

    #[test]
    fn a_zero_base_never_waits() {
        let mut backoff = Backoff::new(Duration::ZERO, Duration::from_secs(1));
        for _ in 0..5 {
            assert_eq!(backoff.next_delay(), Duration::ZERO);
        }
    }

    #[test]
    fn delays_are_jittered_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let ceiling = Duration::from_millis(1000);
        let delays: Vec<Duration> = (0..200)
            .map(|_| Backoff::new(ceiling, Duration::from_secs(10)).next_delay_with(&mut rng))
            .collect();
        assert!(delays.iter().all(|delay| *delay <= ceiling));
        // Full jitter: both the low and the high quarter of the range are used.
        assert!(delays.iter().any(|delay| *delay < ceiling / 4));
        assert!(delays.iter().any(|delay| *delay > ceiling * 3 / 4));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 190, "jitter spreads the delays");
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let run = || {
            let mut rng = StdRng::seed_from_u64(42);
            let mut backoff = backoff();
            (0..5)
                .map(|_| backoff.next_delay_with(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn reset_starts_over_and_huge_failure_counts_do_not_overflow() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        for _ in 0..100 {
            backoff.next_delay();
        }
        assert_eq!(backoff.ceiling(), Duration::from_secs(5));
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.ceiling(), Duration::from_millis(50));
    }
}
