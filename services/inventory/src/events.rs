//! Events the inventory service publishes. It consumes none yet.
//!
//! | event | routing key | when |
//! |---|---|---|
//! | `ProductUpdated` | `inventory.product.updated` | a product was created or changed, or an admin adjusted its stock (carries the current `available`) |
//! | `StockReserved` | `inventory.reservation.reserved` | units were reserved for an order |
//! | `StockReleased` | `inventory.reservation.released` | a reservation was released (saga compensation, cancellation) |
//! | `ReservationCommitted` | `inventory.reservation.committed` | reserved units were sold to a confirmed order |
//! | `ReservationExpired` | `inventory.reservation.expired` | nobody committed in time; the sweeper gave the units back |
//!
//! A REJECTED reservation and a release tombstone move no stock and publish nothing.
//!
//! Events are never sent directly: they are recorded in the outbox in the same transaction as
//! the change (transactional outbox) and published by the relay (`libs/messaging`).

use contracts::events::{
    ProductUpdated, ReservationCommitted, ReservationExpired, StockLine, StockReleased,
    StockReserved,
};
use messaging::Envelope;

use crate::{
    domain::{CatalogItem, Reservation},
    wire,
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
