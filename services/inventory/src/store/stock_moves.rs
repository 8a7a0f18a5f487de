//! Moving units between the buckets of a stock row: **conditional updates**.
//!
//! Each movement is a single `UPDATE … WHERE sku = $1 AND <bucket> >= $2`. The check and the
//! write are one atomic statement, so no interleaving of transactions can make a bucket
//! negative: if another transaction took the units first, the guard matches no row and the
//! caller aborts, instead of overselling. The alternative — read the row, decide in the
//! application, write the new value — is only safe while the row lock is held; the guard keeps
//! the invariant even where a lock was forgotten, and the CHECK constraints of the `stock`
//! table back it up once more.
//!
//! Callers move the lines of a reservation in SKU order, so the row locks these updates take
//! are always acquired in the same order (see `store` for why that prevents deadlocks).

use sqlx::PgConnection;

use crate::{domain::ReservationLine, error::InventoryError};

/// How units move between the buckets of a stock row. Each is one guarded UPDATE.
#[derive(Debug, Clone, Copy)]
pub enum Movement {
    /// available → reserved
    Reserve,
    /// reserved → available
    Release,
    /// reserved → sold
    Sell,
    /// sold → available: a confirmed order was cancelled and its units return to the shelf
    Restock,
}

impl Movement {
    fn sql(self) -> &'static str {
        match self {
            Self::Reserve => {
                "UPDATE stock SET available = available - $2, reserved = reserved + $2,
                                  updated_at = now()
                 WHERE sku = $1 AND available >= $2"
            }
            Self::Release => {
                "UPDATE stock SET reserved = reserved - $2, available = available + $2,
                                  updated_at = now()
                 WHERE sku = $1 AND reserved >= $2"
            }
            Self::Sell => {
                "UPDATE stock SET reserved = reserved - $2, sold = sold + $2, updated_at = now()
                 WHERE sku = $1 AND reserved >= $2"
            }
            Self::Restock => {
                "UPDATE stock SET sold = sold - $2, available = available + $2, updated_at = now()
                 WHERE sku = $1 AND sold >= $2"
            }
        }
    }
}

/// Moves the units of `line` (one guarded UPDATE). The caller holds the row locks or takes them
/// here in SKU order, because lines are always processed sorted.
pub async fn move_units(
    conn: &mut PgConnection,
    movement: Movement,
    line: &ReservationLine,
) -> Result<(), InventoryError> {
    let updated = sqlx::query(movement.sql())
        .bind(line.sku.as_str())
        .bind(line.quantity.get())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    match (updated, movement) {
        (1, _) => Ok(()),
        (_, Movement::Reserve) => Err(InventoryError::Contended(line.sku.clone())),
        (_, Movement::Release | Movement::Sell) => Err(InventoryError::Corrupt(format!(
            "stock of {} holds fewer reserved units than a reservation",
            line.sku
        ))),
        (_, Movement::Restock) => Err(InventoryError::Corrupt(format!(
            "stock of {} holds fewer sold units than a committed reservation",
            line.sku
        ))),
    }
}
