//! The commands of the payment ledger: load → fold → decide → append, with the two
//! concurrency patterns that make them safe to call more than once and from many places at once.
//!
//! **Idempotent command (AuthorizePayment).** The order id is the idempotency key. A call first
//! looks for the order's payment and, if there is one, returns it — approved or declined — after
//! checking that the call repeats the first one. Only then is the provider asked (with the order
//! id as *its* idempotency key), and the stream opened. Two concurrent first calls both get past
//! the look-up; `payments.order_id UNIQUE` lets exactly one open the stream, and the other reads
//! and returns the winner's payment. So the saga may retry freely: one order, one payment.
//!
//! **Optimistic concurrency (capture, refund, void).** No lock is held while deciding. The
//! command reads the stream, folds it, decides, and appends at `seq = version + 1`. If another
//! writer appended first, the append conflicts, and the command starts over on the fresher
//! stream — where the rules see the other writer's event (a second capture is then refused as
//! "already captured", not silently doubled). After [`MAX_ATTEMPTS`] conflicts in a row the
//! caller gets ABORTED and may retry.
//!
//! **Tombstones (VoidOrderPayment).** Compensation voids by order id, because after a timeout
//! the saga cannot know whether its authorization ever arrived. When the order has no payment,
//! the void opens one that is VOIDED from its first event ([`Payment::tombstone`]). It takes the
//! order's one slot in `payments.order_id UNIQUE`, so the race with an authorization that
//! arrives late (a saga runner that stalled and resumed after another compensated) has exactly
//! two outcomes, both safe: the tombstone is first and the authorization returns it, holding
//! nothing; or the authorization is first and the void, losing the insert, voids it.
//!
//! **In the caller's transaction (capture / refund after the order's fate).** The consumer of
//! order events must commit its effect together with its inbox row, so
//! [`capture_order_in`] and [`refund_cancelled_order_in`] run load → fold → decide → append on
//! the connection they are given and commit nothing themselves. They cannot retry a lost race in
//! place: the unique violation has aborted the caller's transaction. They report
//! [`PaymentsError::Contention`] instead, the caller rolls back (inbox row included) and the
//! event is delivered again later, when the rules see the other writer's event.

use platform::fencing::FencingToken;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    domain::{
        Authorize, Money, Payment, PaymentEvent, PaymentState, PaymentStatus, Reason, Rejected,
        VoidOrder,
    },
    error::PaymentsError,
    events,
    provider::{AuthorizationRequest, PaymentProvider},
    store::{self, Appended, Opened, PaymentStore},
};

/// How many times a command is decided again after losing a race before giving up.
pub const MAX_ATTEMPTS: usize = 5;

pub struct Ledger<P> {
    store: PaymentStore,
    provider: P,
}

impl<P: PaymentProvider> Ledger<P> {
    pub fn new(store: PaymentStore, provider: P) -> Self {
        Self { store, provider }
    }

    /// Authorizes the order's payment once; every retry returns that same payment.
    ///
    /// `fence` is the saga's fencing token: a call from a superseded runner is refused before
    /// the provider is asked, and again when the payment is opened (`platform::fencing`).
    pub async fn authorize(
        &self,
        command: Authorize,
        fence: Option<FencingToken>,
    ) -> Result<Payment, PaymentsError> {
        self.store.admit(command.order_id, fence).await?;
        if let Some(existing) = self.store.load_by_order(command.order_id).await? {
            existing.check_retry(&command)?;
            if existing.state.status == PaymentStatus::Voided {
                tracing::warn!(
                    payment_id = %existing.header.id,
                    order_id = %command.order_id,
                    "authorization after the order's payment was voided: answered with the void, nothing held"
                );
            } else {
                tracing::info!(payment_id = %existing.header.id, "authorization retried: same payment");
            }
            return Ok(existing);
        }
        let outcome = self
            .provider
            .authorize(AuthorizationRequest {
                idempotency_key: command.order_id,
                amount: command.amount,
                payment_method: &command.payment_method,
            })
            .await?;
        let payment = Payment::open(&command, outcome, OffsetDateTime::now_utc());
        let first = payment
            .first_event()
            .map(|recorded| events::envelope(&payment.header, &recorded.event))
            .ok_or_else(|| PaymentsError::Corrupt("opened without an event".into()))?;
        match self.store.open(&payment, &first, fence).await? {
            Opened::Created => {
                tracing::info!(
                    payment_id = %payment.header.id,
                    order_id = %command.order_id,
                    status = payment.state.status.as_str(),
                    "payment opened"
                );
                Ok(payment)
            }
            Opened::OrderTaken => {
                let winner = self
                    .store
                    .load_by_order(command.order_id)
                    .await?
                    .ok_or_else(|| {
                        PaymentsError::Corrupt(format!(
                            "order {} is taken but has no payment",
                            command.order_id
                        ))
                    })?;
                winner.check_retry(&command)?;
                tracing::info!(payment_id = %winner.header.id, "concurrent authorization lost: same payment");
                Ok(winner)
            }
        }
    }

