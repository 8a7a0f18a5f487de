//! The order timeline stream: Server-Sent Events (SSE) that push each step of checkout as
//! orders records it, until the order is settled.
//!
//! Checkout is asynchronous: right after `POST /orders` the order is `PENDING`; the saga then
//! reserves stock, authorizes the payment, commits the stock and confirms, and payments captures
//! afterwards, by choreography. A client could poll `GET /orders/{id}`; SSE lets it open one
//! long response instead and be told each step as it happens:
//!
//! ```text
//! event: step
//! id: 41
//! data: {"sequence":41,"step":"capture_payment","outcome":"succeeded","detail":"","at":"…",
//!        "status":"CONFIRMED","payment_status":"captured","stock_status":"committed",
//!        "cancellation_reason":null,"settled":true}
//!
//! ```
//!
//! **No polling here.** The gateway opens orders' server-streaming `WatchOrder` and forwards
//! each message as one event. Orders learns of new steps from Postgres itself (LISTEN/NOTIFY,
//! see orders' `service::watch`), so a step reaches the browser within milliseconds of its
//! commit and an idle order costs no queries at all — where polling `GetOrder` every 500 ms cost
//! two queries a second per open stream and showed each step up to half a second late. The
//! price: one long-lived gRPC stream per open event stream (HTTP/2 multiplexes them over the
//! gateway's existing connections to orders), and orders holding one listening database
//! connection per replica.
//!
//! **Resuming.** Each event's `id:` is the step's sequence. A browser's `EventSource`
//! reconnects by itself after a dropped connection and sends the last id it saw as
//! `Last-Event-ID`; the gateway asks orders for the steps *after* it, so the client gets every
//! step exactly once, in order, across reconnects. A client that opens a new stream itself (a
//! new ticket, see below) passes the same value as `?last_event_id=` (the header wins when both
//! are present). If orders' replica stops mid-stream (UNAVAILABLE), the gateway watches again
//! from the last sequence it sent, on another replica, and the client notices nothing.
//!
//! **The end.** The stream ends after the event with `"settled":true` (captured and committed,
//! or cancelled with the money and the stock back: orders decides), after
//! `GATEWAY_SSE_MAX_DURATION`, or when the gateway shuts down (so a draining replica is not held
//! up by open streams; `EventSource` reconnects by itself, to another replica). Asked to resume
//! a settled order after its last step, the gateway answers `204 No Content`, which tells
//! `EventSource` to stop reconnecting. A comment line is sent every 15 s of silence, so proxies
//! do not close an idle connection. Compression is turned off for the stream: gzip would buffer
//! the events.
//!
//! **Credentials.** An API client sends its bearer token as usual. A browser's `EventSource`
//! cannot, so it first exchanges the token for a one-minute **stream ticket** for this order
//! (`POST /orders/{id}/stream-tickets`, see `auth::ticket`) and opens
//! `/orders/{id}/events?ticket=…`: the URL never carries the bearer token.
//!
//! **Bounded.** Each open stream holds a client connection and a stream to orders, so a user
//! may hold at most `GATEWAY_SSE_MAX_PER_USER` at once (429 beyond); the slot is freed when the
//! stream ends or the client goes away.

use std::time::SystemTime;

use actix_web::{
    HttpRequest, HttpResponse, get,
    http::header::{self, ContentEncoding},
    post, web,
};
use bytes::Bytes;
use contracts::orders::{OrdersServiceClient, WatchOrderRequest, WatchOrderResponse};
use serde::{Deserialize, Serialize};
use tokio::time::{Duration, Instant};
use tonic::{Code, Streaming};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    orders::{fetch_order, order_id},
    wire::OrderStepEvent,
};
use crate::{
    auth::{self, Caller, Identity},
    problem::{ApiError, Problem},
    state::{Gateway, StreamSlot},
};

const HEARTBEAT: Duration = Duration::from_secs(15);

/// How many times in a row a broken watch is opened again without a step arriving in between,
/// before the stream gives up with an `error` event (the client may reconnect later).
const MAX_REWATCHES: u32 = 3;

struct Stream {
    gateway: web::Data<Gateway>,
    caller: Caller,
    /// Held while the stream lives; dropped with it.
    _slot: StreamSlot,
    order_id: String,
    /// Orders' `WatchOrder` stream; `None` until opened, and after it broke.
    steps: Option<Streaming<WatchOrderResponse>>,
    /// The sequence of the last step sent: a new watch resumes after it.
    last: i64,
    /// Watches opened since the last step arrived.
    rewatches: u32,
    ends_at: Instant,
    last_sent: Instant,
    done: bool,
}

