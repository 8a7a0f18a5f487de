//! The orders domain: order placement rules and the checkout saga's state machine. Pure: no I/O.

pub mod order;
pub mod saga;

pub use order::{CancelReason, NewOrder, OrderLine, OrderRequest, OrderStatus, PricedLine};
pub use saga::{Saga, SagaStep, StepResult, Transition};

/// An input the caller must fix; `field` names it (`lines[1].quantity`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    pub field: String,
    pub reason: String,
}

impl InvalidInput {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
