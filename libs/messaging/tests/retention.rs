//! The outbox and the inbox age out by partition: against a real database, with daily partitions
//! laid out over the past weeks as a worker running all along would have left them, one round of
//! the `partitions` worker drops the days past the window and leaves everything newer untouched;
//! the inbox still recognises every copy of an event inside the window.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use messaging::{inbox, outbox};
use partitions::{Layout, PartitionMaintainer};
use time::OffsetDateTime;
use uuid::{NoContext, Timestamp, Uuid};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const OUTBOX_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const INBOX_RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

fn maintainer(pool: &sqlx::PgPool, lookahead: Duration) -> PartitionMaintainer {
    PartitionMaintainer::new(
        pool.clone(),
        Layout {
            span: DAY,
            lookahead,
        },
        vec![
            outbox::partitioned_table(OUTBOX_RETENTION),
            inbox::partitioned_table(INBOX_RETENTION),
        ],
    )
}

fn days_ago(now: OffsetDateTime, days: u32) -> OffsetDateTime {
    now - DAY * days
}

/// A UUIDv7 minted `days` ago: the id of an event that happened then.
fn event_id(now: OffsetDateTime, days: u32) -> Uuid {
    let at = days_ago(now, days);
    Uuid::new_v7(Timestamp::from_unix(
        NoContext,
        u64::try_from(at.unix_timestamp()).unwrap(),
        at.nanosecond(),
    ))
}

/// Records `id` for `consumer` in a transaction of its own, as the consumer does; whether it was
/// the first copy.
async fn record(pool: &sqlx::PgPool, consumer: &str, id: Uuid) -> bool {
    let mut tx = pool.begin().await.unwrap();
    let first = inbox::record(&mut tx, consumer, id, "shop.events.v1.Test")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    first
}

async fn count(pool: &sqlx::PgPool, query: &'static str, id: Uuid) -> i64 {
    let (count,): (i64,) = sqlx::query_as(query)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    count
}

async fn partition_of(pool: &sqlx::PgPool, query: &'static str, id: Uuid) -> String {
    let (partition,): (String,) = sqlx::query_as(query)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    partition
}

#[tokio::test]
async fn partitions_past_the_window_are_dropped_and_the_inbox_still_deduplicates_within_it() {
    let f = support::fixture().await;
    let pool = &f.pool;
    let now = OffsetDateTime::now_utc();
    // Daily partitions from 40 days ago up to the migration's first one (which starts today).
    maintainer(pool, DAY * 41)
        .maintain_as_of(days_ago(now, 40))
        .await
        .unwrap();

    // The inbox: events that happened 30, 20, 13 and 1 days ago, each handled once.
    let handled: Vec<(u32, Uuid)> = [30, 20, 13, 1]
        .into_iter()
        .map(|days| (days, event_id(now, days)))
        .collect();
    for &(_, id) in &handled {
        assert!(record(pool, "retention.test", id).await);
    }
    // The outbox: published events of 30 and 3 days ago, and one of 20 days ago the relay has
    // not managed to publish yet.
    let mut envelopes = Vec::new();
    for (days, published) in [(30, true), (20, false), (3, true)] {
        let mut envelope = support::event("u-retention", usize::try_from(days).unwrap());
        envelope.occurred_at = days_ago(now, days);
        f.enqueue(std::slice::from_ref(&envelope)).await;
        if published {
            sqlx::query("UPDATE outbox SET published_at = occurred_at WHERE event_id = $1")
                .bind(envelope.event_id)
                .execute(pool)
                .await
                .unwrap();
        }
        envelopes.push((days, envelope.event_id));
    }

    // Each row is in the partition of its day, not in one heap nor in the default partition.
    let day_13 = handled[2].1;
    let expected = format!("inbox_p{}", partition_day(days_ago(now, 13)));
    assert_eq!(
        partition_of(
            pool,
            "SELECT tableoid::regclass::text FROM inbox WHERE message_id = $1",
            day_13
        )
        .await,
        expected
    );

    let rounds = maintainer(pool, DAY * 7).maintain_once().await.unwrap();
    let (outbox_round, inbox_round) = (&rounds[0], &rounds[1]);
    // Every day from 40 to 15 days ago is past the inbox's 14 days; from 40 to 8 the outbox's 7,
    // except the day holding the unpublished event.
    assert_eq!(inbox_round.expired.len(), 26, "{inbox_round:?}");
    assert_eq!(outbox_round.expired.len(), 32, "{outbox_round:?}");
    assert_eq!(outbox_round.held.len(), 1, "{outbox_round:?}");

    // The inbox: the rows of 30 and 20 days ago went with their partitions, the newer ones stay.
    const INBOX_ROWS: &str = "SELECT count(*) FROM inbox WHERE message_id = $1";
    for &(days, id) in &handled {
        let kept = i64::from(days <= 14);
        assert_eq!(count(pool, INBOX_ROWS, id).await, kept, "{days} days ago");
    }
    // Within the window every copy is still recognised, whatever day it arrives...
    for &(days, id) in handled.iter().filter(|(days, _)| *days <= 14) {
        assert!(!record(pool, "retention.test", id).await, "{days} days ago");
        assert_eq!(count(pool, INBOX_ROWS, id).await, 1);
    }
    // ...and another consumer of the same event is deduplicated on its own.
    assert!(record(pool, "retention.other", day_13).await);
    // Past the window the event's day is gone: a late copy is taken (into the default
    // partition, never an error) and left to the handler's own idempotence.
    let day_30 = handled[0].1;
    assert!(record(pool, "retention.test", day_30).await);
    assert_eq!(
        partition_of(
            pool,
            "SELECT tableoid::regclass::text FROM inbox WHERE message_id = $1",
            day_30
        )
        .await,
        "inbox_default"
    );

    // The outbox: the published event of 30 days ago is gone, the unpublished one of 20 days
    // ago is kept with its partition, the recent one untouched.
    const OUTBOX_ROWS: &str = "SELECT count(*) FROM outbox WHERE event_id = $1";
    for &(days, id) in &envelopes {
        let kept = i64::from(days != 30);
        assert_eq!(count(pool, OUTBOX_ROWS, id).await, kept, "{days} days ago");
    }

    // A second round finds nothing more to drop.
    let again = maintainer(pool, DAY * 7).maintain_once().await.unwrap();
    assert!(
        again.iter().all(|round| round.expired.is_empty()),
        "{again:?}"
    );
}

/// `YYYYMMDD_0000` of the day holding `at` (UTC), as partitions are named.
fn partition_day(at: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}_0000",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}
