//! Time-partitioned tables: partitions made ahead of time, retention by dropping whole partitions.
//!
//! The append-only tables of the services (the outbox and the inbox of every service, payments'
//! event store, orders' timeline) only ever grow at one end, by time. Kept in one heap each, they
//! could only be aged out with `DELETE`: row by row, in batches, leaving dead tuples for vacuum and
//! an index that never shrinks. Declared as PostgreSQL range partitions on a time column, the
//! table is a series of small tables, one per span of time (a day by default), and forgetting a
//! day is `DROP TABLE` of one of them: instant, no dead tuples, no vacuum.
//!
//! A [`PartitionedTable`] says which table, which time column, and how long its rows are kept
//! ([`Retention`]). The [`PartitionMaintainer`] keeps a service's tables in shape; every round
//! ([`PartitionMaintainer::INTERVAL`], and once at start) it follows the same steps for each table,
//! in one transaction:
//!
//! ```text
//! lock     pg_advisory_xact_lock(table)        -- replicas take turns: the second finds it done
//! load     the partitions and their bounds      -- pg_inherits + pg_get_expr(relpartbound)
//! create   every missing span from the one holding now() to now() + lookahead
//!            (rows that already landed in the default partition for that span are moved in)
//! expire   every partition whose upper bound is older than now() − retention:
//!            DROP TABLE, or DETACH for tables kept as an archive;
//!            a partition still holding a row the table must keep (an unpublished event) stays
//! ```
//!
//! **Never a failed insert.** Each table has a `DEFAULT` partition beside its ranges, and its
//! migration creates a first range that reaches a week past the day it ran, so an insert always
//! has somewhere to land: with the worker running, rows go to their span's partition; if it has
//! been stopped for longer than the lookahead (or a row's time is far outside the ranges: an
//! event replayed long after the window), the row goes to the default partition instead of
//! failing the transaction. When the worker later creates the span such rows belong to, it moves
//! them in (detach the default, create, move, re-attach, all in one transaction); rows older than
//! every range stay in the default partition and are deleted from it once past the window. The
//! alternative, no default partition and partitions only made ahead, turns a stopped worker into
//! failed checkouts a week later; the default partition turns it into a gauge
//! (`partitions_default_rows`) worth an alert.
//!
//! **Keys.** On a partitioned table a primary key or unique constraint must contain the partition
//! column: uniqueness is only checked within one partition. Each table's migration explains how
//! its key keeps the guarantee the old global one gave (the inbox, for instance, partitions on the
//! time encoded in the event id, so every copy of an event lands in the same partition and the
//! dedup key stays global).
//!
//! Settings (`libs/declarations`): `<SERVICE>_PARTITION_SPAN` (one partition's span, `1d`),
//! `<SERVICE>_PARTITION_LOOKAHEAD` (how far ahead partitions exist, `7d`), and each table's
//! retention. Metrics: `partitions_created_total{table}`, `partitions_expired_total{table}`,
//! `partitions_default_rows{table}`.

use std::time::Duration;

use platform::{ServiceBuilder, Shutdown, host::Worker};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use time::OffsetDateTime;
use tokio::time::MissedTickBehavior;

/// One table partitioned by `RANGE (<key>)` on a `timestamptz` column, with a `DEFAULT`
/// partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionedTable {
    /// The partitioned (parent) table, e.g. `outbox`. Its partitions are named
    /// `<name>_p<YYYYMMDD>_<HHMM>` after the start of their span (UTC).
    pub name: &'static str,
    /// The `timestamptz` partition column, e.g. `occurred_at`.
    pub key: &'static str,
    /// How long rows are kept; `None` keeps every partition.
    pub retention: Option<Retention>,
    /// A condition on rows (SQL) that holds a partition back from expiry while any of its rows
    /// meets it: `published_at IS NULL` for the outbox, whose unpublished events must never be
    /// dropped however old they are.
    pub keep_while: Option<&'static str>,
}

/// How long a table's rows are kept, and what happens to a partition past that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A partition expires once its whole span is older than this.
    pub after: Duration,
    /// What expiry does to it.
    pub expiry: Expiry,
}

/// What happens to a partition past its table's retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `DROP TABLE`: the rows are gone.
    Drop,
    /// `DETACH PARTITION`: the rows leave the table but stay in the database as a table of their
    /// own, for an operator to archive (`pg_dump -t`) and drop. For history that is a record, such
    /// as a ledger.
    Detach,
}

