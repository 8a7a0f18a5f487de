//! The server-side observability layer: one span and one RED sample per gRPC call.
//!
//! * **Trace context**: the caller's `traceparent` header becomes the parent of the request span,
//!   so a trace continues across services. The span records `trace_id`, which every log line
//!   written while serving the call carries.
//! * **RED metrics**: `grpc_server_requests_total{service,method,code}` (rate and errors) and
//!   `grpc_server_request_duration_seconds{service,method}` (duration). The labels come from
//!   [`KnownMethods`], the methods this port serves: the path is the client's to choose, and
//!   labelling whatever it sent would let any client create series without bound. Any other
//!   path is `service="unknown", method="unknown"` (it is answered UNIMPLEMENTED anyway).
//!
//! The gRPC status of a successful unary call travels in the HTTP/2 *trailers*, after the
//! body, so the outcome is only known when the body finishes. [`ObservedBody`] watches the body
//! for the trailers; a body dropped before them (the client went away) counts as CANCELLED.

use std::{
    collections::HashSet,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use http_body::{Body, Frame};
use tonic::Code;
use tracing::Instrument as _;

use crate::trace_context;

/// The method paths (`/shop.users.v1.UsersService/Register`) a server answers.
#[derive(Clone, Debug, Default)]
pub struct KnownMethods(pub Arc<HashSet<String>>);

impl KnownMethods {
    /// The `(service, method)` labels of `path`: its own if known, `unknown` otherwise.
    pub fn labels(&self, path: &str) -> (String, String) {
        if self.0.contains(path) {
            split_path(path)
        } else {
            ("unknown".to_owned(), "unknown".to_owned())
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ObserveLayer {
    known: KnownMethods,
}

impl ObserveLayer {
    pub fn new(known: KnownMethods) -> Self {
        Self { known }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            known: self.known.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
    known: KnownMethods,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Observe<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = self.known.labels(request.uri().path());
        let span = tracing::info_span!(
            "grpc.request",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        trace_context::continue_trace(&span, trace_context::extract(request.headers()));

        let completion = Completion {
            service,
            method,
            started: Instant::now(),
            span: span.clone(),
            code: None,
        };
        let response = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let response = response.await?;
            let mut completion = completion;
            // A "trailers-only" response (typically an error) carries the status in its headers.
            if let Some(code) = status_from(response.headers()) {
                completion.code = Some(code);
            }
            Ok(response.map(|body| ObservedBody {
                inner: body,
                completion: Some(completion),
            }))
        })
    }
}

fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default().to_owned();
    let method = parts.next().unwrap_or_default().to_owned();
    (service, method)
}

fn status_from(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(Code::from_i32)
}

/// Records the call when dropped: by then the status is known or the client went away.
struct Completion {
    service: String,
    method: String,
    started: Instant,
    span: tracing::Span,
    code: Option<Code>,
}

impl Drop for Completion {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(Code::Cancelled);
        let elapsed = self.started.elapsed().as_secs_f64();
        self.span.record("rpc.grpc.status_code", code as i32);
        metrics::counter!(
            "grpc_server_requests_total",
            "service" => self.service.clone(),
            "method" => self.method.clone(),
            "code" => format!("{code:?}"),
        )
        .increment(1);
        metrics::histogram!(
            "grpc_server_request_duration_seconds",
            "service" => self.service.clone(),
            "method" => self.method.clone(),
        )
        .record(elapsed);
        if matches!(
            code,
            Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable
        ) {
            tracing::warn!(parent: &self.span, code = ?code, elapsed_s = elapsed, "gRPC call failed");
        } else {
            tracing::debug!(parent: &self.span, code = ?code, elapsed_s = elapsed, "gRPC call finished");
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that reports the call's gRPC status once the trailers go by.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        completion: Option<Completion>,
    }
}

impl<B> Body for ObservedBody<B>
where
    B: Body,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_from)
                    && let Some(mut completion) = this.completion.take()
                {
                    completion.code = Some(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut completion) = this.completion.take() {
                    completion.code.get_or_insert(Code::Internal);
                }
            }
            Poll::Ready(None) => {
                // End of stream: the status was in the headers (trailers-only) or the trailers
                // frame already went by; dropping the completion records it.
                this.completion.take();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/shop.users.v1.UsersService/Register"),
            (
                "shop.users.v1.UsersService".to_owned(),
                "Register".to_owned()
            )
        );
        assert_eq!(split_path("/"), (String::new(), String::new()));
    }

    #[test]
    fn only_known_methods_are_labelled_by_name() {
        let known = KnownMethods(Arc::new(HashSet::from([
            "/shop.users.v1.UsersService/Register".to_owned(),
        ])));
        assert_eq!(
            known.labels("/shop.users.v1.UsersService/Register").1,
            "Register"
        );
        for made_up in ["/shop.users.v1.UsersService/Nope", "/x/y", "/", "/a/b/c"] {
            assert_eq!(
                known.labels(made_up),
                ("unknown".to_owned(), "unknown".to_owned()),
                "{made_up}"
            );
        }
    }

    #[test]
    fn status_is_read_from_headers_or_trailers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_from(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("6"));
        assert_eq!(status_from(&headers), Some(Code::AlreadyExists));
    }
}
