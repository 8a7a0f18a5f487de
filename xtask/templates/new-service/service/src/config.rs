//! The {{name}} service's configuration, from `{{PREFIX}}_*` environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `{{PREFIX}}_GRPC_ADDR` | `0.0.0.0:{{grpc_port}}` | gRPC API |
//! | `{{PREFIX}}_ADMIN_ADDR` | `0.0.0.0:{{admin_port}}` | `/healthz`, `/readyz`, `/metrics` |
//! | `{{PREFIX}}_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/{{snake}}` | this service's database |
//! | `{{PREFIX}}_DB_MAX_CONNECTIONS` | `10` | pool size |
//! | `{{PREFIX}}_SHUTDOWN_GRACE` | `10s` | drain time after SIGTERM |
//! | `{{PREFIX}}_AMQP_URL` | `amqp://guest:guest@127.0.0.1:5672/%2f` | RabbitMQ: the outbox relay publishes here{{#if consumes}}, the `{{queue}}` consumer reads here{{/if}} |
//! | `{{PREFIX}}_EVENTS_EXCHANGE` | `shop.events` | the topic exchange of integration events |
//! | `{{PREFIX}}_QUEUE_PREFIX` | *(empty)* | prepended to this service's queue names; tests set a unique one |
//! | `{{PREFIX}}_QUEUE_EXPIRY` | *(unset: never)* | delete this service's queues after this long without a consumer (`x-expires`, e.g. `60s`); for tests' uniquely named queues, never set in production |
//! | `{{PREFIX}}_INBOX_RETENTION` | `14d` | how long a consumed event's inbox row is kept before the pruner deletes it, at least `1h` (`messaging::inbox`) |
//!
//! The broker is not needed to start: the relay{{#if consumes}} and the consumer{{/if}} connect (and
//! reconnect) in the background, and events wait in the outbox meanwhile.
//!
//! A setting of the service's own is read in [`Config::from`] with the `Env` helpers
//! (`env.duration_or("RETRY_AFTER", …)` reads `{{PREFIX}}_RETRY_AFTER`), gets a row in the table
//! above, and a line in `k8s/base/{{name}}/config.env` when a deployment should set it.

use platform::config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults};

pub const DEFAULTS: RuntimeDefaults = RuntimeDefaults {
    grpc_port: {{grpc_port}},
    admin_port: {{admin_port}},
    database: "{{snake}}",
};

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::new("{{snake}}"))
    }

    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            runtime: RuntimeConfig::from_env(env, DEFAULTS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs("{{snake}}", vars)
    }

    #[test]
    fn local_defaults_need_no_variables() {
        let config = Config::from(&env(&[])).unwrap();
        assert_eq!(config.runtime.grpc_addr.port(), {{grpc_port}});
        assert_eq!(config.runtime.admin_addr.port(), {{admin_port}});
        assert_eq!(
            config.runtime.database_url,
            "postgres://postgres@127.0.0.1:5432/{{snake}}"
        );
        assert_eq!(config.runtime.events_exchange, "shop.events");
        assert_eq!(config.runtime.queue_expiry, None);
    }

    #[test]
    fn settings_are_read_with_the_{{snake}}_prefix() {
        let config = Config::from(&env(&[
            ("{{PREFIX}}_AMQP_URL", "amqp://user:pw@rabbit:5672/%2f"),
            ("{{PREFIX}}_QUEUE_PREFIX", "test."),
            ("{{PREFIX}}_QUEUE_EXPIRY", "60s"),
        ]))
        .unwrap();
        assert_eq!(config.runtime.amqp_url, "amqp://user:pw@rabbit:5672/%2f");
        assert_eq!(config.runtime.queue_name("x"), "test.x");
        assert_eq!(config.runtime.queue_expiry, Some(Duration::from_secs(60)));
    }

    #[test]
    fn invalid_settings_name_their_variable() {
        for (variable, value) in [
            ("{{PREFIX}}_GRPC_ADDR", "localhost"),
            ("{{PREFIX}}_DATABASE_URL", "mysql://db"),
            ("{{PREFIX}}_QUEUE_EXPIRY", "60"),
        ] {
            let err = Config::from(&env(&[(variable, value)])).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
        }
    }
}