impl PartitionedTable {
    /// A table whose partitions are dropped once older than `retention`.
    pub const fn dropped_after(name: &'static str, key: &'static str, after: Duration) -> Self {
        Self {
            name,
            key,
            retention: Some(Retention {
                after,
                expiry: Expiry::Drop,
            }),
            keep_while: None,
        }
    }

    /// The same table, whose partitions are kept while any row meets `condition`.
    #[must_use]
    pub const fn keep_while(self, condition: &'static str) -> Self {
        Self {
            keep_while: Some(condition),
            ..self
        }
    }

    fn default_partition(&self) -> String {
        format!("{}_default", self.name)
    }

    fn partition_name(&self, start: OffsetDateTime) -> String {
        format!(
            "{}_p{:04}{:02}{:02}_{:02}{:02}",
            self.name,
            start.year(),
            u8::from(start.month()),
            start.day(),
            start.hour(),
            start.minute()
        )
    }
}

/// How the partitions of every table are cut: their span and how far ahead they exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// One partition's span. Spans are aligned on multiples of it since the Unix epoch (so a day
    /// starts at 00:00 UTC).
    pub span: Duration,
    /// Partitions exist up to at least `now() + lookahead`.
    pub lookahead: Duration,
}

/// What one round did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintained {
    /// Partitions created, by name.
    pub created: Vec<String>,
    /// Partitions dropped or detached, by name.
    pub expired: Vec<String>,
    /// Partitions past the retention held back by [`PartitionedTable::keep_while`].
    pub held: Vec<String>,
    /// Rows moved from the default partition into a new partition.
    pub moved: u64,
    /// Rows deleted from the default partition for being past the retention.
    pub pruned: u64,
}

/// Creates partitions ahead and expires old ones, for the tables of one database.
#[derive(Debug, Clone)]
pub struct PartitionMaintainer {
    pool: PgPool,
    layout: Layout,
    tables: Vec<PartitionedTable>,
}

/// One existing partition: its name and bounds (`None` for the default partition's).
#[derive(Debug, sqlx::FromRow)]
struct Partition {
    name: String,
    lower: Option<OffsetDateTime>,
    upper: Option<OffsetDateTime>,
}

impl PartitionMaintainer {
    /// How often the worker runs. Partitions exist a lookahead ahead, so a round missed or
    /// failed (the database away) costs nothing.
    pub const INTERVAL: Duration = Duration::from_secs(60 * 60);

    pub fn new(pool: PgPool, layout: Layout, tables: Vec<PartitionedTable>) -> Self {
        Self {
            pool,
            layout,
            tables,
        }
    }

    /// One round for every table, as of the database's `now()`.
    pub async fn maintain_once(&self) -> Result<Vec<Maintained>, sqlx::Error> {
        let (now,): (OffsetDateTime,) =
            sqlx::query_as("SELECT now()").fetch_one(&self.pool).await?;
        self.maintain_as_of(now).await
    }

    /// One round for every table as if it were `now`: partitions up to `now + lookahead`, expiry
    /// of what is older than `now − retention`. Tests move `now` into the past to lay out
    /// partitions there.
    pub async fn maintain_as_of(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<Maintained>, sqlx::Error> {
        let mut rounds = Vec::with_capacity(self.tables.len());
        for table in &self.tables {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('partitions/' || $1, 0))")
                .bind(table.name)
                .execute(&mut *tx)
                .await?;
            let mut done = Maintained::default();
            create_ahead(&mut tx, table, self.layout, now, &mut done).await?;
            if let Some(retention) = table.retention {
                expire(&mut tx, table, retention, now, &mut done).await?;
            }
            let (in_default,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT count(*) FROM {}",
                ident(&table.default_partition())
            )))
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;

