//! All SQL of the orders service.
//!
//! * [`orders`]: placing orders (the order, its saga and `OrderPlaced` in one transaction),
//!   reading them back with their timeline, and customer cancellations.
//! * [`sagas`]: leases on due sagas, step transitions, and the local confirm/cancel steps.
//! * [`summaries`]: the CQRS read model, written only by the projection.
//!
//! Every timeline entry is announced on [`TIMELINE_CHANNEL`] when it commits, by a trigger; the
//! watchers of `crate::service::watch` listen there. The timeline is partitioned by day on `at`
//! and ages out by whole days ([`timeline_table`], for the `partitions` worker; the migration
//! `timeline_partitioned` explains its key).
//!
//! The store writes events into the outbox but never builds them: each method that announces a
//! change takes the [`messaging::Envelope`] that `crate::events` built for it.

mod orders;
mod sagas;
mod summaries;

use std::time::Duration;

use partitions::PartitionedTable;
use sqlx::PgPool;

pub use orders::{OrderView, OutcomeColumn, Placement, TimelineEntry};
pub use sagas::{ClaimedSaga, Lease, SagaContext};
pub use summaries::{SummaryChange, SummaryCursor, SummaryRow};

/// The LISTEN/NOTIFY channel that wakes saga runners when an order is placed.
pub const SAGA_CHANNEL: &str = "sagas";

/// The LISTEN/NOTIFY channel on which every new timeline entry is announced, with the payload
/// `<order id>:<sequence>` (the trigger of the migration `timeline_notify`).
pub const TIMELINE_CHANNEL: &str = "order_timeline";

/// The timeline, for the `partitions` worker: partitioned on `at`, a day's entries dropped once
/// the whole day is older than `retention` (`ORDERS_TIMELINE_RETENTION`).
pub fn timeline_table(retention: Duration) -> PartitionedTable {
    PartitionedTable::dropped_after("order_timeline", "at", retention)
}

#[derive(Clone, Debug)]
pub struct OrderStore {
    pool: PgPool,
}

impl OrderStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Maps a Postgres timestamp column that may hold microseconds only.
pub(crate) fn now() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}
