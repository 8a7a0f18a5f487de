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

use std::time::{Duration, Instant};

use actix_web::{
    HttpResponse, get,
    http::header::{self, ContentEncoding},
    web,
};
use bytes::Bytes;

use super::{
    orders::{fetch_order, order_id},
    wire::Order,
};
use crate::{
    auth::Caller,
    problem::{ApiError, Problem},
    state::Gateway,
};

const HEARTBEAT: Duration = Duration::from_secs(15);

struct Stream {
    gateway: web::Data<Gateway>,
    caller: Caller,
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

/// Follow an order (SSE)
///
/// `text/event-stream` of `order` events, one per change of the order, ending once it is
/// `CONFIRMED` or `CANCELLED`. Browsers' `EventSource` cannot send headers, so this route also
/// accepts the token as `?access_token=`.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id (UUID)")),
    responses(
        (status = 200, description = "An event stream of the order", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such order for this customer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/orders/{id}/events")]
pub async fn order_events(
    gateway: web::Data<Gateway>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order_id = order_id(&id)?;
    // The first read happens before the response starts, so 401/404 are ordinary problems.
    let first = fetch_order(&gateway, &caller, &order_id).await?;
    let stream = Stream {
        gateway,
        caller,
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
