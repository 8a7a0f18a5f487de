//! Reservations: units held for an order while the checkout saga runs.
//!
//! The rules here are pure; `store::reservations` applies them inside transactions. What a
//! request may contain is in [`super::reservation_request`].
//!
//! * **All or nothing** ([`plan`]): either every line of a request can be served and all are
//!   reserved, or nothing is held and the reservation is REJECTED with its shortages. A
//!   half-reserved order would hold stock it can never use.
//! * **Idempotent command** ([`Reservation::replay`]): the order id is the idempotency key. A
//!   retry with the same lines gets the stored reservation back — whatever its outcome was,
//!   REJECTED included — and a retry with different lines is a caller bug, refused.
//! * **State machine** ([`Reservation::release`], [`Reservation::commit`],
//!   [`Reservation::expire`], [`Reservation::restock`]):
//!
//! ```text
//!              ┌──── commit ────► COMMITTED ──── restock ───► RESTOCKED
//!   RESERVED ──┼──── release ───► RELEASED
//!              └──── expire ────► EXPIRED
//!   REJECTED   (terminal: nothing was held)
//! ```
//!
//! Repeating a transition that already happened is a no-op ([`Transition::Unchanged`]), so every
//! saga step can be retried safely; a transition out of the wrong state is an error.
//!
//! RESTOCKED is the choreographed undo of a sale: the customer cancelled an order after it was
//! confirmed, and its sold units went back to `available` (`on_hand` unchanged, so the
//! conservation law still holds).

use std::{collections::BTreeMap, fmt};

use time::OffsetDateTime;

use super::{OrderId, ReservationLine, ReservationRequest, Sku};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    Reserved,
    Rejected,
    Released,
    Committed,
    Expired,
    Restocked,
}

impl ReservationStatus {
    const ALL: [Self; 6] = [
        Self::Reserved,
        Self::Rejected,
        Self::Released,
        Self::Committed,
        Self::Expired,
        Self::Restocked,
    ];

    /// The spelling in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Rejected => "rejected",
            Self::Released => "released",
            Self::Committed => "committed",
            Self::Expired => "expired",
            Self::Restocked => "restocked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw)
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A line that could not be served: how many units of the SKU were available (0 for an unknown
/// or inactive product).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub sku: Sku,
    pub available: i64,
}

/// What the store should do with a new request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Every line fits: hold them all.
    Reserve,
    /// At least one line does not fit: hold nothing.
    Reject(Vec<Shortage>),
}

/// The all-or-nothing decision. `reservable` maps each SKU to the units that can be reserved
/// right now (under the row locks); a SKU missing from it (unknown or inactive) has none.
pub fn plan(lines: &[ReservationLine], reservable: &BTreeMap<Sku, i64>) -> Plan {
    let shortages: Vec<Shortage> = lines
        .iter()
        .filter_map(|line| {
            let available = reservable.get(&line.sku).copied().unwrap_or(0).max(0);
            (available < line.quantity.get()).then(|| Shortage {
                sku: line.sku.clone(),
                available,
            })
        })
        .collect();
    if shortages.is_empty() {
        Plan::Reserve
    } else {
        Plan::Reject(shortages)
    }
}

/// A reservation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub order_id: OrderId,
    pub status: ReservationStatus,
    /// Sorted by SKU. Empty only for a tombstone.
    pub lines: Vec<ReservationLine>,
    /// Only for REJECTED.
    pub shortages: Vec<Shortage>,
    /// Only for reservations that held units (RESERVED and what followed it).
    pub expires_at: Option<OffsetDateTime>,
}

/// A retry of `ReserveStock` whose lines differ from the stored reservation's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "order {order_id} already has a reservation with different lines; an order id reserves once"
)]
pub struct ConflictingRetry {
    pub order_id: OrderId,
}

/// A transition out of a state that does not allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reservation of order {order_id} is {status}; it cannot be {action}")]
pub struct InvalidTransition {
    pub order_id: OrderId,
    pub status: ReservationStatus,
    pub action: &'static str,
}

/// The outcome of asking for a transition that is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move to this status (and move the units accordingly).
    Apply(ReservationStatus),
    /// Already done (a retry), or nothing to do: change nothing.
    Unchanged,
}

impl Reservation {
    /// What `ReleaseStock` leaves behind for an order that has no reservation yet: RELEASED, no
    /// lines. A `ReserveStock` that arrives later (the saga already compensated, the request
    /// overtook nothing) replays this instead of reserving units nobody would ever release.
    pub fn tombstone(order_id: OrderId) -> Self {
        Self {
            order_id,
            status: ReservationStatus::Released,
            lines: Vec::new(),
            shortages: Vec::new(),
            expires_at: None,
        }
    }

