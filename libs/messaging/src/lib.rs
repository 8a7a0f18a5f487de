//! Reliable messaging between Ferroshop services
//! (docs/architecture.md#events-outbox-relay-and-inbox).
//!
//! * [`envelope`]: every event travels as a protobuf `EventEnvelope` with a UUIDv7 id, its type,
//!   its aggregate, the time it happened and the W3C trace context of the transaction that
//!   produced it.
//! * [`catalog`]: the routing key and aggregate of every integration event, in one table.
//! * [`outbox`]: the transactional outbox. A service records an event in the same Postgres
//!   transaction as the state change it describes; the [`relay`] publishes it afterwards with
//!   publisher confirms, keeping per-aggregate order even with several relays running.
//! * [`consumer`]: the idempotent consumer (inbox): effects and the dedupe row in one
//!   transaction, ack after commit, delayed retries, parking after repeated failure.
//! * [`topology`]: every consumer queue of the system, the exchange, per-consumer quorum
//!   queues, delayed-retry tiers and parking.
//! * [`parking`]: listing and replaying parked messages.
//! * [`inbox`]: the consumers' dedupe rows, and how the inbox keeps to its retention window.
//! * [`amqp`]: connections, and W3C trace context in AMQP headers.
//! * [`service`]: the relay and consumers added to a `platform::ServiceBuilder` the same way in
//!   every service.
//!
//! Tables owned by this library come with their own migrations ([`migrator`]), recorded in a
//! ledger of their own so they never collide with a service's migration versions. Both are
//! partitioned by day and age out by dropping whole days ([`partitioned_tables`], for the
//! `partitions` worker every service runs).

pub mod amqp;
pub mod catalog;
pub mod consumer;
pub mod envelope;
pub mod inbox;
pub mod outbox;
pub mod parking;
pub mod relay;
pub mod service;
pub mod topology;

pub use catalog::{Event, IntegrationEvent};
pub use consumer::{Consumer, EventHandler, HandlerError, Handling, ReceivedEvent};
pub use envelope::Envelope;
pub use relay::{OutboxRelay, RelayConfig};
pub use service::WithMessaging;
pub use topology::Queue;

/// The outbox and the inbox, with the retention `runtime` sets for each
/// (`<SERVICE>_OUTBOX_RETENTION`, `<SERVICE>_INBOX_RETENTION`), for the service's `partitions`
/// worker.
pub fn partitioned_tables(
    runtime: &platform::config::RuntimeConfig,
) -> Vec<partitions::PartitionedTable> {
    vec![
        outbox::partitioned_table(runtime.outbox_retention),
        inbox::partitioned_table(runtime.inbox_retention),
    ]
}

/// Migrations of the tables this library owns (the outbox, the inbox), for every service
/// database.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    // A separate ledger: the service's own `_sqlx_migrations` numbering stays its own business.
    migrator.dangerous_set_table_name("_messaging_migrations");
    migrator
}
