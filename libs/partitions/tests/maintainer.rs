//! The partition worker against a real database, on a table of the tests' own (partitioned by
//! `at`, with its default partition, as every partitioned table of the services is): partitions
//! made ahead, a second round or a second replica changing nothing, rows in the partition of
//! their span, rows that landed in the default partition moved out, and the two kinds of expiry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

use std::time::Duration;

use partitions::{Expiry, Layout, PartitionMaintainer, PartitionedTable, Retention};
use sqlx::{AssertSqlSafe, PgPool};
use time::OffsetDateTime;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A fresh database with `readings`: an identity, a time, and an append-only guard like the
/// payment ledger's, so moving rows out of the default partition is shown to work even there.
async fn database() -> (testkit::TestDatabase, PgPool) {
    let db = testkit::fresh_database().await;
    let pool = db.pool().await;
    sqlx::raw_sql(
        "CREATE TABLE readings (
             id BIGINT GENERATED ALWAYS AS IDENTITY,
             at TIMESTAMPTZ NOT NULL,
             sent BOOLEAN NOT NULL DEFAULT true,
             PRIMARY KEY (id, at)
         ) PARTITION BY RANGE (at);
         CREATE TABLE readings_default PARTITION OF readings DEFAULT;
         CREATE FUNCTION readings_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'readings is append-only'; END $$;
         CREATE TRIGGER readings_append_only BEFORE UPDATE OR DELETE ON readings
             FOR EACH ROW EXECUTE FUNCTION readings_append_only();",
    )
    .execute(&pool)
    .await
    .unwrap();
    (db, pool)
}

fn readings(retention: Option<Retention>) -> PartitionedTable {
    PartitionedTable {
        name: "readings",
        key: "at",
        retention,
        keep_while: None,
    }
}

fn maintainer(pool: &PgPool, table: PartitionedTable, lookahead: Duration) -> PartitionMaintainer {
    PartitionMaintainer::new(
        pool.clone(),
        Layout {
            span: DAY,
            lookahead,
        },
        vec![table],
    )
}

async fn partitions(pool: &PgPool) -> Vec<String> {
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'readings'::regclass ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    names.into_iter().map(|(name,)| name).collect()
}

/// Inserts a reading at `at`; the partition it landed in.
async fn insert(pool: &PgPool, at: OffsetDateTime) -> String {
    let (partition,): (String,) =
        sqlx::query_as("INSERT INTO readings (at) VALUES ($1) RETURNING tableoid::regclass::text")
            .bind(at)
            .fetch_one(pool)
            .await
            .unwrap();
    partition
}

fn name(at: OffsetDateTime) -> String {
    format!(
        "readings_p{:04}{:02}{:02}_0000",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}

#[tokio::test]
async fn partitions_are_made_ahead_once_even_by_two_replicas_at_a_time() {
    let (_db, pool) = database().await;
    let now = OffsetDateTime::now_utc();
    // Two replicas start at the same moment: the advisory lock makes them take turns, and the
    // second finds the work done.
    let (first, second) = (
        maintainer(&pool, readings(None), DAY * 3),
        maintainer(&pool, readings(None), DAY * 3),
    );
    let (a, b) = tokio::join!(first.maintain_once(), second.maintain_once());
    let created: Vec<String> = [a.unwrap(), b.unwrap()]
        .into_iter()
        .flatten()
        .flat_map(|round| round.created)
        .collect();
    // Today and the three days after it (the fourth reaches past now + 3 days).
    let expected: Vec<String> = (0..4).map(|day| name(now + DAY * day)).collect();
    assert_eq!(created, expected);
    let mut all = expected.clone();
    all.push("readings_default".to_owned());
    all.sort();
    assert_eq!(partitions(&pool).await, all);

    // Idempotent: another round creates nothing.
    let again = maintainer(&pool, readings(None), DAY * 3)
        .maintain_once()
        .await
        .unwrap();
    assert!(again[0].created.is_empty(), "{again:?}");

    // Rows land in the partition of their day.
    assert_eq!(insert(&pool, now).await, name(now));
    assert_eq!(insert(&pool, now + DAY * 2).await, name(now + DAY * 2));
}

#[tokio::test]
async fn rows_that_landed_in_the_default_partition_move_into_their_new_partition() {
    let (_db, pool) = database().await;
    let now = OffsetDateTime::now_utc();
    maintainer(&pool, readings(None), DAY)
        .maintain_once()
        .await
        .unwrap();
    // Ten days on and the worker never ran: the insert still succeeds, into the default.
    let later = now + DAY * 10;
    assert_eq!(insert(&pool, later).await, "readings_default");
    assert_eq!(insert(&pool, later).await, "readings_default");

    let round = maintainer(&pool, readings(None), DAY)
        .maintain_as_of(later)
        .await
        .unwrap();
    assert_eq!(round[0].moved, 2, "{round:?}");
    let (in_default, in_day): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM readings_default), (SELECT count(*) FROM {})",
        name(later)
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((in_default, in_day), (0, 2));
    // The moved rows kept their ids, and the append-only guard is back on the default partition.
    let (ids,): (Vec<i64>,) = sqlx::query_as("SELECT array_agg(id ORDER BY id) FROM readings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(insert(&pool, now + DAY * 40).await, "readings_default");
    let delete = sqlx::query("DELETE FROM readings_default")
        .execute(&pool)
        .await;
    assert!(delete.is_err(), "the guard must still hold");
}

#[tokio::test]
async fn expired_partitions_are_dropped_or_detached_and_held_while_a_row_must_stay() {
    let (_db, pool) = database().await;
    let now = OffsetDateTime::now_utc();
    maintainer(&pool, readings(None), DAY * 12)
        .maintain_as_of(now - DAY * 10)
        .await
        .unwrap();
    let (old, unsent, recent) = (now - DAY * 9, now - DAY * 8, now - DAY);
    insert(&pool, old).await;
    insert(&pool, recent).await;
    sqlx::query("INSERT INTO readings (at, sent) VALUES ($1, false)")
        .bind(unsent)
        .execute(&pool)
        .await
        .unwrap();

    // Dropped after 5 days, except while a reading is unsent.
    let dropping = PartitionedTable {
        keep_while: Some("NOT sent"),
        ..readings(Some(Retention {
            after: DAY * 5,
            expiry: Expiry::Drop,
        }))
    };
    let round = maintainer(&pool, dropping, DAY)
        .maintain_once()
        .await
        .unwrap();
    assert!(round[0].expired.contains(&name(old)), "{round:?}");
    assert_eq!(round[0].held, vec![name(unsent)]);
    let (exists,): (bool,) = sqlx::query_as("SELECT to_regclass($1) IS NOT NULL")
        .bind(name(old))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!exists, "a dropped partition is gone");
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM readings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 2, "the unsent and the recent reading stay");

    // Detached after 1 day: the partitions leave the table but stay, as tables, for an archive.
    let detaching = readings(Some(Retention {
        after: DAY,
        expiry: Expiry::Detach,
    }));
    let round = maintainer(&pool, detaching, DAY)
        .maintain_once()
        .await
        .unwrap();
    assert!(round[0].expired.contains(&name(unsent)), "{round:?}");
    let (archived,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT count(*) FROM {}",
        name(unsent)
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(archived, 1);
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM readings")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "only the recent reading is still in the table");
}
