//! The payments service's configuration, from `PAYMENTS_*` environment variables.
//!
//! Every setting is declared once, with its default and meaning, in
//! `declarations::payments::PAYMENTS` (`libs/declarations/src/payments.rs`); docs/configuration.md
//! is the table of them all (`cargo xtask config-docs`). The test `reads_exactly_what_it_declares`
//! below keeps the declaration and this parser in step.
//!
//! The broker is not needed to start: the relay and the consumer connect (and reconnect) in the
//! background, and events wait in the outbox meanwhile.
//!
//! The provider knobs exist for failure tests (`tests/` faults tier, the saga's retries and
//! deadlines); they are validated at start like every other setting.

use std::time::Duration;

use platform::config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults};

use crate::provider::ProviderFaults;

pub const DEFAULTS: RuntimeDefaults = RuntimeDefaults::declared(&declarations::payments::PAYMENTS);

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub provider: ProviderFaults,
    /// How long payment events stay in the ledger before their day's partition is detached for
    /// archiving; `None` (the default) keeps them.
    pub events_retention: Option<Duration>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::new("payments"))
    }

    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let error_rate: f64 = env.parse_or("PROVIDER_ERROR_RATE", 0.0)?;
        // `contains` is false for NaN, so "NaN" is refused here too.
        if !(0.0..=1.0).contains(&error_rate) {
            return Err(ConfigError {
                variable: env.name("PROVIDER_ERROR_RATE"),
                value: env.raw("PROVIDER_ERROR_RATE").unwrap_or_default(),
                reason: "must be a probability between 0.0 and 1.0".to_owned(),
            });
        }
        let hang = match env.raw("PROVIDER_HANG") {
            None => false,
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConfigError {
                        variable: env.name("PROVIDER_HANG"),
                        value: raw,
                        reason: "must be true or false".to_owned(),
                    });
                }
            },
        };
        Ok(Self {
            runtime: RuntimeConfig::from_env(env, DEFAULTS)?,
            provider: ProviderFaults {
                latency: env.duration_or("PROVIDER_LATENCY", Duration::ZERO)?,
                error_rate,
                hang,
            },
            events_retention: match env.raw("EVENTS_RETENTION") {
                None => None,
                Some(_) => Some(env.duration_or("EVENTS_RETENTION", Duration::ZERO)?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs("payments", vars)
    }

    #[test]
    fn reads_exactly_what_it_declares() {
        let env = env(&[]);
        Config::from(&env).unwrap();
        env.check_declared(&declarations::payments::PAYMENTS)
            .unwrap();
    }

    #[test]
    fn local_defaults_need_no_variables() {
        let config = Config::from(&env(&[])).unwrap();
        assert_eq!(config.runtime.grpc_addr.port(), 50054);
        assert_eq!(config.runtime.admin_addr.port(), 9104);
        assert_eq!(
            config.runtime.database_url,
            "postgres://postgres@127.0.0.1:5432/payments"
        );
        assert_eq!(config.provider, ProviderFaults::default());
        assert_eq!(config.runtime.events_exchange, "shop.events");
        assert_eq!(
            config.runtime.queue_name("payments.orders"),
            "payments.orders"
        );
        assert_eq!(config.runtime.queue_expiry, None);
    }

    #[test]
    fn broker_settings_are_read_with_the_payments_prefix() {
        let config = Config::from(&env(&[
            ("PAYMENTS_AMQP_URL", "amqp://user:pw@rabbit:5672/%2f"),
            ("PAYMENTS_EVENTS_EXCHANGE", "test.events"),
            ("PAYMENTS_QUEUE_PREFIX", "test.events."),
            ("PAYMENTS_QUEUE_EXPIRY", "60s"),
        ]))
        .unwrap();
        assert_eq!(config.runtime.amqp_url, "amqp://user:pw@rabbit:5672/%2f");
        assert_eq!(config.runtime.events_exchange, "test.events");
        assert_eq!(
            config.runtime.queue_name("payments.orders"),
            "test.events.payments.orders"
        );
        assert_eq!(config.runtime.queue_expiry, Some(Duration::from_secs(60)));
    }

    #[test]
    fn fault_knobs_are_read() {
        let config = Config::from(&env(&[
            ("PAYMENTS_PROVIDER_LATENCY", "250ms"),
            ("PAYMENTS_PROVIDER_ERROR_RATE", "0.25"),
            ("PAYMENTS_PROVIDER_HANG", "TRUE"),
        ]))
        .unwrap();
        assert_eq!(
            config.provider,
            ProviderFaults {
                latency: Duration::from_millis(250),
                error_rate: 0.25,
                hang: true,
            }
        );
        let config = Config::from(&env(&[("PAYMENTS_PROVIDER_ERROR_RATE", "1")])).unwrap();
        assert!((config.provider.error_rate - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn invalid_knobs_name_their_variable() {
        let cases = [
            ("PAYMENTS_PROVIDER_LATENCY", "250"),
            ("PAYMENTS_PROVIDER_LATENCY", "fast"),
            ("PAYMENTS_PROVIDER_ERROR_RATE", "1.5"),
            ("PAYMENTS_PROVIDER_ERROR_RATE", "-0.1"),
            ("PAYMENTS_PROVIDER_ERROR_RATE", "NaN"),
            ("PAYMENTS_PROVIDER_ERROR_RATE", "often"),
            ("PAYMENTS_PROVIDER_HANG", "yes"),
            ("PAYMENTS_GRPC_ADDR", "localhost"),
            ("PAYMENTS_AMQP_URL", "http://rabbit"),
            ("PAYMENTS_QUEUE_EXPIRY", "0s"),
            ("PAYMENTS_QUEUE_EXPIRY", "60"),
        ];
        for (variable, value) in cases {
            let err = Config::from(&env(&[(variable, value)])).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
            assert!(err.to_string().contains(variable), "{err}");
        }
    }
}
