//! Time as a dependency.
//!
//! A circuit breaker stays open "for 30 seconds"; a retry budget allows "10 retries per second".
//! Code that asks `Instant::now()` directly can only be tested by sleeping, which makes tests
//! slow and flaky. Instead, time-dependent types here read the time through a [`Clock`]:
//! production uses [`SystemClock`], tests use a [`ManualClock`] and move time forward by hand,
//! so a test of "open for 30 s" runs in microseconds and never depends on the machine's load.

use std::{
    fmt::Debug,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// About a hundred years: where a [`ManualClock`] stops.
const MAX_ELAPSED_NANOS: u64 = 100 * 365 * 24 * 60 * 60 * 1_000_000_000;

/// A source of the current time.
pub trait Clock: Debug + Send + Sync {
    /// The current instant. Must never go backwards.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to, for tests.
///
/// Clones share the same time, so a test keeps one clone and hands another to the type under
/// test.
#[derive(Clone, Debug)]
pub struct ManualClock {
    origin: Instant,
    elapsed_nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing still at an arbitrary instant.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            elapsed_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves time forward by `by`. Manual time stops at a century past the start, an instant
    /// every platform can represent, so absurd advances cannot overflow.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update cannot fail with a closure that always returns Some.
        let _ = self
            .elapsed_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                Some(current.saturating_add(nanos).min(MAX_ELAPSED_NANOS))
            });
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let elapsed = Duration::from_nanos(self.elapsed_nanos.load(Ordering::SeqCst));
        // A century past "now" is representable on every platform Rust supports.
        self.origin.checked_add(elapsed).unwrap_or(self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_advanced() {
        let clock = ManualClock::new();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - start, Duration::from_millis(1500));
    }

    #[test]
    fn clones_of_a_manual_clock_share_their_time() {
        let clock = ManualClock::new();
        let shared = clock.clone();
        let start = shared.now();
        clock.advance(Duration::from_secs(3));
        assert_eq!(shared.now() - start, Duration::from_secs(3));
    }

    #[test]
    fn huge_advances_saturate_instead_of_overflowing() {
        let clock = ManualClock::new();
        let start = clock.now();
        clock.advance(Duration::MAX);
        let far = clock.now();
        assert!(far > start + Duration::from_secs(99 * 365 * 24 * 60 * 60));
        clock.advance(Duration::MAX);
        assert_eq!(
            clock.now(),
            far,
            "time stops at the limit and never goes back"
        );
    }

    #[test]
    fn the_system_clock_moves_forward() {
        let clock = SystemClock;
        let first = clock.now();
        assert!(clock.now() >= first);
    }
}
