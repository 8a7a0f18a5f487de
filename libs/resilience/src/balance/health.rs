//! Passive health checking ("outlier detection"): an endpoint that keeps failing is taken out of
//! rotation for a while, without anyone having to ask it how it feels.
//!
//! Every finished call reports whether the *endpoint* failed it (connection refused, reset,
//! deadline missed: the caller's classifier decides). After `consecutive_failures` failures in a
//! row the endpoint is **ejected** for `base_ejection`; when that time is up it comes back **on
//! probation**: its first call decides. A success clears the record; a failure ejects it again at
//! once, for longer each time (`base_ejection × ejections`, capped at `max_ejection`), so a
//! replica that is really gone costs one failed call per ejection period instead of a stream of
//! them, while one that merely restarted is back within one period.
//!
//! This is Envoy's *consecutive gateway failure* outlier detection, minus its statistics. It is
//! deliberately separate from the circuit breaker: the breaker judges the *service* (all its
//! replicas together) and decides whether to call at all; ejection judges one *replica* and
//! decides where to send the call. With three replicas and one dead, the breaker stays closed and
//! ejection routes around the dead one.

use std::time::{Duration, Instant};

use crate::InvalidConfig;

/// When an endpoint is ejected and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EjectionConfig {
    /// Failures in a row that eject an endpoint.
    pub consecutive_failures: u32,
    /// How long the first ejection lasts; the n-th lasts n times as long.
    pub base_ejection: Duration,
    /// The longest an ejection lasts.
    pub max_ejection: Duration,
}

impl Default for EjectionConfig {
    /// Envoy's defaults: five failures in a row, 30 s, growing to at most 5 min.
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
        }
    }
}

impl EjectionConfig {
    /// Checks the settings, naming the first one that is unusable.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if self.consecutive_failures == 0 {
            return Err(InvalidConfig::new(
                "consecutive_failures",
                "must be at least 1",
            ));
        }
        if self.base_ejection.is_zero() {
            return Err(InvalidConfig::new(
                "base_ejection",
                "must be longer than zero",
            ));
        }
        if self.max_ejection < self.base_ejection {
            return Err(InvalidConfig::new(
                "max_ejection",
                format!(
                    "must be at least base_ejection ({:?}), got {:?}",
                    self.base_ejection, self.max_ejection
                ),
            ));
        }
        Ok(())
    }

    /// How long the `nth` ejection in a row lasts (1-based): `min(max, base · n)`.
    pub fn ejection_time(&self, nth: u32) -> Duration {
        self.base_ejection
            .saturating_mul(nth.max(1))
            .min(self.max_ejection)
    }
}

/// What a finished call says about the endpoint that served it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered (any answer about the request counts: NOT_FOUND is a healthy reply).
    Success,
    /// The endpoint failed to answer: refused, reset, too slow, overloaded.
    Failure,
}

/// A change in an endpoint's standing, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Taken out of rotation for this long.
    Ejected(Duration),
    /// Its ejection ended; it is back on probation.
    Returned,
}

/// The passive health record of one endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Health {
    consecutive_failures: u32,
    /// Ejections in a row, without a success in between.
    ejections: u32,
    ejected_until: Option<Instant>,
    on_probation: bool,
}

