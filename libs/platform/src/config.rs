//! Typed configuration from environment variables.
//!
//! Every service reads its settings from variables prefixed with its name (`USERS_GRPC_ADDR`,
//! `ORDERS_DATABASE_URL`, …). Each setting has a default that works for local development, so
//! `cargo run -p users` needs no setup; a value that is present but invalid stops the service at
//! start with an error naming the variable, instead of surfacing later as a confusing failure.
//!
//! [`Env`] reads through a lookup function rather than `std::env` directly, so tests can feed it
//! a map without touching the process environment.

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Display,
    net::SocketAddr,
    str::FromStr,
    sync::Mutex,
    time::Duration,
};

/// A variable was present but could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid value {value:?} for {variable}: {reason}")]
pub struct ConfigError {
    /// The full variable name, e.g. `USERS_GRPC_ADDR`.
    pub variable: String,
    /// What was found (secrets are never read through this path; see [`Env::secret`]).
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads `<PREFIX>_<NAME>` variables.
pub struct Env {
    prefix: String,
    lookup: Lookup,
    /// Every setting looked up so far, without prefix: what [`Env::check_declared`] compares
    /// with the service's declaration.
    read: Mutex<BTreeSet<String>>,
}

impl Env {
    /// Reads the real process environment.
    pub fn new(prefix: &str) -> Self {
        Self::with_lookup(prefix, |name| std::env::var(name).ok())
    }

    /// Reads from `vars` instead of the process environment (tests).
    pub fn from_map(prefix: &str, vars: HashMap<String, String>) -> Self {
        Self::with_lookup(prefix, move |name| vars.get(name).cloned())
    }

    /// Reads from `pairs` of full variable names and values (tests).
    pub fn from_pairs(prefix: &str, pairs: &[(&str, &str)]) -> Self {
        let vars = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Self::from_map(prefix, vars)
    }

    fn with_lookup(
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            prefix: prefix.to_ascii_uppercase(),
            lookup: Box::new(lookup),
            read: Mutex::new(BTreeSet::new()),
        }
    }

    /// The full variable name for a setting, e.g. `name("GRPC_ADDR")` → `USERS_GRPC_ADDR`.
    pub fn name(&self, setting: &str) -> String {
        format!("{}_{}", self.prefix, setting)
    }

    /// The error for a setting that another crate's parser rejected (`redis_guard::RedisTarget`
    /// reads several settings at once and names the one at fault): its full name, its value as
    /// set (a URL without its password; empty when unset) and `reason`.
    pub fn invalid(&self, setting: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            variable: self.name(setting),
            value: self
                .raw(setting)
                .map(|value| redact_url(&value))
                .unwrap_or_default(),
            reason: reason.into(),
        }
    }

    /// The raw value, if set and not blank.
    pub fn raw(&self, setting: &str) -> Option<String> {
        if let Ok(mut read) = self.read.lock() {
            read.insert(setting.to_owned());
        }
        (self.lookup)(&self.name(setting)).filter(|value| !value.trim().is_empty())
    }

    /// Compares what was read through this `Env` with what `service` declares
    /// (`libs/declarations`): every setting read must be declared, and every declared one read
    /// (a family, by at least one member). Each service's unit tests parse its configuration
    /// and call this, so the declaration, which the docs, `cargo xtask up` and the deploy gate
    /// use, cannot drift from the code.
    pub fn check_declared(&self, service: &declarations::Service) -> Result<(), String> {
        let read: BTreeSet<String> = self
            .read
            .lock()
            .map(|read| read.clone())
            .unwrap_or_default();
        // A secret's `<NAME>_FILE` twin is part of the secret.
        let is_file_twin = |name: &str| {
            name.strip_suffix("_FILE")
                .and_then(|secret| service.setting(secret))
                .is_some_and(|setting| setting.secret)
        };
        let undeclared: Vec<&String> = read
            .iter()
            .filter(|name| service.setting(name).is_none() && !is_file_twin(name))
            .collect();
        let unread: Vec<&str> = service
            .all_settings()
            .filter(|setting| !read.iter().any(|name| setting.matches(name)))
            .map(|setting| setting.name)
            .collect();
        if undeclared.is_empty() && unread.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{}: read but not declared in libs/declarations: {undeclared:?}; declared but not              read: {unread:?}",
            service.name
        ))
    }

    /// Parses the setting with [`FromStr`], or returns `default` when it is unset.
    pub fn parse_or<T>(&self, setting: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.raw(setting) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|err: T::Err| ConfigError {
                variable: self.name(setting),
                value,
                reason: err.to_string(),
            }),
        }
    }

    /// A string setting with a default.
    pub fn string_or(&self, setting: &str, default: &str) -> String {
        self.raw(setting).unwrap_or_else(|| default.to_owned())
    }

    /// A socket address such as `0.0.0.0:50051`.
    pub fn addr_or(&self, setting: &str, default: SocketAddr) -> Result<SocketAddr, ConfigError> {
        self.parse_or(setting, default)
    }

    /// A duration written as a number with a unit: `250ms`, `30s`, `15m`, `2h`.
    pub fn duration_or(&self, setting: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.raw(setting) {
            None => Ok(default),
            Some(value) => parse_duration(value.trim()).map_err(|reason| ConfigError {
                variable: self.name(setting),
                value,
                reason,
            }),
        }
    }

    /// How often something periodic runs, or `off` (`None`) to not run it at all.
    pub fn interval_or_off(
        &self,
        setting: &str,
        default: Duration,
    ) -> Result<Option<Duration>, ConfigError> {
        match self.raw(setting).as_deref().map(str::trim) {
            Some("off") => Ok(None),
            _ => self.duration_or(setting, default).map(Some),
        }
    }

    /// A secret: read from `<NAME>` or from the file named by `<NAME>_FILE` (the Kubernetes
    /// mounted-secret convention). Secrets never appear in errors or logs.
    pub fn secret(&self, setting: &str) -> Result<Option<String>, ConfigError> {
        if let Some(value) = self.raw(setting) {
            return Ok(Some(value));
        }
        let file_setting = format!("{setting}_FILE");
        match self.raw(&file_setting) {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(path.trim())
                .map(Some)
                .map_err(|err| ConfigError {
                    variable: self.name(&file_setting),
                    value: path,
                    reason: format!("cannot read the file: {err}"),
                }),
        }
    }
}

