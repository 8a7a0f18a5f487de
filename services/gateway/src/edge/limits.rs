//! Time limits on what a client sends, so a slow client cannot hold a connection (and the
//! buffers behind it) for as long as it likes.
//!
//! | limit | setting | where |
//! |---|---|---|
//! | the request head (line and headers) | `GATEWAY_HEADER_TIMEOUT` (5 s) | actix's `client_request_timeout`: 408 and the connection closed |
//! | the whole body | `GATEWAY_BODY_TIMEOUT` (10 s) | [`middleware`] below: 408 and the connection closed |
//! | open connections | `GATEWAY_MAX_CONNECTIONS` | actix's `max_connections` per worker; the rest wait in the kernel's accept queue |
//!
//! A "slowloris" client sends its body a byte at a time, each just before any idle timeout
//! would fire; a per-read timeout never triggers, so the body has **one deadline for all of
//! it**, counted from the moment the head arrived. Bodies are at most 64 KiB
//! (`GATEWAY_BODY_LIMIT_BYTES`), which any real client sends well within it.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{
    Error, HttpMessage as _,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    error::PayloadError,
    middleware::Next,
    web,
};
use bytes::Bytes;
use futures::Stream;

use crate::state::Gateway;

/// The error the body yields once its deadline has passed; `edge::extract` answers it with 408.
pub fn is_body_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// Wraps the request body in [`Deadline`].
pub async fn middleware(
    gateway: web::Data<Gateway>,
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let payload = req.take_payload();
    let timed = Deadline::new(payload, gateway.body_timeout);
    req.set_payload(Payload::Stream {
        payload: Box::pin(timed),
    });
    next.call(req).await
}

/// A body stream that fails with `TimedOut` once `timeout` has passed since it was created.
pub struct Deadline {
    inner: Payload,
    expires: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl Deadline {
    pub fn new(inner: Payload, timeout: Duration) -> Self {
        Self {
            inner,
            expires: Box::pin(tokio::time::sleep(timeout)),
            expired: false,
        }
    }
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(next) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(next);
        }
        if self.expires.as_mut().poll(cx).is_ready() {
            self.expired = true;
            metrics::counter!("gateway_body_timeouts_total").increment(1);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body was not received in time",
            )))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_arrive_in_time_fails_with_a_timeout() {
        let (sender, chunks) = futures::channel::mpsc::unbounded::<Bytes>();
        let chunks: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(chunks.map(Ok));
        let inner = Payload::Stream { payload: chunks };
        let mut body = Deadline::new(inner, Duration::from_secs(2));
        sender.unbounded_send(Bytes::from_static(b"{")).unwrap();
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            Bytes::from_static(b"{")
        );
        // Nothing more arrives: the deadline passes.
        let error = body.next().await.unwrap().unwrap_err();
        assert!(is_body_timeout(&error), "{error}");
        assert!(body.next().await.is_none());
    }
}
