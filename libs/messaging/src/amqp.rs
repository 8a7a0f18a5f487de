//! Connecting to RabbitMQ and carrying trace context in AMQP headers.
//!
//! No crate propagates OpenTelemetry context through AMQP, so this module has the two small
//! adapters the propagator needs: an `Injector` that writes `traceparent`/`tracestate` into a
//! message's header table, and an `Extractor` that reads them back on the consuming side.

use std::{future::Future, time::Duration};

use lapin::{
    Connection, ConnectionProperties,
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use opentelemetry::propagation::{Extractor, Injector};

/// Opens a connection. Heartbeats (negotiated with the broker) detect a dead peer.
pub async fn connect(url: &str, connection_name: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default()
        .with_connection_name(LongString::from(connection_name.to_owned()));
    Connection::connect(url, properties).await
}

/// How long any one call to the broker (a publish, its confirm, an ack, a declare) may take
/// before the connection is given up as dead and opened again.
///
/// Heartbeats notice a silent peer, but not every pending call: when the broker goes away in
/// the middle of a call, lapin may leave that call's future pending for good (seen in the fault
/// tier's RabbitMQ restart: a relay waiting for a publish confirm, a consumer waiting on a
/// passive declare, both until someone restarted the process). Every call of the relay and the
/// consumer therefore has this deadline, and missing it is a connection failure like any other.
pub const BROKER_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A broker call that did not answer within [`BROKER_CALL_TIMEOUT`].
#[derive(Debug, thiserror::Error)]
#[error("the broker did not answer {0} within {BROKER_CALL_TIMEOUT:?}; reconnecting")]
pub struct BrokerTimeout(pub &'static str);

/// Runs one broker call with the [`BROKER_CALL_TIMEOUT`] deadline: the call's own result, or
/// [`BrokerTimeout`] naming `what` was being waited for.
pub async fn within<T, E>(
    what: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<Result<T, E>, BrokerTimeout> {
    tokio::time::timeout(BROKER_CALL_TIMEOUT, call)
        .await
        .map_err(|_| BrokerTimeout(what))
}

/// Writes trace context into AMQP message headers.
pub struct HeaderInjector<'a>(pub &'a mut FieldTable);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(
            ShortString::from(key),
            AMQPValue::LongString(LongString::from(value)),
        );
    }
}

/// Reads trace context from AMQP message headers.
pub struct HeaderExtractor<'a>(pub &'a FieldTable);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        header_str(self.0, key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(ShortString::as_str).collect()
    }
}

/// A string header, if present.
pub fn header_str<'a>(headers: &'a FieldTable, key: &str) -> Option<&'a str> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
        AMQPValue::ShortString(value) => Some(value.as_str()),
        _ => None,
    }
}

/// An integer header, if present (RabbitMQ may widen integer types).
pub fn header_u32(headers: &FieldTable, key: &str) -> Option<u32> {
    match headers.inner().get(key)? {
        AMQPValue::LongUInt(value) => Some(*value),
        AMQPValue::LongInt(value) => u32::try_from(*value).ok(),
        AMQPValue::LongLongInt(value) => u32::try_from(*value).ok(),
        AMQPValue::ShortUInt(value) => Some(u32::from(*value)),
        AMQPValue::ShortInt(value) => u32::try_from(*value).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_round_trips_through_headers() {
        let mut headers = FieldTable::default();
        HeaderInjector(&mut headers).set("traceparent", "00-abc-def-01".to_owned());
        assert_eq!(
            HeaderExtractor(&headers).get("traceparent"),
            Some("00-abc-def-01")
        );
        assert_eq!(HeaderExtractor(&headers).keys(), vec!["traceparent"]);
        assert_eq!(HeaderExtractor(&headers).get("tracestate"), None);
    }

    #[test]
    fn integer_headers_accept_any_width() {
        let mut headers = FieldTable::default();
        headers.insert("a".into(), AMQPValue::LongLongInt(3));
        headers.insert("b".into(), AMQPValue::LongInt(-1));
        assert_eq!(header_u32(&headers, "a"), Some(3));
        assert_eq!(header_u32(&headers, "b"), None);
        assert_eq!(header_u32(&headers, "c"), None);
    }
}
