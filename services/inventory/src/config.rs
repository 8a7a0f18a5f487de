//! The inventory service's configuration, from `INVENTORY_*` environment variables.
//!
//! Every setting is declared once, with its default and meaning, in
//! `declarations::inventory::INVENTORY` (`libs/declarations/src/inventory.rs`);
//! docs/configuration.md is the table of them all (`cargo xtask config-docs`). The test
//! `reads_exactly_what_it_declares` below keeps the declaration and this parser in step.
//!
//! The broker is not needed to start: the relay and the consumer connect (and reconnect) in the
//! background, and events wait in the outbox meanwhile.

use std::{ops::RangeInclusive, time::Duration};

use platform::config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults};
use redis_guard::RedisTarget;

pub const DEFAULTS: RuntimeDefaults =
    RuntimeDefaults::declared(&declarations::inventory::INVENTORY);

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
    /// `INVENTORY_REDIS_URL`, or the primary `INVENTORY_REDIS_SENTINELS` name for
    /// `INVENTORY_REDIS_MASTER` (which take precedence; see `redis_guard::target`).
    pub redis: RedisTarget,
    pub cache_prefix: String,
    pub cache_ttl: Duration,
    pub cache_timeout: Duration,
    pub reservation_ttl: Duration,
    pub sweep_interval: Duration,
    pub seed_demo: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::new("inventory"))
    }

    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let redis =
            RedisTarget::from_settings(|setting| env.raw(setting), "redis://127.0.0.1:6379")
                .map_err(|err| env.invalid(err.setting, err.reason))?;
        let cache_prefix = env.string_or("CACHE_PREFIX", "inventory:v1");
        if cache_prefix.len() > 100
            || cache_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError {
                variable: env.name("CACHE_PREFIX"),
                value: cache_prefix,
                reason: "must be at most 100 characters without spaces".to_owned(),
            });
        }
        Ok(Self {
            runtime: RuntimeConfig::from_env(env, DEFAULTS)?,
            redis,
            cache_prefix,
            cache_ttl: bounded(
                env,
                "CACHE_TTL",
                Duration::from_secs(60),
                Duration::from_secs(1)..=Duration::from_secs(3600),
                "between 1s and 1h",
            )?,
            cache_timeout: bounded(
                env,
                "CACHE_TIMEOUT",
                Duration::from_millis(250),
                Duration::from_millis(10)..=Duration::from_secs(5),
                "between 10ms and 5s",
            )?,
            reservation_ttl: bounded(
                env,
                "RESERVATION_TTL",
                Duration::from_secs(15 * 60),
                Duration::from_secs(1)..=Duration::from_secs(24 * 3600),
                "between 1s and 24h",
            )?,
            sweep_interval: bounded(
                env,
                "SWEEP_INTERVAL",
                Duration::from_secs(5),
                Duration::from_millis(100)..=Duration::from_secs(3600),
                "between 100ms and 1h",
            )?,
            seed_demo: env.parse_or("SEED_DEMO", false)?,
        })
    }
}

