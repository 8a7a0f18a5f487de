//! Tracing and RED metrics for every HTTP request.
//!
//! **Tracing.** The request gets a span, `http_request`. Its parent is the caller's trace when
//! the caller sent W3C `traceparent`/`tracestate` headers **and** is trusted
//! (`GATEWAY_TRUSTED_TRACE_CLIENTS`: our own services, a test, an ingress that starts traces).
//! From anyone else on the internet the header is only a claim: continuing it would let a
//! client choose our trace ids (colliding with others', or forcing sampling). So an untrusted
//! caller's request starts a **new trace**, with a *link* to the context it sent, which keeps
//! the connection visible without trusting it. The span carries `request_id` and `trace_id`,
//! so every log line written while handling the request names both. Upstream calls made inside
//! it get the same trace: `platform::grpc::client::CallContext` injects the current span's
//! context into the gRPC metadata of each call, so one trace runs HTTP → gateway → gRPC → AMQP →
//! consumers.
//!
//! This is a small hand-written middleware rather than `tracing-actix-web`, whose root span takes
//! its own request id and ignores `x-request-id`; here one id is used everywhere.
//!
//! **Metrics** (Rate, Errors, Duration per route): `http_server_requests_total{route,method,status}`
//! and `http_server_request_duration_seconds{route,method}`. The route is the matched pattern
//! (`/api/v1/orders/{id}`), never the raw path: one series per order id would grow without bound.
//! For the same reason the method is one of the standard ones or `other`: HTTP lets a client
//! send any token as a method.

use std::time::Instant;

use actix_web::{
    Error, HttpMessage as _,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
    web,
};
use tracing::{Instrument as _, field::Empty};

use super::request_id::RequestId;
use crate::{ratelimit::client_addr, state::Gateway};

/// The method as a metric label: a standard method, or `other`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", |known| match *known {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::PATCH => "PATCH",
            Method::OPTIONS => "OPTIONS",
            Method::CONNECT => "CONNECT",
            _ => "TRACE",
        })
}

/// The W3C headers a caller's trace context travels in.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

pub async fn middleware(
    gateway: web::Data<Gateway>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let method = method_label(req.method());
    let span = tracing::info_span!(
        "http_request",
        request_id = %request_id,
        trace_id = Empty,
        http.method = %method,
        http.path = %req.path(),
        http.route = Empty,
        http.status_code = Empty,
    );
    // actix speaks `http` 0.2, the propagator `http` 1: copy the two headers across.
    let mut carrier = http::HeaderMap::new();
    for name in TRACE_HEADERS {
        if let Some(value) = req
            .headers()
            .get(name)
            .and_then(|value| http::HeaderValue::from_bytes(value.as_bytes()).ok())
        {
            carrier.insert(name, value);
        }
    }
    let remote = platform::trace_context::extract(&carrier);
    let trusted = client_addr(req.request(), &gateway)
        .is_some_and(|client| gateway.trusted_trace_clients.contains(client));
    if trusted {
        platform::trace_context::continue_trace(&span, remote);
    } else {
        platform::trace_context::start_linked_trace(&span, &remote);
    }

    let response = next.call(req).instrument(span.clone()).await?;

    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.record("http.route", route.as_str());
    span.record("http.status_code", status);
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = elapsed.as_millis() as u64,
            "request finished"
        );
    });
    metrics::counter!(
        "http_server_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "http_server_request_duration_seconds",
        "route" => route,
        "method" => method
    )
    .record(elapsed.as_secs_f64());
    Ok(response)
}
