//! Honouring the caller's deadline (`grpc-timeout`) with the status the gRPC spec asks for.
//!
//! tonic's server stops a call whose `grpc-timeout` has passed, but answers CANCELLED
//! ("Timeout expired"); tonic's client does the same when its own copy of the timer fires. The
//! spec says DEADLINE_EXCEEDED, and callers treat the two differently: CANCELLED means "the
//! caller gave up", DEADLINE_EXCEEDED means "too slow; the outcome is unknown; retry an
//! idempotent call". So this layer runs each call under a budget slightly shorter than the
//! caller's timeout and answers DEADLINE_EXCEEDED itself when it is spent. Dropping the
//! handler's future also rolls back any transaction it had open. The margin (a tenth of the
//! timeout, 5 ms to 100 ms) leaves time for the answer to reach the caller before its timer.
//!
//! **The deadline travels on.** While the handler runs, the instant its budget ends is kept in a
//! task-local ([`remaining`] reads it), and every call the handler makes through
//! [`crate::grpc::client::CallContext`] is given the smaller of its own timeout and what is left,
//! and is not sent at all when nothing is: a caller that gives up after 300 ms gains nothing from
//! a participant working 2 s on its behalf. The task-local follows the handler's own future only:
//! work it spawns onto other tasks (a saga the call merely records, say) runs on budgets of its
//! own.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::time::Instant;
use tonic::{Status, body::Body};

tokio::task_local! {
    /// When the call being served must have been answered.
    static DEADLINE: Instant;
}

/// What is left of the deadline of the call this task is serving; `None` outside a call, or for
/// a caller that set no deadline. Zero once it has passed.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

const MIN_MARGIN: Duration = Duration::from_millis(5);
const MAX_MARGIN: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for Deadline<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let budget = budget(request.headers());
        let response = self.inner.call(request);
        Box::pin(async move {
            match budget {
                None => response.await,
                Some(budget) => {
                    let deadline = Instant::now() + budget;
                    match tokio::time::timeout_at(deadline, DEADLINE.scope(deadline, response))
                        .await
                    {
                        Ok(response) => response,
                        Err(_) => Ok(Status::deadline_exceeded(
                            "the caller's deadline passed before the call completed",
                        )
                        .into_http()),
                    }
                }
            }
        })
    }
}

/// The time a call may take: the caller's `grpc-timeout` minus the margin.
fn budget(headers: &http::HeaderMap) -> Option<Duration> {
    let timeout = headers
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)?;
    let margin = (timeout / 10).clamp(MIN_MARGIN, MAX_MARGIN);
    Some(timeout.saturating_sub(margin))
}

/// `grpc-timeout` is at most 8 digits and a unit: H, M, S, m (milli), u (micro), n (nano).
pub(crate) fn parse_grpc_timeout(raw: &str) -> Option<Duration> {
    let (digits, unit) = raw.split_at_checked(raw.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    match unit {
        "H" => Some(Duration::from_secs(amount * 3600)),
        "M" => Some(Duration::from_secs(amount * 60)),
        "S" => Some(Duration::from_secs(amount)),
        "m" => Some(Duration::from_millis(amount)),
        "u" => Some(Duration::from_micros(amount)),
        "n" => Some(Duration::from_nanos(amount)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_in_every_unit_and_garbage_is_ignored() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for garbage in ["", "S", "123456789S", "1.5S", "10x", "-1S"] {
            assert_eq!(parse_grpc_timeout(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn the_budget_keeps_a_bounded_margin() {
        let headers = |value: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", http::HeaderValue::from_static(value));
            headers
        };
        assert_eq!(budget(&headers("1000m")), Some(Duration::from_millis(900)));
        assert_eq!(budget(&headers("10S")), Some(Duration::from_millis(9900)));
        assert_eq!(budget(&headers("20m")), Some(Duration::from_millis(15)));
        assert_eq!(budget(&http::HeaderMap::new()), None);
    }

    /// The `grpc-timeout` a call made while serving `incoming` carries, with a 2 s default.
    async fn onward_timeout(incoming: Option<&'static str>) -> Result<Duration, Status> {
        use tonic::service::Interceptor as _;
        use tower::{Layer as _, Service as _, ServiceExt as _};
        let handler = tower::service_fn(|_: http::Request<()>| async {
            let mut context = crate::grpc::client::CallContext::new(Duration::from_secs(2));
            let onward = match context.call(tonic::Request::new(())) {
                Ok(request) => request,
                Err(status) => return Ok(status.into_http()),
            };
            let mut response = http::Response::new(Body::empty());
            let header = onward
                .metadata()
                .get("grpc-timeout")
                .unwrap()
                .to_str()
                .unwrap();
            response.headers_mut().insert(
                "onward-timeout",
                http::HeaderValue::from_str(header).unwrap(),
            );
            Ok::<_, std::convert::Infallible>(response)
        });
        let mut service = DeadlineLayer.layer(handler);
        let mut request = http::Request::new(());
        if let Some(value) = incoming {
            request
                .headers_mut()
                .insert("grpc-timeout", http::HeaderValue::from_static(value));
        }
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        match response.headers().get("onward-timeout") {
            Some(value) => Ok(parse_grpc_timeout(value.to_str().unwrap()).unwrap()),
            None => Err(Status::from_header_map(response.headers()).unwrap()),
        }
    }

    #[tokio::test]
    async fn a_call_made_while_serving_one_gets_at_most_what_its_caller_has_left() {
        // The caller allows 300 ms: the onward call must not be given its own 2 s.
        let onward = onward_timeout(Some("300m")).await.unwrap();
        assert!(onward <= Duration::from_millis(300), "{onward:?}");
        assert!(onward > Duration::from_millis(200), "{onward:?}");
        // A generous caller leaves the hop's own budget in force; no caller deadline, the same.
        assert_eq!(
            onward_timeout(Some("60S")).await.unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(onward_timeout(None).await.unwrap(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_call_with_nothing_left_is_not_sent() {
        // 5 ms minus the margin leaves nothing.
        let status = onward_timeout(Some("5m")).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_call_is_answered_deadline_exceeded() {
        use tower::{Layer as _, Service as _, ServiceExt as _};
        let slow = tower::service_fn(|_: http::Request<()>| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        });
        let mut service = DeadlineLayer.layer(slow);
        let mut request = http::Request::new(());
        request
            .headers_mut()
            .insert("grpc-timeout", http::HeaderValue::from_static("500m"));
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }
}
