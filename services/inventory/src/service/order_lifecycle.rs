//! The `inventory.orders` consumer: the choreographed half of the checkout
//! (docs/architecture.md#the-choreography-after-confirmation), inside the consumer's inbox
//! transaction. Its stock moves and their outbox rows are made on that transaction's connection
//! (`store::reservations::{commit_in, restock_in}`): the effect, the event announcing it and the
//! "seen this message" row commit together or not at all, so a redelivered event changes
//! nothing.

use messaging::{Event, EventHandler, HandlerError, Handling, ReceivedEvent};
use sqlx::PgConnection;

use crate::{
    domain::{OrderId, ReservationStatus},
    error::InventoryError,
    events::ANNOUNCE,
    service::Catalog,
    store::reservations::{commit_in, released_by_cancellation_in, restock_in},
};

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
/// stale until the TTL. So the handler registers the invalidation with the consumer's
/// after-commit hook ([`Handling::after_commit`]), which runs it once the transaction has
/// committed, and never after a rollback. If the process dies between the commit and the
/// invalidation, the entry's TTL (`INVENTORY_CACHE_TTL`) still bounds the staleness, as for
/// every write path that crashes between commit and invalidation.
#[derive(Clone)]
pub struct OrderLifecycle {
    catalog: Catalog,
}

impl OrderLifecycle {
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    async fn confirmed(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<(), HandlerError> {
        match commit_in(tx, &ANNOUNCE, order_id).await {
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
        work: &mut Handling<'_>,
        order_id: OrderId,
    ) -> Result<(), HandlerError> {
        let restocked = restock_in(work.tx(), &ANNOUNCE, order_id)
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
            // After the commit, never before (see the type's docs).
            let (catalog, skus) = (self.catalog.clone(), applied.reservation.skus());
            work.after_commit(async move { catalog.changed(&skus).await });
        }
        Ok(())
    }
}

impl EventHandler for OrderLifecycle {
    async fn handle(
        &self,
        work: &mut Handling<'_>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        match &event.event {
            Event::OrderConfirmed(confirmed) => {
                self.confirmed(work.tx(), order_id(&confirmed.order_id)?)
                    .await
            }
            Event::OrderCancelled(cancelled) => {
                let order_id = order_id(&cancelled.order_id)?;
                if cancelled.was_confirmed {
                    self.cancelled(work, order_id).await
                } else {
                    tracing::debug!(%order_id, "order cancelled before confirmation: the saga released the stock");
                    Ok(())
                }
            }
            // Nothing else is bound to the queue; a stray event is not ours to act on.
            other => {
                tracing::debug!(
                    routing_key = other.routing_key(),
                    "ignoring an event this consumer does not handle"
                );
                Ok(())
            }
        }
    }
}

fn order_id(raw: &str) -> Result<OrderId, HandlerError> {
    OrderId::parse(raw).map_err(|_| HandlerError::Permanent(format!("bad order id {raw:?}")))
}

/// Whether retrying later can help, and whether the message is at fault at all.
///
/// The database being down is no fault of the message: the consumer pauses
/// ([`HandlerError::Unavailable`]). A lock timeout, the aborted transaction of a conflict and a
/// contended stock row can succeed on a retry; a missing reservation, a forbidden transition or
/// corrupt data cannot.
fn handler_error(order_id: OrderId, error: &InventoryError) -> HandlerError {
    let reason = format!("order {order_id}: {error}");
    match error {
        InventoryError::Store(database) => HandlerError::database(database, reason),
        InventoryError::Contended(_) => HandlerError::Transient(reason),
        InventoryError::Shared(inner) => match handler_error(order_id, inner) {
            HandlerError::Unavailable(_) => HandlerError::Unavailable(reason),
            HandlerError::Transient(_) => HandlerError::Transient(reason),
            HandlerError::Permanent(_) => HandlerError::Permanent(reason),
        },
        InventoryError::InvalidInput(_)
        | InventoryError::ProductNotFound(_)
        | InventoryError::ReservationNotFound(_)
        | InventoryError::InsufficientStock(_)
        | InventoryError::ConflictingRetry(_)
        | InventoryError::InvalidTransition(_)
        | InventoryError::Superseded(_)
        | InventoryError::Corrupt(_) => HandlerError::Permanent(reason),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{InvalidTransition, Sku};

    fn order() -> OrderId {
        OrderId::parse("0190f5a4-7c1e-7b9a-8c2d-3e4f5a6b7c8d").unwrap()
    }

    #[test]
    fn a_database_outage_pauses_and_only_failures_a_retry_can_fix_are_transient() {
        let unavailable = [
            InventoryError::Store(sqlx::Error::PoolTimedOut),
            InventoryError::Shared(Arc::new(InventoryError::Store(sqlx::Error::PoolClosed))),
        ];
        for error in &unavailable {
            assert!(
                matches!(handler_error(order(), error), HandlerError::Unavailable(_)),
                "{error}"
            );
        }
        let transient = [
            InventoryError::Store(sqlx::Error::RowNotFound),
            InventoryError::Contended(Sku::parse("MUG-1").unwrap()),
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
}