impl Health {
    /// Whether the endpoint is out of rotation at `now`.
    pub(crate) fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|until| now < until)
    }

    /// Ends an ejection whose time is up, reporting the return.
    pub(crate) fn refresh(&mut self, now: Instant) -> Option<Transition> {
        match self.ejected_until {
            Some(until) if now >= until => {
                self.ejected_until = None;
                self.on_probation = true;
                self.consecutive_failures = 0;
                Some(Transition::Returned)
            }
            _ => None,
        }
    }

    /// Records a call's outcome at `now`; returns the ejection it caused, if any.
    pub(crate) fn record(
        &mut self,
        outcome: Outcome,
        now: Instant,
        config: &EjectionConfig,
    ) -> Option<Transition> {
        // A late answer from a call made before the endpoint was ejected changes nothing.
        if self.is_ejected(now) {
            return None;
        }
        match outcome {
            Outcome::Success => {
                *self = Self::default();
                None
            }
            Outcome::Failure => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                let eject =
                    self.on_probation || self.consecutive_failures >= config.consecutive_failures;
                eject.then(|| self.eject(now, config))
            }
        }
    }

    fn eject(&mut self, now: Instant, config: &EjectionConfig) -> Transition {
        self.ejections = self.ejections.saturating_add(1);
        let time = config.ejection_time(self.ejections);
        self.ejected_until = Some(now + time);
        self.on_probation = false;
        self.consecutive_failures = 0;
        Transition::Ejected(time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: EjectionConfig = EjectionConfig {
        consecutive_failures: 3,
        base_ejection: Duration::from_secs(10),
        max_ejection: Duration::from_secs(25),
    };

    fn fail(health: &mut Health, now: Instant) -> Option<Transition> {
        health.record(Outcome::Failure, now, &CONFIG)
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_in_between_forgives() {
        let now = Instant::now();
        let mut health = Health::default();
        assert_eq!(fail(&mut health, now), None);
        assert_eq!(fail(&mut health, now), None);
        assert_eq!(health.record(Outcome::Success, now, &CONFIG), None);
        assert_eq!(fail(&mut health, now), None);
        assert_eq!(fail(&mut health, now), None);
        assert!(!health.is_ejected(now));
        assert_eq!(
            fail(&mut health, now),
            Some(Transition::Ejected(Duration::from_secs(10)))
        );
        assert!(health.is_ejected(now));
        assert!(health.is_ejected(now + Duration::from_millis(9999)));
        assert!(!health.is_ejected(now + Duration::from_secs(10)));
    }

    #[test]
    fn a_returning_endpoint_is_on_probation_and_ejections_grow_to_the_cap() {
        let mut now = Instant::now();
        let mut health = Health::default();
        for _ in 0..3 {
            fail(&mut health, now);
        }
        let mut expected = [20, 25, 25].into_iter().map(Duration::from_secs);
        for _ in 0..3 {
            assert_eq!(health.refresh(now), None, "still ejected");
            now += Duration::from_secs(30);
            assert_eq!(health.refresh(now), Some(Transition::Returned));
            assert!(!health.is_ejected(now));
            // On probation, one failure is enough, and the ejection is longer.
            let time = expected.next().unwrap();
            assert_eq!(fail(&mut health, now), Some(Transition::Ejected(time)));
        }
    }

    #[test]
    fn a_success_on_probation_restores_full_standing() {
        let mut now = Instant::now();
        let mut health = Health::default();
        for _ in 0..3 {
            fail(&mut health, now);
        }
        now += Duration::from_secs(10);
        health.refresh(now);
        assert_eq!(health.record(Outcome::Success, now, &CONFIG), None);
        assert_eq!(health, Health::default());
        assert_eq!(fail(&mut health, now), None, "no longer on probation");
    }

    #[test]
    fn late_outcomes_during_an_ejection_are_ignored() {
        let now = Instant::now();
        let mut health = Health::default();
        for _ in 0..3 {
            fail(&mut health, now);
        }
        let ejected = health.clone();
        assert_eq!(health.record(Outcome::Success, now, &CONFIG), None);
        assert_eq!(fail(&mut health, now), None);
        assert_eq!(health, ejected);
    }

    #[test]
    fn ejection_times_grow_linearly_and_saturate() {
        assert_eq!(CONFIG.ejection_time(0), Duration::from_secs(10));
        assert_eq!(CONFIG.ejection_time(1), Duration::from_secs(10));
        assert_eq!(CONFIG.ejection_time(2), Duration::from_secs(20));
        assert_eq!(CONFIG.ejection_time(u32::MAX), Duration::from_secs(25));
    }

    #[test]
    fn unusable_settings_are_named() {
        let zero_failures = EjectionConfig {
            consecutive_failures: 0,
            ..CONFIG
        };
        assert_eq!(
            zero_failures.validate().unwrap_err().setting,
            "consecutive_failures"
        );
        let zero_time = EjectionConfig {
            base_ejection: Duration::ZERO,
            ..CONFIG
        };
        assert_eq!(zero_time.validate().unwrap_err().setting, "base_ejection");
        let small_cap = EjectionConfig {
            max_ejection: Duration::from_secs(1),
            ..CONFIG
        };
        assert_eq!(small_cap.validate().unwrap_err().setting, "max_ejection");
        assert_eq!(EjectionConfig::default().validate(), Ok(()));
    }
}
