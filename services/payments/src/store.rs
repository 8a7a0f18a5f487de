//! All SQL of the payments service: the event store.
//!
//! Two tables (see the migrations): `payments`, the stream headers, and `payment_events`, the
//! append-only streams keyed by `(payment_id, seq)`. There is no UPDATE anywhere in this file.
//! `payment_events` is partitioned by day on `opened_at`, the payment's opening time copied
//! onto each of its events, so that a stream stays whole in one partition and its key stays the
//! concurrency check ([`events_table`], for the `partitions` worker).
//!
//! **Optimistic concurrency.** [`PaymentStore::append`] writes the event at `seq = version + 1`,
//! where `version` is the last seq the caller read. No lock is taken while the caller decides.
//! If another writer appended that seq in the meantime, the primary key turns the insert into a
//! unique violation — Postgres makes the second inserter wait for the first one's commit, so the
//! loser learns it lost only once the winner's event is visible — and `append` reports
//! [`Appended::Conflict`] for the caller to reload, decide again and retry.
//!
//! The same property keeps one payment's integration events in stream order in the outbox: an
//! append only starts from a state that already includes the previous event's commit.
//!
//! **On the caller's connection.** The pool-based methods each run in a transaction of their
//! own. [`load_in`], [`load_by_order_in`] and [`append_in`] do the same work on a connection the
//! caller passes in, so that it can commit an append together with its own rows: the consumer of
//! order events appends a capture or refund in the same transaction as its inbox row. The
//! pool-based methods delegate to them, so both paths run the same SQL.

use std::time::Duration;

use messaging::{Envelope, outbox};
use partitions::{Expiry, PartitionedTable, Retention};
use platform::fencing::{self, FencingToken};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    domain::{Currency, Money, Payment, PaymentEvent, PaymentHeader, RecordedEvent},
    error::PaymentsError,
};

/// The event store, for the `partitions` worker: partitioned on `opened_at`, kept for ever unless
/// `retention` (`PAYMENTS_EVENTS_RETENTION`) is set, and then days past it are detached for
/// archiving, never dropped.
pub fn events_table(retention: Option<Duration>) -> PartitionedTable {
    PartitionedTable {
        name: "payment_events",
        key: "opened_at",
        retention: retention.map(|after| Retention {
            after,
            expiry: Expiry::Detach,
        }),
        keep_while: None,
    }
}

#[derive(Clone, Debug)]
pub struct PaymentStore {
    pool: PgPool,
}

/// What [`PaymentStore::open`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    Created,
    /// The order already has a payment (a concurrent duplicate authorization won).
    OrderTaken,
}

/// What [`PaymentStore::append`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    Appended,
    /// Another writer appended this seq first; nothing was written.
    Conflict,
}

type HeaderRow = (Uuid, Uuid, Uuid, i64, String, OffsetDateTime);
type EventRow = (
    i64,
    String,
    Option<i64>,
    Option<String>,
    String,
    OffsetDateTime,
);

