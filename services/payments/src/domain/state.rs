use std::fmt;

use super::{Currency, Money, PaymentEvent, RecordedEvent};

/// Where a payment is in its life cycle.
///
/// ```text
///              ┌──► DECLINED                              (terminal)
/// (opened) ────┤
///              └──► AUTHORIZED ──► CAPTURED ──► PARTIALLY_REFUNDED ──► REFUNDED
///                        │             └────────────────────────────────► REFUNDED
///                        └──► VOIDED                      (terminal)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// A stream with no event yet. Never stored: a payment is opened together with its first
    /// event, so this only exists as the starting point of the fold.
    Opened,
    Authorized,
    Declined,
    Captured,
    PartiallyRefunded,
    Refunded,
    Voided,
}

impl PaymentStatus {
    pub const ALL: [Self; 7] = [
        Self::Opened,
        Self::Authorized,
        Self::Declined,
        Self::Captured,
        Self::PartiallyRefunded,
        Self::Refunded,
        Self::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "OPENED",
            Self::Authorized => "AUTHORIZED",
            Self::Declined => "DECLINED",
            Self::Captured => "CAPTURED",
            Self::PartiallyRefunded => "PARTIALLY_REFUNDED",
            Self::Refunded => "REFUNDED",
            Self::Voided => "VOIDED",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payment's current state: the left fold of its events, `events.fold(initial, evolve)`.
///
/// This is the "evolve" half of event sourcing. [`evolve`](Self::evolve) never fails and never
/// checks a rule: events are facts that already happened, and the rules were checked when they
/// were decided (`decide.rs`). Folding the same events always gives the same state, which is
/// what lets any state be rebuilt from the stream, and what the integration tests check against
/// the rows in `payment_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentState {
    pub status: PaymentStatus,
    /// Every amount in a payment's stream is in this currency (checked on decide and on load).
    pub currency: Currency,
    authorized_minor: i64,
    captured_minor: i64,
    refunded_minor: i64,
    pub decline_reason: Option<String>,
    /// How many events were folded: the `seq` of the last one, since seqs are 1, 2, 3 …
    pub version: i64,
}

impl PaymentState {
    /// The state before the first event.
    pub fn initial(currency: Currency) -> Self {
        Self {
            status: PaymentStatus::Opened,
            currency,
            authorized_minor: 0,
            captured_minor: 0,
            refunded_minor: 0,
            decline_reason: None,
            version: 0,
        }
    }

    /// The state after `event`.
    pub fn evolve(mut self, event: &PaymentEvent) -> Self {
        // Amounts are summed in minor units of the payment's currency. Saturation can never
        // trigger in practice: decide keeps refunds ≤ captured ≤ authorized ≤ i64::MAX.
        match event {
            PaymentEvent::Authorized { amount } => {
                self.status = PaymentStatus::Authorized;
                self.authorized_minor = amount.minor();
            }
            PaymentEvent::Declined { reason } => {
                self.status = PaymentStatus::Declined;
                self.decline_reason = Some(reason.clone());
            }
            PaymentEvent::Captured { amount } => {
                self.status = PaymentStatus::Captured;
                self.captured_minor = amount.minor();
            }
            PaymentEvent::Refunded { amount, .. } => {
                self.refunded_minor = self.refunded_minor.saturating_add(amount.minor());
                self.status = if self.refunded_minor >= self.captured_minor {
                    PaymentStatus::Refunded
                } else {
                    PaymentStatus::PartiallyRefunded
                };
            }
            PaymentEvent::Voided { .. } => self.status = PaymentStatus::Voided,
        }
        self.version += 1;
        self
    }

    /// Folds a whole stream, oldest event first.
    pub fn fold<'a>(
        currency: Currency,
        events: impl IntoIterator<Item = &'a PaymentEvent>,
    ) -> Self {
        events
            .into_iter()
            .fold(Self::initial(currency), |state, event| state.evolve(event))
    }

