//! payments: the event-sourced payment ledger and its (simulated) provider.

use crate::{Api, Service, Setting};

pub const PAYMENTS: Service = Service {
    name: "payments",
    api: Api::Grpc,
    api_port: 50054,
    admin_port: 9104,
    database: Some("payments"),
    runtime: true,
    settings: &[
        Setting::new(
            "PROVIDER_LATENCY",
            "`0ms`",
            "simulated provider: delay before every answer",
        ),
        Setting::new(
            "PROVIDER_ERROR_RATE",
            "`0`",
            "simulated provider: probability (0.0–1.0) of a transient error",
        ),
        Setting::new(
            "PROVIDER_HANG",
            "`false`",
            "simulated provider: never answer (`true`/`false`)",
        ),
        Setting::new(
            "EVENTS_RETENTION",
            "*(unset: kept)*",
            "how long payment events stay in the ledger before their day's partition is \
             detached (left as a table to archive, never dropped; `partitions`)",
        ),
    ],
    broker: true,
    cache: false,
    upstreams: &[],
    callers: &["gateway", "orders"],
};
