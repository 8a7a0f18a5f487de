//! The "decide" half of event sourcing: given the current state and a command, either the new
//! event or the reason the command is refused. Pure functions, no I/O: the store runs them again
//! on fresh state when a concurrent writer got there first.

use super::{Currency, Money, PaymentEvent, PaymentState, PaymentStatus, Reason};

/// A command the payment's current state does not allow. Each message says what was asked, what
/// the payment is, and what would have been allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("cannot capture a {0} payment: only an AUTHORIZED payment can be captured, once")]
    Capture(PaymentStatus),
    #[error(
        "cannot void a {0} payment: only an AUTHORIZED payment can be voided \
         (a captured payment is refunded instead)"
    )]
    Void(PaymentStatus),
    #[error(
        "cannot refund a {0} payment: only a CAPTURED or PARTIALLY_REFUNDED payment can be refunded"
    )]
    Refund(PaymentStatus),
    #[error(
        "cannot refund {requested}: only {refundable} of the captured amount is left to refund"
    )]
    RefundExceedsCaptured { requested: Money, refundable: Money },
    #[error("amount.currency: the payment is in {expected}, not {got}")]
    CurrencyMismatch { expected: Currency, got: Currency },
    /// AuthorizePayment is idempotent per order: a retry must repeat the first call.
    #[error(
        "order already has a payment with a different {field}: {existing} (this call: {requested})"
    )]
    DifferentRetry {
        field: &'static str,
        existing: String,
        requested: String,
    },
}

impl PaymentState {
    /// Capture takes the whole authorized amount, exactly once.
    pub fn decide_capture(&self) -> Result<PaymentEvent, Rejected> {
        match self.status {
            PaymentStatus::Authorized => Ok(PaymentEvent::Captured {
                amount: self.authorized(),
            }),
            other => Err(Rejected::Capture(other)),
        }
    }

    /// Refunds give back part of the captured amount; together they never exceed it.
    pub fn decide_refund(&self, amount: Money, reason: &Reason) -> Result<PaymentEvent, Rejected> {
        match self.status {
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {}
            other => return Err(Rejected::Refund(other)),
        }
        if amount.currency() != self.currency {
            return Err(Rejected::CurrencyMismatch {
                expected: self.currency,
                got: amount.currency(),
            });
        }
        let refundable = self.refundable();
        if amount.minor() > refundable.minor() {
            return Err(Rejected::RefundExceedsCaptured {
                requested: amount,
                refundable,
            });
        }
        Ok(PaymentEvent::Refunded {
            amount,
            reason: reason.as_str().to_owned(),
        })
    }

    /// Void releases an authorization that was never captured.
    pub fn decide_void(&self, reason: &Reason) -> Result<PaymentEvent, Rejected> {
        match self.status {
            PaymentStatus::Authorized => Ok(PaymentEvent::Voided {
                reason: reason.as_str().to_owned(),
            }),
            other => Err(Rejected::Void(other)),
        }
    }

