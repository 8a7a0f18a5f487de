use messaging::{Envelope, outbox};
use platform::trace_context::W3cContext;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{OrderStore, SAGA_CHANNEL, now};
use crate::{
    domain::{CancelReason, NewOrder, OrderLine, OrderStatus, PricedLine, Saga, Track, is_settled},
    error::OrdersError,
};

/// An order as the command side knows it, with its timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub status: OrderStatus,
    pub cancellation_reason: Option<String>,
    pub currency: String,
    pub total_minor: i64,
    pub payment_id: Option<Uuid>,
    pub payment_status: String,
    pub stock_status: String,
    pub lines: Vec<PricedLine>,
    pub timeline: Vec<TimelineEntry>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl OrderView {
    /// Whether nothing more will happen to the order by itself (`domain::is_settled`).
    pub fn is_settled(&self) -> bool {
        is_settled(
            self.status.as_str(),
            &self.payment_status,
            &self.stock_status,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The entry's id: its place in the order's timeline, increasing in commit order (see the
    /// migration `timeline_notify`).
    pub sequence: i64,
    pub step: String,
    pub outcome: String,
    pub detail: String,
    pub at: OffsetDateTime,
}

/// What PlaceOrder did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Created(Uuid),
    /// The idempotency key was used before: this is the first order.
    Existing(Uuid),
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    customer_id: Uuid,
    status: String,
    cancellation_reason: Option<String>,
    currency: String,
    total_minor: i64,
    payment_id: Option<Uuid>,
    payment_status: String,
    stock_status: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl OrderStore {
    /// The order placed earlier with this idempotency key, with its requested lines.
    pub async fn find_by_key(
        &self,
        customer_id: Uuid,
        key: &str,
    ) -> Result<Option<(Uuid, Vec<OrderLine>)>, OrdersError> {
        let found: Option<(Uuid,)> =
            sqlx::query_as("SELECT id FROM orders WHERE customer_id = $1 AND idempotency_key = $2")
                .bind(customer_id)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        let Some((id,)) = found else {
            return Ok(None);
        };
        let lines: Vec<(String, i64)> =
            sqlx::query_as("SELECT sku, quantity FROM order_lines WHERE order_id = $1")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let lines = lines
            .into_iter()
            .map(|(sku, quantity)| OrderLine { sku, quantity })
            .collect();
        Ok(Some((id, lines)))
    }

    /// Stores the order PENDING, its saga, the first timeline entry and `placed`
    /// (`OrderPlaced`), in one transaction; the commit wakes the saga runners.
    pub async fn place(
        &self,
        order: &NewOrder,
        saga_deadline: OffsetDateTime,
        placed: &Envelope,
    ) -> Result<Placement, OrdersError> {
        let mut tx = self.pool.begin().await?;
        let at = now();
        let inserted: Option<(Uuid,)> = sqlx::query_as(
            "INSERT INTO orders (id, customer_id, status, payment_method, currency, total_minor,
                                 idempotency_key, created_at, updated_at)
             VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $7, $7)
             ON CONFLICT (customer_id, idempotency_key) DO NOTHING
             RETURNING id",
        )
        .bind(order.id)
        .bind(order.request.customer_id)
        .bind(order.request.payment_method.as_str())
        .bind(&order.currency)
        .bind(order.total_minor)
        .bind(order.request.idempotency_key.as_str())
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            // A concurrent request with the same key won; its order is the answer.
            tx.rollback().await?;
            return match self
                .find_by_key(
                    order.request.customer_id,
                    order.request.idempotency_key.as_str(),
                )
                .await?
            {
                Some((id, _)) => Ok(Placement::Existing(id)),
                None => Err(OrdersError::Conflict("idempotency key race".into())),
            };
        }
        for (line_no, line) in order.lines.iter().enumerate() {
            sqlx::query(
                "INSERT INTO order_lines (order_id, line_no, sku, name, quantity, unit_price_minor)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(order.id)
            .bind(i32::try_from(line_no).unwrap_or(i32::MAX))
            .bind(&line.sku)
            .bind(&line.name)
            .bind(line.quantity)
            .bind(line.unit_price_minor)
            .execute(&mut *tx)
            .await?;
        }
        let saga = Saga::start(order.id, saga_deadline);
        // The caller's trace, for the runner to continue (see the migration that added it).
        let trace = W3cContext::current();
        sqlx::query(
            "INSERT INTO sagas (order_id, step, next_attempt_at, deadline, updated_at,
                                traceparent, tracestate)
             VALUES ($1, $2, $3, $4, $3, $5, $6)",
        )
        .bind(saga.order_id)
        .bind(saga.step.as_str())
        .bind(at)
        .bind(saga.deadline)
        .bind(trace.traceparent)
        .bind(trace.tracestate)
        .execute(&mut *tx)
        .await?;
        add_timeline(&mut tx, order.id, "place_order", "succeeded", "", at).await?;
        outbox::enqueue(&mut tx, placed).await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(SAGA_CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Placement::Created(order.id))
    }

    pub async fn get(&self, order_id: Uuid) -> Result<Option<OrderView>, OrdersError> {
        self.get_since(order_id, 0).await
    }

    /// The order with only the timeline entries after sequence `after`. The order's row and its
    /// timeline are read in one snapshot (REPEATABLE READ), so the statuses are those the
    /// entries led to: a watcher that decides from them that the order is settled has every
    /// entry that settled it.
    pub async fn get_since(
        &self,
        order_id: Uuid,
        after: i64,
    ) -> Result<Option<OrderView>, OrdersError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let order = read_order(&mut tx, order_id, after).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// Cancels a CONFIRMED order at the customer's request and publishes `OrderCancelled`
    /// (built by `announce` from the order's customer and payment) so payments refunds and
    /// inventory restocks (choreography: no orchestrator involved). Returns false when the order
    /// was not CONFIRMED (nothing changed).
    pub async fn cancel_confirmed(
        &self,
        order_id: Uuid,
        announce: impl FnOnce(Uuid, Option<Uuid>) -> Envelope,
    ) -> Result<bool, OrdersError> {
        let mut tx = self.pool.begin().await?;
        let at = now();
        let updated: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(
            "UPDATE orders
             SET status = 'CANCELLED', cancellation_reason = $2,
                 payment_status = 'refund_pending', stock_status = 'restock_pending',
                 updated_at = $3
             WHERE id = $1 AND status = 'CONFIRMED'
             RETURNING customer_id, payment_id",
        )
        .bind(order_id)
        .bind(CancelReason::CustomerRequest.as_str())
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((customer_id, payment_id)) = updated else {
            return Ok(false);
        };
        add_timeline(
            &mut tx,
            order_id,
            "cancel",
            "requested",
            "by the customer",
            at,
        )
        .await?;
        outbox::enqueue(&mut tx, &announce(customer_id, payment_id)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records what a choreographed participant reported (capture, refund, restock), if it is
    /// ahead of what the order shows: a late report changes nothing (see `domain::progress`).
    pub async fn record_outcome(
        &self,
        conn: &mut PgConnection,
        order_id: Uuid,
        column: OutcomeColumn,
        status: &str,
        step: &str,
    ) -> Result<(), sqlx::Error> {
        let at = now();
        let (sql, track) = match column {
            OutcomeColumn::Payment => (
                "UPDATE orders SET payment_status = $2, updated_at = $3
                 WHERE id = $1 AND payment_status = ANY($4)",
                Track::Payment,
            ),
            OutcomeColumn::Stock => (
                "UPDATE orders SET stock_status = $2, updated_at = $3
                 WHERE id = $1 AND stock_status = ANY($4)",
                Track::Stock,
            ),
        };
        let updated = sqlx::query(sql)
            .bind(order_id)
            .bind(status)
            .bind(at)
            .bind(track.behind(status))
            .execute(&mut *conn)
            .await?;
        if updated.rows_affected() > 0 {
            add_timeline(conn, order_id, step, "succeeded", "", at).await?;
        }
        Ok(())
    }
}

/// Which choreography status an outcome updates.
#[derive(Debug, Clone, Copy)]
pub enum OutcomeColumn {
    Payment,
    Stock,
}

/// The order `order_id` with its timeline entries after `after`, read on `conn`.
async fn read_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    after: i64,
) -> Result<Option<OrderView>, OrdersError> {
    let row: Option<OrderRow> = sqlx::query_as(
        "SELECT id, customer_id, status, cancellation_reason, currency, total_minor,
                payment_id, payment_status, stock_status, created_at, updated_at
         FROM orders WHERE id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let lines: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT sku, name, quantity, unit_price_minor FROM order_lines
         WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let timeline: Vec<(i64, String, String, String, OffsetDateTime)> = sqlx::query_as(
        "SELECT id, step, outcome, detail, at FROM order_timeline
         WHERE order_id = $1 AND id > $2 ORDER BY id",
    )
    .bind(order_id)
    .bind(after)
    .fetch_all(&mut *conn)
    .await?;
    let status = OrderStatus::parse(&row.status)
        .ok_or_else(|| OrdersError::Corrupt(format!("status {}", row.status)))?;
    Ok(Some(OrderView {
        id: row.id,
        customer_id: row.customer_id,
        status,
        cancellation_reason: row.cancellation_reason,
        currency: row.currency,
        total_minor: row.total_minor,
        payment_id: row.payment_id,
        payment_status: row.payment_status,
        stock_status: row.stock_status,
        lines: lines
            .into_iter()
            .map(|(sku, name, quantity, unit_price_minor)| PricedLine {
                sku,
                name,
                quantity,
                unit_price_minor,
            })
            .collect(),
        timeline: timeline
            .into_iter()
            .map(|(sequence, step, outcome, detail, at)| TimelineEntry {
                sequence,
                step,
                outcome,
                detail,
                at,
            })
            .collect(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

/// Appends a step to the order's timeline; the trigger of the migration `timeline_notify`
/// announces it on commit. The order's row is locked first (most callers have just updated it
/// and hold the lock already), so that the entries of one order get their ids in commit order.
pub(crate) async fn add_timeline(
    conn: &mut PgConnection,
    order_id: Uuid,
    step: &str,
    outcome: &str,
    detail: &str,
    at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE")
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO order_timeline (order_id, step, outcome, detail, at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order_id)
    .bind(step)
    .bind(outcome)
    .bind(detail)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