    pub async fn capture(&self, payment_id: Uuid) -> Result<Payment, PaymentsError> {
        self.execute(payment_id, PaymentState::decide_capture).await
    }

    pub async fn refund(
        &self,
        payment_id: Uuid,
        amount: Money,
        reason: Reason,
    ) -> Result<Payment, PaymentsError> {
        self.execute(payment_id, |state| state.decide_refund(amount, &reason))
            .await
    }

    pub async fn void(&self, payment_id: Uuid, reason: Reason) -> Result<Payment, PaymentsError> {
        self.execute(payment_id, |state| state.decide_void(&reason))
            .await
    }

    /// Compensation by order id: voids the order's payment, or records a tombstone when it has
    /// none (see the module docs). Idempotent.
    pub async fn void_order(
        &self,
        command: VoidOrder,
        fence: Option<FencingToken>,
    ) -> Result<Payment, PaymentsError> {
        self.store.admit(command.order_id, fence).await?;
        let mut contended = command.order_id;
        for attempt in 1..=MAX_ATTEMPTS {
            let Some(payment) = self.store.load_by_order(command.order_id).await? else {
                let tombstone = Payment::tombstone(&command, OffsetDateTime::now_utc());
                let first = tombstone
                    .first_event()
                    .map(|recorded| events::envelope(&tombstone.header, &recorded.event))
                    .ok_or_else(|| PaymentsError::Corrupt("opened without an event".into()))?;
                match self.store.open(&tombstone, &first, fence).await? {
                    Opened::Created => {
                        tracing::info!(
                            payment_id = %tombstone.header.id,
                            order_id = %command.order_id,
                            "voided before any authorization: tombstone recorded"
                        );
                        return Ok(tombstone);
                    }
                    // An authorization opened the stream first: void it on the next round.
                    Opened::OrderTaken => continue,
                }
            };
            let Some(event) = payment.state.decide_void_order(&command.reason)? else {
                return Ok(payment);
            };
            let payment_id = payment.header.id;
            let envelope = events::envelope(&payment.header, &event);
            let (recorded, payment) = payment.record(event, OffsetDateTime::now_utc());
            match self
                .store
                .append(&payment.header, &recorded, &envelope, fence)
                .await?
            {
                Appended::Appended => {
                    tracing::info!(payment_id = %payment_id, order_id = %command.order_id, "order's payment voided");
                    return Ok(payment);
                }
                Appended::Conflict => {
                    contended = payment_id;
                    tracing::debug!(payment_id = %payment_id, attempt, "a concurrent writer appended first; deciding again");
                }
            }
        }
        Err(PaymentsError::Contention(contended))
    }

    pub async fn get(&self, payment_id: Uuid) -> Result<Payment, PaymentsError> {
        self.store
            .load(payment_id)
            .await?
            .ok_or(PaymentsError::NotFound)
    }

    pub async fn get_by_order(&self, order_id: Uuid) -> Result<Payment, PaymentsError> {
        self.store
            .load_by_order(order_id)
            .await?
            .ok_or(PaymentsError::NotFound)
    }

