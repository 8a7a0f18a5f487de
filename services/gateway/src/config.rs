//! The gateway's configuration, from `GATEWAY_*` environment variables.
//!
//! Every setting is declared once, with its default and meaning, in
//! `declarations::gateway::GATEWAY` (`libs/declarations/src/gateway.rs`); docs/configuration.md is
//! the table of them all (`cargo xtask config-docs`). The test `reads_exactly_what_it_declares`
//! below keeps the declaration and this parser in step.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use platform::{
    config::{ConfigError, Env},
    grpc::upstream::EndpointSource,
    tls::TlsMode,
};
use redis_guard::RedisTarget;
use resilience::Strategy;

use crate::edge::client_ip::Networks;

/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;

/// One upstream gRPC service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// `users`, `inventory`, `orders` or `payments`.
    pub name: &'static str,
    pub source: EndpointSource,
    pub strategy: Strategy,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub http_workers: usize,
    pub shutdown_grace: Duration,
    pub users: UpstreamConfig,
    pub inventory: UpstreamConfig,
    pub orders: UpstreamConfig,
    pub payments: UpstreamConfig,
    pub dns_refresh: Duration,
    pub health_check_interval: Option<Duration>,
    pub call_timeout: Duration,
    pub ejection_failures: u32,
    pub ejection_time: Duration,
    pub breaker_failures: u32,
    pub breaker_open_for: Duration,
    /// `GATEWAY_REDIS_URL`, or the primary `GATEWAY_REDIS_SENTINELS` name for
    /// `GATEWAY_REDIS_MASTER` (which take precedence; see `redis_guard::target`).
    pub redis: RedisTarget,
    pub redis_prefix: String,
    pub redis_timeout: Duration,
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    pub login_rate_per_minute: u32,
    pub login_rate_burst: u32,
    pub trusted_proxies: Networks,
    pub trusted_trace_clients: Networks,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwks_min_refresh: Duration,
    pub jwks_key_retention: Duration,
    pub body_limit: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub sse_max_duration: Duration,
    pub sse_max_per_user: usize,
    /// `None`: generate one at start (a single replica, locally).
    pub stream_ticket_key: Option<Vec<u8>>,
    pub stream_ticket_ttl: Duration,
    pub stale_max_age: Duration,
    pub static_dir: PathBuf,
    /// `GATEWAY_TLS`, `GATEWAY_TLS_CA|CERT|KEY`: the gateway's identity towards the services
    /// (mutual TLS, `platform::tls`), or plaintext.
    pub tls: TlsMode,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::new("gateway"))
    }

    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let strategy = env.parse_or("LB_STRATEGY", Strategy::RoundRobin)?;
        let upstream = |name: &'static str, port: u16| -> Result<UpstreamConfig, ConfigError> {
            let prefix = name.to_ascii_uppercase();
            let urls_setting = format!("{prefix}_URLS");
            let raw = env.string_or(&urls_setting, &format!("http://127.0.0.1:{port}"));
            let source = EndpointSource::parse(&raw).map_err(|reason| ConfigError {
                variable: env.name(&urls_setting),
                value: raw.clone(),
                reason,
            })?;
            Ok(UpstreamConfig {
                name,
                source,
                strategy: env.parse_or(&format!("{prefix}_LB_STRATEGY"), strategy)?,
            })
        };
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let config = Self {
            http_addr: env.addr_or(
                "HTTP_ADDR",
                SocketAddr::from(([0, 0, 0, 0], declarations::gateway::GATEWAY.api_port)),
            )?,
            admin_addr: env.addr_or(
                "ADMIN_ADDR",
                SocketAddr::from(([0, 0, 0, 0], declarations::gateway::GATEWAY.admin_port)),
            )?,
            http_workers: env.parse_or("HTTP_WORKERS", workers)?,
            shutdown_grace: env.duration_or("SHUTDOWN_GRACE", Duration::from_secs(10))?,
            users: upstream("users", 50051)?,
            inventory: upstream("inventory", 50052)?,
            orders: upstream("orders", 50053)?,
            payments: upstream("payments", 50054)?,
            dns_refresh: env.duration_or("DNS_REFRESH", Duration::from_secs(10))?,
            health_check_interval: env
                .interval_or_off("HEALTH_CHECK_INTERVAL", Duration::from_secs(10))?,
            call_timeout: env.duration_or("CALL_TIMEOUT", Duration::from_secs(2))?,
            ejection_failures: env.parse_or("EJECTION_FAILURES", 5)?,
            ejection_time: env.duration_or("EJECTION_TIME", Duration::from_secs(30))?,
            breaker_failures: env.parse_or("BREAKER_FAILURES", 5)?,
            breaker_open_for: env.duration_or("BREAKER_OPEN_FOR", Duration::from_secs(5))?,
            redis: RedisTarget::from_settings(|setting| env.raw(setting), "redis://127.0.0.1:6379")
                .map_err(|err| env.invalid(err.setting, err.reason))?,
            redis_prefix: env.string_or("REDIS_PREFIX", "gateway:v1"),
            redis_timeout: env.duration_or("REDIS_TIMEOUT", Duration::from_millis(100))?,
            rate_limit_per_minute: env.parse_or("RATE_LIMIT_PER_MINUTE", 300)?,
            rate_limit_burst: env.parse_or("RATE_LIMIT_BURST", 50)?,
            login_rate_per_minute: env.parse_or("LOGIN_RATE_PER_MINUTE", 10)?,
            login_rate_burst: env.parse_or("LOGIN_RATE_BURST", 5)?,
            trusted_proxies: networks(env, "TRUSTED_PROXIES")?,
            trusted_trace_clients: networks(env, "TRUSTED_TRACE_CLIENTS")?,
            jwt_issuer: env.string_or("JWT_ISSUER", "ferroshop-users"),
            jwt_audience: env.string_or("JWT_AUDIENCE", "ferroshop"),
            jwks_min_refresh: env.duration_or("JWKS_MIN_REFRESH", Duration::from_secs(30))?,
            jwks_key_retention: env
                .duration_or("JWKS_KEY_RETENTION", Duration::from_secs(24 * 3600))?,
            body_limit: env.parse_or("BODY_LIMIT_BYTES", 64 * 1024)?,
            header_timeout: env.duration_or("HEADER_TIMEOUT", Duration::from_secs(5))?,
            body_timeout: env.duration_or("BODY_TIMEOUT", Duration::from_secs(10))?,
            max_connections: env.parse_or("MAX_CONNECTIONS", 10_000)?,
            sse_max_duration: env.duration_or("SSE_MAX_DURATION", Duration::from_secs(300))?,
            sse_max_per_user: env.parse_or("SSE_MAX_PER_USER", 4)?,
            stream_ticket_key: env
                .secret("STREAM_TICKET_KEY")?
                .map(|key| key.trim().as_bytes().to_vec()),
            stream_ticket_ttl: env.duration_or("STREAM_TICKET_TTL", Duration::from_secs(60))?,
            stale_max_age: env.duration_or("STALE_MAX_AGE", Duration::from_secs(600))?,
            tls: TlsMode::from_env(env)?,
            static_dir: env.raw("STATIC_DIR").map_or_else(
                || concat!(env!("CARGO_MANIFEST_DIR"), "/static").into(),
                PathBuf::from,
            ),
        };
        config.check(env)?;
        Ok(config)
    }

    /// Range checks that need more than one parse.
    fn check(&self, env: &Env) -> Result<(), ConfigError> {
        let fail = |setting: &str, reason: &str| ConfigError {
            variable: env.name(setting),
            value: env.raw(setting).unwrap_or_default(),
            reason: reason.to_owned(),
        };
        let positive = [
            ("HTTP_WORKERS", self.http_workers == 0),
            ("RATE_LIMIT_PER_MINUTE", self.rate_limit_per_minute == 0),
            ("RATE_LIMIT_BURST", self.rate_limit_burst == 0),
            ("LOGIN_RATE_PER_MINUTE", self.login_rate_per_minute == 0),
            ("LOGIN_RATE_BURST", self.login_rate_burst == 0),
            ("HEADER_TIMEOUT", self.header_timeout.is_zero()),
            ("BODY_TIMEOUT", self.body_timeout.is_zero()),
            ("MAX_CONNECTIONS", self.max_connections == 0),
            ("SSE_MAX_PER_USER", self.sse_max_per_user == 0),
            ("STREAM_TICKET_TTL", self.stream_ticket_ttl.is_zero()),
            ("EJECTION_FAILURES", self.ejection_failures == 0),
            ("BREAKER_FAILURES", self.breaker_failures == 0),
            ("CALL_TIMEOUT", self.call_timeout.is_zero()),
            ("EJECTION_TIME", self.ejection_time.is_zero()),
        ];
        if let Some((setting, _)) = positive.iter().find(|(_, broken)| *broken) {
            return Err(fail(setting, "must be greater than zero"));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.body_limit) {
            return Err(fail(
                "BODY_LIMIT_BYTES",
                "must be between 1024 and 16777216",
            ));
        }
        if self
            .stream_ticket_key
            .as_ref()
            .is_some_and(|key| key.len() < 32)
        {
            return Err(ConfigError {
                variable: env.name("STREAM_TICKET_KEY"),
                value: "<redacted>".to_owned(),
                reason: "must be at least 32 bytes (e.g. openssl rand -hex 32)".to_owned(),
            });
        }
        Ok(())
    }

    /// The four upstreams, in a fixed order.
    pub fn upstreams(&self) -> [&UpstreamConfig; 4] {
        [&self.users, &self.inventory, &self.orders, &self.payments]
    }
}

