//! The checkout saga as a pure state machine (docs/architecture.md#the-checkout-saga).
//!
//! ```text
//!  reserve_stock ──reserved──► authorize_payment ──authorized──► commit_stock ──committed──► confirm ──► done (CONFIRMED)
//!       │ out_of_stock               │ declined                      │ refused (the reservation expired)
//!       │                            ▼                               ▼
//!       │                      release_stock ◄──────────────── void_payment (deadline passed or a step failed for good)
//!       ▼                            │
//!     cancel ◄───────────────────────┘ ──► done (CANCELLED)
//! ```
//!
//! `commit_stock` turns the held units into sold ones *before* the order is confirmed. A
//! reservation is only a hold: inventory's sweeper gives its units back once its TTL passes, so
//! an order confirmed on a hold could find, when its `OrderConfirmed` finally reached inventory
//! (the broker or the consumer down for longer than the TTL), that the units had been sold to
//! someone else. Committing synchronously makes the sale part of the decision: either inventory
//! commits (and the sweeper, which only expires RESERVED rows, can no longer take the units), or
//! it refuses because the hold already expired, and the saga voids the payment and cancels.
//! `commit_stock` ignores the saga deadline: once the payment is authorized, only inventory's
//! answer decides, and it is retried until there is one.
//!
//! Forward steps (`reserve_stock`, `authorize_payment`) turn to compensation once the saga's
//! deadline has passed. Compensating steps (`void_payment`, `release_stock`, `cancel`) retry
//! until they succeed: a compensation that gives up would leave stock held or money reserved.
//! Every participant call is idempotent per order id, so re-running a step after a crash, with
//! or without its first attempt having landed, is always safe. The runner ([`crate::saga`])
//! executes steps and persists each transition; this module only decides.

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::CancelReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaStep {
    ReserveStock,
    AuthorizePayment,
    CommitStock,
    Confirm,
    VoidPayment,
    ReleaseStock,
    Cancel,
    Done,
}

impl SagaStep {
    pub const ALL: [Self; 8] = [
        Self::ReserveStock,
        Self::AuthorizePayment,
        Self::CommitStock,
        Self::Confirm,
        Self::VoidPayment,
        Self::ReleaseStock,
        Self::Cancel,
        Self::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReserveStock => "reserve_stock",
            Self::AuthorizePayment => "authorize_payment",
            Self::CommitStock => "commit_stock",
            Self::Confirm => "confirm",
            Self::VoidPayment => "void_payment",
            Self::ReleaseStock => "release_stock",
            Self::Cancel => "cancel",
            Self::Done => "done",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.as_str() == raw)
    }

    pub fn is_compensation(self) -> bool {
        matches!(self, Self::VoidPayment | Self::ReleaseStock | Self::Cancel)
    }
}

/// The durable state of one saga.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saga {
    pub order_id: Uuid,
    pub step: SagaStep,
    /// Set once the saga is compensating: what the order will be cancelled for.
    pub cancel_reason: Option<CancelReason>,
    pub payment_id: Option<Uuid>,
    /// Failed attempts of the current step.
    pub attempts: u32,
    pub deadline: OffsetDateTime,
}

/// What running the current step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    Reserved,
    OutOfStock,
    Authorized {
        payment_id: Uuid,
    },
    Declined {
        payment_id: Uuid,
    },
    /// Inventory sold the reserved units (or had already).
    StockCommitted,
    /// The payment was voided, or there was none to void.
    Voided,
    Released,
    /// A local step (confirm, cancel) committed.
    Committed,
    /// Worth retrying: the participant was unavailable, slow, or overloaded.
    Transient(String),
    /// Retrying cannot help: the participant refused the request.
    Permanent(String),
}

/// What the runner does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Move to `saga.step` and run it now.
    Advance(Saga),
    /// Run the same step again after `delay`.
    Retry { saga: Saga, delay: Duration },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step} cannot produce {result}")]
pub struct IllegalTransition {
    pub step: &'static str,
    pub result: String,
}

