//! The `orders.fulfilment` consumer: what the choreographed steps after confirmation did
//! (captured, refunded, restocked), recorded on the order and its timeline. Each report moves a
//! status column only forward (`domain::progress`), so a late or retried one changes nothing.

use messaging::{Event, EventHandler, HandlerError, Handling, ReceivedEvent};
use uuid::Uuid;

use crate::store::{OrderStore, OutcomeColumn};

pub(crate) fn order_id(raw: &str) -> Result<Uuid, HandlerError> {
    HandlerError::parse_id("order id", raw)
}

/// Records the outcomes of the choreographed steps on the order (write side).
pub struct Fulfilment {
    pub store: OrderStore,
}

impl EventHandler for Fulfilment {
    async fn handle(
        &self,
        work: &mut Handling<'_>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let (order, column, status, step) = match &event.event {
            Event::PaymentCaptured(e) => (
                &e.order_id,
                OutcomeColumn::Payment,
                "captured",
                "capture_payment",
            ),
            Event::PaymentRefunded(e) => (
                &e.order_id,
                OutcomeColumn::Payment,
                "refunded",
                "refund_payment",
            ),
            Event::StockRestocked(e) => (&e.order_id, OutcomeColumn::Stock, "restocked", "restock"),
            // Other events on the bound keys (authorized, reserved, committed …) are the saga's
            // business; the saga learns them from the gRPC answers.
            _ => return Ok(()),
        };
        self.store
            .record_outcome(work.tx(), order_id(order)?, column, status, step)
            .await?;
        Ok(())
    }
}
