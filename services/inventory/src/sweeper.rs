//! The reservation sweeper: the safety net of the checkout saga.
//!
//! A saga that crashes, or a client that never confirms, must not hold stock forever. Every
//! `INVENTORY_SWEEP_INTERVAL` the sweeper releases reservations whose `expires_at` has passed:
//! EXPIRED, units back to `available`, `ReservationExpired` in the outbox — one transaction per
//! reservation. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so every replica can run a
//! sweeper without coordination: each claims different rows, and a row that a
//! `CommitReservation` holds right now is skipped rather than waited for.
//!
//! [`Sweeper::run`] is the loop the service runs as a background worker of its host (see
//! `Application::run`); [`Sweeper::sweep_once`] is one pass, for tests and operations.

use std::time::Duration;

use platform::Shutdown;
use tokio::time::MissedTickBehavior;

use crate::{error::InventoryError, service::Catalog, store::ReservationStore};

/// Most reservations expired in one sweep, so one sweep cannot run unbounded; the next tick
/// continues.
const MAX_PER_SWEEP: usize = 500;

#[derive(Clone)]
pub struct Sweeper {
    reservations: ReservationStore,
    catalog: Catalog,
}

impl Sweeper {
    pub fn new(reservations: ReservationStore, catalog: Catalog) -> Self {
        Self {
            reservations,
            catalog,
        }
    }

    /// Expires every overdue reservation (up to 500); returns how many.
    pub async fn sweep_once(&self) -> Result<usize, InventoryError> {
        let mut expired = 0;
        while expired < MAX_PER_SWEEP {
            let Some(reservation) = self.reservations.expire_next().await? else {
                break;
            };
            expired += 1;
            metrics::counter!("inventory_reservations_expired_total").increment(1);
            tracing::info!(order_id = %reservation.order_id, "reservation expired");
            self.catalog.changed(&reservation.skus()).await;
        }
        Ok(expired)
    }

    /// Sweeps every `interval` until `shutdown` fires. A failed sweep is logged and retried on
    /// the next tick.
    pub async fn run(self, interval: Duration, shutdown: Shutdown) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                _ = ticks.tick() => {}
            }
            if let Err(err) = self.sweep_once().await {
                tracing::warn!(error = %err, "reservation sweep failed; retrying next tick");
            }
        }
        tracing::debug!("reservation sweeper stopped");
    }
}