    pub fn is_tombstone(&self) -> bool {
        self.status == ReservationStatus::Released && self.lines.is_empty()
    }

    /// The SKUs this reservation touches.
    pub fn skus(&self) -> Vec<Sku> {
        self.lines.iter().map(|line| line.sku.clone()).collect()
    }

    /// Whether a `ReserveStock` retry may be answered with this reservation: same lines (in any
    /// order, since both are sorted), or a tombstone, which answers every late request.
    pub fn replay(&self, request: &ReservationRequest) -> Result<(), ConflictingRetry> {
        if self.is_tombstone() || self.lines == request.lines() {
            Ok(())
        } else {
            Err(ConflictingRetry {
                order_id: self.order_id,
            })
        }
    }

    /// `ReleaseStock`: the saga compensates or the customer cancelled before confirmation.
    /// Releasing something that holds nothing (already released, expired, rejected or
    /// restocked) is a no-op; a sold reservation cannot be released (that is a restock,
    /// [`Reservation::restock`]).
    pub fn release(&self) -> Result<Transition, InvalidTransition> {
        match self.status {
            ReservationStatus::Reserved => Ok(Transition::Apply(ReservationStatus::Released)),
            ReservationStatus::Released
            | ReservationStatus::Expired
            | ReservationStatus::Rejected
            | ReservationStatus::Restocked => Ok(Transition::Unchanged),
            ReservationStatus::Committed => Err(self.invalid("released")),
        }
    }

    /// `CommitReservation` and `OrderConfirmed`: the order was confirmed, the held units are
    /// sold. A restocked reservation was committed before its order was cancelled: the commit
    /// already happened, so asking again changes nothing (and must not sell the units twice).
    pub fn commit(&self) -> Result<Transition, InvalidTransition> {
        match self.status {
            ReservationStatus::Reserved => Ok(Transition::Apply(ReservationStatus::Committed)),
            ReservationStatus::Committed | ReservationStatus::Restocked => {
                Ok(Transition::Unchanged)
            }
            ReservationStatus::Released
            | ReservationStatus::Expired
            | ReservationStatus::Rejected => Err(self.invalid("committed")),
        }
    }

    /// `OrderCancelled` of a confirmed order: give the order's units back.
    ///
    /// * COMMITTED → RESTOCKED: the sold units return to `available`.
    /// * RESERVED → RELEASED: the cancellation overtook the confirmation (its `OrderConfirmed`
    ///   is still waiting for a retry, say), so the units are merely held: release them, and the
    ///   late confirmation finds nothing to sell.
    /// * Anything else holds nothing to give back (or already gave it back): unchanged.
    pub fn restock(&self) -> Transition {
        match self.status {
            ReservationStatus::Committed => Transition::Apply(ReservationStatus::Restocked),
            ReservationStatus::Reserved => Transition::Apply(ReservationStatus::Released),
            ReservationStatus::Restocked
            | ReservationStatus::Released
            | ReservationStatus::Expired
            | ReservationStatus::Rejected => Transition::Unchanged,
        }
    }

    /// The sweeper: a reservation whose deadline passed gives its units back. Anything but
    /// RESERVED was settled by someone else in the meantime and is left alone.
    pub fn expire(&self) -> Transition {
        match self.status {
            ReservationStatus::Reserved => Transition::Apply(ReservationStatus::Expired),
            _ => Transition::Unchanged,
        }
    }

