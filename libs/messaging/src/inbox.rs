//! Keeping the inbox bounded: the pruner.
//!
//! Every consumed event leaves a row in `inbox` (see [`crate::consumer`]): that row is how a
//! redelivery, a republish or a replay from the parking queue is recognised and skipped. A row is
//! needed only while a copy of its event can still arrive. Copies come from the broker's
//! redelivery (seconds), the retry tiers (at most a few minutes) and operators replaying parked
//! messages (days, at worst), so rows older than a generous window (`<SERVICE>_INBOX_RETENTION`,
//! 14 days by default) only make the table, its index and every consumer's insert slower.
//!
//! [`InboxPruner::run`] deletes them, every [`InboxPruner::INTERVAL`], in batches of
//! [`InboxPruner::BATCH`] rows so no single statement holds locks for long, with
//! `FOR UPDATE SKIP LOCKED` so that the pruners of several replicas split the work instead of
//! waiting for each other. An event older than the window that arrives anyway is handled again;
//! the handlers are idempotent on their own (status columns move only forward, ledgers refuse a
//! second capture), so even then it changes nothing, but the inbox is the first line.

use std::time::Duration;

use platform::Shutdown;
use sqlx::PgPool;
use tokio::time::MissedTickBehavior;

/// Deletes inbox rows older than the retention window.
#[derive(Debug, Clone)]
pub struct InboxPruner {
    pool: PgPool,
    retention: Duration,
}

impl InboxPruner {
    /// How often the pruner runs.
    pub const INTERVAL: Duration = Duration::from_secs(15 * 60);
    /// Most rows deleted by one statement.
    pub const BATCH: i64 = 5_000;

    pub fn new(pool: PgPool, retention: Duration) -> Self {
        Self { pool, retention }
    }

    /// Deletes every row older than the window, batch by batch; returns how many.
    pub async fn prune_once(&self) -> Result<u64, sqlx::Error> {
        let retention = sqlx::postgres::types::PgInterval::try_from(self.retention)
            .map_err(sqlx::Error::Encode)?;
        let mut pruned = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM inbox WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM inbox WHERE received_at < now() - $1::interval
                     LIMIT $2 FOR UPDATE SKIP LOCKED))",
            )
            .bind(retention)
            .bind(Self::BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            pruned += deleted;
            if deleted < u64::try_from(Self::BATCH).unwrap_or(u64::MAX) {
                break;
            }
        }
        if pruned > 0 {
            metrics::counter!("messaging_inbox_pruned_total").increment(pruned);
            tracing::info!(pruned, "inbox rows past their retention deleted");
        }
        Ok(pruned)
    }

    /// Prunes at start and then every [`Self::INTERVAL`] until `shutdown`. A failed round (the
    /// database away) is logged and tried again at the next one.
    pub async fn run(self, shutdown: Shutdown) {
        let mut ticks = tokio::time::interval(Self::INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                _ = ticks.tick() => {}
            }
            if let Err(err) = self.prune_once().await {
                tracing::warn!(error = %err, "inbox pruning failed; trying again next round");
            }
        }
    }
}
