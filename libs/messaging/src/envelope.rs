//! The envelope every event travels in.

use contracts::events::EventEnvelope;
use prost::Message as _;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::IntegrationEvent;

/// An event ready for the outbox: the encoded envelope plus the routing facts the relay needs
/// without decoding it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub routing_key: &'static str,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub occurred_at: OffsetDateTime,
    /// The `shop.events.v1.EventEnvelope`, encoded.
    pub bytes: Vec<u8>,
}

impl Envelope {
    /// Wraps `event`, stamping a fresh UUIDv7, the current time and the current trace context.
    pub fn new<E: IntegrationEvent>(event: &E) -> Self {
        let event_id = Uuid::now_v7();
        let occurred_at = OffsetDateTime::now_utc();
        let platform::trace_context::W3cContext {
            traceparent,
            tracestate,
        } = platform::trace_context::W3cContext::current();
        let envelope = EventEnvelope {
            event_id: event_id.to_string(),
            event_type: E::full_name(),
            aggregate_type: E::AGGREGATE_TYPE.to_owned(),
            aggregate_id: event.aggregate_id(),
            occurred_at: Some(timestamp(occurred_at)),
            traceparent,
            tracestate,
            payload: event.encode_to_vec(),
        };
        Self {
            event_id,
            event_type: envelope.event_type.clone(),
            routing_key: E::ROUTING_KEY,
            aggregate_type: E::AGGREGATE_TYPE,
            aggregate_id: envelope.aggregate_id.clone(),
            occurred_at,
            bytes: envelope.encode_to_vec(),
        }
    }
}

/// Converts to the protobuf well-known type.
pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        // Always within 0..1e9, so the cast cannot truncate.
        nanos: at.nanosecond() as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::events::UserRegistered;

    #[test]
    fn the_envelope_wraps_the_payload_with_its_routing_facts() {
        let event = UserRegistered {
            user_id: "u-1".into(),
            email: "ada@example.com".into(),
            ..Default::default()
        };
        let envelope = Envelope::new(&event);
        assert_eq!(envelope.routing_key, "users.user.registered");
        assert_eq!(envelope.aggregate_type, "user");
        assert_eq!(envelope.aggregate_id, "u-1");
        assert_eq!(envelope.event_id.get_version_num(), 7);

        let decoded = EventEnvelope::decode(envelope.bytes.as_slice()).unwrap();
        assert_eq!(decoded.event_id, envelope.event_id.to_string());
        assert_eq!(decoded.event_type, "shop.events.v1.UserRegistered");
        assert_eq!(
            UserRegistered::decode(decoded.payload.as_slice()).unwrap(),
            event
        );
    }
}
