//! The inbox pruner against a real database: what is past the retention window goes, in as many
//! batches as it takes; what is inside it stays.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use messaging::inbox::InboxPruner;

const RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Inserts `count` rows received `age_days` ago for `consumer`.
async fn received(pool: &sqlx::PgPool, consumer: &str, count: i64, age_days: i32) {
    sqlx::query(
        "INSERT INTO inbox (consumer, message_id, event_type, received_at)
         SELECT $1, gen_random_uuid(), 'shop.events.v1.Test', now() - make_interval(days => $3)
         FROM generate_series(1, $2)",
    )
    .bind(consumer)
    .bind(count)
    .bind(age_days)
    .execute(pool)
    .await
    .unwrap();
}

async fn rows(pool: &sqlx::PgPool, consumer: &str) -> i64 {
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM inbox WHERE consumer = $1")
        .bind(consumer)
        .fetch_one(pool)
        .await
        .unwrap();
    count
}

#[tokio::test]
async fn rows_past_the_retention_window_are_pruned_in_batches_and_recent_ones_kept() {
    let f = support::fixture().await;
    // More old rows than one batch, so the pruner has to come back for the rest.
    let old = InboxPruner::BATCH * 2 + 17;
    received(&f.pool, "old", old, 15).await;
    received(&f.pool, "recent", 40, 13).await;
    received(&f.pool, "fresh", 10, 0).await;

    let pruner = InboxPruner::new(f.pool.clone(), RETENTION);
    assert_eq!(
        pruner.prune_once().await.unwrap(),
        u64::try_from(old).unwrap()
    );
    assert_eq!(rows(&f.pool, "old").await, 0);
    assert_eq!(rows(&f.pool, "recent").await, 40);
    assert_eq!(rows(&f.pool, "fresh").await, 10);

    // Nothing left to do: a second round deletes nothing.
    assert_eq!(pruner.prune_once().await.unwrap(), 0);
}
