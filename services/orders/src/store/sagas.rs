use std::time::Duration;

use messaging::{Envelope, outbox};
use platform::trace_context::W3cContext;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{OrderStore, now, orders::add_timeline};
use crate::{
    domain::{CancelReason, OrderLine, Saga, SagaStep},
    error::OrdersError,
};

/// What a runner needs besides the saga row to run its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaContext {
    pub customer_id: Uuid,
    pub payment_method: String,
    pub currency: String,
    pub total_minor: i64,
    pub lines: Vec<OrderLine>,
}

/// One claim of a saga by a runner: the fencing token of every write the runner makes while it
/// drives the saga.
///
/// `owner` alone is not enough. A runner whose step hangs past the lease can claim the same
/// saga again in a later round (its own lease expired) and drive it twice at once, both
/// drives passing an owner check. Every claim therefore increments the saga's `lease_epoch`,
/// and every write requires both: a drive that outlived its claim finds the epoch moved on and
/// its result is discarded, whoever holds the saga now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub epoch: i64,
}

#[derive(Debug, Clone)]
pub struct ClaimedSaga {
    pub saga: Saga,
    pub lease: Lease,
    pub context: SagaContext,
    /// The trace of the PlaceOrder call that started the saga, which its steps continue.
    pub trace: W3cContext,
}

#[derive(sqlx::FromRow)]
struct SagaRow {
    order_id: Uuid,
    step: String,
    cancel_reason: Option<String>,
    payment_id: Option<Uuid>,
    attempts: i32,
    deadline: OffsetDateTime,
    lease_epoch: i64,
    customer_id: Uuid,
    payment_method: String,
    currency: String,
    total_minor: i64,
    traceparent: String,
    tracestate: String,
}

impl OrderStore {
    /// Leases up to `limit` due sagas to `owner` for `lease`. `FOR UPDATE SKIP LOCKED` lets
    /// several runners claim concurrently without blocking each other or taking the same saga;
    /// an expired lease (its runner crashed) makes a saga claimable again.
    pub async fn claim_due(
        &self,
        owner: &str,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedSaga>, OrdersError> {
        let rows: Vec<SagaRow> = sqlx::query_as(
            "WITH due AS (
                 SELECT order_id FROM sagas
                 WHERE step <> 'done' AND next_attempt_at <= now()
                   AND (lease_until IS NULL OR lease_until < now())
                 ORDER BY next_attempt_at
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE sagas s
             SET lease_owner = $1, lease_until = now() + make_interval(secs => $2),
                 lease_epoch = s.lease_epoch + 1
             FROM due, orders o
             WHERE s.order_id = due.order_id AND o.id = s.order_id
             RETURNING s.order_id, s.step, s.cancel_reason, s.payment_id, s.attempts, s.deadline,
                       s.lease_epoch, s.traceparent, s.tracestate,
                       o.customer_id, o.payment_method, o.currency, o.total_minor",
        )
        .bind(owner)
        .bind(lease.as_secs_f64())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let lines: Vec<(String, i64)> = sqlx::query_as(
                "SELECT sku, quantity FROM order_lines WHERE order_id = $1 ORDER BY line_no",
            )
            .bind(row.order_id)
            .fetch_all(&self.pool)
            .await?;
            let step = SagaStep::parse(&row.step)
                .ok_or_else(|| OrdersError::Corrupt(format!("saga step {}", row.step)))?;
            let cancel_reason = match row.cancel_reason.as_deref() {
                None => None,
                Some(raw) => Some(
                    CancelReason::parse(raw)
                        .ok_or_else(|| OrdersError::Corrupt(format!("cancel reason {raw}")))?,
                ),
            };
            claimed.push(ClaimedSaga {
                saga: Saga {
                    order_id: row.order_id,
                    step,
                    cancel_reason,
                    payment_id: row.payment_id,
                    attempts: u32::try_from(row.attempts).unwrap_or(0),
                    deadline: row.deadline,
                },
                lease: Lease {
                    owner: owner.to_owned(),
                    epoch: row.lease_epoch,
                },
                context: SagaContext {
                    customer_id: row.customer_id,
                    payment_method: row.payment_method,
                    currency: row.currency,
                    total_minor: row.total_minor,
                    lines: lines
                        .into_iter()
                        .map(|(sku, quantity)| OrderLine { sku, quantity })
                        .collect(),
                },
                trace: W3cContext {
                    traceparent: row.traceparent,
                    tracestate: row.tracestate,
                },
            });
        }
        Ok(claimed)
    }

