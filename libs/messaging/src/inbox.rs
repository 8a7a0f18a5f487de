//! The inbox table: what a consumer records, and how the table is kept to its retention window.
//!
//! Every consumed event leaves a row in `inbox` (see [`crate::consumer`]), written by [`record`]
//! in the same transaction as the handler's effects: that row is how a redelivery, a republish or
//! a replay from the parking queue is recognised and skipped. A row is needed only while a copy
//! of its event can still arrive. Copies come from the broker's redelivery (seconds), the retry
//! tiers (at most a few minutes) and operators replaying parked messages (days, at worst), so
//! rows older than a generous window (`<SERVICE>_INBOX_RETENTION`, 14 days by default) only make
//! the table, its index and every consumer's insert slower.
//!
//! **Partitioned by the event's time.** The table is partitioned by day on `event_at`, the time
//! encoded in the event's UUIDv7 id (`inbox_event_time(message_id)` in SQL; the migration
//! `inbox_partitioned` explains the choice). The retention is the [`partitioned_table`] the
//! `partitions` worker maintains: it drops a day's partition once the whole day is older than the
//! window. No `DELETE`, no dead rows, no vacuum.
//!
//! **Deduplication stays global within the window.** The primary key is
//! `(consumer, message_id, event_at)`; since `event_at` is computed from `message_id`, every copy
//! of an event lands in the partition of the first copy, and its insert meets the first copy's
//! row there: `ON CONFLICT DO NOTHING` reports the duplicate exactly as the old global key did.
//! An event older than the window that arrives anyway finds its partition gone, lands in the
//! default partition and is handled again; the handlers are idempotent on their own (status
//! columns move only forward, ledgers refuse a second capture), so even then it changes nothing,
//! but the inbox is the first line.

use std::time::Duration;

use partitions::PartitionedTable;
use sqlx::PgConnection;
use uuid::Uuid;

/// Records that `consumer` is handling `message_id`, inside the caller's transaction. `false`:
/// a row was already there, this delivery is a copy of an event already handled.
pub async fn record(
    conn: &mut PgConnection,
    consumer: &str,
    message_id: Uuid,
    event_type: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (consumer, message_id, event_type, event_at)
         VALUES ($1, $2, $3, inbox_event_time($2))
         ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(message_id)
    .bind(event_type)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The inbox, for the `partitions` worker: partitioned on `event_at`, dropped after `retention`.
pub fn partitioned_table(retention: Duration) -> PartitionedTable {
    PartitionedTable::dropped_after("inbox", "event_at", retention)
}
