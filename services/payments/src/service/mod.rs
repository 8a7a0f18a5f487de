//! The payments service layer: the ledger's commands behind the gRPC API, and what the ledger
//! does on order events.
//!
//! | module | job |
//! |---|---|
//! | [`ledger`] | the commands: load → fold → decide → append, idempotent authorization, optimistic concurrency, and the same on a caller's transaction for order events |
//! | [`follow_up`] | the `payments.orders` consumer: capture on `OrderConfirmed`, refund on `OrderCancelled` of a confirmed order |

pub mod follow_up;
pub mod ledger;

pub use follow_up::OrderFollowUp;
pub use ledger::{FollowUp, Ledger, MAX_ATTEMPTS, capture_order_in, refund_cancelled_order_in};