/// A list of CIDRs (`10.0.0.0/8, 192.168.1.7`).
fn networks(env: &Env, setting: &str) -> Result<Networks, ConfigError> {
    let raw = env.string_or(setting, "");
    Networks::parse(&raw).map_err(|reason| ConfigError {
        variable: env.name(setting),
        value: raw.clone(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from(&Env::from_pairs("gateway", vars))
    }

    #[test]
    fn reads_exactly_what_it_declares() {
        let env = Env::from_pairs("gateway", &[]);
        Config::from(&env).unwrap();
        env.check_declared(&declarations::gateway::GATEWAY).unwrap();
    }

    #[test]
    fn local_defaults_need_no_variables() {
        let config = config(&[]).unwrap();
        assert_eq!(config.http_addr.port(), 8080);
        assert_eq!(config.admin_addr.port(), 9100);
        let ports: Vec<EndpointSource> = config
            .upstreams()
            .iter()
            .map(|upstream| upstream.source.clone())
            .collect();
        assert_eq!(
            ports,
            (50051..=50054)
                .map(|port| EndpointSource::Static(vec![format!("http://127.0.0.1:{port}")]))
                .collect::<Vec<_>>()
        );
        assert!(
            config
                .upstreams()
                .iter()
                .all(|u| u.strategy == Strategy::RoundRobin)
        );
        assert_eq!(config.jwt_issuer, "ferroshop-users");
        assert_eq!(config.jwt_audience, "ferroshop");
        assert_eq!(config.body_limit, 65536);
        assert_eq!(config.health_check_interval, Some(Duration::from_secs(10)));
        assert!(
            config.trusted_proxies.is_empty(),
            "no proxy is trusted by default"
        );
        assert!(config.trusted_trace_clients.is_empty());
        assert_eq!(config.stream_ticket_key, None);
        assert!(config.static_dir.join("index.html").exists());
    }

    #[test]
    fn endpoint_lists_and_dns_names_are_parsed() {
        let config = config(&[
            (
                "GATEWAY_INVENTORY_URLS",
                "http://10.0.0.1:50052, http://10.0.0.2:50052",
            ),
            (
                "GATEWAY_ORDERS_URLS",
                "dns://orders-headless.shop.svc:50053",
            ),
        ])
        .unwrap();
        assert_eq!(
            config.inventory.source,
            EndpointSource::Static(vec![
                "http://10.0.0.1:50052".into(),
                "http://10.0.0.2:50052".into()
            ])
        );
        assert_eq!(
            config.orders.source,
            EndpointSource::Dns {
                host: "orders-headless.shop.svc".into(),
                port: 50053
            }
        );
    }

    #[test]
    fn the_strategy_has_a_default_and_per_upstream_overrides() {
        let config = config(&[
            ("GATEWAY_LB_STRATEGY", "least_requests"),
            ("GATEWAY_ORDERS_LB_STRATEGY", "round_robin"),
        ])
        .unwrap();
        assert_eq!(config.inventory.strategy, Strategy::LeastRequests);
        assert_eq!(config.orders.strategy, Strategy::RoundRobin);
        let err = self::config(&[("GATEWAY_PAYMENTS_LB_STRATEGY", "random")]).unwrap_err();
        assert_eq!(err.variable, "GATEWAY_PAYMENTS_LB_STRATEGY");
    }

    #[test]
    fn bad_endpoints_name_the_variable() {
        for bad in [
            "grpc://x:1",
            "http://nohost",
            "dns://noport",
            "dns://x:port",
            " , ",
        ] {
            let err = config(&[("GATEWAY_USERS_URLS", bad)]).unwrap_err();
            assert_eq!(err.variable, "GATEWAY_USERS_URLS", "{bad}");
        }
    }

    #[test]
    fn limits_must_be_usable() {
        for (variable, value) in [
            ("GATEWAY_RATE_LIMIT_PER_MINUTE", "0"),
            ("GATEWAY_RATE_LIMIT_BURST", "0"),
            ("GATEWAY_BODY_LIMIT_BYTES", "10"),
            ("GATEWAY_BODY_LIMIT_BYTES", "lots"),
            ("GATEWAY_HTTP_WORKERS", "0"),
            ("GATEWAY_CALL_TIMEOUT", "0ms"),
            ("GATEWAY_HTTP_ADDR", "localhost"),
            ("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("GATEWAY_TRUSTED_TRACE_CLIENTS", "somewhere"),
            ("GATEWAY_BODY_TIMEOUT", "0s"),
            ("GATEWAY_SSE_MAX_PER_USER", "0"),
            ("GATEWAY_LOGIN_RATE_BURST", "0"),
            ("GATEWAY_STREAM_TICKET_KEY", "short"),
        ] {
            let err = config(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
        }
    }

    #[test]
    fn a_non_redis_url_is_rejected_without_its_password() {
        let err = config(&[("GATEWAY_REDIS_URL", "http://user:hunter2@cache")]).unwrap_err();
        assert_eq!(err.variable, "GATEWAY_REDIS_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn redis_through_sentinel_takes_precedence_over_the_url() {
        let through_sentinel = config(&[
            ("GATEWAY_REDIS_URL", "redis://redis:6379"),
            (
                "GATEWAY_REDIS_SENTINELS",
                "sentinel-0:26379,sentinel-1:26379",
            ),
            ("GATEWAY_REDIS_MASTER", "ferroshop"),
        ])
        .unwrap();
        let RedisTarget::Sentinel { sentinels, master } = through_sentinel.redis else {
            panic!("{:?}", through_sentinel.redis);
        };
        assert_eq!(master, "ferroshop");
        assert_eq!(sentinels.len(), 2);
        assert_eq!(
            config(&[]).unwrap().redis,
            RedisTarget::Url("redis://127.0.0.1:6379".to_owned())
        );
    }

    #[test]
    fn a_bad_sentinel_setting_names_its_variable() {
        for (vars, variable) in [
            (
                &[
                    ("GATEWAY_REDIS_SENTINELS", "sentinel-0"),
                    ("GATEWAY_REDIS_MASTER", "ferroshop"),
                ][..],
                "GATEWAY_REDIS_SENTINELS",
            ),
            (
                &[("GATEWAY_REDIS_SENTINELS", "sentinel-0:26379")][..],
                "GATEWAY_REDIS_MASTER",
            ),
            (
                &[("GATEWAY_REDIS_MASTER", "ferroshop")][..],
                "GATEWAY_REDIS_SENTINELS",
            ),
        ] {
            let err = config(vars).unwrap_err();
            assert_eq!(err.variable, variable, "{vars:?}");
            assert!(err.to_string().contains(variable), "{err}");
        }
    }

    #[test]
    fn active_health_checks_can_be_turned_off() {
        let config = config(&[("GATEWAY_HEALTH_CHECK_INTERVAL", "off")]).unwrap();
        assert_eq!(config.health_check_interval, None);
    }
}
