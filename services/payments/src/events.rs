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
//! | `payments.orders` | `orders.order.confirmed`, `orders.order.cancelled` | `service::OrderFollowUp`: capture the payment of a confirmed order; refund (or void) the payment of a confirmed order its customer cancelled |
//!
//! The capture or refund is appended, with its own outbox row, in the consumer's inbox
//! transaction: the effect, the event announcing it and the "seen this message" row commit
//! together or not at all, so a redelivered event changes nothing.

use contracts::events::{
    PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentRefunded, PaymentVoided,
};
use messaging::Envelope;

use crate::domain::{Money, PaymentEvent, PaymentHeader};

/// Order events, for `service::OrderFollowUp` (declared with the whole topology in
/// `messaging::topology`; the name before `PAYMENTS_QUEUE_PREFIX`).
pub use messaging::topology::PAYMENTS_ORDERS as ORDERS;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;
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
    fn the_queue_binds_exactly_the_order_events_it_handles() {
        use messaging::IntegrationEvent;
        assert_eq!(
            ORDERS.bindings,
            [
                contracts::events::OrderConfirmed::ROUTING_KEY,
                contracts::events::OrderCancelled::ROUTING_KEY,
            ]
        );
    }
}
