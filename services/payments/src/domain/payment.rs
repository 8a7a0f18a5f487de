use time::OffsetDateTime;
use uuid::Uuid;

use super::{Money, PaymentEvent, PaymentState, RecordedEvent, Rejected};

/// A card token the provider understands (`tok_visa_approve`): the shared rule of
/// `inputs::PaymentMethod`, which orders and the gateway apply too, so a token that reached the
/// saga is never refused here. Opaque to this service, and never stored.
pub use inputs::PaymentMethod;

/// AuthorizePayment, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorize {
    /// The idempotency key: one payment per order, whatever the number of calls.
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub amount: Money,
    pub payment_method: PaymentMethod,
}

/// VoidOrderPayment, parsed: compensation by order id, by a caller that may not know whether
/// the order was ever authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidOrder {
    pub order_id: Uuid,
    /// What the order's authorization asks (or would ask) for. A tombstone's header records
    /// them, so that a late AuthorizePayment, which repeats them, is recognised as a retry of
    /// this order's payment and answered with the tombstone.
    pub customer_id: Uuid,
    pub amount: Money,
    pub reason: super::Reason,
}

/// What the payment provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationOutcome {
    Approved,
    Declined { reason: String },
}

/// The stream header: the facts fixed when the payment was opened, never changed afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentHeader {
    /// UUIDv7: time-ordered, so new rows append to the primary-key index.
    pub id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// What the authorization asked for; its currency is the payment's currency.
    pub requested: Money,
    pub created_at: OffsetDateTime,
}

/// A payment as the aggregate of event sourcing: its header, its full history, and the state
/// folded from that history. It is rebuilt from the stream for every command, never cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub header: PaymentHeader,
    pub history: Vec<RecordedEvent>,
    pub state: PaymentState,
}

impl Payment {
    /// A new stream: the header plus the provider's answer as its first event.
    pub fn open(command: &Authorize, outcome: AuthorizationOutcome, now: OffsetDateTime) -> Self {
        let now = to_micros(now);
        let header = PaymentHeader {
            id: Uuid::now_v7(),
            order_id: command.order_id,
            customer_id: command.customer_id,
            requested: command.amount,
            created_at: now,
        };
        let first = match outcome {
            AuthorizationOutcome::Approved => PaymentEvent::Authorized {
                amount: command.amount,
            },
            AuthorizationOutcome::Declined { reason } => PaymentEvent::Declined { reason },
        };
        Self::rehydrate(header, Vec::new()).record(first, now).1
    }

    /// A tombstone: the stream of an order that was compensated before it was ever authorized,
    /// VOIDED from its first event. It takes the order's one payment slot (`order_id` is
    /// unique), so an authorization that arrives afterwards finds it and returns it instead of
    /// opening a payment that nothing would ever void.
    pub fn tombstone(command: &VoidOrder, now: OffsetDateTime) -> Self {
        let now = to_micros(now);
        let header = PaymentHeader {
            id: Uuid::now_v7(),
            order_id: command.order_id,
            customer_id: command.customer_id,
            requested: command.amount,
            created_at: now,
        };
        let voided = PaymentEvent::Voided {
            reason: command.reason.as_str().to_owned(),
        };
        Self::rehydrate(header, Vec::new()).record(voided, now).1
    }

    /// Rebuilds a payment from its stored header and events (the fold).
    pub fn rehydrate(header: PaymentHeader, history: Vec<RecordedEvent>) -> Self {
        let state = PaymentState::fold_recorded(header.requested.currency(), &history);
        Self {
            header,
            history,
            state,
        }
    }

    /// The payment after `event`, which becomes the next event of the stream. Returns the
    /// recorded event too, for the store to append.
    pub fn record(mut self, event: PaymentEvent, now: OffsetDateTime) -> (RecordedEvent, Self) {
        let recorded = RecordedEvent {
            seq: self.state.version + 1,
            occurred_at: to_micros(now),
            event,
        };
        self.state = self.state.evolve(&recorded.event);
        self.history.push(recorded.clone());
        (recorded, self)
    }

    /// The event that opened the stream.
    pub fn first_event(&self) -> Option<&RecordedEvent> {
        self.history.first()
    }

    /// Whether `command` is a retry of the call that opened this payment. A retry returns the
    /// existing payment whatever its outcome; a different amount, currency or customer for the
    /// same order is a client bug, refused rather than silently answered with another payment.
    /// The same holds for a [tombstone](Self::tombstone): a late authorization repeats the
    /// amount and customer the compensation recorded.
    pub fn check_retry(&self, command: &Authorize) -> Result<(), Rejected> {
        let existing = &self.header;
        let differs = |field, existing: String, requested: String| Rejected::DifferentRetry {
            field,
            existing,
            requested,
        };
        if existing.requested.currency() != command.amount.currency() {
            return Err(differs(
                "currency",
                existing.requested.currency().to_string(),
                command.amount.currency().to_string(),
            ));
        }
        if existing.requested != command.amount {
            return Err(differs(
                "amount",
                existing.requested.to_string(),
                command.amount.to_string(),
            ));
        }
        if existing.customer_id != command.customer_id {
            return Err(differs(
                "customer",
                existing.customer_id.to_string(),
                command.customer_id.to_string(),
            ));
        }
        Ok(())
    }
}