    /// Persists a move to `next` (run at once by the same runner, whose lease is renewed) with
    /// the timeline entry of the step that just finished. False if the lease was lost.
    pub async fn save_advance(
        &self,
        claim: &Lease,
        lease: Duration,
        next: &Saga,
        finished: (&str, &str, &str),
    ) -> Result<bool, OrdersError> {
        let mut tx = self.pool.begin().await?;
        let at = now();
        let updated = sqlx::query(
            "UPDATE sagas
             SET step = $3, cancel_reason = $4, payment_id = $5, attempts = 0,
                 next_attempt_at = $6, last_error = NULL, updated_at = $6,
                 lease_until = $6 + make_interval(secs => $7)
             WHERE order_id = $1 AND lease_owner = $2 AND lease_epoch = $8",
        )
        .bind(next.order_id)
        .bind(&claim.owner)
        .bind(next.step.as_str())
        .bind(next.cancel_reason.map(CancelReason::as_str))
        .bind(next.payment_id)
        .bind(at)
        .bind(lease.as_secs_f64())
        .bind(claim.epoch)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        let (step, outcome, detail) = finished;
        add_timeline(&mut tx, next.order_id, step, outcome, detail, at).await?;
        if let Some(payment_id) = next.payment_id {
            sqlx::query("UPDATE orders SET payment_id = $2 WHERE id = $1 AND payment_id IS NULL")
                .bind(next.order_id)
                .bind(payment_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Schedules another attempt of the current step after `delay` and releases the lease, so
    /// any runner may pick the saga up when it is due.
    pub async fn save_retry(
        &self,
        claim: &Lease,
        saga: &Saga,
        delay: Duration,
        error: &str,
    ) -> Result<bool, OrdersError> {
        let updated = sqlx::query(
            "UPDATE sagas
             SET attempts = $3, last_error = $4,
                 next_attempt_at = now() + make_interval(secs => $5),
                 lease_owner = NULL, lease_until = NULL, updated_at = now()
             WHERE order_id = $1 AND lease_owner = $2 AND lease_epoch = $6",
        )
        .bind(saga.order_id)
        .bind(&claim.owner)
        .bind(i32::try_from(saga.attempts).unwrap_or(i32::MAX))
        .bind(error)
        .bind(delay.as_secs_f64())
        .bind(claim.epoch)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() > 0)
    }

    /// The local `confirm` step: order CONFIRMED, `confirmed` (`OrderConfirmed`) in the
    /// outbox, saga done, in one transaction. False if the lease was lost.
    pub async fn confirm(
        &self,
        claim: &Lease,
        saga: &Saga,
        confirmed: &Envelope,
    ) -> Result<bool, OrdersError> {
        let mut tx = self.pool.begin().await?;
        if !finish_saga(&mut tx, claim, saga.order_id).await? {
            return Ok(false);
        }
        let at = now();
        sqlx::query(
            "UPDATE orders
             SET status = 'CONFIRMED', payment_status = 'authorized', stock_status = 'committed',
                 payment_id = $2, updated_at = $3
             WHERE id = $1 AND status = 'PENDING'",
        )
        .bind(saga.order_id)
        .bind(saga.payment_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        add_timeline(&mut tx, saga.order_id, "confirm", "succeeded", "", at).await?;
        outbox::enqueue(&mut tx, confirmed).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The local `cancel` step: order CANCELLED with the saga's reason, `cancelled`
    /// (`OrderCancelled`, was_confirmed = false: the saga has already compensated) in the
    /// outbox, saga done.
    pub async fn cancel(
        &self,
        claim: &Lease,
        saga: &Saga,
        cancelled: &Envelope,
    ) -> Result<bool, OrdersError> {
        let mut tx = self.pool.begin().await?;
        if !finish_saga(&mut tx, claim, saga.order_id).await? {
            return Ok(false);
        }
        let at = now();
        let reason = saga.cancel_reason.unwrap_or(CancelReason::Failed);
        let (payment_status, stock_status) = match reason {
            CancelReason::OutOfStock => ("none", "none"),
            CancelReason::PaymentDeclined => ("declined", "released"),
            _ => ("voided", "released"),
        };
        sqlx::query(
            "UPDATE orders
             SET status = 'CANCELLED', cancellation_reason = $2, payment_status = $3,
                 stock_status = $4, payment_id = coalesce(payment_id, $5), updated_at = $6
             WHERE id = $1 AND status = 'PENDING'",
        )
        .bind(saga.order_id)
        .bind(reason.as_str())
        .bind(payment_status)
        .bind(stock_status)
        .bind(saga.payment_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        add_timeline(
            &mut tx,
            saga.order_id,
            "cancel",
            "succeeded",
            reason.as_str(),
            at,
        )
        .await?;
        outbox::enqueue(&mut tx, cancelled).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Marks the saga done if `claim` still holds its lease.
async fn finish_saga(
    tx: &mut sqlx::PgConnection,
    claim: &Lease,
    order_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE sagas
         SET step = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL,
             updated_at = now()
         WHERE order_id = $1 AND lease_owner = $2 AND lease_epoch = $3 AND step <> 'done'",
    )
    .bind(order_id)
    .bind(&claim.owner)
    .bind(claim.epoch)
    .execute(&mut *tx)
    .await?;
    Ok(updated.rows_affected() > 0)
}
