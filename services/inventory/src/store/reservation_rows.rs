//! Reading and writing the rows of one reservation (header and lines), for the commands in
//! [`super::reservations`]. Callers bring the connection, inside their transaction, and take
//! the row locks in the order `super` describes: the reservation row first, then stock rows by
//! SKU.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::stock_moves::{Movement, move_units};
use crate::{
    domain::{
        OrderId, Quantity, ReleaseReason, Reservation, ReservationLine, ReservationStatus,
        Shortage, Sku,
    },
    error::InventoryError,
};

/// Moves every line's units and records the new status.
pub(super) async fn settle(
    conn: &mut PgConnection,
    reservation: Reservation,
    movement: Movement,
    status: ReservationStatus,
    reason: &ReleaseReason,
) -> Result<Reservation, InventoryError> {
    for line in &reservation.lines {
        move_units(conn, movement, line).await?;
    }
    sqlx::query(
        "UPDATE reservations
         SET status = $2, reason = COALESCE(NULLIF($3, ''), reason), updated_at = now()
         WHERE order_id = $1",
    )
    .bind(reservation.order_id.as_uuid())
    .bind(status.as_str())
    .bind(reason.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(Reservation {
        status,
        ..reservation
    })
}

pub(super) async fn insert_lines(
    conn: &mut PgConnection,
    reservation: &Reservation,
) -> Result<(), InventoryError> {
    let short: BTreeMap<&Sku, i64> = reservation
        .shortages
        .iter()
        .map(|shortage| (&shortage.sku, shortage.available))
        .collect();
    let skus: Vec<&str> = reservation.lines.iter().map(|l| l.sku.as_str()).collect();
    let quantities: Vec<i64> = reservation.lines.iter().map(|l| l.quantity.get()).collect();
    let short_available: Vec<Option<i64>> = reservation
        .lines
        .iter()
        .map(|l| short.get(&l.sku).copied())
        .collect();
    sqlx::query(
        "INSERT INTO reservation_lines (order_id, sku, quantity, short_available)
         SELECT $1, line.sku, line.quantity, line.short_available
         FROM UNNEST($2::text[], $3::bigint[], $4::bigint[])
              AS line (sku, quantity, short_available)",
    )
    .bind(reservation.order_id.as_uuid())
    .bind(&skus)
    .bind(&quantities)
    .bind(&short_available)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Reads a reservation with its lines; `lock` takes the row lock (`FOR UPDATE`) first.
pub(super) async fn load(
    conn: &mut PgConnection,
    order_id: OrderId,
    lock: bool,
) -> Result<Option<Reservation>, InventoryError> {
    let header: Option<(String, Option<OffsetDateTime>)> = sqlx::query_as(if lock {
        "SELECT status, expires_at FROM reservations WHERE order_id = $1 FOR UPDATE"
    } else {
        "SELECT status, expires_at FROM reservations WHERE order_id = $1"
    })
    .bind(order_id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((status, expires_at)) = header else {
        return Ok(None);
    };
    let corrupt = |what: String| InventoryError::Corrupt(format!("reservation {order_id}: {what}"));
    let status = ReservationStatus::parse(&status).ok_or_else(|| corrupt(status.clone()))?;
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT sku, quantity, short_available FROM reservation_lines
         WHERE order_id = $1 ORDER BY sku",
    )
    .bind(order_id.as_uuid())
    .fetch_all(&mut *conn)
    .await?;
    let mut lines = Vec::with_capacity(rows.len());
    let mut shortages = Vec::new();
    for (sku, quantity, short_available) in rows {
        let sku = Sku::parse(&sku).map_err(|err| corrupt(err.to_string()))?;
        let quantity = Quantity::parse(quantity).map_err(|err| corrupt(err.to_string()))?;
        if let Some(available) = short_available {
            shortages.push(Shortage {
                sku: sku.clone(),
                available,
            });
        }
        lines.push(ReservationLine { sku, quantity });
    }
    Ok(Some(Reservation {
        order_id,
        status,
        lines,
        shortages,
        expires_at,
    }))
}
