//! The `orders.order-summaries` consumer: the CQRS projection, `order_summaries` written from
//! events only, which `ListOrders` reads. It lags the write side by the time an event takes to
//! go round the broker.

use messaging::{Event, EventHandler, HandlerError, Handling, ReceivedEvent};

use super::fulfilment::order_id;
use crate::store::{OrderStore, SummaryChange};

/// The CQRS projection: `order_summaries` from events only.
pub struct SummaryProjection;

impl EventHandler for SummaryProjection {
    async fn handle(
        &self,
        work: &mut Handling<'_>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        if let Event::OrderPlaced(placed) = &event.event {
            let total = placed.total.clone().unwrap_or_default();
            OrderStore::create_summary_in(
                work.tx(),
                order_id(&placed.order_id)?,
                HandlerError::parse_id("customer id", &placed.customer_id)?,
                &total,
                placed.lines.iter().map(|line| line.quantity).sum(),
                event.occurred_at,
            )
            .await?;
            return Ok(());
        }
        let Some((order, change)) = summary_change(&event.event) else {
            return Ok(());
        };
        let order = order_id(order)?;
        if !OrderStore::update_summary_in(work.tx(), order, &change, event.occurred_at).await? {
            // Events of different aggregates (the order, its payment) can overtake each other.
            // An update for a summary not yet created is retried later, by which time
            // OrderPlaced has arrived; payments of orders we do not know never match and end up
            // parked, visible to an operator.
            return Err(HandlerError::Transient(format!(
                "no summary for order {order} yet"
            )));
        }
        Ok(())
    }
}

/// The order an event is about, and what it changes in the order's summary.
fn summary_change(event: &Event) -> Option<(&str, SummaryChange)> {
    let change = |status, payment, stock| SummaryChange {
        status,
        payment,
        stock,
    };
    Some(match event {
        Event::OrderConfirmed(e) => (
            &e.order_id,
            change(Some("CONFIRMED"), Some("authorized"), Some("committed")),
        ),
        Event::OrderCancelled(e) => (
            &e.order_id,
            change(
                Some("CANCELLED"),
                e.was_confirmed.then_some("refund_pending"),
                None,
            ),
        ),
        Event::PaymentCaptured(e) => (&e.order_id, change(None, Some("captured"), None)),
        Event::PaymentRefunded(e) => (&e.order_id, change(None, Some("refunded"), None)),
        Event::PaymentVoided(e) => (&e.order_id, change(None, Some("voided"), None)),
        Event::PaymentDeclined(e) => (&e.order_id, change(None, Some("declined"), None)),
        Event::StockReserved(e) => (&e.order_id, change(None, None, Some("reserved"))),
        Event::StockReleased(e) => (&e.order_id, change(None, None, Some("released"))),
        Event::ReservationCommitted(e) => (&e.order_id, change(None, None, Some("committed"))),
        Event::ReservationExpired(e) => (&e.order_id, change(None, None, Some("expired"))),
        Event::StockRestocked(e) => (&e.order_id, change(None, None, Some("restocked"))),
        _ => return None,
    })
    .map(|(order, change)| (order.as_str(), change))
}