impl PaymentStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The payment and its whole stream, folded.
    pub async fn load(&self, id: Uuid) -> Result<Option<Payment>, PaymentsError> {
        let mut conn = self.pool.acquire().await?;
        load_in(&mut conn, id).await
    }

    /// Admits a saga call's fencing token before anything else happens (before the provider is
    /// asked to authorize), raising the order's highest token to it (`platform::fencing`).
    pub async fn admit(
        &self,
        order_id: Uuid,
        fence: Option<FencingToken>,
    ) -> Result<(), PaymentsError> {
        let mut conn = self.pool.acquire().await?;
        fencing::admit(&mut conn, order_id, fence).await??;
        Ok(())
    }

    /// The payment of an order, if it has one.
    pub async fn load_by_order(&self, order_id: Uuid) -> Result<Option<Payment>, PaymentsError> {
        let mut conn = self.pool.acquire().await?;
        load_by_order_in(&mut conn, order_id).await
    }

    /// Creates the stream: header, first event and its integration event, in one transaction.
    /// A second payment for the same order is refused by `payments.order_id UNIQUE`: the
    /// insert waits for a concurrent creator's commit and then inserts nothing.
    ///
    /// A saga's call carries its fencing token, [`Self::admit`]ted before and held in this
    /// transaction (`platform::fencing`): a superseded runner opens nothing.
    pub async fn open(
        &self,
        payment: &Payment,
        event: &Envelope,
        fence: Option<FencingToken>,
    ) -> Result<Opened, PaymentsError> {
        let header = &payment.header;
        let Some(first) = payment.first_event() else {
            return Err(PaymentsError::Corrupt(format!(
                "payment {} was opened without an event",
                header.id
            )));
        };
        let mut tx = self.pool.begin().await?;
        fencing::hold(&mut tx, header.order_id, fence).await??;
        let inserted = sqlx::query(
            "INSERT INTO payments (id, order_id, customer_id, amount_minor, currency, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(header.id)
        .bind(header.order_id)
        .bind(header.customer_id)
        .bind(header.requested.minor())
        .bind(header.requested.currency().as_str())
        .bind(header.created_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(Opened::OrderTaken);
        }
        insert_event(&mut tx, header.id, first).await?;
        outbox::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(Opened::Created)
    }

    /// Appends `recorded` (at its `seq`) and its integration event, in one transaction, unless
    /// another writer already appended that seq. A saga's call is fenced as in [`Self::open`].
    pub async fn append(
        &self,
        header: &PaymentHeader,
        recorded: &RecordedEvent,
        event: &Envelope,
        fence: Option<FencingToken>,
    ) -> Result<Appended, PaymentsError> {
        let mut tx = self.pool.begin().await?;
        fencing::hold(&mut tx, header.order_id, fence).await??;
        match append_in(&mut tx, header.id, recorded, event).await? {
            Appended::Appended => {
                tx.commit().await?;
                Ok(Appended::Appended)
            }
            // The unique violation aborted the transaction; dropping it rolls it back.
            Appended::Conflict => Ok(Appended::Conflict),
        }
    }
}

/// [`PaymentStore::load`] on the caller's connection (inside its transaction, if it has one).
pub async fn load_in(conn: &mut PgConnection, id: Uuid) -> Result<Option<Payment>, PaymentsError> {
    let header: Option<HeaderRow> = sqlx::query_as(
        "SELECT id, order_id, customer_id, amount_minor, currency, created_at
         FROM payments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    with_history(conn, header).await
}

/// [`PaymentStore::load_by_order`] on the caller's connection (inside its transaction, if it has
/// one): how the order-event consumer reads a payment in its inbox transaction.
pub async fn load_by_order_in(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Payment>, PaymentsError> {
    let header: Option<HeaderRow> = sqlx::query_as(
        "SELECT id, order_id, customer_id, amount_minor, currency, created_at
         FROM payments WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    with_history(conn, header).await
}

async fn with_history(
    conn: &mut PgConnection,
    row: Option<HeaderRow>,
) -> Result<Option<Payment>, PaymentsError> {
    let Some(row) = row else {
        return Ok(None);
    };
    let header = header_from(row)?;
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT seq, kind, amount_minor, currency, detail, occurred_at
         FROM payment_events WHERE payment_id = $1 ORDER BY seq",
    )
    .bind(header.id)
    .fetch_all(&mut *conn)
    .await?;
    let history = rows
        .into_iter()
        .enumerate()
        .map(|(index, row)| event_from(&header, index, row))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Payment::rehydrate(header, history)))
}

/// Appends `recorded` (at its `seq`) and its integration event on the caller's connection,
/// inside the caller's transaction, which commits them (or not) together with whatever else it
/// holds — the order-event consumer's inbox row, for instance.
///
/// On [`Appended::Conflict`] nothing was written, but Postgres has **aborted the caller's
/// transaction** (the unique violation is an error inside it): the caller must roll back, and
/// may then start over on the fresher stream in a new transaction.
pub async fn append_in(
    conn: &mut PgConnection,
    payment_id: Uuid,
    recorded: &RecordedEvent,
    event: &Envelope,
) -> Result<Appended, PaymentsError> {
    match insert_event(conn, payment_id, recorded).await {
        Ok(()) => {}
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            return Ok(Appended::Conflict);
        }
        Err(other) => return Err(other.into()),
    }
    outbox::enqueue(conn, event).await?;
    Ok(Appended::Appended)
}

