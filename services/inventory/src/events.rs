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
//! | `inventory.orders` | `orders.order.confirmed`, `orders.order.cancelled` | [`OrderLifecycle`]: commit the reservation of a confirmed order; restock a confirmed order its customer cancelled |
//!
//! The handler runs inside the consumer's inbox transaction and makes its stock moves and their
//! outbox rows on that transaction's connection (`store::reservations::{commit_in, restock_in}`):
//! the effect, the event announcing it and the "seen this message" row commit together or not
//! at all, so a redelivered event changes nothing.

use std::time::Duration;

use contracts::events::{
    OrderCancelled, OrderConfirmed, ProductUpdated, ReservationCommitted, ReservationExpired,
    StockLine, StockReleased, StockReserved, StockRestocked,
};
use futures::future::BoxFuture;
use messaging::{Envelope, EventHandler, HandlerError, ReceivedEvent};
use prost::Name as _;
use sqlx::PgConnection;

use crate::{
    catalog::Catalog,
    domain::{CatalogItem, OrderId, Reservation, ReservationStatus, Sku},
    error::InventoryError,
    store::{
        ReservationStore,
        reservations::{commit_in, released_by_cancellation_in, restock_in},
    },
    wire,
};

/// The queue of order events (before `INVENTORY_QUEUE_PREFIX`).
pub const ORDERS_QUEUE: &str = "inventory.orders";
/// What [`ORDERS_QUEUE`] receives.
pub const ORDERS_BINDINGS: &[&str] = &["orders.order.confirmed", "orders.order.cancelled"];

/// Longest wait, after a handler changed `available`, for the consumer's transaction to end
/// before the catalog cache is invalidated anyway.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

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

/// What inventory does once an order's fate is decided
/// (docs/architecture.md#the-choreography-after-confirmation):
///
/// * `OrderConfirmed` → commit the order's reservation: RESERVED → COMMITTED, `reserved` →
///   `sold`, `ReservationCommitted`. Already COMMITTED (or RESTOCKED since) → nothing to do.
/// * `OrderCancelled` with `was_confirmed` → restock: COMMITTED → RESTOCKED, `sold` →
///   `available`, `StockRestocked`; already RESTOCKED → nothing to do. If the reservation is
///   still RESERVED, the cancellation overtook the confirmation (which is waiting for a retry):
///   the units are released instead (`StockReleased`, reason `order_cancelled`), and the late
///   `OrderConfirmed` then finds a reservation released by the cancellation and commits nothing.
/// * `OrderCancelled` without `was_confirmed` → nothing: the saga already released the stock.
///
/// Failures, as the consumer retries or parks them: a database error (or a contended stock row)
/// is transient — the transaction rolls back, inbox row included, and the event comes again
/// after a delay. A confirmed order without a reservation, an undecodable event or a
/// reservation whose state the event cannot explain (a confirmation for an EXPIRED reservation)
/// is permanent: parked at once, for an operator. A cancelled order without a reservation
/// needs nothing.
///
/// **The catalog cache after the commit.** A restock or release changes `available`, which the
/// cached catalog shows, so the cache must be invalidated — after the commit, as on every other
/// write path (see [`crate::cache`]). But the consumer, not this handler, commits, once the
/// handler has returned. Invalidating here, before the commit, would not do: a reader between
/// that invalidation and the commit loads the old row and caches it under the *new* generation,
/// stale until the TTL. So the handler hands the invalidation to a task that first waits for
/// the transaction to end ([`ReservationStore::wait_until_unlocked`]: the handler holds the
/// reservation's row lock until commit or rollback, and the task waits for that lock on another
/// connection), then invalidates. Any reader that loaded the old row before the invalidation
/// fails its generation check and caches nothing; every later reader sees the committed row.
/// After a rollback the invalidation is merely unnecessary. If the wait fails or the process
/// dies first, the entry's TTL (`INVENTORY_CACHE_TTL`) still bounds the staleness, as for every
/// write path that crashes between commit and invalidation.
#[derive(Clone)]
pub struct OrderLifecycle {
    reservations: ReservationStore,
    catalog: Catalog,
}

impl OrderLifecycle {
    pub fn new(reservations: ReservationStore, catalog: Catalog) -> Self {
        Self {
            reservations,
            catalog,
        }
    }

