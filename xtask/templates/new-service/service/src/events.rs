//! Events the {{name}} service publishes{{#if consumes}}, and the events it consumes{{/if}}.
//!
//! **Published** (through the outbox, relayed by the `OutboxRelay` worker):
//!
//! | event | routing key | when |
//! |---|---|---|
//! | `{{Pascal}}RecordCreated` | `{{name}}.record.created` | a record was created, by the API{{#if consumes}} or the consumer{{/if}} |
//!
//! The event is recorded in the outbox in the same transaction as the record it announces
//! (`store::create_in`) and published later by the relay (`libs/messaging`).
{{#if consumes}}
//!
//! **Consumed**:
//!
//! | queue | binds | job |
//! |---|---|---|
//! | `{{queue}}` | {{consumed_keys}} | [`{{Consumer}}`]: a record per event, referenced by the event's aggregate id |
//!
//! The record, its own event and the inbox's "seen this message" row commit together or not at
//! all, so a redelivered event changes nothing.
{{/if}}

use contracts::events::{{Pascal}}RecordCreated;
{{#if consumes}}
use messaging::{Envelope, Event, EventHandler, HandlerError, Handling, IntegrationEvent as _, ReceivedEvent};
use uuid::Uuid;

use crate::{
    domain::{Record, Reference},
    error::{{Pascal}}Error,
    store::{self, Created},
};

/// The queue of [`{{Consumer}}`] (declared with the whole topology in `messaging::topology`;
/// the name before `{{PREFIX}}_QUEUE_PREFIX`).
pub use messaging::topology::{{QUEUE_CONST}} as {{QUEUE_ALIAS}};
{{else}}
use messaging::Envelope;

use crate::domain::Record;
{{/if}}

/// The integration event announcing `record`.
pub fn created(record: &Record) -> Envelope {
    Envelope::new(&{{Pascal}}RecordCreated {
        record_id: record.id.to_string(),
        reference: record.reference.as_str().to_owned(),
    })
}
{{#if consumes}}

/// Creates a record for each event bound to `{{queue}}`, referenced by the event's aggregate id,
/// inside the consumer's inbox transaction.
///
/// Failures, as the consumer retries or parks them: an aggregate id that is not a valid
/// reference is permanent (parked at once, for an operator); a database error is transient (or
/// pauses the consumer while the database is down).
#[derive(Debug, Default, Clone, Copy)]
pub struct {{Consumer}};

impl EventHandler for {{Consumer}} {
    async fn handle(
        &self,
        work: &mut Handling<'_>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let aggregate_id = match &event.event {
{{consume_arms}}
            // Nothing else is bound to the queue; a stray event is not ours to act on.
            other => {
                tracing::debug!(
                    routing_key = other.routing_key(),
                    "ignoring an event this consumer does not handle"
                );
                return Ok(());
            }
        };
        let reference = Reference::parse(&aggregate_id)
            .map_err(|err| HandlerError::Permanent(format!("{}: {err}", event.event.routing_key())))?;
        let record = Record::new(Uuid::now_v7(), reference, store::now());
        match store::create_in(work.tx(), &record, &created(&record)).await {
            Ok(Created::New(record)) => {
                tracing::info!(record_id = %record.id, reference = record.reference.as_str(), "record created");
                Ok(())
            }
            Ok(Created::Existing(record)) => {
                tracing::info!(record_id = %record.id, "the event's record exists already: nothing to do");
                Ok(())
            }
            Err(error) => Err(handler_error(&aggregate_id, error)),
        }
    }
}

/// Whether retrying later can help.
fn handler_error(aggregate_id: &str, error: {{Pascal}}Error) -> HandlerError {
    match error {
        {{Pascal}}Error::Store(ref database) => {
            HandlerError::database(database, format!("{aggregate_id}: {error}"))
        }
        {{Pascal}}Error::InvalidInput(_) | {{Pascal}}Error::NotFound | {{Pascal}}Error::Corrupt(_) => {
            HandlerError::Permanent(format!("{aggregate_id}: {error}"))
        }
    }
}
{{/if}}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::domain::Reference;

    #[test]
    fn a_created_record_is_announced_with_its_routing_key_and_aggregate() {
        let record = Record::new(
            Uuid::now_v7(),
            Reference::parse("ref-1").unwrap(),
            OffsetDateTime::now_utc(),
        );
        let envelope = created(&record);
        assert_eq!(envelope.routing_key, "{{name}}.record.created");
        assert_eq!(envelope.aggregate_type, "record");
        assert_eq!(envelope.aggregate_id, record.id.to_string());
    }
{{#if consumes}}

    #[test]
    fn the_queue_binds_exactly_the_events_it_handles() {
        assert_eq!({{QUEUE_ALIAS}}.bindings, [{{bindings}}]);
    }

    #[test]
    fn only_database_trouble_is_worth_a_retry() {
        assert!(matches!(
            handler_error("o-1", {{Pascal}}Error::Corrupt("x".into())),
            HandlerError::Permanent(_)
        ));
        assert!(matches!(
            handler_error("o-1", {{Pascal}}Error::Store(sqlx::Error::PoolTimedOut)),
            HandlerError::Unavailable(_)
        ));
        assert!(matches!(
            handler_error("o-1", {{Pascal}}Error::Store(sqlx::Error::RowNotFound)),
            HandlerError::Transient(_)
        ));
    }
{{/if}}
}