async fn insert_event(
    conn: &mut PgConnection,
    payment_id: Uuid,
    recorded: &RecordedEvent,
) -> Result<(), sqlx::Error> {
    let amount = recorded.event.amount();
    // `opened_at` is the header's `created_at`, read in the same statement: the stream's
    // partition (see the migration `payment_events_partitioned`).
    let inserted = sqlx::query(
        "INSERT INTO payment_events
             (payment_id, opened_at, seq, kind, amount_minor, currency, detail, occurred_at)
         SELECT id, created_at, $2, $3, $4, $5, $6, $7 FROM payments WHERE id = $1",
    )
    .bind(payment_id)
    .bind(recorded.seq)
    .bind(recorded.event.kind())
    .bind(amount.map(|amount| amount.minor()))
    .bind(amount.map(|amount| amount.currency().to_string()))
    .bind(recorded.event.detail())
    .bind(recorded.occurred_at)
    .execute(conn)
    .await?;
    if inserted.rows_affected() == 0 {
        // No header: what the foreign key used to refuse.
        return Err(sqlx::Error::RowNotFound);
    }
    Ok(())
}

fn header_from(
    (id, order_id, customer_id, amount_minor, currency, created_at): HeaderRow,
) -> Result<PaymentHeader, PaymentsError> {
    let corrupt = |what: String| PaymentsError::Corrupt(format!("payment {id}: {what}"));
    let currency = Currency::parse(&currency).map_err(|err| corrupt(err.to_string()))?;
    let requested =
        Money::positive(amount_minor, currency).map_err(|err| corrupt(err.to_string()))?;
    Ok(PaymentHeader {
        id,
        order_id,
        customer_id,
        requested,
        created_at,
    })
}

/// One stored row back into an event, checking what the fold relies on: seqs are 1, 2, 3 …
/// without gaps, and every amount is in the payment's currency.
fn event_from(
    header: &PaymentHeader,
    index: usize,
    (seq, kind, amount_minor, currency, detail, occurred_at): EventRow,
) -> Result<RecordedEvent, PaymentsError> {
    let corrupt =
        |what: String| PaymentsError::Corrupt(format!("payment {} seq {seq}: {what}", header.id));
    if usize::try_from(seq).ok() != index.checked_add(1) {
        return Err(corrupt(format!("expected seq {}", index + 1)));
    }
    let amount = match (amount_minor, currency) {
        (None, None) => None,
        (Some(minor), Some(currency)) => {
            let currency = Currency::parse(&currency).map_err(|err| corrupt(err.to_string()))?;
            if currency != header.requested.currency() {
                return Err(corrupt(format!("amount in {currency}")));
            }
            Some(Money::positive(minor, currency).map_err(|err| corrupt(err.to_string()))?)
        }
        _ => return Err(corrupt("amount and currency must be set together".into())),
    };
    let event =
        PaymentEvent::from_parts(&kind, amount, detail).map_err(|err| corrupt(err.to_string()))?;
    Ok(RecordedEvent {
        seq,
        occurred_at,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> PaymentHeader {
        header_from((
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            500,
            "EUR".into(),
            OffsetDateTime::now_utc(),
        ))
        .unwrap()
    }

    fn row(seq: i64, kind: &str, amount: Option<(i64, &str)>) -> EventRow {
        (
            seq,
            kind.to_owned(),
            amount.map(|(minor, _)| minor),
            amount.map(|(_, currency)| currency.to_owned()),
            String::new(),
            OffsetDateTime::now_utc(),
        )
    }

    #[test]
    fn stored_rows_become_events() {
        let event = event_from(&header(), 0, row(1, "authorized", Some((500, "EUR")))).unwrap();
        assert_eq!(event.seq, 1);
        assert_eq!(event.event.kind(), "authorized");
    }

    #[test]
    fn gaps_foreign_currencies_and_broken_rows_are_corrupt() {
        let header = header();
        let cases = [
            (0, row(2, "authorized", Some((500, "EUR")))),
            (0, row(1, "authorized", Some((500, "USD")))),
            (0, row(1, "authorized", None)),
            (0, row(1, "voided", Some((500, "EUR")))),
            (0, row(1, "settled", None)),
        ];
        for (index, row) in cases {
            let err = event_from(&header, index, row).unwrap_err();
            assert!(matches!(err, PaymentsError::Corrupt(_)), "{err}");
        }
        let mixed = (
            1,
            "authorized".to_owned(),
            Some(5),
            None,
            String::new(),
            OffsetDateTime::now_utc(),
        );
        assert!(event_from(&header, 0, mixed).is_err());
    }

    #[test]
    fn a_header_with_a_bad_currency_is_corrupt() {
        let bad = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            500,
            "euro".to_owned(),
            OffsetDateTime::now_utc(),
        );
        assert!(matches!(header_from(bad), Err(PaymentsError::Corrupt(_))));
    }
}
