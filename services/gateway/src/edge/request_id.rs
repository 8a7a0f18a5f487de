//! The request id: one identifier per request, on the response and on every log line.
//!
//! A client (or the ingress in front of the gateway) may send `x-request-id`; the gateway keeps
//! it if it is a sane token (1–64 characters of `A-Z a-z 0-9 . _ -`), so one id can follow a
//! request from the browser's network tab to every log line it caused. Anything else is replaced
//! by a fresh UUIDv7 — an attacker-chosen string does not get to travel through our logs. The id
//! is echoed on every response, error or not, and appears in problem documents.
//!
//! It lives in two places while the request runs: in the request's extensions (for middleware and
//! handlers) and in a task-local (for code far from the request, such as building a problem
//! document in `ResponseError::error_response`, which gets no request). The actix worker polls
//! the whole middleware chain and handler inside [`middleware`]'s scope, so the task-local is set
//! wherever the request is being handled.

use actix_web::{
    Error, HttpMessage as _,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(|id| id.0.clone()).ok()
}

/// Keeps a well-formed incoming id, or makes a new one.
pub fn accept_or_generate(incoming: Option<&HeaderValue>) -> RequestId {
    let valid = incoming.and_then(|value| value.to_str().ok()).filter(|id| {
        (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    RequestId(valid.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned))
}

/// The outermost middleware: assigns the id, runs the request in its scope, echoes it.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = accept_or_generate(req.headers().get(&HEADER));
    req.extensions_mut().insert(id.clone());
    let header = HeaderValue::from_str(&id.0).ok();
    let mut response = CURRENT.scope(id, next.call(req)).await?;
    if let Some(header) = header {
        response.headers_mut().insert(HEADER, header);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_incoming_id_is_kept_and_anything_else_replaced() {
        let keep = HeaderValue::from_static("req-42.a_b");
        assert_eq!(accept_or_generate(Some(&keep)).0, "req-42.a_b");
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = accept_or_generate(Some(&value)).0;
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        assert!(uuid::Uuid::parse_str(&accept_or_generate(None).0).is_ok());
    }

    #[tokio::test]
    async fn the_current_id_is_visible_only_inside_the_scope() {
        assert_eq!(current(), None);
        let inside = CURRENT
            .scope(RequestId("abc".into()), async { current() })
            .await;
        assert_eq!(inside.as_deref(), Some("abc"));
    }
}