/// Parses `250ms`, `30s`, `15m`, `2h`, `1h 30m` with the `humantime` crate. A bare number is
/// rejected: units are never implied.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| match err {
        humantime::DurationError::UnknownUnit { .. }
        | humantime::DurationError::NumberExpected(_) => {
            format!("{err} (use ms, s, m or h, e.g. 250ms or 30s)")
        }
        other => other.to_string(),
    })
}

/// The settings every service shares, read with the service's prefix.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// `<PREFIX>_GRPC_ADDR`: where the gRPC API listens.
    pub grpc_addr: SocketAddr,
    /// `<PREFIX>_ADMIN_ADDR`: where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    /// `<PREFIX>_DATABASE_URL`: this service's own database; no other service reaches it.
    pub database_url: String,
    /// `<PREFIX>_DB_MAX_CONNECTIONS`: pool size per replica.
    pub db_max_connections: u32,
    /// `<PREFIX>_SHUTDOWN_GRACE`: how long in-flight work may take after SIGTERM.
    pub shutdown_grace: Duration,
    /// `<PREFIX>_AMQP_URL`: the RabbitMQ broker.
    pub amqp_url: String,
    /// `<PREFIX>_EVENTS_EXCHANGE`: the topic exchange of integration events.
    pub events_exchange: String,
    /// `<PREFIX>_QUEUE_PREFIX`: prepended to this service's queue names (empty by default).
    /// Tests set a unique one so that concurrent test runs never share a queue.
    pub queue_prefix: String,
    /// `<PREFIX>_QUEUE_EXPIRY`: the broker deletes this service's queues after this long without
    /// a consumer (`x-expires`). Unset (the default) keeps them: only tests, whose queue names
    /// are unique per run, set it so they do not pile up in a shared broker.
    pub queue_expiry: Option<Duration>,
    /// `<PREFIX>_INBOX_RETENTION`: how long a consumed event's inbox row is kept (default 14
    /// days, counted from the time in the event's id), after which its partition is dropped.
    /// Within the window a redelivery or a replay from the parking queue is recognised and
    /// skipped; past it, only the handlers' own idempotence (forward-only states) stands, so keep
    /// it longer than anything may sit parked.
    pub inbox_retention: Duration,
    /// `<PREFIX>_OUTBOX_RETENTION`: how long a published event stays in the outbox (default 7
    /// days, counted from when it was recorded), after which its partition is dropped; a
    /// partition holding an unpublished event is kept whatever its age.
    pub outbox_retention: Duration,
    /// `<PREFIX>_PARTITION_SPAN`: the span of time one partition of a time-partitioned table
    /// covers (default a day, at least an hour; `partitions`).
    pub partition_span: Duration,
    /// `<PREFIX>_PARTITION_LOOKAHEAD`: how far ahead of now partitions exist (default 7 days, at
    /// least one span): how long the partition worker may be stopped before rows land in the
    /// default partition.
    pub partition_lookahead: Duration,
    /// `<PREFIX>_TLS`, `<PREFIX>_TLS_CA`, `<PREFIX>_TLS_CERT`, `<PREFIX>_TLS_KEY`: mutual TLS on
    /// the gRPC port and on this service's gRPC clients, or plaintext (`crate::tls`).
    pub tls: crate::tls::TlsMode,
}

