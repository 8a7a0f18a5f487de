//! Test infrastructure: real Postgres, Redis and RabbitMQ, and service processes.
//!
//! Ferroshop's integration tests run against the real thing, never mocks. Where that thing comes
//! from is decided once per test process:
//!
//! 1. the URL in the environment (`DATABASE_URL`, `REDIS_URL`, `AMQP_URL`) or its documented local
//!    default, when something answers there;
//! 2. otherwise a container started with testcontainers (a laptop with Docker);
//! 3. otherwise the test **fails** with a message naming what is missing and how to get it. A
//!    test whose infrastructure is missing never passes silently.
//!
//! Isolation: [`fresh_database`] creates a new, empty database for each test, and
//! [`unique_name`] gives exchanges and queues names no other run uses. Databases left behind by
//! test processes that have exited are dropped the next time a test process starts.
//!
//! A test that must stop or fail over a server starts one of its own instead of touching the
//! shared one: [`PrivateBroker`] (RabbitMQ), [`PrivateRedis`] and [`RedisFailover`] (a primary, a
//! replica and a sentinel). A test of least privilege creates a throwaway user on the shared
//! Redis ([`AclUser`]) or broker ([`BrokerUser`]), deleted when dropped.

mod broker;
mod broker_user;
mod certs;
pub mod events;
mod infra;
mod metrics;
mod private_redis;
mod process;
mod proxy;
mod redis_acl;

pub use broker::PrivateBroker;
pub use broker_user::BrokerUser;
pub use certs::TestCerts;
pub use events::EventProbe;
pub use infra::{TestDatabase, amqp_url, fresh_database, host_port, postgres_admin_url, redis_url};
pub use metrics::{Sample, Scrape};
pub use private_redis::{PrivateRedis, RedisFailover};
pub use process::{RunningService, ServiceProcess, free_port, poll_until};
pub use proxy::TcpProxy;
pub use redis_acl::AclUser;

/// The settings every Ferroshop service under test shares, under its prefix (`users` →
/// `USERS_…`): its database, port 0 on loopback for the gRPC and admin ports, and the broker with
/// the test's own exchange and queue prefix (the broker deletes the test's queues once nobody has
/// used them for a minute). Callers append their service's own settings; a later entry for the
/// same name wins when the list is collected into a map.
pub fn service_vars(
    service: &str,
    database_url: &str,
    amqp_url: &str,
    exchange: &str,
) -> Vec<(String, String)> {
    let prefix = service.to_ascii_uppercase();
    [
        ("DATABASE_URL", database_url.to_owned()),
        ("GRPC_ADDR", "127.0.0.1:0".to_owned()),
        ("ADMIN_ADDR", "127.0.0.1:0".to_owned()),
        ("AMQP_URL", amqp_url.to_owned()),
        ("EVENTS_EXCHANGE", exchange.to_owned()),
        ("QUEUE_PREFIX", format!("{exchange}.")),
        ("QUEUE_EXPIRY", "60s".to_owned()),
    ]
    .into_iter()
    .map(|(setting, value)| (format!("{prefix}_{setting}"), value))
    .collect()
}

/// A name no other test run uses: `<prefix>.<uuid>`, for exchanges, queues and consumer names.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}.{}", uuid::Uuid::now_v7().simple())
}
