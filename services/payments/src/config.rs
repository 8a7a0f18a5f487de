//! The payments service's configuration, from `PAYMENTS_*` environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PAYMENTS_GRPC_ADDR` | `0.0.0.0:50054` | gRPC API |
//! | `PAYMENTS_ADMIN_ADDR` | `0.0.0.0:9104` | `/healthz`, `/readyz`, `/metrics` |
//! | `PAYMENTS_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/payments` | this service's database |
//! | `PAYMENTS_DB_MAX_CONNECTIONS` | `10` | pool size |
//! | `PAYMENTS_SHUTDOWN_GRACE` | `10s` | drain time after SIGTERM |
//! | `PAYMENTS_AMQP_URL` | `amqp://guest:guest@127.0.0.1:5672/%2f` | RabbitMQ: the outbox relay publishes here, the order-event consumer reads here |
//! | `PAYMENTS_EVENTS_EXCHANGE` | `shop.events` | the topic exchange of integration events |
//! | `PAYMENTS_QUEUE_PREFIX` | *(empty)* | prepended to this service's queue names (`payments.orders`); tests set a unique one |
//! | `PAYMENTS_QUEUE_EXPIRY` | *(unset: never)* | delete this service's queues after this long without a consumer (`x-expires`, e.g. `60s`); for tests' uniquely named queues, never set in production |
//! | `PAYMENTS_INBOX_RETENTION` | `14d` | how long a consumed event's inbox row is kept before the pruner deletes it, at least `1h` (`messaging::inbox`) |
//! | `PAYMENTS_TLS_CA`, `PAYMENTS_TLS_CERT`, `PAYMENTS_TLS_KEY` | *(unset: plaintext, with a warning)* | PEM files of mutual TLS on the gRPC port: CA bundle, this service's chain, its key (`platform::tls`) |
//! | `PAYMENTS_TLS` | *(unset)* | `off`: plaintext on purpose, and no per-method authorization |
//! | `PAYMENTS_PROVIDER_LATENCY` | `0ms` | simulated provider: delay before every answer |
//! | `PAYMENTS_PROVIDER_ERROR_RATE` | `0` | simulated provider: probability (0.0–1.0) of a transient error |
//! | `PAYMENTS_PROVIDER_HANG` | `false` | simulated provider: never answer (`true`/`false`) |
//!
//! The broker is not needed to start: the relay and the consumer connect (and reconnect) in the
//! background, and events wait in the outbox meanwhile.
//!
//! The provider knobs exist for failure tests (`tests/` faults tier, the saga's retries and
//! deadlines); they are validated at start like every other setting.

use std::time::Duration;

use platform::config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults};

use crate::provider::ProviderFaults;

pub const DEFAULTS: RuntimeDefaults = RuntimeDefaults {
    grpc_port: 50054,
    admin_port: 9104,
    database: "payments",
};

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub provider: ProviderFaults,
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
