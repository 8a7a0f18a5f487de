//! Reservations: the stock moves of the checkout saga.
//!
//! The commands come in two forms. [`ReservationStore`] methods run in a transaction of their
//! own (the gRPC API). The `*_in` functions ([`release_in`], [`commit_in`], [`restock_in`]) run
//! on a connection the caller brings, inside the caller's transaction: that is how the order-event
//! consumer (`events::OrderLifecycle`) commits a stock move, its outbox row and its inbox row
//! together. The pool-based methods simply open a transaction and delegate to them.
//!
//! Three techniques keep stock right under any concurrency, each doing one job:
//!
//! 1. **Idempotent command, claimed by an insert.** `ReserveStock` first inserts the reservation
//!    header with `ON CONFLICT (order_id) DO NOTHING`. Postgres lets exactly one transaction
//!    insert a key: a concurrent duplicate *waits* for the first to commit, finds the row, and
//!    answers with the winner's result instead of reserving a second time. Retries after a
//!    timeout, redeliveries and racing saga replicas all end up here.
//! 2. **Ordered locks.** The stock rows of the request are locked with
//!    `SELECT … FOR UPDATE ORDER BY sku`. Every transaction that touches several SKUs locks them
//!    in the same order, so two orders for {A, B} queue up instead of deadlocking (one holding A
//!    and waiting for B, the other holding B and waiting for A).
//! 3. **Conditional updates.** Units move with
//!    `UPDATE stock SET available = available - $q, reserved = reserved + $q
//!     WHERE sku = $s AND available >= $q`: the guard is checked by the same statement that
//!    writes, so stock can never be oversold even if a code path forgot to lock. A guard that
//!    matches no row aborts the transaction (see [`super::stock_moves`]). Below that, CHECK
//!    constraints refuse any negative bucket or broken conservation law.
//!
//! The saga's three commands also carry its **fencing token** (`platform::fencing`), admitted
//! before their transaction and held during it: a runner that lost the saga to another cannot
//! release or commit what its successor reserved.
//!
//! Isolation level alone (READ COMMITTED here) would not be enough: two transactions reading
//! `available = 1` could both decide to reserve it. The locks and guards make the decision and
//! the write one atomic step.
//!
//! **Saga safety — release before reserve.** The saga may give up on `ReserveStock` (a timeout)
//! and compensate with `ReleaseStock` while the original request is still in flight. If the
//! release found nothing and did nothing, the late reserve would then hold units that no one
//! will ever release (until the TTL). So a release for an order with no reservation records a
//! **tombstone** — RELEASED, no lines — and a `ReserveStock` that arrives afterwards replays the
//! tombstone: it answers RELEASED and reserves nothing.

use std::{collections::BTreeMap, time::Duration};

use platform::fencing::{self, FencingToken};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use super::{
    Announce,
    reservation_rows::{insert_lines, load, settle},
    stock_moves::{Movement, move_units},
};
use crate::{
    domain::{
        self, OrderId, Plan, ReleaseReason, Reservation, ReservationRequest, ReservationStatus,
        Sku, Transition,
    },
    error::InventoryError,
};
use messaging::outbox;

#[derive(Clone, Debug)]
pub struct ReservationStore {
    pool: PgPool,
    announce: Announce,
}

/// The outcome of a reservation command.
#[derive(Debug, Clone)]
pub struct Applied {
    pub reservation: Reservation,
    /// Whether `available` changed for the reservation's SKUs (so cached catalog entries are
    /// stale): true after a reserve, release or expiry that moved units.
    pub available_changed: bool,
}

impl Applied {
    fn unchanged(reservation: Reservation) -> Self {
        Self {
            reservation,
            available_changed: false,
        }
    }
}

impl ReservationStore {
    pub fn new(pool: PgPool, announce: Announce) -> Self {
        Self { pool, announce }
    }