    /// The optimistic-concurrency loop shared by every command on an existing payment.
    async fn execute(
        &self,
        payment_id: Uuid,
        decide: impl Fn(&PaymentState) -> Result<PaymentEvent, Rejected>,
    ) -> Result<Payment, PaymentsError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let payment = self.get(payment_id).await?;
            let event = decide(&payment.state)?;
            let envelope = events::envelope(&payment.header, &event);
            let (recorded, payment) = payment.record(event, OffsetDateTime::now_utc());
            match self
                .store
                .append(&payment.header, &recorded, &envelope, None)
                .await?
            {
                Appended::Appended => {
                    tracing::info!(
                        payment_id = %payment_id,
                        seq = recorded.seq,
                        kind = recorded.event.kind(),
                        status = payment.state.status.as_str(),
                        "payment event appended"
                    );
                    return Ok(payment);
                }
                Appended::Conflict => {
                    tracing::debug!(
                        payment_id = %payment_id,
                        seq = recorded.seq,
                        attempt,
                        "a concurrent writer appended first; deciding again"
                    );
                }
            }
        }
        tracing::warn!(payment_id = %payment_id, "gave up after {MAX_ATTEMPTS} conflicting appends");
        Err(PaymentsError::Contention(payment_id))
    }
}

/// What a command answering an order event did to the order's payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// The event was appended, with its outbox row, in the caller's transaction: it counts once
    /// the caller commits. The payment is as it will be after that commit.
    Appended(Payment),
    /// The payment already was where the order event would take it; nothing was written.
    AlreadyDone(Payment),
}

impl FollowUp {
    pub fn payment(&self) -> &Payment {
        match self {
            Self::Appended(payment) | Self::AlreadyDone(payment) => payment,
        }
    }
}

/// `OrderConfirmed`: captures the order's payment, on `conn` (inside the caller's transaction).
/// A payment captured already is [`FollowUp::AlreadyDone`].
pub async fn capture_order_in(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<FollowUp, PaymentsError> {
    follow_up_in(conn, order_id, PaymentState::decide_on_order_confirmed).await
}

/// `OrderCancelled` of a confirmed order: refunds everything still refundable (or voids the
/// authorization if the capture never ran), on `conn` (inside the caller's transaction). A
/// payment refunded or voided already is [`FollowUp::AlreadyDone`].
pub async fn refund_cancelled_order_in(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<FollowUp, PaymentsError> {
    follow_up_in(conn, order_id, PaymentState::decide_on_order_cancelled).await
}

/// Load → fold → decide → append, once, on the caller's connection.
///
/// Errors: [`PaymentsError::NotFound`] when the order has no payment, [`PaymentsError::Rejected`]
/// when its state cannot answer the event, [`PaymentsError::Contention`] when a concurrent
/// writer appended first (the caller's transaction is then aborted and must be rolled back),
/// [`PaymentsError::Store`] / [`PaymentsError::Corrupt`] from the store.
async fn follow_up_in(
    conn: &mut PgConnection,
    order_id: Uuid,
    decide: impl FnOnce(&PaymentState) -> Result<Option<PaymentEvent>, Rejected>,
) -> Result<FollowUp, PaymentsError> {
    let payment = store::load_by_order_in(conn, order_id)
        .await?
        .ok_or(PaymentsError::NotFound)?;
    let Some(event) = decide(&payment.state)? else {
        return Ok(FollowUp::AlreadyDone(payment));
    };
    let payment_id = payment.header.id;
    let envelope = events::envelope(&payment.header, &event);
    let (recorded, payment) = payment.record(event, OffsetDateTime::now_utc());
    match store::append_in(conn, payment_id, &recorded, &envelope).await? {
        Appended::Appended => {
            tracing::info!(
                payment_id = %payment_id,
                order_id = %order_id,
                seq = recorded.seq,
                kind = recorded.event.kind(),
                status = payment.state.status.as_str(),
                "payment event appended in the inbox transaction"
            );
            Ok(FollowUp::Appended(payment))
        }
        Appended::Conflict => Err(PaymentsError::Contention(payment_id)),
    }
}
