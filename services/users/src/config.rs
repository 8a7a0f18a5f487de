//! The users service's configuration, from `USERS_*` environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `USERS_GRPC_ADDR` | `0.0.0.0:50051` | gRPC API |
//! | `USERS_ADMIN_ADDR` | `0.0.0.0:9101` | `/healthz`, `/readyz`, `/metrics` |
//! | `USERS_DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/users` | this service's database |
//! | `USERS_DB_MAX_CONNECTIONS` | `10` | pool size |
//! | `USERS_SHUTDOWN_GRACE` | `10s` | drain time after SIGTERM |
//! | `USERS_AMQP_URL` | `amqp://guest:guest@127.0.0.1:5672/%2f` | broker the outbox relay publishes to |
//! | `USERS_EVENTS_EXCHANGE` | `shop.events` | topic exchange of integration events |
//! | `USERS_JWT_ISSUER` | `ferroshop-users` | `iss` of issued tokens |
//! | `USERS_JWT_AUDIENCE` | `ferroshop` | `aud` of issued tokens |
//! | `USERS_JWT_TTL` | `15m` | access token lifetime (1m to 24h) |
//! | `USERS_JWT_PRIVATE_KEY` / `USERS_JWT_PRIVATE_KEY_FILE` | generated | PKCS#8 PEM Ed25519 key |
//! | `USERS_ADMIN_EMAILS` | empty | comma-separated addresses that register as admins |

use std::time::Duration;

use platform::config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults};

use crate::{domain::Email, tokens::SigningKey};

pub const DEFAULTS: RuntimeDefaults = RuntimeDefaults {
    grpc_port: 50051,
    admin_port: 9101,
    database: "users",
};

#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwt_ttl: Duration,
    /// `None` means "generate a development key at start".
    pub jwt_key: Option<SigningKey>,
    pub admin_emails: Vec<Email>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::new("users"))
    }

    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let jwt_ttl = env.duration_or("JWT_TTL", Duration::from_secs(15 * 60))?;
        if !(Duration::from_secs(60)..=Duration::from_secs(24 * 3600)).contains(&jwt_ttl) {
            return Err(ConfigError {
                variable: env.name("JWT_TTL"),
                value: env.raw("JWT_TTL").unwrap_or_default(),
                reason: "access tokens must live between 1m and 24h".to_owned(),
            });
        }
        let jwt_key = match env.secret("JWT_PRIVATE_KEY")? {
            None => None,
            Some(pem) => Some(SigningKey::from_pem(&pem).map_err(|err| ConfigError {
                variable: env.name("JWT_PRIVATE_KEY"),
                // Never echo a private key, not even a broken one.
                value: "<redacted>".to_owned(),
                reason: err.to_string(),
            })?),
        };
        let admin_emails = env
            .string_or("ADMIN_EMAILS", "")
            .split(',')
            .filter(|raw| !raw.trim().is_empty())
            .map(|raw| {
                Email::parse(raw).map_err(|err| ConfigError {
                    variable: env.name("ADMIN_EMAILS"),
                    value: raw.to_owned(),
                    reason: err.reason(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            runtime: RuntimeConfig::from_env(env, DEFAULTS)?,
            jwt_issuer: env.string_or("JWT_ISSUER", "ferroshop-users"),
            jwt_audience: env.string_or("JWT_AUDIENCE", "ferroshop"),
            jwt_ttl,
            jwt_key,
            admin_emails,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs("users", vars)
    }

    #[test]
    fn local_defaults_need_no_variables() {
        let config = Config::from(&env(&[])).unwrap();
        assert_eq!(config.runtime.grpc_addr.port(), 50051);
        assert_eq!(config.runtime.admin_addr.port(), 9101);
        assert_eq!(config.jwt_ttl, Duration::from_secs(900));
        assert_eq!(config.jwt_issuer, "ferroshop-users");
        assert!(config.jwt_key.is_none());
        assert!(config.admin_emails.is_empty());
    }

    #[test]
    fn the_token_lifetime_is_bounded() {
        let err = Config::from(&env(&[("USERS_JWT_TTL", "30s")])).unwrap_err();
        assert_eq!(err.variable, "USERS_JWT_TTL");
        let err = Config::from(&env(&[("USERS_JWT_TTL", "2d")])).unwrap_err();
        assert_eq!(err.variable, "USERS_JWT_TTL");
    }

    #[test]
    fn a_broken_key_is_named_but_never_echoed() {
        let err =
            Config::from(&env(&[("USERS_JWT_PRIVATE_KEY", "-----BEGIN nonsense")])).unwrap_err();
        assert_eq!(err.variable, "USERS_JWT_PRIVATE_KEY");
        assert!(!err.to_string().contains("nonsense"), "{err}");
    }

    #[test]
    fn admin_emails_are_parsed_and_normalised() {
        let config = Config::from(&env(&[(
            "USERS_ADMIN_EMAILS",
            "Root@Shop.test, ops@shop.test",
        )]))
        .unwrap();
        assert_eq!(config.admin_emails.len(), 2);
        assert_eq!(config.admin_emails[0].as_str(), "root@shop.test");
        let err = Config::from(&env(&[("USERS_ADMIN_EMAILS", "root")])).unwrap_err();
        assert_eq!(err.variable, "USERS_ADMIN_EMAILS");
    }
}
