//! The orders service's configuration, from `ORDERS_*` environment variables.
//!
//! Every setting is declared once, with its default and meaning, in `declarations::orders::ORDERS`
//! (`libs/declarations/src/orders.rs`); docs/configuration.md is the table of them all (`cargo
//! xtask config-docs`). The test `reads_exactly_what_it_declares` below keeps the declaration and
//! this parser in step.

use std::time::Duration;

use platform::{
    config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults},
    grpc::upstream::EndpointSource,
};

use crate::{domain::SagaStep, participants::ParticipantsConfig};

pub const DEFAULTS: RuntimeDefaults = RuntimeDefaults::declared(&declarations::orders::ORDERS);

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
    /// Where inventory and payments are, and how they are called.
    pub participants: ParticipantsConfig,
    pub saga_deadline: Duration,
    pub saga_lease: Duration,
    pub saga_poll_interval: Duration,
    pub saga_retry_base: Duration,
    pub saga_retry_cap: Duration,
    pub crash_after: Option<SagaStep>,
    /// How long timeline entries are kept before their day's partition is dropped.
    pub timeline_retention: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::new("orders"))
    }

    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let source = |setting: &str, default: &str| -> Result<EndpointSource, ConfigError> {
            let value = env.string_or(setting, default);
            EndpointSource::parse(&value).map_err(|reason| ConfigError {
                variable: env.name(setting),
                value,
                reason,
            })
        };
        let positive = |setting: &str, default: Duration| -> Result<Duration, ConfigError> {
            let value = env.duration_or(setting, default)?;
            if value.is_zero() {
                return Err(ConfigError {
                    variable: env.name(setting),
                    value: "0".to_owned(),
                    reason: "must be greater than zero".to_owned(),
                });
            }
            Ok(value)
        };
        let crash_after = match env.raw("FAULT_CRASH_AFTER") {
            None => None,
            Some(raw) => Some(SagaStep::parse(raw.trim()).ok_or_else(|| ConfigError {
                variable: env.name("FAULT_CRASH_AFTER"),
                value: raw.clone(),
                reason: "expected a saga step such as reserve_stock".to_owned(),
            })?),
        };
        let runtime = RuntimeConfig::from_env(env, DEFAULTS)?;
        Ok(Self {
            participants: ParticipantsConfig {
                // The same identity on both sides: orders serves and calls as `orders`.
                tls: runtime.tls.files().cloned(),
                inventory: source("INVENTORY_URL", "http://127.0.0.1:50052")?,
                payments: source("PAYMENTS_URL", "http://127.0.0.1:50054")?,
                call_timeout: positive("CALL_TIMEOUT", Duration::from_secs(2))?,
                dns_refresh: positive("DNS_REFRESH", Duration::from_secs(10))?,
                health_checks: env
                    .interval_or_off("HEALTH_CHECK_INTERVAL", Duration::from_secs(10))?,
            },
            runtime,
            saga_deadline: positive("SAGA_DEADLINE", Duration::from_secs(120))?,
            saga_lease: positive("SAGA_LEASE", Duration::from_secs(30))?,
            saga_poll_interval: positive("SAGA_POLL_INTERVAL", Duration::from_secs(1))?,
            saga_retry_base: positive("SAGA_RETRY_BASE", Duration::from_millis(200))?,
            saga_retry_cap: positive("SAGA_RETRY_CAP", Duration::from_secs(10))?,
            crash_after,
            timeline_retention: positive("TIMELINE_RETENTION", Duration::from_secs(90 * 86_400))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs("orders", vars)
    }

    #[test]
    fn reads_exactly_what_it_declares() {
        let env = env(&[]);
        Config::from(&env).unwrap();
        env.check_declared(&declarations::orders::ORDERS).unwrap();
    }

    #[test]
    fn local_defaults_need_no_variables() {
        let config = Config::from(&env(&[])).unwrap();
        assert_eq!(config.runtime.grpc_addr.port(), 50053);
        assert_eq!(
            config.participants.inventory,
            EndpointSource::Static(vec!["http://127.0.0.1:50052".to_owned()])
        );
        assert_eq!(config.saga_deadline, Duration::from_secs(120));
        assert_eq!(config.crash_after, None);
        assert_eq!(config.timeline_retention, Duration::from_secs(90 * 86_400));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, value) in [
            ("ORDERS_INVENTORY_URL", "inventory:50052"),
            ("ORDERS_PAYMENTS_URL", "dns://payments-headless"),
            ("ORDERS_DNS_REFRESH", "0s"),
            ("ORDERS_CALL_TIMEOUT", "0s"),
            ("ORDERS_SAGA_LEASE", "forever"),
            ("ORDERS_FAULT_CRASH_AFTER", "lunch"),
        ] {
            let err = Config::from(&env(&[(variable, value)])).unwrap_err();
            assert_eq!(err.variable, variable);
        }
    }

    #[test]
    fn participants_may_be_a_list_or_a_dns_name() {
        let config = Config::from(&env(&[
            (
                "ORDERS_INVENTORY_URL",
                "http://10.0.0.1:50052, http://10.0.0.2:50052",
            ),
            ("ORDERS_PAYMENTS_URL", "dns://payments-headless:50054"),
            ("ORDERS_HEALTH_CHECK_INTERVAL", "off"),
        ]))
        .unwrap();
        assert_eq!(
            config.participants.inventory,
            EndpointSource::Static(vec![
                "http://10.0.0.1:50052".to_owned(),
                "http://10.0.0.2:50052".to_owned()
            ])
        );
        assert_eq!(
            config.participants.payments,
            EndpointSource::Dns {
                host: "payments-headless".to_owned(),
                port: 50054
            }
        );
        assert_eq!(config.participants.health_checks, None);
    }

    #[test]
    fn the_crash_knob_names_a_step() {
        let config =
            Config::from(&env(&[("ORDERS_FAULT_CRASH_AFTER", "authorize_payment")])).unwrap();
        assert_eq!(config.crash_after, Some(SagaStep::AuthorizePayment));
    }
}