    /// Void by order (compensation): like [`decide_void`](Self::decide_void), but a payment that
    /// holds no money already (VOIDED, DECLINED) is left as it is, because compensation may run
    /// more than once. A captured payment is refused: compensation never follows a capture.
    pub fn decide_void_order(&self, reason: &Reason) -> Result<Option<PaymentEvent>, Rejected> {
        match self.status {
            PaymentStatus::Voided | PaymentStatus::Declined => Ok(None),
            _ => self.decide_void(reason).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn money(minor: i64) -> Money {
        Money::positive(minor, eur()).unwrap()
    }

    fn refund(minor: i64) -> PaymentEvent {
        PaymentEvent::Refunded {
            amount: money(minor),
            reason: String::new(),
        }
    }

    /// A payment of 1000 in each status, reached through legal events only.
    fn in_status(status: PaymentStatus) -> PaymentState {
        let authorized = PaymentEvent::Authorized {
            amount: money(1000),
        };
        let captured = PaymentEvent::Captured {
            amount: money(1000),
        };
        let events = match status {
            Opened => vec![],
            Authorized => vec![authorized],
            Declined => vec![PaymentEvent::Declined {
                reason: "card_declined".into(),
            }],
            Captured => vec![authorized, captured],
            PartiallyRefunded => vec![authorized, captured, refund(400)],
            Refunded => vec![authorized, captured, refund(400), refund(600)],
            Voided => vec![
                authorized,
                PaymentEvent::Voided {
                    reason: String::new(),
                },
            ],
        };
        let state = PaymentState::fold(eur(), &events);
        assert_eq!(state.status, status, "fixture");
        state
    }

    #[test]
    fn capture_is_allowed_only_from_authorized_and_takes_the_authorized_amount() {
        for status in PaymentStatus::ALL {
            let decided = in_status(status).decide_capture();
            match status {
                Authorized => assert_eq!(
                    decided,
                    Ok(PaymentEvent::Captured {
                        amount: money(1000)
                    })
                ),
                other => assert_eq!(decided, Err(Rejected::Capture(other)), "{other}"),
            }
        }
    }

    #[test]
    fn capturing_twice_is_rejected() {
        let state = in_status(Authorized);
        let captured = state.decide_capture().unwrap();
        let state = state.evolve(&captured);
        assert_eq!(state.decide_capture(), Err(Rejected::Capture(Captured)));
    }

    #[test]
    fn void_is_allowed_only_before_capture() {
        let reason = Reason::parse("customer changed their mind").unwrap();
        for status in PaymentStatus::ALL {
            let decided = in_status(status).decide_void(&reason);
            match status {
                Authorized => assert_eq!(
                    decided,
                    Ok(PaymentEvent::Voided {
                        reason: "customer changed their mind".into()
                    })
                ),
                other => assert_eq!(decided, Err(Rejected::Void(other)), "{other}"),
            }
        }
    }

    #[test]
    fn refund_is_allowed_only_after_capture_and_while_money_is_left() {
        let reason = Reason::default();
        for status in PaymentStatus::ALL {
            let decided = in_status(status).decide_refund(money(100), &reason);
            match status {
                Captured | PartiallyRefunded => assert_eq!(decided, Ok(refund(100))),
                other => assert_eq!(decided, Err(Rejected::Refund(other)), "{other}"),
            }
        }
    }

    #[test]
    fn refunds_may_not_exceed_what_is_left_of_the_capture() {
        let reason = Reason::default();
        let captured = in_status(Captured);
        assert_eq!(
            captured.decide_refund(money(1000), &reason),
            Ok(refund(1000))
        );
        assert_eq!(
            captured.decide_refund(money(1001), &reason),
            Err(Rejected::RefundExceedsCaptured {
                requested: money(1001),
                refundable: money(1000),
            })
        );
        let partially = in_status(PartiallyRefunded);
        assert_eq!(
            partially.decide_refund(money(600), &reason),
            Ok(refund(600))
        );
        let err = partially.decide_refund(money(601), &reason).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot refund 601 EUR (minor units): only 600 EUR (minor units) of the captured \
             amount is left to refund"
        );
    }

    #[test]
    fn partial_refunds_sum_up_to_refunded() {
        let reason = Reason::default();
        let mut state = in_status(Captured);
        for (minor, expected) in [
            (250, PartiallyRefunded),
            (250, PartiallyRefunded),
            (499, PartiallyRefunded),
            (1, Refunded),
        ] {
            let event = state.decide_refund(money(minor), &reason).unwrap();
            state = state.evolve(&event);
            assert_eq!(state.status, expected);
        }
        assert_eq!(state.refunded(), state.captured());
        assert_eq!(
            state.decide_refund(money(1), &reason),
            Err(Rejected::Refund(Refunded))
        );
    }

    #[test]
    fn refunds_must_be_in_the_payments_currency() {
        let usd = Currency::parse("USD").unwrap();
        let err = in_status(Captured)
            .decide_refund(Money::positive(100, usd).unwrap(), &Reason::default())
            .unwrap_err();
        assert_eq!(
            err,
            Rejected::CurrencyMismatch {
                expected: eur(),
                got: usd
            }
        );
        assert_eq!(
            err.to_string(),
            "amount.currency: the payment is in EUR, not USD"
        );
    }

    #[test]
    fn a_declined_payment_accepts_nothing() {
        let declined = in_status(Declined);
        let reason = Reason::default();
        assert!(declined.decide_capture().is_err());
        assert!(declined.decide_void(&reason).is_err());
        assert!(declined.decide_refund(money(1), &reason).is_err());
    }

    #[test]
    fn rejections_explain_themselves() {
        assert_eq!(
            Rejected::Capture(Voided).to_string(),
            "cannot capture a VOIDED payment: only an AUTHORIZED payment can be captured, once"
        );
        assert!(
            Rejected::Void(Captured)
                .to_string()
                .contains("refunded instead")
        );
    }
}
