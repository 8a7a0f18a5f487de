//! Events: the ones orders publishes (built here, and only here), and the queues of the two
//! consumers it runs (their handlers are in `crate::service`).
//!
//! Published, each recorded in the outbox by the transaction that makes the change it announces
//! (the store takes the [`Envelope`] built here):
//!
//! | event | routing key | when |
//! |---|---|---|
//! | `OrderPlaced` | `orders.order.placed` | PlaceOrder stored the order PENDING ([`order_placed`]) |
//! | `OrderConfirmed` | `orders.order.confirmed` | the saga's `confirm` step ([`order_confirmed`]) |
//! | `OrderCancelled` | `orders.order.cancelled` | the saga's `cancel` step, or the customer cancelled a confirmed order ([`order_cancelled`]) |
//!
//! Consumed, each through its own inbox-deduplicated queue:
//!
//! | queue | binds | job |
//! |---|---|---|
//! | `orders.fulfilment` | `payments.payment.*`, `inventory.reservation.*` | `service::Fulfilment`: records what the choreographed steps after confirmation did (captured, refunded, committed, restocked) on the order and its timeline |
//! | `orders.order-summaries` | `orders.order.*`, `payments.payment.*`, `inventory.reservation.*` | `service::SummaryProjection`: the CQRS projection behind `ListOrders` |
//!
//! The projection is written only from events, so it lags the write side by the time an event
//! takes to go round the broker: `ListOrders` is eventually consistent, `GetOrder` (write side)
//! is not. The storefront shows both and says so.

use contracts::{Money, events};
use messaging::Envelope;
use uuid::Uuid;

use crate::{
    domain::{CancelReason, NewOrder, Saga},
    store::SagaContext,
};

/// What the choreographed steps after confirmation did, for `service::Fulfilment`; and
/// everything that changes an order's summary, for `service::SummaryProjection`. Both are
/// declared with the whole topology in `messaging::topology`.
pub use messaging::topology::{ORDERS_FULFILMENT as FULFILMENT, ORDERS_SUMMARIES as SUMMARIES};

/// `OrderPlaced`: the order as placed, with its priced lines.
pub fn order_placed(order: &NewOrder) -> Envelope {
    let money = |amount_minor| Money {
        amount_minor,
        currency: order.currency.clone(),
    };
    Envelope::new(&events::OrderPlaced {
        order_id: order.id.to_string(),
        customer_id: order.request.customer_id.to_string(),
        lines: order
            .lines
            .iter()
            .map(|line| events::OrderLineItem {
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price: Some(money(line.unit_price_minor)),
            })
            .collect(),
        total: Some(money(order.total_minor)),
    })
}

/// `OrderConfirmed`: stock reserved and payment authorized; inventory commits, payments
/// captures.
pub fn order_confirmed(saga: &Saga, context: &SagaContext) -> Envelope {
    Envelope::new(&events::OrderConfirmed {
        order_id: saga.order_id.to_string(),
        customer_id: context.customer_id.to_string(),
        payment_id: saga.payment_id.map(|id| id.to_string()).unwrap_or_default(),
        total: Some(Money {
            amount_minor: context.total_minor,
            currency: context.currency.clone(),
        }),
    })
}

/// `OrderCancelled`: `was_confirmed` tells the participants whether there is anything to undo
/// (a refund and a restock) or the saga already compensated.
pub fn order_cancelled(
    order_id: Uuid,
    customer_id: Uuid,
    reason: CancelReason,
    was_confirmed: bool,
    payment_id: Option<Uuid>,
) -> Envelope {
    Envelope::new(&events::OrderCancelled {
        order_id: order_id.to_string(),
        customer_id: customer_id.to_string(),
        reason: reason.as_str().to_owned(),
        was_confirmed,
        payment_id: payment_id.map(|id| id.to_string()).unwrap_or_default(),
    })
}
