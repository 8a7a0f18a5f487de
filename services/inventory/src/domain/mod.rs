//! The inventory domain: pure types and rules, no I/O.
//!
//! Inputs are parsed into types that can only hold valid values ("parse, don't validate"): once a
//! handler has a [`Sku`] or a [`ReservationRequest`], nothing downstream re-checks them.
//!
//! | module | rules |
//! |---|---|
//! | [`catalog`] | SKU, name, description, price and currency of a product |
//! | [`stock`] | stock levels, the conservation law, admin adjustments |
//! | [`reservation_request`] | order ids, reservation lines and their limits, release reasons |
//! | [`reservation`] | the all-or-nothing plan, idempotent replays, the state machine |
//! | [`listing`] | page sizes, opaque page tokens, the escaped text filter |

pub mod catalog;
pub mod listing;
pub mod reservation;
pub mod reservation_request;
pub mod stock;

pub use catalog::{
    CatalogItem, Currency, Description, Price, Product, ProductDraft, ProductName, Sku,
};
pub use listing::{CatalogPage, ListQuery, PageSize, PageToken, SearchText};
pub use reservation::{
    ConflictingRetry, InvalidTransition, Plan, Reservation, ReservationStatus, Shortage, Transition,
};
pub use reservation_request::{
    OrderId, Quantity, ReleaseReason, ReservationLine, ReservationRequest,
};
pub use stock::{AdjustmentReason, InsufficientStock, StockDelta, StockLevel};

/// Why an input was refused: the one error type of every layer (see `libs/inputs`).
pub use inputs::InvalidInput;
