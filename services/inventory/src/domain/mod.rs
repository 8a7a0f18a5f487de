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

/// Why an input was refused: the request field at fault (`sku`, `lines[2].quantity`) and what is
/// wrong with it. The gateway shows both to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    field: String,
    reason: String,
}

impl InvalidInput {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The request field at fault.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The same problem, one level down: `quantity` inside `lines[2]` → `lines[2].quantity`.
    pub fn within(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            reason: self.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_names_the_field_and_nests() {
        let err = InvalidInput::new("quantity", "must be at least 1").within("lines[2]");
        assert_eq!(err.field(), "lines[2].quantity");
        assert_eq!(err.reason(), "must be at least 1");
        assert_eq!(err.to_string(), "lines[2].quantity: must be at least 1");
    }
}
