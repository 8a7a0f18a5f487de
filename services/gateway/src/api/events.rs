//! The order status stream: Server-Sent Events (SSE) that push the order whenever it changes,
//! until checkout settles.
//!
//! Checkout is asynchronous (a saga), so right after `POST /orders` the order is `PENDING`. A
//! client could poll; SSE lets it open one long response instead and be told. The gateway polls
//! orders' `GetOrder` every `GATEWAY_SSE_POLL_INTERVAL` (500 ms) on the client's behalf and sends
//! an event only when the order changed — the simplest way to turn a pull API into a push one,
//! without coupling the gateway to the event bus. (Subscribing to `orders.order.*` events would
//! save the polling, at the cost of a queue per gateway replica.)
//!
//! ```text
//! event: order
//! id: 2
//! data: {"id":"…","status":"CONFIRMED","timeline":[…],…}
//!
//! ```
//!
//! The stream ends after the first `CONFIRMED` or `CANCELLED` event, after
//! `GATEWAY_SSE_MAX_DURATION`, or when the gateway shuts down (so a draining replica is not held
//! up by open streams; `EventSource` reconnects by itself, to another replica). A comment line
//! is sent every 15 s of silence, so proxies do not close an idle connection. Compression is
//! turned off for the stream: gzip would buffer the events.
//!
//! **Credentials.** An API client sends its bearer token as usual. A browser's `EventSource`
//! cannot, so it first exchanges the token for a one-minute **stream ticket** for this order
//! (`POST /orders/{id}/stream-tickets`, see `auth::ticket`) and opens
//! `/orders/{id}/events?ticket=…`: the URL never carries the bearer token.
//!
//! **Bounded.** Each open stream holds a connection and polls orders, so a user may hold at most
//! `GATEWAY_SSE_MAX_PER_USER` at once (429 beyond); the slot is freed when the stream ends or
//! the client goes away.

use std::time::{Duration, Instant, SystemTime};

use actix_web::{
    HttpRequest, HttpResponse, get,
    http::header::{self, ContentEncoding},
    post, web,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    orders::{fetch_order, order_id},
    wire::Order,
};
use crate::{
    auth::{self, Caller, Identity},
    problem::{ApiError, Problem},
    state::{Gateway, StreamSlot},
};

const HEARTBEAT: Duration = Duration::from_secs(15);

struct Stream {
    gateway: web::Data<Gateway>,
    caller: Caller,
    /// Held while the stream lives; dropped with it.
    _slot: StreamSlot,
    order_id: String,
    first: Option<Order>,
    last: Option<String>,
    sent: u64,
    started: Instant,
    last_sent: Instant,
    done: bool,
}

/// One SSE event.
fn event(name: &str, id: Option<u64>, data: &str) -> Bytes {
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    Bytes::from(format!("event: {name}\n{id}data: {data}\n\n"))
}

impl Stream {
    /// The next chunk to send, or `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let settings = self.gateway.streams;
        loop {
            if self.done || self.started.elapsed() >= settings.max_duration {
                return None;
            }
            let order = match self.first.take() {
                Some(order) => Ok(order),
                None => {
                    tokio::select! {
                        () = self.gateway.shutdown.wait() => return None,
                        () = tokio::time::sleep(settings.poll_interval) => {}
                    }
                    fetch_order(&self.gateway, &self.caller, &self.order_id).await
                }
            };
            let order = match order {
                Ok(order) => order,
                Err(error) => {
                    self.done = true;
                    let problem = serde_json::to_string(&error.problem()).unwrap_or_default();
                    return Some(event("error", None, &problem));
                }
            };
            let json = serde_json::to_string(&order).unwrap_or_default();
            if self.last.as_deref() != Some(json.as_str()) {
                self.done = order.is_settled();
                self.sent += 1;
                self.last_sent = Instant::now();
                let chunk = event("order", Some(self.sent), &json);
                self.last = Some(json);
                return Some(chunk);
            }
            if self.last_sent.elapsed() >= HEARTBEAT {
                self.last_sent = Instant::now();
                return Some(Bytes::from_static(b": keep-alive\n\n"));
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
}

/// Follow an order (SSE)
///
/// `text/event-stream` of `order` events, one per change of the order, ending once it is
/// `CONFIRMED` or `CANCELLED`. Authenticate with the bearer token, or (browsers' `EventSource`,
/// which cannot send headers) with `?ticket=` from `POST /orders/{id}/stream-tickets`.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = []), ()),
    params(("id" = String, Path, description = "Order id (UUID)"), StreamQuery),
    responses(
        (status = 200, description = "An event stream of the order", content_type = "text/event-stream", body = String),
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
    let caller = match (auth::identity(&req), query.into_inner().ticket) {
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
    // The first read happens before the response starts, so 401/404 are ordinary problems.
    let first = fetch_order(&gateway, &caller, &order_id).await?;
    let stream = Stream {
        gateway,
        caller,
        _slot: slot,
        order_id,
        first: Some(first),
        last: None,
        sent: 0,
        started: Instant::now(),
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
            event("order", Some(3), r#"{"a":1}"#),
            Bytes::from("event: order\nid: 3\ndata: {\"a\":1}\n\n")
        );
        assert_eq!(
            event("error", None, "x"),
            Bytes::from("event: error\ndata: x\n\n")
        );
    }
}