            metrics::counter!("partitions_created_total", "table" => table.name)
                .increment(done.created.len() as u64);
            metrics::counter!("partitions_expired_total", "table" => table.name)
                .increment(done.expired.len() as u64);
            metrics::gauge!("partitions_default_rows", "table" => table.name)
                .set(in_default as f64);
            if !done.created.is_empty() || !done.expired.is_empty() {
                tracing::info!(
                    table = table.name,
                    created = ?done.created,
                    expired = ?done.expired,
                    moved = done.moved,
                    "partitions maintained"
                );
            }
            if !done.held.is_empty() {
                tracing::warn!(
                    table = table.name,
                    held = ?done.held,
                    "partitions past their retention kept: they still hold rows that must stay"
                );
            }
            rounds.push(done);
        }
        Ok(rounds)
    }

    /// Maintains at start and then every [`Self::INTERVAL`] until `shutdown`. A failed round is
    /// logged and tried again at the next one.
    pub async fn run(self, shutdown: Shutdown) {
        let mut ticks = tokio::time::interval(Self::INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                _ = ticks.tick() => {}
            }
            if let Err(err) = self.maintain_once().await {
                tracing::warn!(error = %err, "partition maintenance failed; trying again next round");
            }
        }
    }
}

/// The existing partitions of `table`, with their bounds read back from the catalog.
async fn partitions(
    conn: &mut PgConnection,
    table: &PartitionedTable,
) -> Result<Vec<Partition>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.relname::text AS name,
                (regexp_match(bound, 'FROM \\(''([^'']*)''\\)'))[1]::timestamptz AS lower,
                (regexp_match(bound, 'TO \\(''([^'']*)''\\)'))[1]::timestamptz AS upper
         FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) AS bound
         WHERE i.inhparent = $1::regclass
         ORDER BY lower NULLS FIRST",
    )
    .bind(table.name)
    .fetch_all(&mut *conn)
    .await
}

/// Creates the partitions missing between the span holding `now` and `now + lookahead`. An
/// existing partition of another span (the migration's first one, or one cut before the span was
/// changed) is respected: the new ones start where it ends and stop where the next begins.
async fn create_ahead(
    conn: &mut PgConnection,
    table: &PartitionedTable,
    layout: Layout,
    now: OffsetDateTime,
    done: &mut Maintained,
) -> Result<(), sqlx::Error> {
    let existing = partitions(conn, table).await?;
    let ranges: Vec<(OffsetDateTime, OffsetDateTime)> = existing
        .iter()
        .filter_map(|partition| partition.lower.zip(partition.upper))
        .collect();
    let horizon = now + layout.lookahead;
    let mut cursor = span_start(now, layout.span);
    while cursor < horizon {
        if let Some(&(_, upper)) = ranges
            .iter()
            .find(|(lower, upper)| *lower <= cursor && cursor < *upper)
        {
            cursor = upper;
            continue;
        }
        let next_existing = ranges
            .iter()
            .map(|(lower, _)| *lower)
            .filter(|lower| *lower > cursor)
            .min();
        let span_end = span_start(cursor, layout.span) + layout.span;
        let end = next_existing.map_or(span_end, |lower| lower.min(span_end));
        create(conn, table, cursor, end, done).await?;
        cursor = end;
    }
    Ok(())
}

/// Creates the partition `[start, end)`, first moving in any rows the default partition holds
/// for it (Postgres refuses to create a partition whose rows sit in the default one).
async fn create(
    conn: &mut PgConnection,
    table: &PartitionedTable,
    start: OffsetDateTime,
    end: OffsetDateTime,
    done: &mut Maintained,
) -> Result<(), sqlx::Error> {
    let (parent, key, default) = (
        ident(table.name),
        ident(table.key),
        ident(&table.default_partition()),
    );
    let name = table.partition_name(start);
    let create = AssertSqlSafe(format!(
        "CREATE TABLE {} PARTITION OF {parent} FOR VALUES FROM ({}) TO ({})",
        ident(&name),
        literal(start),
        literal(end)
    ));
    let (stranded,): (bool,) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM {default} WHERE {key} >= $1 AND {key} < $2)"
    )))
    .bind(start)
    .bind(end)
    .fetch_one(&mut *conn)
    .await?;
    if !stranded {
        sqlx::query(create).execute(&mut *conn).await?;
    } else {
        // Detached, the default partition is a plain table: the parent's row triggers (such as
        // an append-only guard) no longer apply to it, so its rows can move; re-attaching checks
        // that what is left belongs to no range.
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {parent} DETACH PARTITION {default}"
        )))
        .execute(&mut *conn)
        .await?;
        sqlx::query(create).execute(&mut *conn).await?;
        let moved = sqlx::query(AssertSqlSafe(format!(
            "WITH moved AS (DELETE FROM {default} WHERE {key} >= $1 AND {key} < $2 RETURNING *)
             INSERT INTO {parent} OVERRIDING SYSTEM VALUE SELECT * FROM moved"
        )))
        .bind(start)
        .bind(end)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {parent} ATTACH PARTITION {default} DEFAULT"
        )))
        .execute(&mut *conn)
        .await?;
        done.moved += moved;
    }
    done.created.push(name);
    Ok(())
}