/// Postgres keeps microseconds: truncating here makes what we answer equal to what a later read
/// returns.
fn to_micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_microsecond(at.microsecond()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, PaymentStatus};

    fn command(minor: i64, currency: &str) -> Authorize {
        Authorize {
            order_id: Uuid::from_u128(1),
            customer_id: Uuid::from_u128(2),
            amount: Money::positive(minor, Currency::parse(currency).unwrap()).unwrap(),
            payment_method: PaymentMethod::parse("tok_visa_approve").unwrap(),
        }
    }

    #[test]
    fn an_approved_authorization_opens_an_authorized_stream_at_seq_1() {
        let now = OffsetDateTime::now_utc();
        let payment = Payment::open(&command(500, "EUR"), AuthorizationOutcome::Approved, now);
        assert_eq!(payment.header.id.get_version_num(), 7);
        assert_eq!(payment.state.status, PaymentStatus::Authorized);
        assert_eq!(payment.history.len(), 1);
        assert_eq!(payment.history[0].seq, 1);
        assert_eq!(payment.history[0].occurred_at.nanosecond() % 1000, 0);
        assert_eq!(
            payment.first_event().map(|e| &e.event),
            Some(&PaymentEvent::Authorized {
                amount: command(500, "EUR").amount
            })
        );
    }

    #[test]
    fn a_declined_authorization_opens_a_declined_stream() {
        let payment = Payment::open(
            &command(500, "EUR"),
            AuthorizationOutcome::Declined {
                reason: "card_declined".into(),
            },
            OffsetDateTime::now_utc(),
        );
        assert_eq!(payment.state.status, PaymentStatus::Declined);
        assert_eq!(
            payment.state.decline_reason.as_deref(),
            Some("card_declined")
        );
    }

    #[test]
    fn new_events_take_the_next_seq_and_rehydrating_gives_the_same_payment() {
        let now = OffsetDateTime::now_utc();
        let payment = Payment::open(&command(500, "EUR"), AuthorizationOutcome::Approved, now);
        let capture = payment.state.decide_capture().unwrap();
        let (recorded, payment) = payment.record(capture, now);
        assert_eq!(recorded.seq, 2);
        assert_eq!(payment.state.status, PaymentStatus::Captured);
        let rebuilt = Payment::rehydrate(payment.header.clone(), payment.history.clone());
        assert_eq!(rebuilt, payment);
    }

    #[test]
    fn a_tombstone_is_voided_from_its_first_event_and_answers_a_late_authorization() {
        let authorize = command(500, "EUR");
        let tombstone = Payment::tombstone(
            &VoidOrder {
                order_id: authorize.order_id,
                customer_id: authorize.customer_id,
                amount: authorize.amount,
                reason: super::super::Reason::parse("checkout compensation").unwrap(),
            },
            OffsetDateTime::now_utc(),
        );
        assert_eq!(tombstone.state.status, PaymentStatus::Voided);
        assert_eq!(
            tombstone.state.authorized().minor(),
            0,
            "no money was ever held"
        );
        assert_eq!(tombstone.history.len(), 1);
        assert_eq!(tombstone.check_retry(&authorize), Ok(()));
        let rebuilt = Payment::rehydrate(tombstone.header.clone(), tombstone.history.clone());
        assert_eq!(rebuilt, tombstone);
    }

    #[test]
    fn a_retry_must_repeat_the_first_call() {
        let payment = Payment::open(
            &command(500, "EUR"),
            AuthorizationOutcome::Declined {
                reason: "card_declined".into(),
            },
            OffsetDateTime::now_utc(),
        );
        assert_eq!(payment.check_retry(&command(500, "EUR")), Ok(()));
        let mut other_method = command(500, "EUR");
        other_method.payment_method = PaymentMethod::parse("tok_visa_decline").unwrap();
        assert_eq!(payment.check_retry(&other_method), Ok(()));

        let field = |result: Result<(), Rejected>| match result {
            Err(Rejected::DifferentRetry { field, .. }) => field,
            other => panic!("expected a different-retry rejection, got {other:?}"),
        };
        assert_eq!(field(payment.check_retry(&command(501, "EUR"))), "amount");
        assert_eq!(field(payment.check_retry(&command(500, "USD"))), "currency");
        let mut other_customer = command(500, "EUR");
        other_customer.customer_id = Uuid::from_u128(3);
        assert_eq!(field(payment.check_retry(&other_customer)), "customer");
    }
}
