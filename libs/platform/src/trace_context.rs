//! W3C trace context (`traceparent`, `tracestate`) across process boundaries.
//!
//! OpenTelemetry's propagator reads and writes through the `Extractor`/`Injector` traits.
//! Incoming HTTP headers (which gRPC metadata is, on the wire) are read with
//! `opentelemetry-http`'s `HeaderExtractor`; outgoing gRPC metadata is written with
//! [`MetadataInjector`] (tonic's `MetadataMap` is not a `HeaderMap`, so there is no crate
//! adapter for it). The messaging library has the same adapters for AMQP headers, so one trace
//! follows a request from the gateway through gRPC calls into event consumers.

use opentelemetry::{Context, propagation::Injector, trace::TraceContextExt as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Writes trace context into outgoing gRPC metadata.
pub struct MetadataInjector<'a>(pub &'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The remote parent described by incoming headers (an empty context when there is none).
pub fn extract(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    })
}

/// Writes the current span's context into `injector`.
pub fn inject_current(injector: &mut dyn Injector) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, injector);
    });
}

/// A span context in its W3C text form: what travels in event envelopes and what is stored
/// next to work that runs later (a saga), so that work can continue the trace that asked for it.
///
/// Always the W3C format, whatever global propagator the process configured, because other
/// services and later readers parse exactly that. Empty strings mean "no trace".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct W3cContext {
    pub traceparent: String,
    pub tracestate: String,
}

impl W3cContext {
    /// The context of the current span.
    pub fn current() -> Self {
        use opentelemetry::propagation::TextMapPropagator as _;

        let mut carrier = std::collections::HashMap::new();
        opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .inject_context(&tracing::Span::current().context(), &mut carrier);
        Self {
            traceparent: carrier.remove("traceparent").unwrap_or_default(),
            tracestate: carrier.remove("tracestate").unwrap_or_default(),
        }
    }

    /// The remote parent these values describe (an empty context when they describe none, or
    /// are malformed: a broken header must never stop the work it travels with).
    pub fn parent(&self) -> Context {
        use opentelemetry::propagation::TextMapPropagator as _;

        let carrier = std::collections::HashMap::from([
            ("traceparent".to_owned(), self.traceparent.clone()),
            ("tracestate".to_owned(), self.tracestate.clone()),
        ]);
        opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier)
    }
}

/// Makes `parent` the parent of `span` and records the trace id in the span's `trace_id` field
/// (when it declares one), so log lines written inside name the trace they belong to.
///
/// Setting the parent only fails when no OpenTelemetry layer is installed (unit tests); then
/// there is no trace to continue, so the error is deliberately ignored.
pub fn continue_trace(span: &tracing::Span, parent: Context) {
    let _ = span.set_parent(parent);
    if let Some(trace_id) = trace_id(span) {
        span.record("trace_id", trace_id.as_str());
    }
}

/// Starts `span` as the root of a new trace that *links* to `remote` (when `remote` holds a
/// valid span context), and records the trace id like [`continue_trace`].
///
/// For callers whose trace context is not trusted (a client on the internet): a link keeps the
/// relation visible in the trace backend, but the caller does not get to choose our trace id or
/// our sampling decision.
pub fn start_linked_trace(span: &tracing::Span, remote: &Context) {
    let remote = remote.span().span_context().clone();
    if remote.is_valid() {
        span.add_link(remote);
    }
    if let Some(trace_id) = trace_id(span) {
        span.record("trace_id", trace_id.as_str());
    }
}

/// The trace id of a span, as 32 lowercase hex digits, if it belongs to a trace.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    const STORED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_later_span_continues_a_stored_context() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let stored = W3cContext {
                traceparent: STORED.to_owned(),
                tracestate: "shop=1".to_owned(),
            };
            let span = tracing::info_span!("later");
            let _ = span.set_parent(stored.parent());
            let _entered = span.enter();

            let current = W3cContext::current();
            assert!(
                current
                    .traceparent
                    .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "same trace: {current:?}"
            );
            assert_ne!(current.traceparent, STORED, "a span of its own in it");
            assert_eq!(current.tracestate, "shop=1");
        });
    }

    #[test]
    fn an_untrusted_context_is_linked_not_continued() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let claimed = W3cContext {
                traceparent: STORED.to_owned(),
                tracestate: String::new(),
            };
            let span = tracing::info_span!("request", trace_id = tracing::field::Empty);
            start_linked_trace(&span, &claimed.parent());
            let _entered = span.enter();
            let current = W3cContext::current();
            assert!(current.traceparent.starts_with("00-"), "{current:?}");
            assert!(
                !current
                    .traceparent
                    .contains("4bf92f3577b34da6a3ce929d0e0e4736"),
                "a trace of our own: {current:?}"
            );
        });
    }

    #[test]
    fn outside_any_trace_the_context_is_empty() {
        assert_eq!(W3cContext::current(), W3cContext::default());
    }

    #[test]
    fn empty_or_malformed_values_describe_no_parent() {
        for traceparent in ["", "garbage", "00-zz-00f067aa0ba902b7-01"] {
            let context = W3cContext {
                traceparent: traceparent.to_owned(),
                tracestate: String::new(),
            }
            .parent();
            assert!(!context.span().span_context().is_valid(), "{traceparent:?}");
        }
    }
}