    fn invalid(&self, action: &'static str) -> InvalidTransition {
        InvalidTransition {
            order_id: self.order_id,
            status: self.status,
            action,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = "0190f5a4-7c1e-7b9a-8c2d-3e4f5a6b7c8d";

    fn sku(raw: &str) -> Sku {
        Sku::parse(raw).unwrap()
    }

    fn request(lines: &[(&str, i64)]) -> ReservationRequest {
        ReservationRequest::parse(ORDER, lines.iter().copied()).unwrap()
    }

    fn reservation(status: ReservationStatus, lines: &[(&str, i64)]) -> Reservation {
        Reservation {
            order_id: OrderId::parse(ORDER).unwrap(),
            status,
            lines: request(lines).lines().to_vec(),
            shortages: Vec::new(),
            expires_at: None,
        }
    }

    #[test]
    fn statuses_round_trip() {
        for status in ReservationStatus::ALL {
            assert_eq!(ReservationStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            ReservationStatus::parse("restocked"),
            Some(ReservationStatus::Restocked)
        );
        assert_eq!(ReservationStatus::parse("pending"), None);
    }

    #[test]
    fn a_plan_reserves_only_when_every_line_fits() {
        let stock = BTreeMap::from([(sku("MUG-1"), 5), (sku("CAP-1"), 1)]);
        assert_eq!(
            plan(request(&[("MUG-1", 5), ("CAP-1", 1)]).lines(), &stock),
            Plan::Reserve
        );
        assert_eq!(
            plan(request(&[("MUG-1", 5), ("CAP-1", 2)]).lines(), &stock),
            Plan::Reject(vec![Shortage {
                sku: sku("CAP-1"),
                available: 1
            }])
        );
    }

    #[test]
    fn unknown_and_inactive_skus_are_shortages_with_nothing_available() {
        let stock = BTreeMap::from([(sku("MUG-1"), 5)]);
        assert_eq!(
            plan(request(&[("GONE-1", 1), ("MUG-1", 6)]).lines(), &stock),
            Plan::Reject(vec![
                Shortage {
                    sku: sku("GONE-1"),
                    available: 0
                },
                Shortage {
                    sku: sku("MUG-1"),
                    available: 5
                },
            ])
        );
    }

    #[test]
    fn a_retry_with_the_same_lines_replays_in_any_order() {
        let stored = reservation(ReservationStatus::Reserved, &[("MUG-1", 2), ("CAP-1", 1)]);
        assert!(
            stored
                .replay(&request(&[("CAP-1", 1), ("MUG-1", 2)]))
                .is_ok()
        );
        let rejected = reservation(ReservationStatus::Rejected, &[("MUG-1", 2)]);
        assert!(rejected.replay(&request(&[("MUG-1", 2)])).is_ok());
    }

    #[test]
    fn a_retry_with_different_lines_conflicts() {
        let stored = reservation(ReservationStatus::Reserved, &[("MUG-1", 2)]);
        for lines in [
            vec![("MUG-1", 3)],
            vec![("MUG-2", 2)],
            vec![("MUG-1", 2), ("CAP-1", 1)],
        ] {
            assert!(stored.replay(&request(&lines)).is_err(), "{lines:?}");
        }
    }

    #[test]
    fn a_tombstone_answers_any_late_reserve() {
        let tombstone = Reservation::tombstone(OrderId::parse(ORDER).unwrap());
        assert!(tombstone.is_tombstone());
        assert!(tombstone.replay(&request(&[("MUG-1", 9)])).is_ok());
        assert!(!reservation(ReservationStatus::Released, &[("MUG-1", 1)]).is_tombstone());
    }

    #[test]
    fn release_transitions() {
        use ReservationStatus::*;
        assert_eq!(
            reservation(Reserved, &[("MUG-1", 1)]).release(),
            Ok(Transition::Apply(Released))
        );
        for status in [Released, Expired, Rejected, Restocked] {
            assert_eq!(
                reservation(status, &[("MUG-1", 1)]).release(),
                Ok(Transition::Unchanged),
                "{status}"
            );
        }
        let err = reservation(Committed, &[("MUG-1", 1)])
            .release()
            .unwrap_err();
        assert_eq!(err.status, Committed);
        assert!(err.to_string().contains("cannot be released"), "{err}");
    }

    #[test]
    fn commit_transitions() {
        use ReservationStatus::*;
        assert_eq!(
            reservation(Reserved, &[("MUG-1", 1)]).commit(),
            Ok(Transition::Apply(Committed))
        );
        for status in [Committed, Restocked] {
            assert_eq!(
                reservation(status, &[("MUG-1", 1)]).commit(),
                Ok(Transition::Unchanged),
                "{status}: committed once already"
            );
        }
        for status in [Released, Expired, Rejected] {
            assert!(
                reservation(status, &[("MUG-1", 1)]).commit().is_err(),
                "{status}"
            );
        }
    }

    #[test]
    fn only_reserved_reservations_expire() {
        use ReservationStatus::*;
        assert_eq!(
            reservation(Reserved, &[("MUG-1", 1)]).expire(),
            Transition::Apply(Expired)
        );
        for status in [Rejected, Released, Committed, Expired, Restocked] {
            assert_eq!(
                reservation(status, &[("MUG-1", 1)]).expire(),
                Transition::Unchanged
            );
        }
    }

    #[test]
    fn restock_transitions() {
        use ReservationStatus::*;
        assert_eq!(
            reservation(Committed, &[("MUG-1", 1)]).restock(),
            Transition::Apply(Restocked),
            "sold units go back"
        );
        assert_eq!(
            reservation(Reserved, &[("MUG-1", 1)]).restock(),
            Transition::Apply(Released),
            "held units are released instead"
        );
        for status in [Restocked, Released, Expired, Rejected] {
            assert_eq!(
                reservation(status, &[("MUG-1", 1)]).restock(),
                Transition::Unchanged,
                "{status}"
            );
        }
    }
}