    async fn confirmed(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<(), HandlerError> {
        match commit_in(tx, order_id).await {
            Ok(applied) => {
                // reserved → sold: `available` did not change, the cache is still right.
                tracing::info!(
                    %order_id,
                    status = %applied.reservation.status,
                    "order confirmed: reservation committed"
                );
                Ok(())
            }
            Err(InventoryError::InvalidTransition(invalid))
                if invalid.status == ReservationStatus::Released =>
            {
                let cancelled = released_by_cancellation_in(tx, order_id)
                    .await
                    .map_err(|err| handler_error(order_id, &err))?;
                if cancelled {
                    tracing::info!(
                        %order_id,
                        "order confirmed after its cancellation released the stock: nothing to commit"
                    );
                    Ok(())
                } else {
                    Err(handler_error(
                        order_id,
                        &InventoryError::InvalidTransition(invalid),
                    ))
                }
            }
            Err(err) => Err(handler_error(order_id, &err)),
        }
    }

    async fn cancelled(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<(), HandlerError> {
        let restocked = restock_in(tx, order_id)
            .await
            .map_err(|err| handler_error(order_id, &err))?;
        let Some(applied) = restocked else {
            tracing::info!(%order_id, "cancelled order has no reservation: nothing to restock");
            return Ok(());
        };
        tracing::info!(
            %order_id,
            status = %applied.reservation.status,
            changed = applied.available_changed,
            "confirmed order cancelled: stock given back"
        );
        if applied.available_changed {
            self.invalidate_after_commit(order_id, applied.reservation.skus());
        }
        Ok(())
    }

    /// Invalidates the catalog entries of `skus` once the transaction holding the reservation
    /// of `order_id` has ended (see the type's docs).
    fn invalidate_after_commit(&self, order_id: OrderId, skus: Vec<Sku>) {
        let reservations = self.reservations.clone();
        let catalog = self.catalog.clone();
        tokio::spawn(async move {
            if let Err(err) = reservations
                .wait_until_unlocked(order_id, COMMIT_WAIT)
                .await
            {
                tracing::warn!(
                    %order_id,
                    error = %err,
                    "cannot wait for the order event's commit; invalidating the catalog cache now"
                );
            }
            catalog.changed(&skus).await;
        });
    }
}

impl EventHandler for OrderLifecycle {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a ReceivedEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let event_type = event.event_type.as_str();
            if event_type == OrderConfirmed::full_name() {
                let confirmed: OrderConfirmed = event.decode()?;
                self.confirmed(tx, order_id(&confirmed.order_id)?).await
            } else if event_type == OrderCancelled::full_name() {
                let cancelled: OrderCancelled = event.decode()?;
                let order_id = order_id(&cancelled.order_id)?;
                if cancelled.was_confirmed {
                    self.cancelled(tx, order_id).await
                } else {
                    tracing::debug!(%order_id, "order cancelled before confirmation: the saga released the stock");
                    Ok(())
                }
            } else {
                // Nothing else is bound to the queue; a stray event is not ours to act on.
                tracing::debug!(
                    event_type,
                    "ignoring an event this consumer does not handle"
                );
                Ok(())
            }
        })
    }
}

fn order_id(raw: &str) -> Result<OrderId, HandlerError> {
    OrderId::parse(raw).map_err(|_| HandlerError::Permanent(format!("bad order id {raw:?}")))
}

/// Whether retrying later can help.
fn handler_error(order_id: OrderId, error: &InventoryError) -> HandlerError {
    if is_transient(error) {
        HandlerError::Transient(format!("order {order_id}: {error}"))
    } else {
        HandlerError::Permanent(format!("order {order_id}: {error}"))
    }
}

/// The database (down, a lock timeout, the aborted transaction of a conflict) and a contended
/// stock row can succeed on a retry; a missing reservation, a forbidden transition or corrupt
/// data cannot.
fn is_transient(error: &InventoryError) -> bool {
    match error {
        InventoryError::Store(_) | InventoryError::Contended(_) => true,
        InventoryError::Shared(inner) => is_transient(inner),
        InventoryError::InvalidInput(_)
        | InventoryError::ProductNotFound(_)
        | InventoryError::ReservationNotFound(_)
        | InventoryError::InsufficientStock(_)
        | InventoryError::ConflictingRetry(_)
        | InventoryError::InvalidTransition(_)
        | InventoryError::Corrupt(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use messaging::IntegrationEvent as _;

    use super::*;
    use crate::domain::{InvalidTransition, ReservationLine};

    fn order() -> OrderId {
        OrderId::parse("0190f5a4-7c1e-7b9a-8c2d-3e4f5a6b7c8d").unwrap()
    }

    #[test]
    fn only_failures_a_retry_can_fix_are_transient() {
        let transient = [
            InventoryError::Store(sqlx::Error::PoolTimedOut),
            InventoryError::Contended(Sku::parse("MUG-1").unwrap()),
            InventoryError::Shared(Arc::new(InventoryError::Store(sqlx::Error::PoolClosed))),
        ];
        for error in &transient {
            assert!(
                matches!(handler_error(order(), error), HandlerError::Transient(_)),
                "{error}"
            );
        }
        let permanent = [
            InventoryError::ReservationNotFound(order()),
            InventoryError::InvalidTransition(InvalidTransition {
                order_id: order(),
                status: ReservationStatus::Expired,
                action: "committed",
            }),
            InventoryError::Corrupt("stock of MUG-1 holds fewer sold units".into()),
        ];
        for error in &permanent {
            let HandlerError::Permanent(message) = handler_error(order(), error) else {
                panic!("{error} must be permanent");
            };
            assert!(message.contains(&order().to_string()), "{message}");
        }
    }

    #[test]
    fn bad_order_ids_are_permanent() {
        assert!(matches!(order_id("nope"), Err(HandlerError::Permanent(_))));
        assert_eq!(order_id(&order().to_string()).unwrap(), order());
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