/// Drops (or detaches) every partition entirely older than `now − retention`, unless it holds a
/// row that must stay; deletes the default partition's rows past the window.
async fn expire(
    conn: &mut PgConnection,
    table: &PartitionedTable,
    retention: Retention,
    now: OffsetDateTime,
    done: &mut Maintained,
) -> Result<(), sqlx::Error> {
    let cutoff = now - retention.after;
    let parent = ident(table.name);
    for partition in partitions(conn, table).await? {
        let Some(upper) = partition.upper else {
            continue;
        };
        if upper > cutoff {
            continue;
        }
        let name = ident(&partition.name);
        if let Some(condition) = table.keep_while {
            let (held,): (bool,) = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT EXISTS (SELECT 1 FROM {name} WHERE {condition})"
            )))
            .fetch_one(&mut *conn)
            .await?;
            if held {
                done.held.push(partition.name);
                continue;
            }
        }
        let statement = match retention.expiry {
            Expiry::Drop => format!("DROP TABLE {name}"),
            Expiry::Detach => format!("ALTER TABLE {parent} DETACH PARTITION {name}"),
        };
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await?;
        done.expired.push(partition.name);
    }
    if retention.expiry == Expiry::Drop {
        let keep = table
            .keep_while
            .map_or_else(String::new, |condition| format!(" AND NOT ({condition})"));
        done.pruned = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE {} < $1{keep}",
            ident(&table.default_partition()),
            ident(table.key)
        )))
        .bind(cutoff)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(())
}

/// The start of the span holding `at`: the last multiple of `span` since the Unix epoch.
fn span_start(at: OffsetDateTime, span: Duration) -> OffsetDateTime {
    let span = i128::try_from(span.as_nanos()).unwrap_or(i128::MAX).max(1);
    let nanos = at.unix_timestamp_nanos();
    let start = nanos - nanos.rem_euclid(span);
    OffsetDateTime::from_unix_timestamp_nanos(start).unwrap_or(at)
}

/// A quoted SQL identifier. The names come from code, never from a client; quoting keeps even
/// those honest.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A `timestamptz` literal, for DDL (which takes no bind parameters). UTC, RFC 3339.
fn literal(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "'{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00'::timestamptz",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// Partition maintenance as part of a service being built.
pub trait WithPartitions: Sized {
    /// Adds the [`PartitionMaintainer`] of `tables` in the service's database as a worker, with
    /// the service's `<SERVICE>_PARTITION_SPAN` and `<SERVICE>_PARTITION_LOOKAHEAD`.
    #[must_use]
    fn maintain_partitions(self, tables: Vec<PartitionedTable>) -> Self;
}

impl WithPartitions for ServiceBuilder {
    fn maintain_partitions(self, tables: Vec<PartitionedTable>) -> Self {
        let runtime = self.runtime();
        let layout = Layout {
            span: runtime.partition_span,
            lookahead: runtime.partition_lookahead,
        };
        let maintainer = PartitionMaintainer::new(self.pool().clone(), layout, tables);
        self.worker(Worker::new(move |shutdown| maintainer.run(shutdown)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_aligned_on_the_epoch() {
        let at = OffsetDateTime::from_unix_timestamp(1_764_648_000 + 3_723).unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(span_start(at, day).unix_timestamp() % 86_400, 0);
        assert!(span_start(at, day) <= at && at < span_start(at, day) + day);
        let hours = Duration::from_secs(6 * 3_600);
        assert_eq!(span_start(at, hours).unix_timestamp() % (6 * 3_600), 0);
    }

    #[test]
    fn partitions_are_named_after_their_start() {
        let table = PartitionedTable::dropped_after("outbox", "occurred_at", Duration::ZERO);
        let start = OffsetDateTime::from_unix_timestamp(1_764_633_600).unwrap();
        assert_eq!(table.partition_name(start), "outbox_p20251202_0000");
        assert_eq!(
            literal(start),
            "'2025-12-02 00:00:00.000000+00'::timestamptz"
        );
    }
}