/// `<PREFIX>_INBOX_RETENTION` when unset.
pub const DEFAULT_INBOX_RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// `<PREFIX>_OUTBOX_RETENTION` when unset.
pub const DEFAULT_OUTBOX_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// `<PREFIX>_PARTITION_SPAN` when unset.
pub const DEFAULT_PARTITION_SPAN: Duration = Duration::from_secs(24 * 60 * 60);
/// `<PREFIX>_PARTITION_LOOKAHEAD` when unset.
pub const DEFAULT_PARTITION_LOOKAHEAD: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// `<PREFIX>_AMQP_URL` when unset: the local broker.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// `<PREFIX>_EVENTS_EXCHANGE` when unset.
pub const DEFAULT_EVENTS_EXCHANGE: &str = "shop.events";

/// Local-development defaults of one service (the port plan:
/// docs/architecture.md#services-and-their-data).
#[derive(Debug, Clone, Copy)]
pub struct RuntimeDefaults {
    pub grpc_port: u16,
    pub admin_port: u16,
    pub database: &'static str,
}

impl RuntimeDefaults {
    /// The defaults `service` declares (`libs/declarations`).
    pub const fn declared(service: &declarations::Service) -> Self {
        Self {
            grpc_port: service.api_port,
            admin_port: service.admin_port,
            database: match service.database {
                Some(database) => database,
                None => service.name,
            },
        }
    }
}

impl RuntimeConfig {
    /// The full name of one of this service's queues, e.g. `orders.fulfilment`.
    pub fn queue_name(&self, name: &str) -> String {
        format!("{}{name}", self.queue_prefix)
    }

    pub fn from_env(env: &Env, defaults: RuntimeDefaults) -> Result<Self, ConfigError> {
        let config = Self {
            grpc_addr: env.addr_or(
                "GRPC_ADDR",
                SocketAddr::from(([0, 0, 0, 0], defaults.grpc_port)),
            )?,
            admin_addr: env.addr_or(
                "ADMIN_ADDR",
                SocketAddr::from(([0, 0, 0, 0], defaults.admin_port)),
            )?,
            database_url: env.string_or(
                "DATABASE_URL",
                &format!("postgres://postgres@127.0.0.1:5432/{}", defaults.database),
            ),
            db_max_connections: env.parse_or("DB_MAX_CONNECTIONS", 10)?,
            shutdown_grace: env.duration_or("SHUTDOWN_GRACE", Duration::from_secs(10))?,
            amqp_url: env.string_or("AMQP_URL", DEFAULT_AMQP_URL),
            events_exchange: env.string_or("EVENTS_EXCHANGE", DEFAULT_EVENTS_EXCHANGE),
            queue_prefix: env.string_or("QUEUE_PREFIX", ""),
            queue_expiry: match env.raw("QUEUE_EXPIRY") {
                None => None,
                Some(raw) => match env.duration_or("QUEUE_EXPIRY", Duration::ZERO)? {
                    Duration::ZERO => {
                        return Err(ConfigError {
                            variable: env.name("QUEUE_EXPIRY"),
                            value: raw,
                            reason: "must be longer than zero (leave it unset to keep the queues)"
                                .to_owned(),
                        });
                    }
                    expiry => Some(expiry),
                },
            },
            inbox_retention: env.duration_or("INBOX_RETENTION", DEFAULT_INBOX_RETENTION)?,
            outbox_retention: env.duration_or("OUTBOX_RETENTION", DEFAULT_OUTBOX_RETENTION)?,
            partition_span: env.duration_or("PARTITION_SPAN", DEFAULT_PARTITION_SPAN)?,
            partition_lookahead: env
                .duration_or("PARTITION_LOOKAHEAD", DEFAULT_PARTITION_LOOKAHEAD)?,
            tls: crate::tls::TlsMode::from_env(env)?,
        };
        if config.inbox_retention < Duration::from_secs(60 * 60) {
            return Err(ConfigError {
                variable: env.name("INBOX_RETENTION"),
                value: env.raw("INBOX_RETENTION").unwrap_or_default(),
                reason: "at least 1h: a shorter window forgets events that are still being retried"
                    .to_owned(),
            });
        }
        if config.partition_span < Duration::from_secs(60 * 60) {
            return Err(ConfigError {
                variable: env.name("PARTITION_SPAN"),
                value: env.raw("PARTITION_SPAN").unwrap_or_default(),
                reason: "at least 1h: every partition is a table of its own".to_owned(),
            });
        }
        if config.partition_lookahead < config.partition_span {
            return Err(ConfigError {
                variable: env.name("PARTITION_LOOKAHEAD"),
                value: env.raw("PARTITION_LOOKAHEAD").unwrap_or_default(),
                reason: "at least one PARTITION_SPAN: the next partition must exist before it is \
                         needed"
                    .to_owned(),
            });
        }
        if !config.database_url.starts_with("postgres://")
            && !config.database_url.starts_with("postgresql://")
        {
            return Err(ConfigError {
                variable: env.name("DATABASE_URL"),
                value: redact_url(&config.database_url),
                reason: "expected a postgres:// URL".to_owned(),
            });
        }
        if !config.amqp_url.starts_with("amqp://") && !config.amqp_url.starts_with("amqps://") {
            return Err(ConfigError {
                variable: env.name("AMQP_URL"),
                value: redact_url(&config.amqp_url),
                reason: "expected an amqp:// or amqps:// URL".to_owned(),
            });
        }
        if config.db_max_connections == 0 {
            return Err(ConfigError {
                variable: env.name("DB_MAX_CONNECTIONS"),
                value: "0".to_owned(),
                reason: "the pool needs at least one connection".to_owned(),
            });
        }
        Ok(config)
    }
}

