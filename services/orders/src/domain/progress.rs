//! Status columns that only move forward.
//!
//! An order's status, and what its payment and its stock did, are learnt from events, and events
//! do not arrive in the order they happened: they travel on different queues (the order's own,
//! payments', inventory's), and one that failed once comes back from a retry tier seconds later,
//! after its successors. A column that took whatever arrived last could go back: a retried
//! `PaymentCaptured` applied after `PaymentRefunded` would show a refunded order as captured.
//!
//! So each column is a [`Track`]: its statuses in the order they can happen, ranked. An update
//! applies only when the column's current status is strictly behind the new one
//! ([`Track::behind`] lists those, for a `WHERE column = ANY(…)`); an update that arrives late
//! finds the column already past it and changes nothing. Statuses of the same rank are
//! alternative endings (refunded, voided and declined are all final), and none replaces another.
//!
//! [`is_settled`] reads the three columns together: whether anything is still going to happen
//! to the order by itself, which is when an order's live timeline (`WatchOrder`) ends.

/// A status column and the order of its statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The order itself: PENDING, then CONFIRMED, then CANCELLED (a confirmed order can still
    /// be cancelled by its customer; a pending one is cancelled by its saga).
    Order,
    /// What happened to the payment.
    Payment,
    /// What happened to the reserved stock.
    Stock,
}

impl Track {
    /// The statuses of the track by rank; statuses in one slice share a rank.
    const fn ranks(self) -> &'static [&'static [&'static str]] {
        match self {
            Self::Order => &[&["PENDING"], &["CONFIRMED"], &["CANCELLED"]],
            Self::Payment => &[
                &["none"],
                &["authorized"],
                &["captured"],
                &["refund_pending"],
                &["refunded", "voided", "declined"],
            ],
            Self::Stock => &[
                &["none"],
                &["reserved"],
                &["committed"],
                &["restock_pending"],
                &["restocked", "released", "expired"],
            ],
        }
    }

    /// The rank of `status`, or `None` if it is not a status of this track.
    pub fn rank(self, status: &str) -> Option<usize> {
        self.ranks()
            .iter()
            .position(|statuses| statuses.contains(&status))
    }

    /// Every status strictly behind `status`: the ones an update to `status` may replace. Empty
    /// for a status the track does not know, so an unknown status is never written.
    pub fn behind(self, status: &str) -> Vec<&'static str> {
        let Some(rank) = self.rank(status) else {
            return Vec::new();
        };
        self.ranks()[..rank]
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    }
}

/// Whether nothing more will happen to an order by itself, from its three status columns:
///
/// * `CONFIRMED` with the payment `captured` and the stock `committed`: the saga committed the
///   stock before confirming, and payments' capture (choreographed, after `OrderConfirmed`) is
///   the last step;
/// * `CANCELLED` with the payment and the stock each at the end of its track (refunded, voided
///   or declined; restocked, released or expired) or never started (`none`: cancelled before
///   anything was reserved or authorized). A customer's cancellation leaves them
///   `refund_pending` and `restock_pending` until payments and inventory report back.
///
/// A `PENDING` order is never settled; neither is a confirmed one whose capture has not been
/// reported yet. (A settled confirmed order can still be cancelled by its customer later: that
/// is a new thing happening to it, not the end of checkout.)
pub fn is_settled(order: &str, payment: &str, stock: &str) -> bool {
    let finished = |track: Track, status: &str| {
        status == "none" || track.rank(status) == Some(track.ranks().len() - 1)
    };
    match order {
        "CONFIRMED" => payment == "captured" && stock == "committed",
        "CANCELLED" => finished(Track::Payment, payment) && finished(Track::Stock, stock),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmed_order_settles_once_captured() {
        assert!(!is_settled("PENDING", "authorized", "committed"));
        assert!(!is_settled("CONFIRMED", "authorized", "committed"));
        assert!(is_settled("CONFIRMED", "captured", "committed"));
    }

    #[test]
    fn a_cancelled_order_settles_once_money_and_stock_are_back() {
        assert!(is_settled("CANCELLED", "none", "none"), "out of stock");
        assert!(is_settled("CANCELLED", "declined", "released"));
        assert!(is_settled("CANCELLED", "voided", "released"));
        assert!(!is_settled(
            "CANCELLED",
            "refund_pending",
            "restock_pending"
        ));
        assert!(!is_settled("CANCELLED", "refunded", "restock_pending"));
        assert!(is_settled("CANCELLED", "refunded", "restocked"));
        assert!(!is_settled("CANCELLED", "captured", "committed"));
    }

    #[test]
    fn a_late_capture_cannot_replace_a_refund_but_a_refund_replaces_a_capture() {
        assert!(!Track::Payment.behind("captured").contains(&"refunded"));
        assert!(Track::Payment.behind("refunded").contains(&"captured"));
        assert!(
            Track::Payment
                .behind("refunded")
                .contains(&"refund_pending")
        );
    }

    #[test]
    fn final_statuses_do_not_replace_each_other() {
        for (track, finals) in [
            (Track::Payment, ["refunded", "voided", "declined"]),
            (Track::Stock, ["restocked", "released", "expired"]),
        ] {
            for status in finals {
                let behind = track.behind(status);
                assert!(
                    finals.iter().all(|other| !behind.contains(other)),
                    "{status}"
                );
            }
        }
    }

    #[test]
    fn every_status_is_behind_every_later_rank_and_never_behind_itself() {
        for track in [Track::Order, Track::Payment, Track::Stock] {
            let all: Vec<_> = track.ranks().iter().flat_map(|s| s.iter()).collect();
            for later in &all {
                let behind = track.behind(later);
                assert!(!behind.contains(later), "{later} is behind itself");
                for earlier in &all {
                    let expected = track.rank(earlier) < track.rank(later);
                    assert_eq!(behind.contains(earlier), expected, "{earlier} → {later}");
                }
            }
        }
    }

    #[test]
    fn a_confirmed_order_can_be_cancelled_but_a_cancelled_one_is_never_confirmed() {
        assert_eq!(Track::Order.behind("CANCELLED"), ["PENDING", "CONFIRMED"]);
        assert_eq!(Track::Order.behind("CONFIRMED"), ["PENDING"]);
        assert!(Track::Stock.behind("shipped").is_empty());
    }
}
