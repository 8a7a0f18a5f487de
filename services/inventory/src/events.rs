//! Events the inventory service publishes, and the order events it consumes.
//!
//! **Published** — recorded in the outbox in the same transaction as the change (transactional
//! outbox), and published afterwards by the `OutboxRelay` worker (`libs/messaging`) that
//! [`crate::Application::run`] starts beside the API:
//!
//! | event | routing key | when |
//! |---|---|---|
//! | `ProductUpdated` | `inventory.product.updated` | a product was created or changed, or an admin adjusted its stock (carries the current `available`) |
//! | `StockReserved` | `inventory.reservation.reserved` | units were reserved for an order |
//! | `StockReleased` | `inventory.reservation.released` | a reservation was released (saga compensation; or a confirmed order cancelled before its confirmation was applied, reason `order_cancelled`) |
//! | `ReservationCommitted` | `inventory.reservation.committed` | reserved units were sold to a confirmed order (`CommitReservation` or `OrderConfirmed`) |
//! | `ReservationExpired` | `inventory.reservation.expired` | nobody committed in time; the sweeper gave the units back |
//! | `StockRestocked` | `inventory.reservation.restocked` | the customer cancelled a confirmed order; its sold units are available again |
//!
//! A REJECTED reservation and a release tombstone move no stock and publish nothing.
//!
//! **Consumed** — the choreographed half of the checkout, no orchestrator
//! (docs/architecture.md#the-choreography-after-confirmation):
//!
//! | queue | binds | job |
//! |---|---|---|
//! | `inventory.orders` | `orders.order.confirmed`, `orders.order.cancelled` | `service::OrderLifecycle`: commit the reservation of a confirmed order; restock a confirmed order its customer cancelled |
//!
//! Every event is built here and only here: the store records them through [`ANNOUNCE`].

use contracts::events::{
    ProductUpdated, ReservationCommitted, ReservationExpired, StockLine, StockReleased,
    StockReserved, StockRestocked,
};
use messaging::Envelope;

use crate::{
    domain::{CatalogItem, Reservation},
    store::Announce,
    wire,
};

/// Order events, for `service::OrderLifecycle` (declared with the whole topology in
/// `messaging::topology`; the name before `INVENTORY_QUEUE_PREFIX`).
pub use messaging::topology::INVENTORY_ORDERS as ORDERS;

/// The store's announcements: every event the store records is built here.
pub const ANNOUNCE: Announce = Announce {
    product_updated,
    stock_reserved,
    stock_released,
    reservation_committed,
    reservation_expired,
    stock_restocked,
};

pub fn product_updated(item: &CatalogItem) -> Envelope {
    let product = &item.product;
    Envelope::new(&ProductUpdated {
        sku: product.sku.to_string(),
        name: product.name.as_str().to_owned(),
        price: Some(wire::money(&product.price)),
        active: product.active,
        available: item.available,
    })
}

pub fn stock_reserved(reservation: &Reservation) -> Envelope {
    Envelope::new(&StockReserved {
        order_id: reservation.order_id.to_string(),
        lines: lines(reservation),
    })
}

pub fn stock_released(reservation: &Reservation, reason: &str) -> Envelope {
    Envelope::new(&StockReleased {
        order_id: reservation.order_id.to_string(),
        lines: lines(reservation),
        reason: reason.to_owned(),
    })
}

pub fn reservation_committed(reservation: &Reservation) -> Envelope {
    Envelope::new(&ReservationCommitted {
        order_id: reservation.order_id.to_string(),
        lines: lines(reservation),
    })
}

pub fn reservation_expired(reservation: &Reservation) -> Envelope {
    Envelope::new(&ReservationExpired {
        order_id: reservation.order_id.to_string(),
        lines: lines(reservation),
    })
}

pub fn stock_restocked(reservation: &Reservation) -> Envelope {
    Envelope::new(&StockRestocked {
        order_id: reservation.order_id.to_string(),
        lines: lines(reservation),
    })
}

fn lines(reservation: &Reservation) -> Vec<StockLine> {
    reservation
        .lines
        .iter()
        .map(|line| StockLine {
            sku: line.sku.to_string(),
            quantity: line.quantity.get(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use messaging::IntegrationEvent as _;

    use super::*;
    use crate::domain::{OrderId, ReservationLine, ReservationStatus, Sku};

    fn order() -> OrderId {
        OrderId::parse("0190f5a4-7c1e-7b9a-8c2d-3e4f5a6b7c8d").unwrap()
    }

    #[test]
    fn a_restock_is_announced_on_its_routing_key_with_the_order_as_aggregate() {
        let reservation = Reservation {
            order_id: order(),
            status: ReservationStatus::Restocked,
            lines: vec![ReservationLine {
                sku: Sku::parse("MUG-1").unwrap(),
                quantity: crate::domain::Quantity::parse(3).unwrap(),
            }],
            shortages: Vec::new(),
            expires_at: None,
        };
        let envelope = stock_restocked(&reservation);
        assert_eq!(envelope.routing_key, StockRestocked::ROUTING_KEY);
        assert_eq!(envelope.routing_key, "inventory.reservation.restocked");
        assert_eq!(envelope.aggregate_type, "reservation");
        assert_eq!(envelope.aggregate_id, order().to_string());
    }
}
