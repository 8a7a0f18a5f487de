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
//! | `USERS_TLS_CA`, `USERS_TLS_CERT`, `USERS_TLS_KEY` | *(unset: plaintext, with a warning)* | PEM files of mutual TLS on the gRPC port: CA bundle, this service's chain, its key (`platform::tls`) |
//! | `USERS_TLS` | *(unset)* | `off`: plaintext on purpose, and no per-method authorization |
//! | `USERS_JWT_ISSUER` | `ferroshop-users` | `iss` of issued tokens |
//! | `USERS_JWT_AUDIENCE` | `ferroshop` | `aud` of issued tokens |
//! | `USERS_JWT_TTL` | `15m` | access token lifetime (1m to 24h) |
//! | `USERS_JWT_PRIVATE_KEY` / `USERS_JWT_PRIVATE_KEY_FILE` | generated | PKCS#8 PEM Ed25519 key |
//! | `USERS_JWT_PREVIOUS_KEYS` / `USERS_JWT_PREVIOUS_KEYS_FILE` | none | PEM blocks (public or private Ed25519 keys) still published in the JWKS during a rotation |
//! | `USERS_HASH_CONCURRENCY` | CPUs | password hashes running at once (each needs 19 MiB) |
//! | `USERS_HASH_QUEUE` | 4 × `USERS_HASH_CONCURRENCY` | password checks that may wait; beyond, RESOURCE_EXHAUSTED |
//! | `USERS_ADMIN_PASSWORD` / `USERS_ADMIN_PASSWORD_FILE` | none | read only by `users admin create EMAIL` |
//!
//! Nobody becomes an administrator by registering: `users admin grant EMAIL` (see `admin.rs`).

use std::time::Duration;

use platform::config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults};

use crate::tokens::{PublicJwk, SigningKey};

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
    /// Published beside the current key while tokens they signed may still be alive.
    pub jwt_previous_keys: Vec<PublicJwk>,
    /// Password hashes at once, and how many more may wait (see `passwords::Hasher`).
    pub hash_concurrency: usize,
    pub hash_queue: usize,
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
        let jwt_previous_keys = match env.secret("JWT_PREVIOUS_KEYS")? {
            None => Vec::new(),
            Some(pems) => PublicJwk::from_pems(&pems).map_err(|err| ConfigError {
                variable: env.name("JWT_PREVIOUS_KEYS"),
                value: "<redacted>".to_owned(),
                reason: err.to_string(),
            })?,
        };
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        let hash_concurrency = env.parse_or("HASH_CONCURRENCY", cpus)?;
        if hash_concurrency == 0 {
            return Err(ConfigError {
                variable: env.name("HASH_CONCURRENCY"),
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(Self {
            runtime: RuntimeConfig::from_env(env, DEFAULTS)?,
            jwt_issuer: env.string_or("JWT_ISSUER", "ferroshop-users"),
            jwt_audience: env.string_or("JWT_AUDIENCE", "ferroshop"),
            jwt_ttl,
            jwt_key,
            jwt_previous_keys,
            hash_concurrency,
            hash_queue: env.parse_or("HASH_QUEUE", 4 * hash_concurrency)?,
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
        assert!(config.jwt_previous_keys.is_empty());
        assert!(config.hash_concurrency >= 1);
        assert_eq!(config.hash_queue, 4 * config.hash_concurrency);
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
    fn previous_keys_are_read_and_a_broken_one_is_named_but_never_echoed() {
        let pem = SigningKey::generate_pem().unwrap();
        let config = Config::from(&env(&[("USERS_JWT_PREVIOUS_KEYS", &pem)])).unwrap();
        assert_eq!(config.jwt_previous_keys.len(), 1);
        let err = Config::from(&env(&[(
            "USERS_JWT_PREVIOUS_KEYS",
            "-----BEGIN PUBLIC KEY-----\nc2VjcmV0\n-----END PUBLIC KEY-----",
        )]))
        .unwrap_err();
        assert_eq!(err.variable, "USERS_JWT_PREVIOUS_KEYS");
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn hashing_needs_at_least_one_slot() {
        let err = Config::from(&env(&[("USERS_HASH_CONCURRENCY", "0")])).unwrap_err();
        assert_eq!(err.variable, "USERS_HASH_CONCURRENCY");
        let config = Config::from(&env(&[
            ("USERS_HASH_CONCURRENCY", "3"),
            ("USERS_HASH_QUEUE", "0"),
        ]))
        .unwrap();
        assert_eq!((config.hash_concurrency, config.hash_queue), (3, 0));
    }
}
