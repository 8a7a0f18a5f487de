//! The Generic Cell Rate Algorithm (GCRA), as pure arithmetic.
//!
//! GCRA is a token bucket that stores **one number** per client instead of two (tokens and last
//! refill): the *theoretical arrival time* (TAT), the moment at which the client's bucket will be
//! full again. With an emission interval `T` (one request per `T` sustained: 60 s / rate) and a
//! burst `B` (requests allowed at once):
//!
//! ```text
//! tat      = max(stored_tat, now)        a bucket never holds more than full
//! new_tat  = tat + T                     this request's cost
//! allow_at = new_tat - B·T               the earliest moment this request fits
//! now < allow_at  → refused, retry after allow_at - now; nothing stored
//! otherwise       → allowed, store new_tat (expiring at new_tat: then it is full anyway)
//! ```
//!
//! Time is counted in **microseconds**: in milliseconds, `T` could not be shorter than 1 ms, so
//! no key could be allowed more than 1000 requests per second, and every rate that does not
//! divide 60 000 ms evenly would be rounded.
//!
//! One number means one atomic read-modify-write, which Redis does in a small Lua script, so
//! every gateway replica shares each client's budget exactly. The script (in [`super::store`])
//! returns only *allowed* and the **backlog** (`new_tat - now` if allowed, `tat - now` if not);
//! [`Gcra::decision`] turns that into the response headers, and [`Gcra::decide`] is the same
//! algorithm in Rust, so the tests below pin the arithmetic the script relies on.

use std::time::Duration;

/// The limit: a sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    /// `T`: microseconds between requests at the sustained rate.
    pub interval_us: u64,
    /// `B`: requests allowed at once from a full bucket.
    pub burst: u32,
    /// The configured rate, for `RateLimit-Policy`.
    pub per_minute: u32,
}

/// What one request was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket size (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests that would still be allowed right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// When a refused request may be retried (`Retry-After`); zero if allowed.
    pub retry_after: Duration,
    /// When the bucket is full again (`RateLimit-Reset`).
    pub reset_after: Duration,
}

impl Gcra {
    /// `per_minute` sustained with bursts of `burst`; both at least 1.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        let per_minute = per_minute.max(1);
        Self {
            interval_us: (60_000_000 / u64::from(per_minute)).max(1),
            burst: burst.max(1),
            per_minute,
        }
    }

    /// `B·T`: how far the TAT may run ahead of now.
    pub fn capacity_us(&self) -> u64 {
        self.interval_us.saturating_mul(u64::from(self.burst))
    }

    /// The algorithm: with `stored_tat` (µs, `None` for a new client) at `now` (µs), the
    /// decision and the TAT to store if the request is allowed.
    pub fn decide(&self, stored_tat: Option<u64>, now: u64) -> (Decision, Option<u64>) {
        let tat = stored_tat.unwrap_or(now).max(now);
        let new_tat = tat + self.interval_us;
        let allow_at = new_tat.saturating_sub(self.capacity_us());
        if now < allow_at {
            (self.decision(false, tat - now), None)
        } else {
            (self.decision(true, new_tat - now), Some(new_tat))
        }
    }

    /// The decision described by the script's answer (the backlog in µs).
    pub fn decision(&self, allowed: bool, backlog_us: u64) -> Decision {
        let remaining = self.capacity_us().saturating_sub(backlog_us) / self.interval_us;
        let retry_after_us = if allowed {
            0
        } else {
            (backlog_us + self.interval_us).saturating_sub(self.capacity_us())
        };
        Decision {
            allowed,
            limit: self.burst,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            retry_after: Duration::from_micros(retry_after_us),
            reset_after: Duration::from_micros(backlog_us),
        }
    }
}

impl Decision {
    /// Whole seconds for `Retry-After`: rounded up, and at least 1 for a refusal (a client told
    /// "0" would retry at once and be refused again).
    pub fn retry_after_secs(&self) -> u64 {
        if self.allowed {
            0
        } else {
            ceil_secs(self.retry_after).max(1)
        }
    }

