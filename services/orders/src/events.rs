//! Events: what orders publishes, and the two consumers it runs.
//!
//! Published (through the outbox, see `store`): `OrderPlaced`, `OrderConfirmed`,
//! `OrderCancelled`.
//!
//! Consumed, each through its own inbox-deduplicated queue:
//!
//! | queue | binds | job |
//! |---|---|---|
//! | `orders.fulfilment` | `payments.payment.*`, `inventory.reservation.*` | records what the choreographed steps after confirmation did (captured, refunded, committed, restocked) on the order and its timeline |
//! | `orders.order-summaries` | `orders.order.*`, `payments.payment.*`, `inventory.reservation.*` | the CQRS projection: builds `order_summaries`, the read model behind `ListOrders` |
//!
//! The projection is written only from events, so it lags the write side by the time an event
//! takes to go round the broker: `ListOrders` is eventually consistent, `GetOrder` (write side)
//! is not. The storefront shows both and says so.

use contracts::events::{
    OrderCancelled, OrderConfirmed, OrderPlaced, PaymentCaptured, PaymentDeclined, PaymentRefunded,
    PaymentVoided, ReservationCommitted, ReservationExpired, StockReleased, StockReserved,
    StockRestocked,
};
use futures::future::BoxFuture;
use messaging::{EventHandler, HandlerError, ReceivedEvent};
use prost::Name as _;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::store::{OrderStore, OutcomeColumn};

pub const FULFILMENT_QUEUE: &str = "orders.fulfilment";
pub const FULFILMENT_BINDINGS: &[&str] = &["payments.payment.*", "inventory.reservation.*"];
pub const SUMMARIES_QUEUE: &str = "orders.order-summaries";
pub const SUMMARIES_BINDINGS: &[&str] = &[
    "orders.order.*",
    "payments.payment.*",
    "inventory.reservation.*",
];

fn order_id(raw: &str) -> Result<Uuid, HandlerError> {
    HandlerError::parse_id("order id", raw)
}

/// Records the outcomes of the choreographed steps on the order (write side).
pub struct Fulfilment {
    pub store: OrderStore,
}

impl EventHandler for Fulfilment {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a ReceivedEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let t = event.event_type.as_str();
            let (order, column, status, step) = if t == PaymentCaptured::full_name() {
                let e: PaymentCaptured = event.decode()?;
                (
                    e.order_id,
                    OutcomeColumn::Payment,
                    "captured",
                    "capture_payment",
                )
            } else if t == PaymentRefunded::full_name() {
                let e: PaymentRefunded = event.decode()?;
                (
                    e.order_id,
                    OutcomeColumn::Payment,
                    "refunded",
                    "refund_payment",
                )
            } else if t == ReservationCommitted::full_name() {
                let e: ReservationCommitted = event.decode()?;
                (
                    e.order_id,
                    OutcomeColumn::Stock,
                    "committed",
                    "commit_stock",
                )
            } else if t == StockRestocked::full_name() {
                let e: StockRestocked = event.decode()?;
                (e.order_id, OutcomeColumn::Stock, "restocked", "restock")
            } else {
                // Other events on the bound keys (authorized, reserved …) are the saga's
                // business; the saga learns them from the gRPC answers.
                return Ok(());
            };
            let order_id = order_id(&order)?;
            self.store
                .record_outcome(tx, order_id, column, status, step)
                .await?;
            Ok(())
        })
    }
}

/// The CQRS projection: `order_summaries` from events only.
pub struct SummaryProjection;

