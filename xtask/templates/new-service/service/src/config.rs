//! The {{name}} service's configuration, from `{{PREFIX}}_*` environment variables.
//!
//! Every setting is declared once, with its default and meaning, in
//! `declarations::{{snake}}::{{PREFIX}}` (`libs/declarations/src/{{snake}}.rs`);
//! docs/configuration.md is the table of them all (`cargo xtask config-docs`). The test
//! `reads_exactly_what_it_declares` below keeps the declaration and this parser in step.
//!
//! The broker is not needed to start: the relay{{#if consumes}} and the consumer{{/if}} connect (and
//! reconnect) in the background, and events wait in the outbox meanwhile.
//!
//! A setting of the service's own is read in [`Config::from`] with the `Env` helpers
//! (`env.duration_or("RETRY_AFTER", …)` reads `{{PREFIX}}_RETRY_AFTER`), is declared in
//! `libs/declarations/src/{{snake}}.rs` (then `cargo xtask config-docs`), and gets a line in
//! `k8s/base/{{name}}/config.env` when a deployment should set it.

use platform::config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults};

pub const DEFAULTS: RuntimeDefaults = RuntimeDefaults::declared(&declarations::{{snake}}::{{PREFIX}});

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
    fn reads_exactly_what_it_declares() {
        let env = env(&[]);
        Config::from(&env).unwrap();
        env.check_declared(&declarations::{{snake}}::{{PREFIX}}).unwrap();
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
