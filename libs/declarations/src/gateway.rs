//! gateway: the public REST API, its docs and the storefront; the one entry from outside.

use crate::{Api, Service, Setting};

pub const GATEWAY: Service = Service {
    name: "gateway",
    api: Api::Http,
    api_port: 8080,
    admin_port: 9100,
    database: None,
    runtime: false,
    settings: &[
        Setting::new(
            "HTTP_ADDR",
            "`0.0.0.0:{api}`",
            "the public REST API, docs and storefront",
        ),
        Setting::new(
            "ADMIN_ADDR",
            "`0.0.0.0:{admin}`",
            "`/healthz`, `/readyz`, `/metrics`",
        ),
        Setting::new("HTTP_WORKERS", "CPUs", "actix worker threads"),
        Setting::new("SHUTDOWN_GRACE", "`10s`", "drain time after SIGTERM"),
        Setting::new(
            "<SERVICE>_URLS",
            "`http://127.0.0.1:50051` (users) … `:50054` (payments)",
            "one per upstream (`GATEWAY_USERS_URLS` …): comma-separated `http://` endpoints, or \
             one `dns://host:port` re-resolved periodically (a headless Service)",
        )
        .required(),
        Setting::new(
            "LB_STRATEGY",
            "`round_robin`",
            "`round_robin` or `least_requests`",
        ),
        Setting::new(
            "<SERVICE>_LB_STRATEGY",
            "`GATEWAY_LB_STRATEGY`",
            "per-upstream override, e.g. `GATEWAY_ORDERS_LB_STRATEGY`",
        ),
        Setting::new(
            "DNS_REFRESH",
            "`10s`",
            "how often `dns://` endpoints are re-resolved",
        ),
        Setting::new(
            "HEALTH_CHECK_INTERVAL",
            "`10s`",
            "active `grpc.health.v1` checks of every endpoint; `off` disables",
        ),
        Setting::new(
            "CALL_TIMEOUT",
            "`2s`",
            "deadline of each upstream attempt (sent as `grpc-timeout`)",
        ),
        Setting::new(
            "EJECTION_FAILURES",
            "`5`",
            "passive health: failures in a row that eject an endpoint",
        ),
        Setting::new(
            "EJECTION_TIME",
            "`30s`",
            "passive health: how long an ejected endpoint stays out",
        ),
        Setting::new(
            "BREAKER_FAILURES",
            "`5`",
            "failures in a row that open an upstream's circuit breaker",
        ),
        Setting::new(
            "BREAKER_OPEN_FOR",
            "`5s`",
            "how long an open breaker refuses calls before it probes",
        ),
        Setting::new(
            "REDIS_URL",
            "`redis://127.0.0.1:6379`",
            "shared rate-limit state; `redis://<user>:<password>@host:6379` connects as the limiter's ACL user (its key prefix and commands only: `redis_guard::acl`); not used when `GATEWAY_REDIS_SENTINELS` is set",
        )
        .required(),
        Setting::new(
            "REDIS_SENTINELS",
            "*(empty)*",
            "Redis Sentinel instead of one URL: the sentinels, `host:port`, comma-separated; the \
             primary they name is used, and asked for again after a failover",
        ),
        Setting::new(
            "REDIS_MASTER",
            "*(empty)*",
            "the name the sentinels monitor the primary under; set with `GATEWAY_REDIS_SENTINELS`",
        ),
        Setting::new(
            "REDIS_PREFIX",
            "`gateway:v1`",
            "namespace of rate-limit keys",
        ),
        Setting::new(
            "REDIS_TIMEOUT",
            "`100ms`",
            "longest wait for Redis before the local limiter decides",
        ),
        Setting::new(
            "RATE_LIMIT_PER_MINUTE",
            "`300`",
            "sustained requests per minute per user (per IP when anonymous)",
        ),
        Setting::new("RATE_LIMIT_BURST", "`50`", "requests allowed at once"),
        Setting::new(
            "LOGIN_RATE_PER_MINUTE",
            "`10`",
            "sign-in attempts per account per minute (429 beyond)",
        ),
        Setting::new(
            "LOGIN_RATE_BURST",
            "`5`",
            "sign-in attempts per account at once",
        ),
        Setting::new(
            "TRUSTED_PROXIES",
            "empty",
            "CIDRs of the proxies in front of the gateway; behind them the client IP is the \
             right-most untrusted `X-Forwarded-For` hop",
        ),
        Setting::new(
            "TRUSTED_TRACE_CLIENTS",
            "empty",
            "CIDRs whose `traceparent` is continued; anyone else's starts a new trace that links \
             to it",
        ),
        Setting::new(
            "JWT_ISSUER",
            "`ferroshop-users`",
            "required `iss` of tokens",
        ),
        Setting::new("JWT_AUDIENCE", "`ferroshop`", "required `aud` of tokens"),
        Setting::new(
            "JWKS_MIN_REFRESH",
            "`30s`",
            "at most one JWKS refresh per this interval for unknown key ids",
        ),
        Setting::new(
            "JWKS_KEY_RETENTION",
            "`24h`",
            "how long a key that left the fetched JWKS is still accepted (at least the longest \
             token lifetime)",
        ),
        Setting::new(
            "BODY_LIMIT_BYTES",
            "`65536`",
            "largest request body (413 beyond)",
        ),
        Setting::new(
            "HEADER_TIMEOUT",
            "`5s`",
            "time a client has to send the request head (408 beyond)",
        ),
        Setting::new(
            "BODY_TIMEOUT",
            "`10s`",
            "time a client has to send the whole body (408 beyond)",
        ),
        Setting::new(
            "MAX_CONNECTIONS",
            "`10000`",
            "open connections, all workers together; more wait in the accept queue",
        ),
        Setting::new(
            "SSE_MAX_DURATION",
            "`5m`",
            "longest life of one event stream",
        ),
        Setting::new(
            "SSE_MAX_PER_USER",
            "`4`",
            "order streams one user may hold open (429 beyond)",
        ),
        Setting::new(
            "STREAM_TICKET_KEY",
            "generated",
            "secret (at least 32 bytes) that signs order-stream tickets; every replica needs the \
             same",
        )
        .secret()
        .required(),
        Setting::new(
            "STREAM_TICKET_TTL",
            "`60s`",
            "how long a stream ticket may be used to open its stream",
        ),
        Setting::new(
            "STALE_MAX_AGE",
            "`10m`",
            "oldest catalog page served while inventory is down",
        ),
        Setting::new(
            "STATIC_DIR",
            "`services/gateway/static` of the source tree",
            "storefront files served at `/`",
        )
        .required(),
    ],
    broker: false,
    cache: true,
    upstreams: &["users", "inventory", "orders", "payments"],
    callers: &[],
};