    /// A transaction for one of the saga's commands, fenced by its token: admitted first, then
    /// held for the transaction (`platform::fencing`).
    async fn begin_fenced(
        &self,
        order_id: OrderId,
        fence: Option<FencingToken>,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, InventoryError> {
        let key = order_id.as_uuid();
        fencing::admit(&mut *self.pool.acquire().await?, key, fence).await??;
        let mut tx = self.pool.begin().await?;
        fencing::hold(&mut tx, key, fence).await??;
        Ok(tx)
    }

    /// `ReserveStock`: all or nothing, idempotent per order id (see the module docs).
    pub async fn reserve(
        &self,
        request: &ReservationRequest,
        ttl: Duration,
        fence: Option<FencingToken>,
    ) -> Result<Applied, InventoryError> {
        let order_id = request.order_id;
        let mut tx = self.begin_fenced(order_id, fence).await?;
        let claimed = sqlx::query(
            "INSERT INTO reservations (order_id, status) VALUES ($1, 'pending')
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id.as_uuid())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            // Someone reserved (or released) this order first; their transaction has committed,
            // or the insert above would still be waiting for it.
            let existing = load(&mut tx, order_id, false).await?.ok_or_else(|| {
                InventoryError::Corrupt(format!("reservation {order_id} vanished"))
            })?;
            existing.replay(request)?;
            return Ok(Applied::unchanged(existing));
        }

        let skus: Vec<&str> = request.lines().iter().map(|l| l.sku.as_str()).collect();
        let rows: Vec<(String, i64, bool)> = sqlx::query_as(
            "SELECT s.sku, s.available, p.active
             FROM stock s JOIN products p ON p.sku = s.sku
             WHERE s.sku = ANY($1)
             ORDER BY s.sku
             FOR UPDATE OF s",
        )
        .bind(&skus)
        .fetch_all(&mut *tx)
        .await?;
        let reservable: BTreeMap<Sku, i64> = rows
            .into_iter()
            .filter(|(_, _, active)| *active)
            .filter_map(|(sku, available, _)| Some((Sku::parse(&sku).ok()?, available)))
            .collect();

        let reservation = match domain::reservation::plan(request.lines(), &reservable) {
            Plan::Reserve => {
                for line in request.lines() {
                    move_units(&mut tx, Movement::Reserve, line).await?;
                }
                let (expires_at,): (OffsetDateTime,) = sqlx::query_as(
                    "UPDATE reservations
                     SET status = 'reserved', expires_at = now() + make_interval(secs => $2),
                         updated_at = now()
                     WHERE order_id = $1
                     RETURNING expires_at",
                )
                .bind(order_id.as_uuid())
                .bind(ttl.as_secs_f64())
                .fetch_one(&mut *tx)
                .await?;
                let reservation = Reservation {
                    order_id,
                    status: ReservationStatus::Reserved,
                    lines: request.lines().to_vec(),
                    shortages: Vec::new(),
                    expires_at: Some(expires_at),
                };
                insert_lines(&mut tx, &reservation).await?;
                outbox::enqueue(&mut tx, &(self.announce.stock_reserved)(&reservation)).await?;
                reservation
            }
            Plan::Reject(shortages) => {
                sqlx::query(
                    "UPDATE reservations SET status = 'rejected', updated_at = now()
                     WHERE order_id = $1",
                )
                .bind(order_id.as_uuid())
                .execute(&mut *tx)
                .await?;
                let reservation = Reservation {
                    order_id,
                    status: ReservationStatus::Rejected,
                    lines: request.lines().to_vec(),
                    shortages,
                    expires_at: None,
                };
                insert_lines(&mut tx, &reservation).await?;
                reservation
            }
        };
        tx.commit().await?;
        let available_changed = reservation.status == ReservationStatus::Reserved;
        Ok(Applied {
            reservation,
            available_changed,
        })
    }

