//! The orders service layer: what each call of the API does, and what orders does with the
//! events it consumes, between the gRPC translation (`grpc.rs`) and the SQL (`store`).
//!
//! | module | job |
//! |---|---|
//! | [`checkout`] | PlaceOrder (idempotent, server-side prices), GetOrder and CancelOrder with ownership, ListOrders' pages |
//! | [`fulfilment`] | the `orders.fulfilment` consumer: outcomes of the choreographed steps on the order |
//! | [`projection`] | the `orders.order-summaries` consumer: the CQRS read model |
//! | [`watch`] | WatchOrder: each timeline step pushed as it commits (LISTEN/NOTIFY), until the order is settled |
//!
//! The checkout saga that runs after PlaceOrder is `crate::saga`.

pub mod checkout;
pub mod fulfilment;
pub mod projection;
pub mod watch;

pub use checkout::{Checkout, SummaryPage, Viewer};
pub use fulfilment::Fulfilment;
pub use projection::SummaryProjection;
pub use watch::{TimelineFeed, WatchedStep, Watcher};
