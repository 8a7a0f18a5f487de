//! The payments domain: pure types and rules, no I/O. This is where event sourcing lives.
//!
//! **Event sourcing.** A payment is not a row with a status column that gets overwritten. It is
//! a stream of events — `Authorized`, `Declined`, `Captured`, `Refunded`, `Voided` — appended and
//! never changed, and its state is a function of that stream:
//!
//! ```text
//! state   = events.fold(PaymentState::initial(currency), PaymentState::evolve)   // state.rs
//! new     = state.decide_capture()? / decide_refund(..)? / decide_void(..)?      // decide.rs
//! ```
//!
//! * `evolve` applies a fact; it cannot fail, because facts are not up for debate.
//! * `decide_*` checks the rules against the current state and returns the new event, or a
//!   [`Rejected`] that says why not. Nothing is written by the domain: the store appends what was
//!   decided (`store.rs`), and if a concurrent writer appended first, the command is decided
//!   again on the fresher state (`service.rs`, optimistic concurrency).
//! * `decide_on_order_confirmed` / `decide_on_order_cancelled` (`order_outcome.rs`) answer the
//!   order events of the choreography with the same rules, where "already done" is a no-op,
//!   not a rejection, because events may be delivered again.
//!
//! What this buys: a complete audit trail for free (the history *is* the data), and any state,
//! present or past, can be rebuilt by folding the stream — which the integration tests do
//! straight from the `payment_events` table.
//!
//! Inputs are parsed into types that can only hold valid values ([`Money`], [`Currency`],
//! [`PaymentMethod`], [`Reason`]), so the rules never see a float, a negative amount or a
//! lower-case currency code.

mod decide;
mod event;
mod money;
mod order_outcome;
mod payment;
mod state;

pub use decide::Rejected;
pub use event::{KINDS, PaymentEvent, Reason, RecordedEvent, UnreadableEvent};
pub use money::{Currency, Money, MoneyError};
pub use payment::{
    AuthorizationOutcome, Authorize, Payment, PaymentHeader, PaymentMethod, VoidOrder,
};
pub use state::{PaymentState, PaymentStatus};

/// Why an input was refused, naming the request field at fault (`amount.currency`): the one
/// error type of every layer (see `libs/inputs`).
pub use inputs::InvalidInput;

/// Parses the `amount` of a request: a positive number of minor units in a valid currency.
pub fn parse_amount(minor: i64, currency: &str) -> Result<Money, InvalidInput> {
    let currency = Currency::parse(currency)
        .map_err(|err| InvalidInput::new("amount.currency", err.to_string()))?;
    Money::positive(minor, currency)
        .map_err(|err| InvalidInput::new("amount.amount_minor", err.to_string()))
}

/// Parses a UUID field (`order_id`, `payment_id`, `customer_id`).
pub fn parse_id(field: &'static str, raw: &str) -> Result<uuid::Uuid, InvalidInput> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(InvalidInput::new(field, "is required"));
    }
    uuid::Uuid::parse_str(raw).map_err(|_| InvalidInput::new(field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_name_the_subfield_at_fault() {
        let ok = parse_amount(1999, "EUR").unwrap();
        assert_eq!((ok.minor(), ok.currency().as_str()), (1999, "EUR"));
        let err = parse_amount(0, "EUR").unwrap_err();
        assert_eq!(
            err.to_string(),
            "amount.amount_minor: must be greater than zero"
        );
        let err = parse_amount(-1, "EUR").unwrap_err();
        assert_eq!(err.field(), "amount.amount_minor");
        let err = parse_amount(100, "eur").unwrap_err();
        assert_eq!(err.field(), "amount.currency");
        assert!(err.reason().contains("ISO 4217"), "{err}");
    }

    #[test]
    fn ids_must_be_uuids() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(parse_id("order_id", &format!(" {id} ")).unwrap(), id);
        assert_eq!(
            parse_id("order_id", "").unwrap_err().to_string(),
            "order_id: is required"
        );
        assert_eq!(
            parse_id("payment_id", "42").unwrap_err().to_string(),
            "payment_id: must be a UUID"
        );
    }
}
