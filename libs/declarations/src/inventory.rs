//! inventory: the catalog, stock levels and the checkout saga's reservations.

use crate::{Api, Service, Setting};

pub const INVENTORY: Service = Service {
    name: "inventory",
    api: Api::Grpc,
    api_port: 50052,
    admin_port: 9102,
    database: Some("inventory"),
    runtime: true,
    settings: &[
        Setting::new(
            "REDIS_URL",
            "`redis://127.0.0.1:6379`",
            "the catalog cache (optional at run time: reads fall back to Postgres); `redis://<user>:<password>@host:6379` connects as the cache's ACL user (its key prefix and commands only: `redis_guard::acl`); not used when `INVENTORY_REDIS_SENTINELS` is set",
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
            "the name the sentinels monitor the primary under; set with `INVENTORY_REDIS_SENTINELS`",
        ),
        Setting::new(
            "CACHE_PREFIX",
            "`inventory:v1`",
            "namespace of every cache key; bump the version when the cached format changes",
        ),
        Setting::new(
            "CACHE_TTL",
            "`60s`",
            "lifetime of a cached entry (±20% jitter), 1s to 1h",
        ),
        Setting::new(
            "CACHE_TIMEOUT",
            "`250ms`",
            "longest wait for Redis before a read goes to Postgres, 10ms to 5s",
        ),
        Setting::new(
            "RESERVATION_TTL",
            "`15m`",
            "how long reserved units are held without a commit, 1s to 24h",
        ),
        Setting::new(
            "SWEEP_INTERVAL",
            "`5s`",
            "how often expired reservations are released, 100ms to 1h",
        ),
        Setting::new(
            "SEED_DEMO",
            "`false`",
            "fill an empty catalog with the demo products at start",
        ),
    ],
    broker: true,
    cache: true,
    upstreams: &[],
    callers: &["gateway", "orders"],
};
