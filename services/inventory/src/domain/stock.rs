//! Stock levels and admin adjustments.
//!
//! Every unit of a SKU sits in exactly one bucket — `available`, `reserved` or `sold` — and
//! `on_hand` counts them all: **on_hand = available + reserved + sold** (the conservation law,
//! also a CHECK constraint in the database and an invariant the tests assert). Reservations move
//! units between buckets without changing `on_hand`; only an adjustment (a delivery, a write-off)
//! changes `on_hand`, and it moves `available` by the same amount.

use super::Sku;

/// The stock of one SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub sku: Sku,
    pub on_hand: i64,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
}

/// A write-off larger than what is available (reserved and sold units cannot be written off).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sku} has {available} units available; cannot write off {requested}")]
pub struct InsufficientStock {
    pub sku: Sku,
    pub available: i64,
    pub requested: i64,
}

impl StockLevel {
    /// An empty stock row, as created with a new product.
    pub fn empty(sku: Sku) -> Self {
        Self {
            sku,
            on_hand: 0,
            available: 0,
            reserved: 0,
            sold: 0,
        }
    }

    /// Whether every bucket is non-negative and they add up to `on_hand`.
    pub fn is_conserved(&self) -> bool {
        [self.on_hand, self.available, self.reserved, self.sold]
            .iter()
            .all(|n| *n >= 0)
            && self
                .available
                .checked_add(self.reserved)
                .and_then(|n| n.checked_add(self.sold))
                == Some(self.on_hand)
    }

    /// The level after an adjustment: `on_hand` and `available` move together, and neither may
    /// go below zero.
    pub fn adjust(&self, delta: StockDelta) -> Result<Self, InsufficientStock> {
        let insufficient = || InsufficientStock {
            sku: self.sku.clone(),
            available: self.available,
            requested: delta.get().saturating_neg(),
        };
        let available = self
            .available
            .checked_add(delta.get())
            .filter(|n| *n >= 0)
            .ok_or_else(insufficient)?;
        let on_hand = self
            .on_hand
            .checked_add(delta.get())
            .filter(|n| *n >= 0)
            .ok_or_else(insufficient)?;
        Ok(Self {
            on_hand,
            available,
            ..self.clone()
        })
    }
}

/// Admin adjustments: the shared input rules, checked by the gateway too.
pub use inputs::{AdjustmentReason, StockDelta};

#[cfg(test)]
mod tests {
    use super::*;

    fn level(on_hand: i64, available: i64, reserved: i64, sold: i64) -> StockLevel {
        StockLevel {
            sku: Sku::parse("MUG-1").unwrap(),
            on_hand,
            available,
            reserved,
            sold,
        }
    }

    #[test]
    fn conservation_needs_every_bucket_non_negative_and_summing_up() {
        assert!(level(10, 5, 3, 2).is_conserved());
        assert!(StockLevel::empty(Sku::parse("MUG-1").unwrap()).is_conserved());
        assert!(!level(10, 5, 3, 1).is_conserved());
        assert!(!level(0, 1, -1, 0).is_conserved());
        assert!(
            !level(i64::MAX, i64::MAX, 1, 0).is_conserved(),
            "no overflow"
        );
    }

    #[test]
    fn adjustments_move_on_hand_and_available_together() {
        let delivered = level(10, 5, 3, 2)
            .adjust(StockDelta::parse(7).unwrap())
            .unwrap();
        assert_eq!(delivered, level(17, 12, 3, 2));
        assert!(delivered.is_conserved());
        let written_off = delivered.adjust(StockDelta::parse(-12).unwrap()).unwrap();
        assert_eq!(written_off, level(5, 0, 3, 2));
    }

    #[test]
    fn reserved_and_sold_units_cannot_be_written_off() {
        let err = level(10, 5, 3, 2)
            .adjust(StockDelta::parse(-6).unwrap())
            .unwrap_err();
        assert_eq!(err.available, 5);
        assert_eq!(err.requested, 6);
        assert_eq!(
            err.to_string(),
            "MUG-1 has 5 units available; cannot write off 6"
        );
    }

    #[test]
    fn adjustments_never_overflow() {
        let huge = level(i64::MAX, i64::MAX, 0, 0);
        assert!(huge.adjust(StockDelta::parse(1).unwrap()).is_err());
    }

    #[test]
    fn reasons_are_required_and_bounded() {
        assert_eq!(
            AdjustmentReason::parse(" delivery 2026-11-03 ")
                .unwrap()
                .as_str(),
            "delivery 2026-11-03"
        );
        for raw in ["", "  ", &"r".repeat(201), "tab\there"] {
            assert_eq!(AdjustmentReason::parse(raw).unwrap_err().field(), "reason");
        }
    }
}