    /// Folds recorded events (as loaded from the store).
    pub fn fold_recorded<'a>(
        currency: Currency,
        events: impl IntoIterator<Item = &'a RecordedEvent>,
    ) -> Self {
        Self::fold(currency, events.into_iter().map(|recorded| &recorded.event))
    }

    pub fn authorized(&self) -> Money {
        self.money(self.authorized_minor)
    }

    pub fn captured(&self) -> Money {
        self.money(self.captured_minor)
    }

    pub fn refunded(&self) -> Money {
        self.money(self.refunded_minor)
    }

    /// What can still be refunded: captured minus refunded.
    pub fn refundable(&self) -> Money {
        self.money(self.captured_minor.saturating_sub(self.refunded_minor))
    }

    fn money(&self, minor: i64) -> Money {
        // Totals are sums of positive amounts, so never negative; zero stays a valid total.
        Money::new(minor, self.currency).unwrap_or(Money::zero(self.currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn money(minor: i64) -> Money {
        Money::positive(minor, eur()).unwrap()
    }

    fn fold(events: &[PaymentEvent]) -> PaymentState {
        PaymentState::fold(eur(), events)
    }

    #[test]
    fn an_empty_stream_is_an_opened_payment_with_nothing_moved() {
        let state = fold(&[]);
        assert_eq!(state.status, PaymentStatus::Opened);
        assert_eq!(state.version, 0);
        assert_eq!(state.authorized(), Money::zero(eur()));
        assert_eq!(state.refundable(), Money::zero(eur()));
    }

    #[test]
    fn an_authorization_sets_the_authorized_amount() {
        let state = fold(&[PaymentEvent::Authorized { amount: money(500) }]);
        assert_eq!(state.status, PaymentStatus::Authorized);
        assert_eq!(state.authorized(), money(500));
        assert_eq!(state.captured(), Money::zero(eur()));
        assert_eq!(state.version, 1);
    }

    #[test]
    fn a_decline_keeps_its_reason() {
        let state = fold(&[PaymentEvent::Declined {
            reason: "insufficient_funds".into(),
        }]);
        assert_eq!(state.status, PaymentStatus::Declined);
        assert_eq!(state.decline_reason.as_deref(), Some("insufficient_funds"));
        assert_eq!(state.authorized(), Money::zero(eur()));
    }

    #[test]
    fn refunds_accumulate_from_partially_refunded_to_refunded() {
        let mut events = vec![
            PaymentEvent::Authorized { amount: money(500) },
            PaymentEvent::Captured { amount: money(500) },
            PaymentEvent::Refunded {
                amount: money(200),
                reason: String::new(),
            },
        ];
        let state = fold(&events);
        assert_eq!(state.status, PaymentStatus::PartiallyRefunded);
        assert_eq!(state.refunded(), money(200));
        assert_eq!(state.refundable(), money(300));

        events.push(PaymentEvent::Refunded {
            amount: money(300),
            reason: "returned".into(),
        });
        let state = fold(&events);
        assert_eq!(state.status, PaymentStatus::Refunded);
        assert_eq!(state.refunded(), money(500));
        assert_eq!(state.refundable(), Money::zero(eur()));
        assert_eq!(state.version, 4);
    }

    #[test]
    fn a_void_ends_an_authorization() {
        let state = fold(&[
            PaymentEvent::Authorized { amount: money(500) },
            PaymentEvent::Voided {
                reason: "order cancelled".into(),
            },
        ]);
        assert_eq!(state.status, PaymentStatus::Voided);
        assert_eq!(state.captured(), Money::zero(eur()));
    }

    #[test]
    fn folding_is_deterministic_and_incremental() {
        let events = [
            PaymentEvent::Authorized { amount: money(900) },
            PaymentEvent::Captured { amount: money(900) },
            PaymentEvent::Refunded {
                amount: money(100),
                reason: String::new(),
            },
        ];
        let all_at_once = fold(&events);
        let step_by_step = events
            .iter()
            .fold(PaymentState::initial(eur()), PaymentState::evolve);
        assert_eq!(all_at_once, step_by_step);
        assert_eq!(all_at_once, fold(&events));
    }

    #[test]
    fn statuses_print_like_the_api_enum() {
        let names: Vec<&str> = PaymentStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "OPENED",
                "AUTHORIZED",
                "DECLINED",
                "CAPTURED",
                "PARTIALLY_REFUNDED",
                "REFUNDED",
                "VOIDED"
            ]
        );
    }
}
