//! The order-event consumer of payments: what the ledger does once an order's fate is
//! decided, inside the consumer's inbox transaction.

use messaging::{Event, EventHandler, HandlerError, Handling, ReceivedEvent};
use uuid::Uuid;

use super::ledger::{self, FollowUp};
use crate::error::PaymentsError;

/// What payments does once an order's fate is decided: captures on `OrderConfirmed`; on
/// `OrderCancelled` of a confirmed order, refunds everything still refundable (voids the
/// authorization if the capture never ran). A cancellation before confirmation needs nothing:
/// the saga already voided or never took the payment.
///
/// Failures, as the consumer retries or parks them: an order without a payment, an undecodable
/// event or a payment whose state the event cannot explain is permanent (parked at once, for an
/// operator); a database error or a concurrent append to the same payment is transient (rolled
/// back, inbox row included, and delivered again after a delay).
#[derive(Debug, Default, Clone, Copy)]
pub struct OrderFollowUp;

impl EventHandler for OrderFollowUp {
    async fn handle(
        &self,
        work: &mut Handling<'_>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let tx = work.tx();
        let (order_id, follow_up, what) = match &event.event {
            Event::OrderConfirmed(confirmed) => {
                let order_id = order_id(&confirmed.order_id)?;
                (
                    order_id,
                    ledger::capture_order_in(tx, order_id).await,
                    "capture",
                )
            }
            Event::OrderCancelled(cancelled) => {
                let order_id = order_id(&cancelled.order_id)?;
                if !cancelled.was_confirmed {
                    tracing::debug!(%order_id, "order cancelled before confirmation: the saga compensated");
                    return Ok(());
                }
                (
                    order_id,
                    ledger::refund_cancelled_order_in(tx, order_id).await,
                    "refund",
                )
            }
            // Nothing else is bound to the queue; a stray event is not ours to act on.
            other => {
                tracing::debug!(
                    routing_key = other.routing_key(),
                    "ignoring an event this consumer does not handle"
                );
                return Ok(());
            }
        };
        match follow_up.map_err(|err| handler_error(order_id, err))? {
            FollowUp::Appended(_) => {}
            FollowUp::AlreadyDone(payment) => tracing::info!(
                %order_id,
                payment_id = %payment.header.id,
                status = payment.state.status.as_str(),
                what,
                "order event already applied to the payment: nothing to do"
            ),
        }
        Ok(())
    }
}

fn order_id(raw: &str) -> Result<Uuid, HandlerError> {
    HandlerError::parse_id("order id", raw)
}

/// Whether retrying later can help.
fn handler_error(order_id: Uuid, error: PaymentsError) -> HandlerError {
    match error {
        PaymentsError::NotFound => {
            HandlerError::Permanent(format!("order {order_id} has no payment"))
        }
        // Events carry no fencing token, so Superseded cannot happen here; were it to, retrying
        // would not change the answer.
        PaymentsError::Rejected(_)
        | PaymentsError::Corrupt(_)
        | PaymentsError::InvalidInput(_)
        | PaymentsError::Superseded(_) => {
            HandlerError::Permanent(format!("order {order_id}: {error}"))
        }
        // A concurrent append: the transaction is aborted, rolling back is the only way on.
        PaymentsError::Contention(_) => {
            HandlerError::Transient(format!("order {order_id}: {error}"))
        }
        // The database down pauses the consumer; another database error is this message's.
        PaymentsError::Store(ref database) => {
            HandlerError::database(database, format!("order {order_id}: {error}"))
        }
        // The provider down is no fault of the message either: pause until it is back.
        PaymentsError::Provider(_) => {
            HandlerError::Unavailable(format!("order {order_id}: {error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PaymentStatus, Rejected};

    #[test]
    fn only_retries_that_can_succeed_are_transient() {
        let order_id = Uuid::now_v7();
        let permanent = [
            PaymentsError::NotFound,
            PaymentsError::Rejected(Rejected::Capture(PaymentStatus::Voided)),
            PaymentsError::Corrupt("seq 3: expected seq 2".into()),
        ];
        for error in permanent {
            let shown = error.to_string();
            match handler_error(order_id, error) {
                HandlerError::Permanent(reason) => {
                    assert!(reason.contains(&order_id.to_string()), "{reason}");
                }
                HandlerError::Transient(reason) | HandlerError::Unavailable(reason) => {
                    panic!("{shown} must be permanent: {reason}")
                }
            }
        }
        assert!(matches!(
            handler_error(order_id, PaymentsError::Store(sqlx::Error::PoolTimedOut)),
            HandlerError::Unavailable(_)
        ));
        let transient = [
            PaymentsError::Contention(Uuid::now_v7()),
            PaymentsError::Store(sqlx::Error::RowNotFound),
        ];
        for error in transient {
            let shown = error.to_string();
            assert!(
                matches!(handler_error(order_id, error), HandlerError::Transient(_)),
                "{shown} must be transient"
            );
        }
        let no_payment = handler_error(order_id, PaymentsError::NotFound).to_string();
        assert_eq!(no_payment, format!("order {order_id} has no payment"));
    }
}