impl Saga {
    pub fn start(order_id: Uuid, deadline: OffsetDateTime) -> Self {
        Self {
            order_id,
            step: SagaStep::ReserveStock,
            cancel_reason: None,
            payment_id: None,
            attempts: 0,
            deadline,
        }
    }

    pub fn is_done(&self) -> bool {
        self.step == SagaStep::Done
    }

    /// Past its deadline, a saga still on a forward step turns to compensation.
    pub fn check_deadline(&self, now: OffsetDateTime) -> Option<Saga> {
        if now <= self.deadline {
            return None;
        }
        let next = match self.step {
            SagaStep::ReserveStock => SagaStep::ReleaseStock,
            SagaStep::AuthorizePayment => SagaStep::VoidPayment,
            _ => return None,
        };
        Some(self.moved_to(next, Some(CancelReason::Timeout)))
    }

    /// Decides the next move from the current step's result. `backoff` gives the delay before
    /// retry number `n` (1-based).
    pub fn advance(
        &self,
        result: StepResult,
        backoff: impl Fn(u32) -> Duration,
    ) -> Result<Transition, IllegalTransition> {
        use SagaStep as S;
        use StepResult as R;
        let next = match (self.step, result) {
            (S::Done, result) => return Err(self.illegal(&result)),
            (_, R::Transient(_)) => {
                let attempts = self.attempts.saturating_add(1);
                return Ok(Transition::Retry {
                    saga: Saga {
                        attempts,
                        ..self.clone()
                    },
                    delay: backoff(attempts),
                });
            }
            (S::ReserveStock, R::Reserved) => self.moved_to(S::AuthorizePayment, None),
            (S::ReserveStock, R::OutOfStock) => {
                self.moved_to(S::Cancel, Some(CancelReason::OutOfStock))
            }
            (S::ReserveStock, R::Permanent(_)) => {
                self.moved_to(S::ReleaseStock, Some(CancelReason::Failed))
            }
            (S::AuthorizePayment, R::Authorized { payment_id }) => Saga {
                payment_id: Some(payment_id),
                ..self.moved_to(S::CommitStock, None)
            },
            (S::AuthorizePayment, R::Declined { payment_id }) => Saga {
                payment_id: Some(payment_id),
                ..self.moved_to(S::ReleaseStock, Some(CancelReason::PaymentDeclined))
            },
            (S::AuthorizePayment, R::Permanent(_)) => {
                self.moved_to(S::VoidPayment, Some(CancelReason::Failed))
            }
            (S::CommitStock, R::StockCommitted) => self.moved_to(S::Confirm, None),
            // The hold expired (or was released) before the sale: the units may be someone
            // else's by now, so the order cannot stand.
            (S::CommitStock, R::Permanent(_)) => {
                self.moved_to(S::VoidPayment, Some(CancelReason::Timeout))
            }
            (S::Confirm, R::Committed) => self.moved_to(S::Done, None),
            // Compensations push on whatever the participant says: refusing to undo means
            // there is nothing to undo (declined, already voided, never reserved).
            (S::VoidPayment, R::Voided | R::Permanent(_)) => {
                self.moved_to(S::ReleaseStock, self.cancel_reason)
            }
            (S::ReleaseStock, R::Released | R::Permanent(_)) => {
                self.moved_to(S::Cancel, self.cancel_reason)
            }
            (S::Cancel, R::Committed) => self.moved_to(S::Done, self.cancel_reason),
            (_, result) => return Err(self.illegal(&result)),
        };
        Ok(Transition::Advance(next))
    }

    fn moved_to(&self, step: SagaStep, cancel_reason: Option<CancelReason>) -> Saga {
        Saga {
            step,
            cancel_reason: cancel_reason.or(self.cancel_reason),
            attempts: 0,
            ..self.clone()
        }
    }