/// Hides the password of a URL such as `postgres://user:secret@host/db`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs("users", vars)
    }

    const DEFAULTS: RuntimeDefaults = RuntimeDefaults {
        grpc_port: 50051,
        admin_port: 9101,
        database: "users",
    };

    #[test]
    fn an_error_from_another_parser_names_the_variable_and_hides_passwords() {
        let env = env(&[("USERS_CACHE_URL", "redis://u:hunter2@cache")]);
        let err = env.invalid("CACHE_URL", "no");
        assert_eq!(err.variable, "USERS_CACHE_URL");
        assert_eq!(err.value, "redis://u:***@cache");
        assert_eq!(env.invalid("UNSET", "missing").value, "");
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = RuntimeConfig::from_env(&env(&[]), DEFAULTS).unwrap();
        assert_eq!(config.grpc_addr, "0.0.0.0:50051".parse().unwrap());
        assert_eq!(config.admin_addr, "0.0.0.0:9101".parse().unwrap());
        assert_eq!(
            config.database_url,
            "postgres://postgres@127.0.0.1:5432/users"
        );
        assert_eq!(config.db_max_connections, 10);
        assert_eq!(config.shutdown_grace, Duration::from_secs(10));
        assert_eq!(config.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(config.events_exchange, "shop.events");
    }

    #[test]
    fn the_inbox_is_kept_two_weeks_unless_set_and_never_under_an_hour() {
        let config = RuntimeConfig::from_env(&env(&[]), DEFAULTS).unwrap();
        assert_eq!(config.inbox_retention, Duration::from_secs(14 * 24 * 3600));
        let config =
            RuntimeConfig::from_env(&env(&[("USERS_INBOX_RETENTION", "30d")]), DEFAULTS).unwrap();
        assert_eq!(config.inbox_retention, Duration::from_secs(30 * 24 * 3600));
        for bad in ["59m", "forever"] {
            let err = RuntimeConfig::from_env(&env(&[("USERS_INBOX_RETENTION", bad)]), DEFAULTS)
                .unwrap_err();
            assert_eq!(err.variable, "USERS_INBOX_RETENTION");
        }
    }

    #[test]
    fn partitions_span_a_day_a_week_ahead_unless_set_and_never_under_an_hour() {
        let config = RuntimeConfig::from_env(&env(&[]), DEFAULTS).unwrap();
        assert_eq!(config.partition_span, Duration::from_secs(24 * 3600));
        assert_eq!(
            config.partition_lookahead,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(config.outbox_retention, Duration::from_secs(7 * 24 * 3600));
        let config = RuntimeConfig::from_env(
            &env(&[
                ("USERS_PARTITION_SPAN", "6h"),
                ("USERS_PARTITION_LOOKAHEAD", "2d"),
            ]),
            DEFAULTS,
        )
        .unwrap();
        assert_eq!(config.partition_span, Duration::from_secs(6 * 3600));
        let err = RuntimeConfig::from_env(&env(&[("USERS_PARTITION_SPAN", "59m")]), DEFAULTS)
            .unwrap_err();
        assert_eq!(err.variable, "USERS_PARTITION_SPAN");
        let err = RuntimeConfig::from_env(&env(&[("USERS_PARTITION_LOOKAHEAD", "12h")]), DEFAULTS)
            .unwrap_err();
        assert_eq!(err.variable, "USERS_PARTITION_LOOKAHEAD");
    }

    #[test]
    fn queue_expiry_is_optional_and_never_zero() {
        let config = RuntimeConfig::from_env(&env(&[]), DEFAULTS).unwrap();
        assert_eq!(config.queue_expiry, None);
        let config =
            RuntimeConfig::from_env(&env(&[("USERS_QUEUE_EXPIRY", "60s")]), DEFAULTS).unwrap();
        assert_eq!(config.queue_expiry, Some(Duration::from_secs(60)));
        for bad in ["0s", "soon", "60"] {
            let err = RuntimeConfig::from_env(&env(&[("USERS_QUEUE_EXPIRY", bad)]), DEFAULTS)
                .unwrap_err();
            assert_eq!(err.variable, "USERS_QUEUE_EXPIRY");
        }
    }

    #[test]
    fn a_non_amqp_broker_url_is_rejected() {
        let err = RuntimeConfig::from_env(&env(&[("USERS_AMQP_URL", "http://rabbit")]), DEFAULTS)
            .unwrap_err();
        assert_eq!(err.variable, "USERS_AMQP_URL");
    }

    #[test]
    fn values_are_read_with_the_service_prefix() {
        let config = RuntimeConfig::from_env(
            &env(&[
                ("USERS_GRPC_ADDR", "127.0.0.1:6000"),
                ("USERS_SHUTDOWN_GRACE", "3s"),
                ("GRPC_ADDR", "127.0.0.1:1"),
            ]),
            DEFAULTS,
        )
        .unwrap();
        assert_eq!(config.grpc_addr, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(config.shutdown_grace, Duration::from_secs(3));
    }

    #[test]
    fn an_invalid_value_names_the_variable() {
        let err = RuntimeConfig::from_env(&env(&[("USERS_GRPC_ADDR", "localhost")]), DEFAULTS)
            .unwrap_err();
        assert_eq!(err.variable, "USERS_GRPC_ADDR");
        assert_eq!(err.value, "localhost");
        assert!(err.to_string().contains("USERS_GRPC_ADDR"), "{err}");
    }

    #[test]
    fn a_non_postgres_url_is_rejected_without_leaking_its_password() {
        let err = RuntimeConfig::from_env(
            &env(&[("USERS_DATABASE_URL", "mysql://root:hunter2@db/users")]),
            DEFAULTS,
        )
        .unwrap_err();
        assert_eq!(err.variable, "USERS_DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn zero_pool_connections_is_rejected() {
        let err = RuntimeConfig::from_env(&env(&[("USERS_DB_MAX_CONNECTIONS", "0")]), DEFAULTS)
            .unwrap_err();
        assert_eq!(err.variable, "USERS_DB_MAX_CONNECTIONS");
        let err = RuntimeConfig::from_env(&env(&[("USERS_DB_MAX_CONNECTIONS", "-1")]), DEFAULTS)
            .unwrap_err();
        assert_eq!(err.variable, "USERS_DB_MAX_CONNECTIONS");
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("30").is_err(), "a bare number has no unit");
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn blank_values_count_as_unset() {
        let env = env(&[("USERS_JWT_ISSUER", "  ")]);
        assert_eq!(env.string_or("JWT_ISSUER", "ferroshop"), "ferroshop");
    }

    #[test]
    fn secrets_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("ferroshop-secret-{}", std::process::id()));
        std::fs::write(&path, "s3cret").unwrap();
        let env = env(&[("USERS_JWT_KEY_FILE", path.to_str().unwrap())]);
        assert_eq!(env.secret("JWT_KEY").unwrap().as_deref(), Some("s3cret"));
        std::fs::remove_file(&path).unwrap();

        let missing = super::Env::from_map(
            "users",
            [(
                "USERS_JWT_KEY_FILE".to_owned(),
                "/nonexistent/key.pem".to_owned(),
            )]
            .into(),
        );
        let err = missing.secret("JWT_KEY").unwrap_err();
        assert_eq!(err.variable, "USERS_JWT_KEY_FILE");
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:pw@db:5432/users"),
            "postgres://app:***@db:5432/users"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/users"),
            "postgres://postgres@127.0.0.1/users"
        );
    }
}