impl EventHandler for SummaryProjection {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a ReceivedEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let t = event.event_type.as_str();
            if t == OrderPlaced::full_name() {
                let e: OrderPlaced = event.decode()?;
                let total = e.total.unwrap_or_default();
                let items: i64 = e.lines.iter().map(|line| line.quantity).sum();
                let customer = HandlerError::parse_id("customer id", &e.customer_id)?;
                sqlx::query(
                    "INSERT INTO order_summaries
                         (order_id, customer_id, status, currency, total_minor, item_count,
                          created_at, updated_at)
                     VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $6)
                     ON CONFLICT (order_id) DO NOTHING",
                )
                .bind(order_id(&e.order_id)?)
                .bind(customer)
                .bind(total.currency)
                .bind(total.amount_minor)
                .bind(items)
                .bind(event.occurred_at)
                .execute(&mut *tx)
                .await?;
                return Ok(());
            }
            let Some(change) = summary_change(event)? else {
                return Ok(());
            };
            let updated = sqlx::query(
                "UPDATE order_summaries
                 SET status = coalesce($2, status),
                     payment_status = coalesce($3, payment_status),
                     stock_status = coalesce($4, stock_status),
                     updated_at = greatest(updated_at, $5)
                 WHERE order_id = $1",
            )
            .bind(order_id(&change.order_id)?)
            .bind(change.status)
            .bind(change.payment)
            .bind(change.stock)
            .bind(event.occurred_at)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                // Events of different aggregates (the order, its payment) can overtake each
                // other. An update for a summary not yet created is retried later, by which
                // time OrderPlaced has arrived; payments of orders we do not know never match
                // and end up parked, visible to an operator.
                return Err(HandlerError::Transient(format!(
                    "no summary for order {} yet",
                    change.order_id
                )));
            }
            Ok(())
        })
    }
}

/// What one event changes in an order's summary.
struct SummaryChange {
    order_id: String,
    status: Option<&'static str>,
    payment: Option<&'static str>,
    stock: Option<&'static str>,
}

fn summary_change(event: &ReceivedEvent) -> Result<Option<SummaryChange>, HandlerError> {
    let t = event.event_type.as_str();
    let change = |order_id: String, status, payment, stock| {
        Ok(Some(SummaryChange {
            order_id,
            status,
            payment,
            stock,
        }))
    };
    if t == OrderConfirmed::full_name() {
        let e: OrderConfirmed = event.decode()?;
        change(
            e.order_id,
            Some("CONFIRMED"),
            Some("authorized"),
            Some("reserved"),
        )
    } else if t == OrderCancelled::full_name() {
        let e: OrderCancelled = event.decode()?;
        let payment = e.was_confirmed.then_some("refund_pending");
        change(e.order_id, Some("CANCELLED"), payment, None)
    } else if t == PaymentCaptured::full_name() {
        change(
            event.decode::<PaymentCaptured>()?.order_id,
            None,
            Some("captured"),
            None,
        )
    } else if t == PaymentRefunded::full_name() {
        change(
            event.decode::<PaymentRefunded>()?.order_id,
            None,
            Some("refunded"),
            None,
        )
    } else if t == PaymentVoided::full_name() {
        change(
            event.decode::<PaymentVoided>()?.order_id,
            None,
            Some("voided"),
            None,
        )
    } else if t == PaymentDeclined::full_name() {
        change(
            event.decode::<PaymentDeclined>()?.order_id,
            None,
            Some("declined"),
            None,
        )
    } else if t == StockReserved::full_name() {
        change(
            event.decode::<StockReserved>()?.order_id,
            None,
            None,
            Some("reserved"),
        )
    } else if t == StockReleased::full_name() {
        change(
            event.decode::<StockReleased>()?.order_id,
            None,
            None,
            Some("released"),
        )
    } else if t == ReservationCommitted::full_name() {
        let order_id = event.decode::<ReservationCommitted>()?.order_id;
        change(order_id, None, None, Some("committed"))
    } else if t == ReservationExpired::full_name() {
        change(
            event.decode::<ReservationExpired>()?.order_id,
            None,
            None,
            Some("expired"),
        )
    } else if t == StockRestocked::full_name() {
        change(
            event.decode::<StockRestocked>()?.order_id,
            None,
            None,
            Some("restocked"),
        )
    } else {
        Ok(None)
    }
}