/// One SSE event.
fn event(name: &str, id: Option<i64>, data: &str) -> Bytes {
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    Bytes::from(format!("event: {name}\n{id}data: {data}\n\n"))
}

fn error_event(error: &ApiError) -> Bytes {
    let problem = serde_json::to_string(&error.problem()).unwrap_or_default();
    event("error", None, &problem)
}

/// Opens orders' `WatchOrder` for the steps after `after`, with the stream's remaining life as
/// its deadline. Only opening is retried (it is a read); the stream itself is not a call the
/// retry layer could repeat.
async fn watch(
    gateway: &Gateway,
    caller: &Caller,
    order_id: &str,
    after: i64,
    ends_at: Instant,
) -> Result<Streaming<WatchOrderResponse>, ApiError> {
    let customer_id = caller.owner_filter();
    let left = ends_at.saturating_duration_since(Instant::now());
    gateway
        .upstreams
        .orders
        .call(true, |endpoint| {
            let mut request = caller.orders_request(WatchOrderRequest {
                order_id: order_id.to_owned(),
                customer_id: customer_id.clone(),
                after,
            });
            request.set_timeout(left);
            async move {
                OrdersServiceClient::new(endpoint)
                    .watch_order(request)
                    .await
            }
        })
        .await
        .map_err(ApiError::upstream("orders"))
}

impl Stream {
    /// The next chunk to send, or `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.done || Instant::now() >= self.ends_at {
                return None;
            }
            if self.steps.is_none() {
                self.rewatches += 1;
                let opened = watch(
                    &self.gateway,
                    &self.caller,
                    &self.order_id,
                    self.last,
                    self.ends_at,
                );
                let opened = tokio::select! {
                    () = self.gateway.shutdown.wait() => return None,
                    opened = opened => opened,
                };
                match opened {
                    Ok(steps) => self.steps = Some(steps),
                    Err(error) => {
                        self.done = true;
                        return Some(error_event(&error));
                    }
                }
            }
            let Some(steps) = self.steps.as_mut() else {
                continue;
            };
            let message = tokio::select! {
                () = self.gateway.shutdown.wait() => return None,
                () = tokio::time::sleep_until(self.ends_at) => return None,
                () = tokio::time::sleep_until(self.last_sent + HEARTBEAT) => {
                    self.last_sent = Instant::now();
                    return Some(Bytes::from_static(b": keep-alive\n\n"));
                }
                message = steps.message() => message,
            };
            match message {
                Ok(Some(message)) => {
                    let step = OrderStepEvent::from(message);
                    if step.step.sequence <= self.last {
                        // Already sent (orders never repeats a step; a resumed watch could).
                        continue;
                    }
                    self.last = step.step.sequence;
                    self.rewatches = 0;
                    self.done = step.settled;
                    self.last_sent = Instant::now();
                    let json = serde_json::to_string(&step).unwrap_or_default();
                    return Some(event("step", Some(self.last), &json));
                }
                // Orders ended the watch without a settling step: nothing more will come.
                Ok(None) => return None,
                // The replica stopped or the connection to it broke: watch again from the last
                // step sent, on whichever replica the balancer picks.
                Err(status)
                    if matches!(
                        status.code(),
                        Code::Unavailable | Code::Cancelled | Code::Unknown
                    ) && self.rewatches < MAX_REWATCHES =>
                {
                    tracing::info!(order_id = %self.order_id, after = self.last, error = %status, "order watch broke; watching again");
                    self.steps = None;
                }
                Err(status) => {
                    self.done = true;
                    return Some(error_event(&ApiError::upstream("orders")(status)));
                }
            }
        }
    }
}

/// A stream ticket: what `EventSource` puts in the URL instead of the bearer token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamTicket {
    /// Pass as `?ticket=` to `GET /orders/{id}/events`.
    pub ticket: String,
    /// Seconds the ticket may be used to open the stream.
    pub expires_in: u64,
}

/// Get a stream ticket
///
/// A one-minute credential for this order's event stream only, for clients that cannot send an
/// `Authorization` header on a stream (a browser's `EventSource`). Ask for a new one on every
/// reconnect.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id (UUID)")),
    responses(
        (status = 201, description = "A ticket for the order's stream", body = StreamTicket),
        (status = 404, description = "No such order for this customer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders/{id}/stream-tickets")]
