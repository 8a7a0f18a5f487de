//! The inventory service layer: what each call of the API does, and what inventory does with the
//! order events it consumes, between the gRPC translation (`grpc.rs`) and the SQL (`store`).
//!
//! | module | job |
//! |---|---|
//! | [`catalog`] | catalog reads through the cache with a stampede guard; admin writes with invalidation after the commit |
//! | [`reservations`] | the saga's stock moves (reserve, release, commit), and the catalog entries they make stale |
//! | [`order_lifecycle`] | the `inventory.orders` consumer: commit on `OrderConfirmed`, restock on `OrderCancelled` of a confirmed order |

pub mod catalog;
pub mod order_lifecycle;
pub mod reservations;

pub use catalog::{Catalog, CatalogReads};
pub use order_lifecycle::OrderLifecycle;
pub use reservations::Reservations;