    /// `ReleaseStock`: RESERVED → RELEASED, units back to `available`. Idempotent; leaves a
    /// tombstone for an order that has no reservation yet (see the module docs).
    pub async fn release(
        &self,
        order_id: OrderId,
        reason: &ReleaseReason,
        fence: Option<FencingToken>,
    ) -> Result<Applied, InventoryError> {
        let mut tx = self.begin_fenced(order_id, fence).await?;
        let applied = release_in(&mut tx, &self.announce, order_id, reason).await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// `CommitReservation`: RESERVED → COMMITTED, units from `reserved` to `sold`. Idempotent.
    /// See [`commit_in`].
    pub async fn commit(
        &self,
        order_id: OrderId,
        fence: Option<FencingToken>,
    ) -> Result<Applied, InventoryError> {
        let mut tx = self.begin_fenced(order_id, fence).await?;
        let applied = commit_in(&mut tx, &self.announce, order_id).await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// `GetReservation`.
    pub async fn find(&self, order_id: OrderId) -> Result<Option<Reservation>, InventoryError> {
        let mut conn = self.pool.acquire().await?;
        load(&mut conn, order_id, false).await
    }

    /// Expires one overdue reservation, if any: claims it with `FOR UPDATE SKIP LOCKED` (so
    /// several replicas sweep side by side, each taking different rows, and a row being
    /// committed right now is skipped), gives its units back and records `ReservationExpired`.
    pub async fn expire_next(&self) -> Result<Option<Reservation>, InventoryError> {
        let mut tx = self.pool.begin().await?;
        let due: Option<(uuid::Uuid,)> = sqlx::query_as(
            "SELECT order_id FROM reservations
             WHERE status = 'reserved' AND expires_at <= now()
             ORDER BY expires_at
             LIMIT 1
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id,)) = due else {
            return Ok(None);
        };
        let order_id = OrderId::from_uuid(id);
        let existing = load(&mut tx, order_id, false)
            .await?
            .ok_or(InventoryError::ReservationNotFound(order_id))?;
        let Transition::Apply(status) = existing.expire() else {
            return Ok(None);
        };
        let expired = settle(
            &mut tx,
            existing,
            Movement::Release,
            status,
            &ReleaseReason::default(),
        )
        .await?;
        outbox::enqueue(&mut tx, &(self.announce.reservation_expired)(&expired)).await?;
        tx.commit().await?;
        Ok(Some(expired))
    }
}

/// `ReleaseStock` on the caller's connection (inside its transaction): RESERVED → RELEASED,
/// units back to `available`, `StockReleased` in the outbox. Idempotent; leaves a tombstone for
/// an order that has no reservation yet (see the module docs).
pub async fn release_in(
    conn: &mut PgConnection,
    announce: &Announce,
    order_id: OrderId,
    reason: &ReleaseReason,
) -> Result<Applied, InventoryError> {
    let tombstoned = sqlx::query(
        "INSERT INTO reservations (order_id, status, reason)
         VALUES ($1, 'released', NULLIF($2, ''))
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id.as_uuid())
    .bind(reason.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if tombstoned {
        tracing::info!(%order_id, "release before any reservation: tombstone recorded");
        return Ok(Applied::unchanged(Reservation::tombstone(order_id)));
    }
    let existing = load(conn, order_id, true)
        .await?
        .ok_or(InventoryError::ReservationNotFound(order_id))?;
    match existing.release()? {
        Transition::Unchanged => Ok(Applied::unchanged(existing)),
        Transition::Apply(status) => {
            let released = settle(conn, existing, Movement::Release, status, reason).await?;
            outbox::enqueue(conn, &(announce.stock_released)(&released, reason.as_str())).await?;
            Ok(Applied {
                reservation: released,
                available_changed: true,
            })
        }
    }
}

/// `CommitReservation` and `OrderConfirmed` on the caller's connection (inside its
/// transaction): RESERVED → COMMITTED, units from `reserved` to `sold`,
/// `ReservationCommitted` in the outbox. Idempotent.
///
/// A reservation is expired when the sweeper has expired it, not when the clock passes
/// `expires_at`: a commit that gets the row lock before the sweeper keeps the units (they are
/// still held), and the sweeper then skips the committed row.
pub async fn commit_in(
    conn: &mut PgConnection,
    announce: &Announce,
    order_id: OrderId,
) -> Result<Applied, InventoryError> {
    let existing = load(conn, order_id, true)
        .await?
        .ok_or(InventoryError::ReservationNotFound(order_id))?;
    match existing.commit()? {
        Transition::Unchanged => Ok(Applied::unchanged(existing)),
        Transition::Apply(status) => {
            let committed = settle(
                conn,
                existing,
                Movement::Sell,
                status,
                &ReleaseReason::default(),
            )
            .await?;
            outbox::enqueue(conn, &(announce.reservation_committed)(&committed)).await?;
            // Committing moves units from reserved to sold: `available` is unchanged.
            Ok(Applied::unchanged(committed))
        }
    }
}

/// `OrderCancelled` of a confirmed order, on the caller's connection (inside its transaction):
/// COMMITTED → RESTOCKED, units from `sold` back to `available` (`on_hand` unchanged),
/// `StockRestocked` in the outbox. A reservation still RESERVED (the cancellation overtook the
/// confirmation) is released instead, with `StockReleased` and the reason
/// [`ReleaseReason::ORDER_CANCELLED`]. Idempotent; `None` when the order has no reservation.
pub async fn restock_in(
    conn: &mut PgConnection,
    announce: &Announce,
    order_id: OrderId,
) -> Result<Option<Applied>, InventoryError> {
    let Some(existing) = load(conn, order_id, true).await? else {
        return Ok(None);
    };
    let reason = ReleaseReason::order_cancelled();
    let settled = match existing.restock() {
        Transition::Unchanged => return Ok(Some(Applied::unchanged(existing))),
        Transition::Apply(status @ ReservationStatus::Restocked) => {
            let restocked = settle(conn, existing, Movement::Restock, status, &reason).await?;
            outbox::enqueue(conn, &(announce.stock_restocked)(&restocked)).await?;
            restocked
        }
        Transition::Apply(status @ ReservationStatus::Released) => {
            let released = settle(conn, existing, Movement::Release, status, &reason).await?;
            outbox::enqueue(conn, &(announce.stock_released)(&released, reason.as_str())).await?;
            released
        }
        Transition::Apply(other) => {
            return Err(InventoryError::Corrupt(format!(
                "a restock of order {order_id} cannot lead to {other}"
            )));
        }
    };
    Ok(Some(Applied {
        reservation: settled,
        available_changed: true,
    }))
}

/// Whether the reservation of `order_id` was released by [`restock_in`], i.e. because its
/// order was cancelled before its confirmation was applied.
pub async fn released_by_cancellation_in(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<bool, InventoryError> {
    let found: Option<(bool,)> = sqlx::query_as(
        "SELECT status = 'released' AND reason IS NOT DISTINCT FROM $2
         FROM reservations WHERE order_id = $1",
    )
    .bind(order_id.as_uuid())
    .bind(ReleaseReason::ORDER_CANCELLED)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some_and(|(released,)| released))
}
