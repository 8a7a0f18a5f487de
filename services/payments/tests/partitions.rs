//! The event store partitioned by the payment's opening day: a stream stays whole in one
//! partition whenever its events happen, and with a retention set, a day past it leaves the ledger
//! by DETACH — kept as a table to archive, never dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use partitions::{Layout, PartitionMaintainer};
use payments::store::events_table;
use sqlx::PgPool;
use support::{APPROVE, spawn_app};
use time::OffsetDateTime;
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn partition(at: OffsetDateTime) -> String {
    format!(
        "payment_events_p{:04}{:02}{:02}_0000",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}

/// A payment opened at `opened` and authorized then, captured `captured`: its header and events
/// as the store writes them.
async fn payment(pool: &PgPool, opened: OffsetDateTime, captured: OffsetDateTime) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO payments (id, order_id, customer_id, amount_minor, currency, created_at)
         VALUES ($1, $1, $1, 100, 'EUR', $2)",
    )
    .bind(id)
    .bind(opened)
    .execute(pool)
    .await
    .expect("a header");
    for (seq, kind, at) in [(1, "authorized", opened), (2, "captured", captured)] {
        sqlx::query(
            "INSERT INTO payment_events
                 (payment_id, opened_at, seq, kind, amount_minor, currency, occurred_at)
             VALUES ($1, $2, $3, $4, 100, 'EUR', $5)",
        )
        .bind(id)
        .bind(opened)
        .bind(seq)
        .bind(kind)
        .bind(at)
        .execute(pool)
        .await
        .expect("an event");
    }
    id
}

async fn partitions_of(pool: &PgPool, id: Uuid) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT tableoid::regclass::text FROM payment_events WHERE payment_id = $1",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("the partitions");
    rows.into_iter().map(|(name,)| name).collect()
}

#[tokio::test]
async fn a_stream_stays_in_its_opening_day_and_expired_days_are_detached_not_dropped() {
    let app = spawn_app().await;
    let pool = app.db.pool().await;
    let now = OffsetDateTime::now_utc();

    // Through the API: both events of today's payment are in today's partition.
    let live = app.authorize(1500, APPROVE).await;
    app.capture(&live.id).await.expect("captured");
    let live: Uuid = live.id.parse().expect("a payment id");
    assert_eq!(partitions_of(&pool, live).await, vec![partition(now)]);

    // Days laid out over the past 40 days, as a worker running all along would have.
    let maintainer = |retention| {
        PartitionMaintainer::new(
            pool.clone(),
            Layout {
                span: DAY,
                lookahead: DAY * 41,
            },
            vec![events_table(retention)],
        )
    };
    maintainer(None)
        .maintain_as_of(now - DAY * 40)
        .await
        .expect("partitions laid out");
    // Opened 35 days ago, captured 20 days later: one stream, one partition.
    let (opened, captured) = (now - DAY * 35, now - DAY * 15);
    let old = payment(&pool, opened, captured).await;
    assert_eq!(partitions_of(&pool, old).await, vec![partition(opened)]);

    // Without a retention nothing leaves the ledger.
    let round = maintainer(None).maintain_once().await.expect("a round");
    assert!(round[0].expired.is_empty(), "{round:?}");

    // With 30 days, the days before that are detached: out of the ledger, still in the database.
    let round = maintainer(Some(DAY * 30))
        .maintain_once()
        .await
        .expect("a round");
    assert!(round[0].expired.contains(&partition(opened)), "{round:?}");
    assert!(partitions_of(&pool, old).await.is_empty());
    let (archived,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {} WHERE payment_id = $1",
        partition(opened)
    )))
    .bind(old)
    .fetch_one(&pool)
    .await
    .expect("the archived partition");
    assert_eq!(archived, 2);
    assert_eq!(partitions_of(&pool, live).await, vec![partition(now)]);
    app.stop().await;
}
