//! orders: orders, the checkout saga's orchestrator and the order read model.

use crate::{Api, Service, Setting};

pub const ORDERS: Service = Service {
    name: "orders",
    api: Api::Grpc,
    api_port: 50053,
    admin_port: 9103,
    database: Some("orders"),
    runtime: true,
    settings: &[
        Setting::new(
            "INVENTORY_URL",
            "`http://127.0.0.1:50052`",
            "the inventory participant: `http://host:port`, several comma-separated, or \
             `dns://name:port` (every address is a replica)",
        )
        .required(),
        Setting::new(
            "PAYMENTS_URL",
            "`http://127.0.0.1:50054`",
            "the payments participant, written the same way",
        )
        .required(),
        Setting::new(
            "DNS_REFRESH",
            "`10s`",
            "how often `dns://` participants are resolved again",
        ),
        Setting::new(
            "HEALTH_CHECK_INTERVAL",
            "`10s`",
            "active `grpc.health.v1` checks of every participant replica; `off` disables",
        ),
        Setting::new("CALL_TIMEOUT", "`2s`", "deadline of each participant call"),
        Setting::new(
            "SAGA_DEADLINE",
            "`2m`",
            "after this, a saga still going forward compensates; keep it well below \
             inventory's reservation TTL",
        ),
        Setting::new(
            "SAGA_LEASE",
            "`30s`",
            "how long a runner owns a claimed saga without progress",
        ),
        Setting::new(
            "SAGA_POLL_INTERVAL",
            "`1s`",
            "how often due retries are looked for",
        ),
        Setting::new(
            "SAGA_RETRY_BASE",
            "`200ms`",
            "first delay of a step's retry backoff",
        ),
        Setting::new(
            "SAGA_RETRY_CAP",
            "`10s`",
            "longest delay of a step's retry backoff",
        ),
        Setting::new(
            "TIMELINE_RETENTION",
            "`90d`",
            "how long order timeline entries are kept before their day's partition is dropped \
             (`partitions`); the orders themselves stay",
        ),
        Setting::new(
            "FAULT_CRASH_AFTER",
            "unset",
            "crash tests only: abort right after this saga step",
        ),
    ],
    broker: true,
    cache: false,
    upstreams: &["inventory", "payments"],
    callers: &["gateway"],
};
