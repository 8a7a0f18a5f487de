//! The settings of a circuit breaker, checked before a breaker is built so that a
//! misconfigured service fails at start-up, naming the setting, rather than misbehaving later.

use std::time::Duration;

use crate::InvalidConfig;

/// When a [`CircuitBreaker`](super::CircuitBreaker) opens and how it recovers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Open after this many upstream failures in a row.
    pub failure_threshold: u32,
    /// Open when at least this fraction of the calls in the window failed, in `(0, 1]`.
    pub failure_rate: f64,
    /// How many of the most recent calls the failure rate is computed over.
    pub window: u32,
    /// The failure rate is only judged once the window holds this many calls (1..=window), so
    /// one failure out of one call does not count as "100% failing".
    pub minimum_calls: u32,
    /// How long to reject calls before probing the upstream again.
    pub open_for: Duration,
    /// Trial calls let through while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            failure_rate: 0.5,
            window: 20,
            minimum_calls: 10,
            open_for: Duration::from_secs(5),
            half_open_probes: 3,
        }
    }
}

impl BreakerConfig {
    /// Checks the settings, naming the first one that is unusable.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if self.failure_threshold == 0 {
            return Err(InvalidConfig::new(
                "failure_threshold",
                "must be at least 1",
            ));
        }
        if !(self.failure_rate.is_finite() && self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            let reason = format!("must be in (0, 1], got {}", self.failure_rate);
            return Err(InvalidConfig::new("failure_rate", reason));
        }
        if self.window == 0 {
            return Err(InvalidConfig::new("window", "must be at least 1"));
        }
        if self.minimum_calls == 0 || self.minimum_calls > self.window {
            let reason = format!("must be in 1..={}, got {}", self.window, self.minimum_calls);
            return Err(InvalidConfig::new("minimum_calls", reason));
        }
        if self.open_for.is_zero() {
            return Err(InvalidConfig::new("open_for", "must be longer than zero"));
        }
        if self.half_open_probes == 0 {
            return Err(InvalidConfig::new("half_open_probes", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_valid() {
        assert_eq!(BreakerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn unusable_settings_are_named() {
        type Break = fn(&mut BreakerConfig);
        let cases: [(Break, &str); 9] = [
            (|c| c.failure_threshold = 0, "failure_threshold"),
            (|c| c.failure_rate = 0.0, "failure_rate"),
            (|c| c.failure_rate = 1.01, "failure_rate"),
            (|c| c.failure_rate = f64::NAN, "failure_rate"),
            (|c| (c.window, c.minimum_calls) = (0, 0), "window"),
            (|c| c.minimum_calls = 0, "minimum_calls"),
            (|c| c.minimum_calls = c.window + 1, "minimum_calls"),
            (|c| c.open_for = Duration::ZERO, "open_for"),
            (|c| c.half_open_probes = 0, "half_open_probes"),
        ];
        for (break_it, setting) in cases {
            let mut config = BreakerConfig::default();
            break_it(&mut config);
            assert_eq!(
                config.validate().unwrap_err().setting,
                setting,
                "{config:?}"
            );
        }
    }

    #[test]
    fn the_edges_of_each_range_are_accepted() {
        let config = BreakerConfig {
            failure_threshold: 1,
            failure_rate: 1.0,
            window: 1,
            minimum_calls: 1,
            open_for: Duration::from_nanos(1),
            half_open_probes: 1,
        };
        assert_eq!(config.validate(), Ok(()));
    }
}
