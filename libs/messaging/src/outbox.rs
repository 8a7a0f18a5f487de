//! The transactional outbox: recording events for publication.
//!
//! ```text
//! let mut tx = pool.begin().await?;
//! store.insert_user(&mut tx, &user).await?;               // the state change
//! outbox::enqueue(&mut tx, &Envelope::new(&registered)).await?;  // the event, same transaction
//! tx.commit().await?;                                      // both or neither
//! ```
//!
//! Enqueueing also sends `NOTIFY outbox`, which Postgres delivers only when the transaction
//! commits: the relay wakes up at once instead of waiting for its next poll.
//!
//! **Retention.** The table is partitioned by day on `occurred_at` (migration
//! `outbox_partitioned`: why its keys gained that column and still hold), and published events
//! age out with their day: the [`partitioned_table`] the `partitions` worker maintains drops a
//! partition once the whole day is older than `<SERVICE>_OUTBOX_RETENTION` (7 days by default),
//! but never one that still holds an unpublished event, however old: the relay may be waiting
//! for a broker, and an event dropped there would be lost.

use std::time::Duration;

use partitions::PartitionedTable;
use sqlx::PgConnection;

use crate::Envelope;

/// The outbox, for the `partitions` worker: partitioned on `occurred_at`, dropped after
/// `retention` once everything in the partition is published.
pub fn partitioned_table(retention: Duration) -> PartitionedTable {
    PartitionedTable::dropped_after("outbox", "occurred_at", retention)
        .keep_while("published_at IS NULL")
}

/// The LISTEN/NOTIFY channel the relay listens on.
pub const NOTIFY_CHANNEL: &str = "outbox";

/// Records `envelope` in the outbox, inside the caller's transaction.
pub async fn enqueue(conn: &mut PgConnection, envelope: &Envelope) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox
             (event_id, event_type, routing_key, aggregate_type, aggregate_id, envelope, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(envelope.event_id)
    .bind(&envelope.event_type)
    .bind(envelope.routing_key)
    .bind(envelope.aggregate_type)
    .bind(&envelope.aggregate_id)
    .bind(&envelope.bytes)
    .bind(envelope.occurred_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
