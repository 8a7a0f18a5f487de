//! All SQL of the inventory service.
//!
//! * [`catalog`]: products and stock levels — the catalog read path and the admin writes.
//! * [`reservations`]: reserve, release, commit, expire, restock — the stock moves of the
//!   checkout saga and of the choreography after it; on the pool, or on a caller's connection.
//! * `reservation_rows`: loading and writing one reservation's header and lines (private).
//! * [`stock_moves`]: the guarded UPDATEs (conditional updates) that move units between buckets.
//!
//! Two rules hold everywhere:
//!
//! * **Every change and its event commit together** (transactional outbox): each write runs in
//!   one transaction that also calls `messaging::outbox::enqueue`. The store records the events
//!   but does not shape them: [`Announce`] carries the builders of `crate::events`
//!   (`events::ANNOUNCE`), handed to the store when it is made, so the store never depends on
//!   the events module (which depends on the store for its consumer).
//! * **Locks are taken in one global order** — a reservation row before stock rows, stock rows
//!   by ascending SKU — so two transactions can wait for each other but never deadlock.
//!
//! Queries are checked at run time (`sqlx::query`) with bound parameters only, so the build
//! needs no database.

pub mod catalog;
mod reservation_rows;
pub mod reservations;
pub mod stock_moves;

pub use catalog::CatalogStore;
pub use reservations::{Applied, ReservationStore};

use messaging::Envelope;

use crate::{
    domain::{CatalogItem, Description, Price, Product, ProductName, Reservation, Sku},
    error::InventoryError,
};

/// How each change is announced: the integration event to record with it, built by
/// `crate::events` (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Announce {
    pub product_updated: fn(&CatalogItem) -> Envelope,
    pub stock_reserved: fn(&Reservation) -> Envelope,
    /// With the release's reason.
    pub stock_released: fn(&Reservation, &str) -> Envelope,
    pub reservation_committed: fn(&Reservation) -> Envelope,
    pub reservation_expired: fn(&Reservation) -> Envelope,
    pub stock_restocked: fn(&Reservation) -> Envelope,
}

/// A product joined with its stock row.
#[derive(sqlx::FromRow)]
struct ItemRow {
    sku: String,
    name: String,
    description: String,
    price_minor: i64,
    currency: String,
    active: bool,
    updated_at: time::OffsetDateTime,
    available: i64,
}

impl TryFrom<ItemRow> for CatalogItem {
    type Error = InventoryError;

    fn try_from(row: ItemRow) -> Result<Self, Self::Error> {
        let corrupt = |err: crate::domain::InvalidInput| {
            InventoryError::Corrupt(format!("product {}: {err}", row.sku))
        };
        Ok(CatalogItem {
            product: Product {
                sku: Sku::parse(&row.sku).map_err(corrupt)?,
                name: ProductName::parse(&row.name).map_err(corrupt)?,
                description: Description::parse(&row.description).map_err(corrupt)?,
                price: Price::parse(row.price_minor, &row.currency).map_err(corrupt)?,
                active: row.active,
                updated_at: row.updated_at,
            },
            available: row.available,
        })
    }
}
