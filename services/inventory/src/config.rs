//! The inventory service's configuration, from `INVENTORY_*` environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `INVENTORY_GRPC_ADDR` | `0.0.0.0:50052` | gRPC API |
//! | `INVENTORY_ADMIN_ADDR` | `0.0.0.0:9102` | `/healthz`, `/readyz`, `/metrics` |
//! | `INVENTORY_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/inventory` | this service's database |
//! | `INVENTORY_DB_MAX_CONNECTIONS` | `10` | pool size |
//! | `INVENTORY_SHUTDOWN_GRACE` | `10s` | drain time after SIGTERM (API calls, then the background workers) |
//! | `INVENTORY_AMQP_URL` | `amqp://guest:guest@127.0.0.1:5672/%2f` | RabbitMQ: the outbox relay publishes here, the order-event consumer reads here |
//! | `INVENTORY_EVENTS_EXCHANGE` | `shop.events` | the topic exchange of integration events |
//! | `INVENTORY_QUEUE_PREFIX` | *(empty)* | prepended to this service's queue names (`inventory.orders`); tests set a unique one |
//! | `INVENTORY_QUEUE_EXPIRY` | *(unset: never)* | delete this service's queues after this long without a consumer (`x-expires`, e.g. `60s`); for tests' uniquely named queues, never set in production |
//! | `INVENTORY_INBOX_RETENTION` | `14d` | how long a consumed event's inbox row is kept before the pruner deletes it, at least `1h` (`messaging::inbox`) |
//! | `INVENTORY_TLS_CA`, `INVENTORY_TLS_CERT`, `INVENTORY_TLS_KEY` | *(unset: plaintext, with a warning)* | PEM files of mutual TLS on the gRPC port: CA bundle, this service's chain, its key (`platform::tls`) |
//! | `INVENTORY_TLS` | *(unset)* | `off`: plaintext on purpose, and no per-method authorization |
//! | `INVENTORY_REDIS_URL` | `redis://127.0.0.1:6379` | the catalog cache (optional at run time: reads fall back to Postgres) |
//! | `INVENTORY_CACHE_PREFIX` | `inventory:v1` | namespace of every cache key; bump the version when the cached format changes |
//! | `INVENTORY_CACHE_TTL` | `60s` | lifetime of a cached entry (±20% jitter), 1s to 1h |
//! | `INVENTORY_CACHE_TIMEOUT` | `250ms` | longest wait for Redis before a read goes to Postgres, 10ms to 5s |
//! | `INVENTORY_RESERVATION_TTL` | `15m` | how long reserved units are held without a commit, 1s to 24h |
//! | `INVENTORY_SWEEP_INTERVAL` | `5s` | how often expired reservations are released, 100ms to 1h |
//! | `INVENTORY_SEED_DEMO` | `false` | fill an empty catalog with the demo products at start |
//!
//! The broker is not needed to start: the relay and the consumer connect (and reconnect) in the
//! background, and events wait in the outbox meanwhile.

use std::{ops::RangeInclusive, time::Duration};

use platform::config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults};

pub const DEFAULTS: RuntimeDefaults = RuntimeDefaults {
    grpc_port: 50052,
    admin_port: 9102,
    database: "inventory",
};

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub redis_url: String,
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
        let redis_url = env.string_or("REDIS_URL", "redis://127.0.0.1:6379");
        if let Err(err) = redis::Client::open(redis_url.as_str()) {
            return Err(ConfigError {
                variable: env.name("REDIS_URL"),
                value: platform::config::redact_url(&redis_url),
                reason: format!("not a Redis URL: {err}"),
            });
        }
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
            redis_url,
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
    fn local_defaults_need_no_variables() {
        let config = Config::from(&env(&[])).unwrap();
        assert_eq!(config.runtime.grpc_addr.port(), 50052);
        assert_eq!(config.runtime.admin_addr.port(), 9102);
        assert_eq!(
            config.runtime.database_url,
            "postgres://postgres@127.0.0.1:5432/inventory"
        );
        assert_eq!(config.redis_url, "redis://127.0.0.1:6379");
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
        assert_eq!(config.redis_url, "redis://cache:6380/2");
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