    pub fn reset_secs(&self) -> u64 {
        ceil_secs(self.reset_after)
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One millisecond, in the limiter's unit.
    const MS: u64 = 1000;

    /// 60/min = one per second, bursts of 3.
    const LIMIT: Gcra = Gcra {
        interval_us: 1000 * MS,
        burst: 3,
        per_minute: 60,
    };

    /// Runs requests at the given instants (ms), threading the stored TAT through.
    fn run(limit: &Gcra, instants: &[u64]) -> Vec<Decision> {
        let mut tat = None;
        instants
            .iter()
            .map(|now| {
                let (decision, stored) = limit.decide(tat, *now * MS);
                tat = stored.or(tat);
                decision
            })
            .collect()
    }

    #[test]
    fn a_full_bucket_allows_the_burst_then_refuses() {
        let decisions = run(&LIMIT, &[0, 0, 0, 0]);
        let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, false]);
        let remaining: Vec<u32> = decisions.iter().map(|d| d.remaining).collect();
        assert_eq!(remaining, [2, 1, 0, 0]);
        assert!(decisions.iter().all(|d| d.limit == 3));
        let refused = decisions[3];
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.retry_after_secs(), 1);
        assert_eq!(refused.reset_after, Duration::from_secs(3));
    }

    #[test]
    fn the_bucket_refills_at_the_sustained_rate() {
        // Burst spent at t=0; one request fits again exactly every second.
        let decisions = run(&LIMIT, &[0, 0, 0, 999, 1000, 1500, 2000, 3000]);
        let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, false, true, false, true, true]);
        assert_eq!(decisions[3].retry_after, Duration::from_millis(1));
        assert_eq!(decisions[5].retry_after, Duration::from_millis(500));
    }

    #[test]
    fn a_long_pause_refills_only_to_the_burst() {
        let decisions = run(&LIMIT, &[0, 0, 0, 100_000, 100_000, 100_000, 100_000]);
        let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
        assert_eq!(allowed, [true, true, true, true, true, true, false]);
    }

    #[test]
    fn refusals_do_not_spend_budget() {
        // Hammering while refused must not push the next allowed moment further out.
        let mut instants = vec![0, 0, 0];
        instants.extend([10, 20, 30, 40, 50]);
        instants.push(1000);
        let decisions = run(&LIMIT, &instants);
        assert!(decisions[3..8].iter().all(|d| !d.allowed));
        assert!(decisions[8].allowed);
    }

    #[test]
    fn the_script_answer_and_the_model_agree() {
        // decide() is decision() over the backlog the script returns.
        let mut tat = None;
        for now in [0, 0, 0, 0, 500, 1000, 1000, 5000] {
            let now = now * MS;
            let (decision, stored) = LIMIT.decide(tat, now);
            let backlog = match stored {
                Some(new_tat) => new_tat - now,
                None => tat.unwrap_or(now).max(now) - now,
            };
            assert_eq!(LIMIT.decision(decision.allowed, backlog), decision);
            tat = stored.or(tat);
        }
    }

    #[test]
    fn rates_become_intervals() {
        assert_eq!(Gcra::per_minute(60, 10).interval_us, 1_000_000);
        assert_eq!(Gcra::per_minute(300, 50).interval_us, 200_000);
        assert_eq!(
            Gcra::per_minute(7, 1).interval_us,
            8_571_428,
            "no rounding to ms"
        );
        // 5000 per second for one key: impossible in whole milliseconds.
        assert_eq!(Gcra::per_minute(300_000, 1).interval_us, 200);
        assert_eq!(Gcra::per_minute(u32::MAX, 1).interval_us, 1, "never zero");
        assert_eq!(
            Gcra::per_minute(0, 0),
            Gcra::per_minute(1, 1),
            "clamped to 1"
        );
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero_for_a_refusal() {
        let refused = LIMIT.decision(false, 2001 * MS);
        assert_eq!(refused.retry_after, Duration::from_millis(1));
        assert_eq!(refused.retry_after_secs(), 1);
        let far = LIMIT.decision(false, 5500 * MS);
        assert_eq!(far.retry_after_secs(), 4);
        assert_eq!(LIMIT.decision(true, 1000 * MS).retry_after_secs(), 0);
        assert_eq!(LIMIT.decision(true, 1500 * MS).reset_secs(), 2);
        let just_over = LIMIT.decision(false, 2000 * MS + 1);
        assert_eq!(just_over.retry_after, Duration::from_micros(1));
    }
}
