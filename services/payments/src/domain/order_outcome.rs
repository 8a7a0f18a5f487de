//! What the fate of an order asks of its payment, once the saga has decided it (the
//! choreographed half: docs/architecture.md#the-choreography-after-confirmation). Pure, like
//! `decide.rs`, whose rules these reuse.
//!
//! These decisions answer events, not calls, and events can arrive twice (a replay from the
//! parking queue, a republish the inbox did not see because it was a new message id). So where
//! the payment already is where the event would take it, the answer is "nothing to do"
//! (`Ok(None)`), not a rejection. Only a state the event cannot explain is [`Rejected`].

use super::{PaymentEvent, PaymentState, PaymentStatus, Reason, Rejected};

impl PaymentState {
    /// `OrderConfirmed`: take the money.
    ///
    /// | status | answer |
    /// |---|---|
    /// | AUTHORIZED | `Captured` of the authorized amount |
    /// | CAPTURED, PARTIALLY_REFUNDED, REFUNDED | nothing: it was captured already |
    /// | DECLINED, VOIDED (OPENED) | rejected: a confirmed order needs a live authorization |
    pub fn decide_on_order_confirmed(&self) -> Result<Option<PaymentEvent>, Rejected> {
        match self.status {
            PaymentStatus::Captured
            | PaymentStatus::PartiallyRefunded
            | PaymentStatus::Refunded => Ok(None),
            _ => self.decide_capture().map(Some),
        }
    }

    /// `OrderCancelled` of a confirmed order (the customer cancelled): give everything back.
    ///
    /// | status | answer |
    /// |---|---|
    /// | CAPTURED, PARTIALLY_REFUNDED | `Refunded` of what is left to refund |
    /// | AUTHORIZED (the capture never ran) | `Voided`: release the authorization instead |
    /// | REFUNDED, VOIDED | nothing: the money is back already |
    /// | DECLINED (OPENED) | rejected: a confirmed order never has a declined payment |
    pub fn decide_on_order_cancelled(&self) -> Result<Option<PaymentEvent>, Rejected> {
        let reason = Reason::customer_cancellation();
        match self.status {
            PaymentStatus::Refunded | PaymentStatus::Voided => Ok(None),
            PaymentStatus::Authorized => self.decide_void(&reason).map(Some),
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
                let refundable = self.refundable();
                if refundable.minor() == 0 {
                    // Unreachable through the fold (a fully refunded payment is REFUNDED), but
                    // a zero refund must never be recorded.
                    return Ok(None);
                }
                self.decide_refund(refundable, &reason).map(Some)
            }
            other => Err(Rejected::Refund(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money};
    use PaymentStatus::*;

    fn money(minor: i64) -> Money {
        Money::positive(minor, Currency::parse("EUR").unwrap()).unwrap()
    }

    /// A payment of 1000 in each status, reached through legal events only.
    fn in_status(status: PaymentStatus) -> PaymentState {
        let authorized = PaymentEvent::Authorized {
            amount: money(1000),
        };
        let captured = PaymentEvent::Captured {
            amount: money(1000),
        };
        let refund = |minor| PaymentEvent::Refunded {
            amount: money(minor),
            reason: String::new(),
        };
        let events = match status {
            Opened => vec![],
            Authorized => vec![authorized],
            Declined => vec![PaymentEvent::Declined {
                reason: "card_declined".into(),
            }],
            Captured => vec![authorized, captured],
            PartiallyRefunded => vec![authorized, captured, refund(400)],
            Refunded => vec![authorized, captured, refund(1000)],
            Voided => vec![
                authorized,
                PaymentEvent::Voided {
                    reason: String::new(),
                },
            ],
        };
        let state = PaymentState::fold(money(1).currency(), &events);
        assert_eq!(state.status, status, "fixture");
        state
    }

    #[test]
    fn confirmation_captures_an_authorization_and_is_a_no_op_once_captured() {
        for status in PaymentStatus::ALL {
            let decided = in_status(status).decide_on_order_confirmed();
            match status {
                Authorized => assert_eq!(
                    decided,
                    Ok(Some(PaymentEvent::Captured {
                        amount: money(1000)
                    }))
                ),
                Captured | PartiallyRefunded | Refunded => {
                    assert_eq!(decided, Ok(None), "{status}");
                }
                Opened | Declined | Voided => {
                    assert_eq!(decided, Err(Rejected::Capture(status)), "{status}");
                }
            }
        }
    }

    #[test]
    fn cancellation_refunds_what_is_left_voids_an_authorization_and_is_a_no_op_once_done() {
        let reason = "customer_cancellation".to_owned();
        for status in PaymentStatus::ALL {
            let decided = in_status(status).decide_on_order_cancelled();
            match status {
                Captured => assert_eq!(
                    decided,
                    Ok(Some(PaymentEvent::Refunded {
                        amount: money(1000),
                        reason: reason.clone(),
                    }))
                ),
                PartiallyRefunded => assert_eq!(
                    decided,
                    Ok(Some(PaymentEvent::Refunded {
                        amount: money(600),
                        reason: reason.clone(),
                    }))
                ),
                Authorized => assert_eq!(
                    decided,
                    Ok(Some(PaymentEvent::Voided {
                        reason: reason.clone()
                    }))
                ),
                Refunded | Voided => assert_eq!(decided, Ok(None), "{status}"),
                Opened | Declined => {
                    assert_eq!(decided, Err(Rejected::Refund(status)), "{status}");
                }
            }
        }
    }

    #[test]
    fn applying_the_answer_reaches_the_target_state_and_a_replay_then_does_nothing() {
        let confirmed = in_status(Authorized);
        let capture = confirmed.decide_on_order_confirmed().unwrap().unwrap();
        let captured = confirmed.evolve(&capture);
        assert_eq!(captured.status, Captured);
        assert_eq!(captured.decide_on_order_confirmed(), Ok(None));

        let refund = captured.decide_on_order_cancelled().unwrap().unwrap();
        let refunded = captured.evolve(&refund);
        assert_eq!(refunded.status, Refunded);
        assert_eq!(refunded.refunded(), refunded.captured());
        assert_eq!(refunded.decide_on_order_cancelled(), Ok(None));
        assert_eq!(refunded.decide_on_order_confirmed(), Ok(None));
    }
}