pub async fn stream_ticket(
    gateway: web::Data<Gateway>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order = order_id(&id)?;
    // Only for an order the caller may read: the ticket must not be a way to probe ids.
    fetch_order(&gateway, &caller, &order).await?;
    let order =
        Uuid::parse_str(&order).map_err(|_| ApiError::invalid("order_id", "must be a UUID"))?;
    let ticket = gateway.tickets.issue(&caller.0, order, SystemTime::now());
    Ok(HttpResponse::Created().json(StreamTicket {
        ticket,
        expires_in: gateway.tickets.ttl().as_secs(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamQuery {
    /// A ticket from `POST /orders/{id}/stream-tickets`, for clients that cannot send a bearer
    /// token.
    pub ticket: Option<String>,
    /// Resume after this step sequence, like the `Last-Event-ID` header (which `EventSource`
    /// sends when it reconnects by itself, and which wins when both are present); for a client
    /// that opens a new stream after the last one broke.
    pub last_event_id: Option<String>,
}

/// The sequence to resume after: `Last-Event-ID`, else `?last_event_id=`, else 0 (from the
/// start). Anything but a non-negative integer is the client's mistake, named.
fn resume_after(req: &HttpRequest, query: Option<&str>) -> Result<i64, ApiError> {
    let parse = |field: &str, raw: &str| {
        raw.trim()
            .parse::<i64>()
            .ok()
            .filter(|after| *after >= 0)
            .ok_or_else(|| {
                ApiError::invalid(field, "must be a step sequence (a non-negative integer)")
            })
    };
    if let Some(header) = req.headers().get("last-event-id") {
        let raw = header.to_str().map_err(|_| {
            ApiError::invalid(
                "Last-Event-ID",
                "must be a step sequence (a non-negative integer)",
            )
        })?;
        // An empty header is what EventSource sends before it has seen an id.
        if !raw.trim().is_empty() {
            return parse("Last-Event-ID", raw);
        }
    }
    match query {
        Some(raw) if !raw.trim().is_empty() => parse("last_event_id", raw),
        _ => Ok(0),
    }
}

/// Follow an order (SSE)
///
/// `text/event-stream` of `step` events (`OrderStepEvent`), one per timeline step as it is
/// recorded, each with `id:` = the step's sequence, ending after the step that settles the
/// order. Resumes after `Last-Event-ID` (or `?last_event_id=`). Authenticate with the bearer
/// token, or (browsers' `EventSource`, which cannot send headers) with `?ticket=` from
/// `POST /orders/{id}/stream-tickets`.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = []), ()),
    params(
        ("id" = String, Path, description = "Order id (UUID)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this step sequence"),
        StreamQuery,
    ),
    responses(
        (status = 200, description = "An event stream of the order's steps", content_type = "text/event-stream", body = String),
        (status = 204, description = "The order is settled and has no step after Last-Event-ID: nothing more will come"),
        (status = 400, description = "Last-Event-ID or last_event_id is not a step sequence", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token or ticket", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order for this customer", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many order streams open for this user; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/orders/{id}/events")]
pub async fn order_events(
    gateway: web::Data<Gateway>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let order_id = order_id(&id)?;
    let query = query.into_inner();
    let after = resume_after(&req, query.last_event_id.as_deref())?;
    let caller = match (auth::identity(&req), query.ticket) {
        (Identity::Anonymous, Some(ticket)) => {
            let order = Uuid::parse_str(&order_id)
                .map_err(|_| ApiError::invalid("order_id", "must be a UUID"))?;
            gateway
                .tickets
                .verify(&ticket, order, SystemTime::now())
                .map(Caller)
                .map_err(|error| ApiError::Unauthenticated(error.to_string()))?
        }
        (identity, _) => Caller::from_identity(identity)?,
    };
    let slot = gateway
        .open_streams
        .try_open(caller.0.user_id)
        .ok_or(ApiError::TooManyStreams {
            max: gateway.streams.max_per_user,
        })?;
    // The first read happens before the response starts, so 401/404 are ordinary problems,
    // and a client resuming a settled order is told there is nothing more to wait for.
    let order = fetch_order(&gateway, &caller, &order_id).await?;
    if order.is_settled() && order.last_sequence() <= after {
        return Ok(HttpResponse::NoContent().finish());
    }
    let ends_at = Instant::now() + gateway.streams.max_duration;
    let stream = Stream {
        gateway,
        caller,
        _slot: slot,
        order_id,
        steps: None,
        last: after,
        rewatches: 0,
        ends_at,
        last_sent: Instant::now(),
        done: false,
    };
    let body = futures::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        Some((Ok::<_, actix_web::Error>(chunk), stream))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(ContentEncoding::Identity)
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_per_the_sse_format() {
        assert_eq!(
            event("step", Some(3), r#"{"a":1}"#),
            Bytes::from("event: step\nid: 3\ndata: {\"a\":1}\n\n")
        );
        assert_eq!(
            event("error", None, "x"),
            Bytes::from("event: error\ndata: x\n\n")
        );
    }
}
