//! The orders domain: order placement rules and the checkout saga's state machine. Pure: no I/O.

pub mod order;
pub mod progress;
pub mod saga;

pub use order::{CancelReason, NewOrder, OrderLine, OrderRequest, OrderStatus, PricedLine};
pub use progress::{Track, is_settled};
pub use saga::{Saga, SagaStep, StepResult, Transition};

/// An input the caller must fix: the one error type of every layer (see `libs/inputs`).
pub use inputs::InvalidInput;
