//! Time limits on what a client sends, so a slow client cannot hold a connection (and the
//! buffers behind it) for as long as it likes.
//!
//! | limit | setting | where |
//! |---|---|---|
//! | the request head (line and headers) | `GATEWAY_HEADER_TIMEOUT` (5 s) | the HTTP server's header read timeout (`platform::host::HttpLimits`): the connection closed |
//! | the whole body | `GATEWAY_BODY_TIMEOUT` (10 s) | [`middleware`] below: 408 and the connection closed |
//! | open connections | `GATEWAY_MAX_CONNECTIONS` | the HTTP server stops accepting at the limit (`platform::host::HttpLimits`); the rest wait in the kernel's accept queue |
//!
//! A "slowloris" client sends its body a byte at a time, each just before any idle timeout
//! would fire; a per-read timeout never triggers, so the body has **one deadline for all of
//! it**, counted from the moment the head arrived. Bodies are at most 64 KiB
//! (`GATEWAY_BODY_LIMIT_BYTES`), which any real client sends well within it.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::state::Gateway;

/// The error a body yields once its deadline has passed; `edge::extract` answers it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
pub struct BodyTimedOut;

/// Whether `error`, or any error it wraps, is [`BodyTimedOut`].
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Wraps the request body in [`Deadline`].
pub async fn middleware(State(gateway): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let timed = Deadline::new(body, gateway.body_timeout);
    next.run(Request::from_parts(parts, Body::new(timed))).await
}

/// A body that fails with [`BodyTimedOut`] once `timeout` has passed since it was created.
pub struct Deadline {
    inner: Body,
    expires: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl Deadline {
    pub fn new(inner: Body, timeout: Duration) -> Self {
        Self {
            inner,
            expires: Box::pin(tokio::time::sleep(timeout)),
            expired: false,
        }
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(next) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(next);
        }
        if self.expires.as_mut().poll(cx).is_ready() {
            self.expired = true;
            metrics::counter!("gateway_body_timeouts_total").increment(1);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_arrive_in_time_fails_with_a_timeout() {
        let (sender, chunks) = futures::channel::mpsc::unbounded::<Bytes>();
        let inner = Body::from_stream(futures::StreamExt::map(chunks, Ok::<_, std::io::Error>));
        let mut body = Deadline::new(inner, Duration::from_secs(2));
        sender.unbounded_send(Bytes::from_static(b"{")).unwrap();
        assert_eq!(
            body.frame().await.unwrap().unwrap().into_data().unwrap(),
            Bytes::from_static(b"{")
        );
        // Nothing more arrives: the deadline passes.
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(is_body_timeout(&error), "{error}");
        assert!(body.frame().await.is_none());
    }
}