fn bounded(
    env: &Env,
    setting: &str,
    default: Duration,
    range: RangeInclusive<Duration>,
    expected: &str,
) -> Result<Duration, ConfigError> {
    let value = env.duration_or(setting, default)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError {
            variable: env.name(setting),
            value: env.raw(setting).unwrap_or_default(),
            reason: format!("must be {expected}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs("inventory", vars)
    }

    #[test]
    fn reads_exactly_what_it_declares() {
        let env = env(&[]);
        Config::from(&env).unwrap();
        env.check_declared(&declarations::inventory::INVENTORY)
            .unwrap();
    }

    #[test]
    fn local_defaults_need_no_variables() {
        let config = Config::from(&env(&[])).unwrap();
        assert_eq!(config.runtime.grpc_addr.port(), 50052);
        assert_eq!(config.runtime.admin_addr.port(), 9102);
        assert_eq!(
            config.runtime.database_url,
            "postgres://postgres@127.0.0.1:5432/inventory"
        );
        assert_eq!(
            config.redis,
            RedisTarget::Url("redis://127.0.0.1:6379".to_owned())
        );
        assert_eq!(config.cache_prefix, "inventory:v1");
        assert_eq!(config.cache_ttl, Duration::from_secs(60));
        assert_eq!(config.cache_timeout, Duration::from_millis(250));
        assert_eq!(config.reservation_ttl, Duration::from_secs(900));
        assert_eq!(config.sweep_interval, Duration::from_secs(5));
        assert!(!config.seed_demo);
        assert_eq!(
            config.runtime.amqp_url,
            "amqp://guest:guest@127.0.0.1:5672/%2f"
        );
        assert_eq!(config.runtime.events_exchange, "shop.events");
        assert_eq!(
            config.runtime.queue_name("inventory.orders"),
            "inventory.orders"
        );
        assert_eq!(config.runtime.queue_expiry, None);
    }

    #[test]
    fn settings_are_read_with_the_inventory_prefix() {
        let config = Config::from(&env(&[
            ("INVENTORY_REDIS_URL", "redis://cache:6380/2"),
            ("INVENTORY_CACHE_PREFIX", "test:inventory"),
            ("INVENTORY_CACHE_TTL", "5m"),
            ("INVENTORY_RESERVATION_TTL", "2s"),
            ("INVENTORY_SWEEP_INTERVAL", "250ms"),
            ("INVENTORY_SEED_DEMO", "true"),
            ("INVENTORY_AMQP_URL", "amqp://shop:secret@rabbit:5672/shop"),
            ("INVENTORY_EVENTS_EXCHANGE", "test.events"),
            ("INVENTORY_QUEUE_PREFIX", "run-7."),
            ("INVENTORY_QUEUE_EXPIRY", "60s"),
        ]))
        .unwrap();
        assert_eq!(
            config.redis,
            RedisTarget::Url("redis://cache:6380/2".to_owned())
        );
        assert_eq!(config.cache_prefix, "test:inventory");
        assert_eq!(config.cache_ttl, Duration::from_secs(300));
        assert_eq!(config.reservation_ttl, Duration::from_secs(2));
        assert_eq!(config.sweep_interval, Duration::from_millis(250));
        assert!(config.seed_demo);
        assert_eq!(
            config.runtime.amqp_url,
            "amqp://shop:secret@rabbit:5672/shop"
        );
        assert_eq!(config.runtime.events_exchange, "test.events");
        assert_eq!(
            config.runtime.queue_name("inventory.orders"),
            "run-7.inventory.orders"
        );
        assert_eq!(config.runtime.queue_expiry, Some(Duration::from_secs(60)));
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let cases = [
            ("INVENTORY_REDIS_URL", "http://cache:6379"),
            ("INVENTORY_CACHE_PREFIX", "has space"),
            ("INVENTORY_CACHE_TTL", "0s"),
            ("INVENTORY_CACHE_TTL", "2h"),
            ("INVENTORY_CACHE_TIMEOUT", "1ms"),
            ("INVENTORY_RESERVATION_TTL", "forever"),
            ("INVENTORY_RESERVATION_TTL", "500ms"),
            ("INVENTORY_RESERVATION_TTL", "25h"),
            ("INVENTORY_SWEEP_INTERVAL", "10ms"),
            ("INVENTORY_SEED_DEMO", "maybe"),
            ("INVENTORY_GRPC_ADDR", "localhost"),
            ("INVENTORY_AMQP_URL", "http://rabbit:5672"),
            ("INVENTORY_QUEUE_EXPIRY", "0s"),
            ("INVENTORY_QUEUE_EXPIRY", "soon"),
        ];
        for (variable, value) in cases {
            let err = Config::from(&env(&[(variable, value)])).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
            assert!(err.to_string().contains(variable), "{err}");
        }
    }

    #[test]
    fn redis_through_sentinel_takes_precedence_over_the_url() {
        let config = Config::from(&env(&[
            ("INVENTORY_REDIS_URL", "redis://redis:6379"),
            (
                "INVENTORY_REDIS_SENTINELS",
                "sentinel-0:26379, sentinel-1:26379",
            ),
            ("INVENTORY_REDIS_MASTER", "ferroshop"),
        ]))
        .unwrap();
        let RedisTarget::Sentinel { sentinels, master } = config.redis else {
            panic!("{:?}", config.redis);
        };
        assert_eq!(master, "ferroshop");
        assert_eq!(sentinels[1].to_string(), "sentinel-1:26379");
    }

    #[test]
    fn a_bad_sentinel_address_names_its_variable() {
        let err = Config::from(&env(&[
            (
                "INVENTORY_REDIS_SENTINELS",
                "sentinel-0:26379,sentinel-1:port",
            ),
            ("INVENTORY_REDIS_MASTER", "ferroshop"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "INVENTORY_REDIS_SENTINELS");
        assert!(err.reason.contains("sentinel-1:port"), "{err}");
    }

    #[test]
    fn a_redis_password_is_never_echoed() {
        let err = Config::from(&env(&[(
            "INVENTORY_REDIS_URL",
            "rediss-ish://u:hunter2@cache",
        )]))
        .unwrap_err();
        assert_eq!(err.variable, "INVENTORY_REDIS_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
