use time::OffsetDateTime;

use super::{InvalidInput, Money};

/// Something that happened to a payment. Events are facts in the past tense: once appended they
/// are never changed or deleted, and the payment's state is derived from them (see
/// [`super::PaymentState::fold`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    /// The provider approved holding `amount` on the customer's payment method.
    Authorized { amount: Money },
    /// The provider refused; `reason` is its code (`card_declined`, `insufficient_funds`, …).
    Declined { reason: String },
    /// The authorized amount was taken.
    Captured { amount: Money },
    /// Part or all of the captured amount was given back.
    Refunded { amount: Money, reason: String },
    /// The authorization was released without taking any money.
    Voided { reason: String },
}

/// The kinds as stored in `payment_events.kind` and shown in `PaymentEvent.kind`.
pub const KINDS: [&str; 5] = ["authorized", "declined", "captured", "refunded", "voided"];

/// A stored row could not be turned back into an event: the database holds something this code
/// never writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable {kind:?} event: {problem}")]
pub struct UnreadableEvent {
    pub kind: String,
    pub problem: &'static str,
}

impl PaymentEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Authorized { .. } => KINDS[0],
            Self::Declined { .. } => KINDS[1],
            Self::Captured { .. } => KINDS[2],
            Self::Refunded { .. } => KINDS[3],
            Self::Voided { .. } => KINDS[4],
        }
    }

    /// The money the event moved, for the kinds that move money.
    pub fn amount(&self) -> Option<Money> {
        match self {
            Self::Authorized { amount }
            | Self::Captured { amount }
            | Self::Refunded { amount, .. } => Some(*amount),
            Self::Declined { .. } | Self::Voided { .. } => None,
        }
    }

    /// The reason, for the kinds that have one; empty otherwise.
    pub fn detail(&self) -> &str {
        match self {
            Self::Declined { reason } | Self::Refunded { reason, .. } | Self::Voided { reason } => {
                reason
            }
            Self::Authorized { .. } | Self::Captured { .. } => "",
        }
    }

    /// The inverse of ([`kind`](Self::kind), [`amount`](Self::amount), [`detail`](Self::detail)):
    /// rebuilds an event from its stored columns.
    pub fn from_parts(
        kind: &str,
        amount: Option<Money>,
        detail: String,
    ) -> Result<Self, UnreadableEvent> {
        let unreadable = |problem| UnreadableEvent {
            kind: kind.to_owned(),
            problem,
        };
        let needs_amount = || amount.ok_or_else(|| unreadable("the amount is missing"));
        let event = match kind {
            "authorized" => Self::Authorized {
                amount: needs_amount()?,
            },
            "captured" => Self::Captured {
                amount: needs_amount()?,
            },
            "refunded" => Self::Refunded {
                amount: needs_amount()?,
                reason: detail,
            },
            "declined" | "voided" if amount.is_some() => {
                return Err(unreadable("this kind has no amount"));
            }
            "declined" => Self::Declined { reason: detail },
            "voided" => Self::Voided { reason: detail },
            _ => return Err(unreadable("unknown kind")),
        };
        Ok(event)
    }
}

/// An event as it sits in the stream: its position and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// 1, 2, 3 … within the payment, without gaps.
    pub seq: i64,
    pub occurred_at: OffsetDateTime,
    pub event: PaymentEvent,
}

/// Why a refund or void was asked for: free text, trimmed, at most 200 characters, printable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reason(String);

impl Reason {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let reason = raw.trim();
        if reason.chars().count() > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "reason",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if reason.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "reason",
                "must not contain control characters",
            ));
        }
        Ok(Self(reason.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// Why a confirmed order's payment is given back when its customer cancels the order.
    pub fn customer_cancellation() -> Self {
        Self("customer_cancellation".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn eur(minor: i64) -> Money {
        Money::positive(minor, Currency::parse("EUR").unwrap()).unwrap()
    }

    #[test]
    fn every_event_round_trips_through_its_stored_parts() {
        let events = [
            PaymentEvent::Authorized { amount: eur(100) },
            PaymentEvent::Declined {
                reason: "card_declined".into(),
            },
            PaymentEvent::Captured { amount: eur(100) },
            PaymentEvent::Refunded {
                amount: eur(40),
                reason: "damaged".into(),
            },
            PaymentEvent::Voided {
                reason: String::new(),
            },
        ];
        for (event, kind) in events.iter().zip(KINDS) {
            assert_eq!(event.kind(), kind);
            let rebuilt =
                PaymentEvent::from_parts(event.kind(), event.amount(), event.detail().to_owned())
                    .unwrap();
            assert_eq!(&rebuilt, event);
        }
    }

    #[test]
    fn malformed_stored_parts_are_unreadable() {
        let cases = [
            ("authorized", None),
            ("captured", None),
            ("refunded", None),
            ("declined", Some(eur(1))),
            ("voided", Some(eur(1))),
            ("settled", Some(eur(1))),
            ("", None),
        ];
        for (kind, amount) in cases {
            let err = PaymentEvent::from_parts(kind, amount, String::new()).unwrap_err();
            assert_eq!(err.kind, kind);
        }
    }

    #[test]
    fn reasons_are_trimmed_bounded_and_printable() {
        assert_eq!(
            Reason::parse("  damaged in transit ").unwrap().as_str(),
            "damaged in transit"
        );
        assert_eq!(Reason::parse("").unwrap(), Reason::default());
        assert!(Reason::parse(&"r".repeat(200)).is_ok());
        let err = Reason::parse(&"r".repeat(201)).unwrap_err();
        assert_eq!(err.field(), "reason");
        assert!(Reason::parse("line\nbreak").is_err());
    }

    #[test]
    fn the_cancellation_reason_is_a_valid_reason() {
        assert_eq!(
            Reason::customer_cancellation(),
            Reason::parse("customer_cancellation").unwrap()
        );
    }
}
