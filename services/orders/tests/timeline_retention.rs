//! The order timeline ages out by day: entries past `ORDERS_TIMELINE_RETENTION` go with their
//! day's partition, newer ones and the orders themselves stay, and every entry — whatever
//! partition it lands in — is still announced on the `order_timeline` channel.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

use std::time::Duration;

use orders::store::{TIMELINE_CHANNEL, timeline_table};
use partitions::{Layout, PartitionMaintainer};
use sqlx::{PgPool, postgres::PgListener};
use time::OffsetDateTime;
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const RETENTION: Duration = Duration::from_secs(90 * 24 * 60 * 60);

fn maintainer(pool: &PgPool, lookahead: Duration) -> PartitionMaintainer {
    PartitionMaintainer::new(
        pool.clone(),
        Layout {
            span: DAY,
            lookahead,
        },
        vec![timeline_table(RETENTION)],
    )
}

async fn order(pool: &PgPool) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, payment_method, currency, total_minor,
                             idempotency_key, created_at, updated_at)
         VALUES ($1, $1, 'PENDING', 'tok_visa_approve', 'EUR', 100, $1::text, now(), now())",
    )
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// Records a step at `at`; the entry's id and the partition it landed in.
async fn step(pool: &PgPool, order: Uuid, at: OffsetDateTime) -> (i64, String) {
    sqlx::query_as(
        "INSERT INTO order_timeline (order_id, step, outcome, at) VALUES ($1, 'place_order', 'succeeded', $2)
         RETURNING id, tableoid::regclass::text",
    )
    .bind(order)
    .bind(at)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn partition(at: OffsetDateTime) -> String {
    format!(
        "order_timeline_p{:04}{:02}{:02}_0000",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}

#[tokio::test]
async fn timeline_days_past_the_window_are_dropped_and_every_entry_is_still_announced() {
    let db = testkit::fresh_database().await;
    let pool = db.pool().await;
    sqlx::migrate!().run(&pool).await.unwrap();
    let now = OffsetDateTime::now_utc();
    maintainer(&pool, DAY * 101)
        .maintain_as_of(now - DAY * 100)
        .await
        .unwrap();
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen(TIMELINE_CHANNEL).await.unwrap();

    let (old, recent) = (order(&pool).await, order(&pool).await);
    let (old_at, recent_at) = (now - DAY * 95, now - DAY);
    let (old_id, old_partition) = step(&pool, old, old_at).await;
    let (recent_id, recent_partition) = step(&pool, recent, recent_at).await;
    assert_eq!(old_partition, partition(old_at));
    assert_eq!(recent_partition, partition(recent_at));
    // The trigger fires for rows of every partition, in insert order.
    for (order, id) in [(old, old_id), (recent, recent_id)] {
        let notification = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .expect("a notification within 10 s")
            .unwrap();
        assert_eq!(notification.payload(), format!("{order}:{id}"));
    }

    let round = maintainer(&pool, DAY * 7).maintain_once().await.unwrap();
    assert!(round[0].expired.contains(&partition(old_at)), "{round:?}");
    let entries: Vec<(Uuid,)> = sqlx::query_as("SELECT order_id FROM order_timeline")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(entries, vec![(recent,)], "only the recent entry is left");
    let (orders,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(orders, 2, "orders outlive their timeline");
}