    fn illegal(&self, result: &StepResult) -> IllegalTransition {
        IllegalTransition {
            step: self.step.as_str(),
            result: format!("{result:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SagaStep as S;
    use StepResult as R;

    fn saga(step: SagaStep) -> Saga {
        Saga {
            step,
            ..Saga::start(
                Uuid::now_v7(),
                OffsetDateTime::now_utc() + time::Duration::minutes(2),
            )
        }
    }

    fn backoff(n: u32) -> Duration {
        Duration::from_millis(100 * u64::from(n))
    }

    fn advanced(from: SagaStep, result: StepResult) -> Saga {
        match saga(from).advance(result, backoff).unwrap() {
            Transition::Advance(next) => next,
            other => panic!("expected an advance, got {other:?}"),
        }
    }

    #[test]
    fn the_happy_path_reserves_authorizes_and_confirms() {
        let payment_id = Uuid::now_v7();
        let s = advanced(S::ReserveStock, R::Reserved);
        assert_eq!(s.step, S::AuthorizePayment);
        let s = s
            .advance(R::Authorized { payment_id }, backoff)
            .map(|t| match t {
                Transition::Advance(s) => s,
                other => panic!("{other:?}"),
            })
            .unwrap();
        assert_eq!((s.step, s.payment_id), (S::CommitStock, Some(payment_id)));
        let s = match s.advance(R::StockCommitted, backoff).unwrap() {
            Transition::Advance(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!((s.step, s.payment_id), (S::Confirm, Some(payment_id)));
        let s = match s.advance(R::Committed, backoff).unwrap() {
            Transition::Advance(s) => s,
            other => panic!("{other:?}"),
        };
        assert!(s.is_done());
        assert_eq!(s.cancel_reason, None);
    }

    #[test]
    fn out_of_stock_cancels_without_compensation() {
        let s = advanced(S::ReserveStock, R::OutOfStock);
        assert_eq!(s.step, S::Cancel);
        assert_eq!(s.cancel_reason, Some(CancelReason::OutOfStock));
    }

    #[test]
    fn a_declined_payment_releases_stock_then_cancels() {
        let payment_id = Uuid::now_v7();
        let s = advanced(S::AuthorizePayment, R::Declined { payment_id });
        assert_eq!(s.step, S::ReleaseStock);
        assert_eq!(s.cancel_reason, Some(CancelReason::PaymentDeclined));
        assert_eq!(s.payment_id, Some(payment_id));
        let s = match s.advance(R::Released, backoff).unwrap() {
            Transition::Advance(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.step, S::Cancel);
        assert_eq!(s.cancel_reason, Some(CancelReason::PaymentDeclined));
        let s = match s.advance(R::Committed, backoff).unwrap() {
            Transition::Advance(s) => s,
            other => panic!("{other:?}"),
        };
        assert!(s.is_done());
        assert_eq!(s.cancel_reason, Some(CancelReason::PaymentDeclined));
    }

    #[test]
    fn permanent_failures_compensate() {
        let s = advanced(S::ReserveStock, R::Permanent("refused".into()));
        assert_eq!(
            (s.step, s.cancel_reason),
            (S::ReleaseStock, Some(CancelReason::Failed))
        );
        let s = advanced(S::AuthorizePayment, R::Permanent("refused".into()));
        assert_eq!(
            (s.step, s.cancel_reason),
            (S::VoidPayment, Some(CancelReason::Failed))
        );
    }

    #[test]
    fn a_refused_stock_commit_voids_the_payment_and_cancels_for_timeout() {
        let payment_id = Uuid::now_v7();
        let mut s = saga(S::CommitStock);
        s.payment_id = Some(payment_id);
        let next = match s
            .advance(R::Permanent("reservation is EXPIRED".into()), backoff)
            .unwrap()
        {
            Transition::Advance(next) => next,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (next.step, next.cancel_reason, next.payment_id),
            (
                S::VoidPayment,
                Some(CancelReason::Timeout),
                Some(payment_id)
            )
        );
    }

    #[test]
    fn compensations_push_on_even_when_the_participant_refuses() {
        let mut s = saga(S::VoidPayment);
        s.cancel_reason = Some(CancelReason::Timeout);
        for (result, expected) in [
            (R::Voided, S::ReleaseStock),
            (R::Permanent("declined".into()), S::ReleaseStock),
        ] {
            match s.advance(result, backoff).unwrap() {
                Transition::Advance(next) => {
                    assert_eq!(next.step, expected);
                    assert_eq!(next.cancel_reason, Some(CancelReason::Timeout));
                }
                other => panic!("{other:?}"),
            }
        }
        let s = advanced(S::ReleaseStock, R::Permanent("already released".into()));
        assert_eq!(s.step, S::Cancel);
    }

    #[test]
    fn transient_failures_retry_the_same_step_with_growing_delays() {
        for step in [
            S::ReserveStock,
            S::AuthorizePayment,
            S::CommitStock,
            S::Confirm,
            S::VoidPayment,
            S::ReleaseStock,
            S::Cancel,
        ] {
            let mut s = saga(step);
            s.attempts = 2;
            match s
                .advance(R::Transient("unavailable".into()), backoff)
                .unwrap()
            {
                Transition::Retry { saga, delay } => {
                    assert_eq!(saga.step, step);
                    assert_eq!(saga.attempts, 3);
                    assert_eq!(delay, Duration::from_millis(300));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn advancing_resets_the_attempt_counter() {
        let mut s = saga(S::ReserveStock);
        s.attempts = 4;
        match s.advance(R::Reserved, backoff).unwrap() {
            Transition::Advance(next) => assert_eq!(next.attempts, 0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_illegal_combination_is_rejected() {
        let payment_id = Uuid::now_v7();
        let results = [
            R::Reserved,
            R::OutOfStock,
            R::Authorized { payment_id },
            R::Declined { payment_id },
            R::StockCommitted,
            R::Voided,
            R::Released,
            R::Committed,
            R::Permanent("x".into()),
        ];
        let legal = |step: SagaStep, result: &StepResult| {
            matches!(
                (step, result),
                (
                    S::ReserveStock,
                    R::Reserved | R::OutOfStock | R::Permanent(_)
                ) | (
                    S::AuthorizePayment,
                    R::Authorized { .. } | R::Declined { .. } | R::Permanent(_)
                ) | (S::CommitStock, R::StockCommitted | R::Permanent(_))
                    | (S::Confirm, R::Committed)
                    | (S::VoidPayment, R::Voided | R::Permanent(_))
                    | (S::ReleaseStock, R::Released | R::Permanent(_))
                    | (S::Cancel, R::Committed)
            )
        };
        for step in SagaStep::ALL {
            for result in &results {
                let outcome = saga(step).advance(result.clone(), backoff);
                assert_eq!(
                    outcome.is_ok(),
                    legal(step, result),
                    "{step:?} + {result:?}"
                );
            }
        }
        assert!(
            saga(S::Done)
                .advance(R::Transient("x".into()), backoff)
                .is_err()
        );
    }

    #[test]
    fn the_deadline_turns_forward_steps_into_compensation() {
        let mut s = saga(S::ReserveStock);
        let now = OffsetDateTime::now_utc();
        s.deadline = now - time::Duration::seconds(1);
        let next = s.check_deadline(now).unwrap();
        assert_eq!(
            (next.step, next.cancel_reason),
            (S::ReleaseStock, Some(CancelReason::Timeout))
        );
        s.step = S::AuthorizePayment;
        let next = s.check_deadline(now).unwrap();
        assert_eq!(next.step, S::VoidPayment);
        for step in [
            S::CommitStock,
            S::Confirm,
            S::VoidPayment,
            S::ReleaseStock,
            S::Cancel,
            S::Done,
        ] {
            s.step = step;
            assert_eq!(s.check_deadline(now), None, "{step:?} ignores the deadline");
        }
        let mut fresh = saga(S::ReserveStock);
        fresh.deadline = now + time::Duration::seconds(30);
        assert_eq!(fresh.check_deadline(now), None);
    }

    #[test]
    fn steps_round_trip_and_know_whether_they_compensate() {
        for step in SagaStep::ALL {
            assert_eq!(SagaStep::parse(step.as_str()), Some(step));
        }
        assert!(S::ReleaseStock.is_compensation());
        assert!(!S::AuthorizePayment.is_compensation());
    }
}
