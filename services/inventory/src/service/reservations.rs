//! The checkout saga's stock moves: reserve, release, commit, each idempotent per order id
//! and fenced by the saga's token (`store::reservations` explains how), and the catalog entries
//! a move made stale.
//!
//! A reserve or release changes `available`, which the cached catalog shows; the cache is
//! invalidated after the store's transaction has committed (see `service::catalog`), so a
//! reader never caches the old row under the new generation.

use std::time::Duration;

use platform::fencing::FencingToken;

use crate::{
    domain::{OrderId, ReleaseReason, Reservation, ReservationRequest},
    error::InventoryError,
    service::Catalog,
    store::{Applied, ReservationStore},
};

pub struct Reservations {
    store: ReservationStore,
    catalog: Catalog,
    /// How long a reservation holds its units before the sweeper gives them back.
    ttl: Duration,
}

impl Reservations {
    pub fn new(store: ReservationStore, catalog: Catalog, ttl: Duration) -> Self {
        Self {
            store,
            catalog,
            ttl,
        }
    }

    /// `ReserveStock`: all or nothing; a retry gets the first answer.
    pub async fn reserve(
        &self,
        request: &ReservationRequest,
        fence: Option<FencingToken>,
    ) -> Result<Reservation, InventoryError> {
        let applied = self.store.reserve(request, self.ttl, fence).await?;
        tracing::info!(
            order_id = %request.order_id,
            status = %applied.reservation.status,
            "reserve stock"
        );
        Ok(self.settled(applied).await)
    }

    /// `ReleaseStock`: the saga's compensation; leaves a tombstone if the reserve has not
    /// arrived yet.
    pub async fn release(
        &self,
        order_id: OrderId,
        reason: &ReleaseReason,
        fence: Option<FencingToken>,
    ) -> Result<Reservation, InventoryError> {
        let applied = self.store.release(order_id, reason, fence).await?;
        tracing::info!(%order_id, status = %applied.reservation.status, "release stock");
        Ok(self.settled(applied).await)
    }

    /// `CommitReservation`: reserved units become sold.
    pub async fn commit(
        &self,
        order_id: OrderId,
        fence: Option<FencingToken>,
    ) -> Result<Reservation, InventoryError> {
        let applied = self.store.commit(order_id, fence).await?;
        tracing::info!(%order_id, status = %applied.reservation.status, "commit reservation");
        Ok(self.settled(applied).await)
    }

    pub async fn find(&self, order_id: OrderId) -> Result<Reservation, InventoryError> {
        self.store
            .find(order_id)
            .await?
            .ok_or(InventoryError::ReservationNotFound(order_id))
    }

    /// Invalidates the catalog entries whose `available` changed (the store has committed).
    async fn settled(&self, applied: Applied) -> Reservation {
        if applied.available_changed {
            self.catalog.changed(&applied.reservation.skus()).await;
        }
        applied.reservation
    }
}
