//! Events the payments service publishes, and the order events it consumes.
//!
//! **Published** (through the outbox, relayed by the `OutboxRelay` worker):
//!
//! | event | routing key | when |
//! |---|---|---|
//! | `PaymentAuthorized` | `payments.payment.authorized` | the provider approved |
//! | `PaymentDeclined` | `payments.payment.declined` | the provider declined |
//! | `PaymentCaptured` | `payments.payment.captured` | the authorized amount was taken |
//! | `PaymentRefunded` | `payments.payment.refunded` | part or all of it was given back |
//! | `PaymentVoided` | `payments.payment.voided` | the authorization was released |
//!
//! Every event appended to a payment's stream maps to exactly one integration event, recorded in
//! the outbox in the same transaction as the append and published later by the relay
//! (`libs/messaging`). The ledger's internal events and the published contract are kept apart on
//! purpose: the stream can gain detail without breaking consumers.
//!
//! **Consumed** — the choreographed half of the checkout, no orchestrator
//! (docs/architecture.md#the-choreography-after-confirmation):
//!
//! | queue | binds | job |
//! |---|---|---|
//! | `payments.orders` | `orders.order.confirmed`, `orders.order.cancelled` | [`OrderFollowUp`]: capture the payment of a confirmed order; refund (or void) the payment of a confirmed order its customer cancelled |
//!
//! The capture or refund is appended, with its own outbox row, in the consumer's inbox
//! transaction: the effect, the event announcing it and the "seen this message" row commit
//! together or not at all, so a redelivered event changes nothing.

use contracts::events::{
    OrderCancelled, OrderConfirmed, PaymentAuthorized, PaymentCaptured, PaymentDeclined,
    PaymentRefunded, PaymentVoided,
};
use futures::future::BoxFuture;
use messaging::{Envelope, EventHandler, HandlerError, ReceivedEvent};
use prost::Name as _;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::{Money, PaymentEvent, PaymentHeader},
    error::PaymentsError,
    ledger::{self, FollowUp},
};

/// The queue of order events (before `PAYMENTS_QUEUE_PREFIX`).
pub const ORDERS_QUEUE: &str = "payments.orders";
/// What [`ORDERS_QUEUE`] receives.
pub const ORDERS_BINDINGS: &[&str] = &["orders.order.confirmed", "orders.order.cancelled"];

/// The integration event announcing `event` of the payment described by `header`.
pub fn envelope(header: &PaymentHeader, event: &PaymentEvent) -> Envelope {
    let payment_id = header.id.to_string();
    let order_id = header.order_id.to_string();
    match event {
        PaymentEvent::Authorized { amount } => Envelope::new(&PaymentAuthorized {
            payment_id,
            order_id,
            amount: Some(money(*amount)),
        }),
        PaymentEvent::Declined { reason } => Envelope::new(&PaymentDeclined {
            payment_id,
            order_id,
            reason: reason.clone(),
        }),
        PaymentEvent::Captured { amount } => Envelope::new(&PaymentCaptured {
            payment_id,
            order_id,
            amount: Some(money(*amount)),
        }),
        PaymentEvent::Refunded { amount, .. } => Envelope::new(&PaymentRefunded {
            payment_id,
            order_id,
            amount: Some(money(*amount)),
        }),
        PaymentEvent::Voided { .. } => Envelope::new(&PaymentVoided {
            payment_id,
            order_id,
        }),
    }
}

/// The wire form of an amount.
pub fn money(amount: Money) -> contracts::Money {
    contracts::Money {
        amount_minor: amount.minor(),
        currency: amount.currency().to_string(),
    }
}

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
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a ReceivedEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let event_type = event.event_type.as_str();
            let (order_id, follow_up, what) = if event_type == OrderConfirmed::full_name() {
                let confirmed: OrderConfirmed = event.decode()?;
                let order_id = order_id(&confirmed.order_id)?;
                (
                    order_id,
                    ledger::capture_order_in(tx, order_id).await,
                    "capture",
                )
            } else if event_type == OrderCancelled::full_name() {
                let cancelled: OrderCancelled = event.decode()?;
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
            } else {
                // Nothing else is bound to the queue; a stray event is not ours to act on.
                tracing::debug!(
                    event_type,
                    "ignoring an event this consumer does not handle"
                );
                return Ok(());
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
        })
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
        PaymentsError::Rejected(_) | PaymentsError::Corrupt(_) | PaymentsError::InvalidInput(_) => {
            HandlerError::Permanent(format!("order {order_id}: {error}"))
        }
        // A concurrent append (the transaction is aborted: rolling back is the only way on),
        // the database, and — not used on this path — the provider.
        PaymentsError::Contention(_) | PaymentsError::Store(_) | PaymentsError::Provider(_) => {
            HandlerError::Transient(format!("order {order_id}: {error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, PaymentStatus, Rejected};
    use time::OffsetDateTime;
    use uuid::Uuid;

    #[test]
    fn each_ledger_event_has_its_routing_key_and_the_payment_as_aggregate() {
        let eur = Money::positive(100, Currency::parse("EUR").unwrap()).unwrap();
        let header = PaymentHeader {
            id: Uuid::now_v7(),
            order_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            requested: eur,
            created_at: OffsetDateTime::now_utc(),
        };
        let cases = [
            (
                PaymentEvent::Authorized { amount: eur },
                "payments.payment.authorized",
            ),
            (
                PaymentEvent::Declined {
                    reason: "card_declined".into(),
                },
                "payments.payment.declined",
            ),
            (
                PaymentEvent::Captured { amount: eur },
                "payments.payment.captured",
            ),
            (
                PaymentEvent::Refunded {
                    amount: eur,
                    reason: String::new(),
                },
                "payments.payment.refunded",
            ),
            (
                PaymentEvent::Voided {
                    reason: String::new(),
                },
                "payments.payment.voided",
            ),
        ];
        for (event, routing_key) in cases {
            let envelope = envelope(&header, &event);
            assert_eq!(envelope.routing_key, routing_key);
            assert_eq!(envelope.aggregate_type, "payment");
            assert_eq!(envelope.aggregate_id, header.id.to_string());
        }
    }

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
                HandlerError::Transient(reason) => panic!("{shown} must be permanent: {reason}"),
            }
        }
        let transient = [
            PaymentsError::Contention(Uuid::now_v7()),
            PaymentsError::Store(sqlx::Error::PoolTimedOut),
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

    #[test]
    fn the_queue_binds_exactly_the_order_events_it_handles() {
        use messaging::IntegrationEvent;
        assert_eq!(
            ORDERS_BINDINGS,
            [OrderConfirmed::ROUTING_KEY, OrderCancelled::ROUTING_KEY]
        );
    }
}
