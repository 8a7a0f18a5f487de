//! Errors as `application/problem+json` (RFC 9457), and the one place where gRPC status codes
//! become HTTP statuses.
//!
//! Every error the gateway answers has the same shape, so clients handle errors once:
//!
//! ```json
//! { "type": "https://ferroshop.example/problems/invalid-input", "title": "Invalid input",
//!   "status": 400, "detail": "must contain '@'", "field": "email", "request_id": "0192…" }
//! ```
//!
//! | gRPC code | HTTP | why |
//! |---|---|---|
//! | INVALID_ARGUMENT, OUT_OF_RANGE | 400 | the request is malformed; `field` names the input (services write `field: message`) |
//! | UNAUTHENTICATED | 401 | no valid credentials (with `WWW-Authenticate: Bearer`) |
//! | PERMISSION_DENIED | 403 | valid credentials, not allowed |
//! | NOT_FOUND | 404 | also for another customer's order: 404 does not confirm that it exists |
//! | ALREADY_EXISTS | 409 | e.g. the email is taken |
//! | FAILED_PRECONDITION | 409 | the resource's current **state** forbids it (cancel an order whose checkout is running, an idempotency key reused for a different order). 409 rather than 422: the same request may succeed once the state changes, and 422 is kept for bodies that can never be valid (none today: those are 400 with a field) |
//! | ABORTED | 409 | a concurrent change won; retry |
//! | RESOURCE_EXHAUSTED | 503 | an upstream is shedding load (`Retry-After: 1`): the server is busy, not the client over its limit (429 is the gateway's own rate limit) |
//! | UNAVAILABLE | 503 | the upstream is down or its circuit is open (`Retry-After: 1`) |
//! | DEADLINE_EXCEEDED | 504 | the upstream did not answer in time |
//! | anything else | 500 | a bug: logged with the request id, never described to the client |
//!
//! Upstream messages are shown for the 4xx codes (services write them for callers) and never for
//! 5xx ones, which could name hosts, SQL or stack details.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use serde::Serialize;
use tonic::{Code, Status};

use crate::edge::request_id;

/// The problem document (RFC 9457 §3) with Ferroshop's extension members.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "https://ferroshop.example/problems/not-found")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The input the problem is about, for validation errors (`email`, `lines[0].quantity`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The `x-request-id` of the request, to find its log lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An error the gateway answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An upstream service said no, or could not be reached.
    #[error("{service}: {status}")]
    Upstream {
        service: &'static str,
        status: Status,
    },
    #[error("invalid {field}: {detail}")]
    InvalidInput { field: String, detail: String },
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// The user already holds the most order streams one user may have open.
    #[error("too many open order streams (at most {max})")]
    TooManyStreams { max: usize },
    /// The client did not send its request in time (a slow body).
    #[error("request not received in time")]
    RequestTimeout,
    /// The gateway itself cannot serve the request right now (e.g. no signing keys yet).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<inputs::InvalidInput> for ApiError {
    fn from(invalid: inputs::InvalidInput) -> Self {
        Self::invalid(invalid.field(), invalid.reason())
    }
}

impl ApiError {
    pub fn upstream(service: &'static str) -> impl FnOnce(Status) -> Self {
        move |status| Self::Upstream { service, status }
    }

    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// Status, problem slug, title, detail and field.
    fn parts(&self) -> (StatusCode, &'static str, String, Option<String>) {
        match self {
            Self::Upstream { service, status } => upstream_parts(service, status),
            Self::InvalidInput { field, detail } => (
                StatusCode::BAD_REQUEST,
                "invalid-input",
                detail.clone(),
                Some(field.clone()),
            ),
            Self::Unauthenticated(detail) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                detail.clone(),
                None,
            ),
            Self::Forbidden(detail) => (StatusCode::FORBIDDEN, "forbidden", detail.clone(), None),
            Self::NotFound(detail) => (StatusCode::NOT_FOUND, "not-found", detail.clone(), None),
            Self::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("the request body may be at most {limit} bytes"),
                None,
            ),
            Self::UnsupportedMediaType(detail) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                detail.clone(),
                None,
            ),
            Self::TooManyRequests { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("rate limit exceeded; retry in {retry_after_secs} s"),
                None,
            ),
            Self::TooManyStreams { max } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-streams",
                format!("at most {max} order streams may be open at once; close one first"),
                None,
            ),
            Self::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "the request was not received in time".to_owned(),
                None,
            ),
            Self::Unavailable(detail) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                detail.clone(),
                None,
            ),
        }
    }

    /// The problem document this error is answered with.
    pub fn problem(&self) -> Problem {
        let (status, slug, detail, field) = self.parts();
        Problem {
            problem_type: format!("https://ferroshop.example/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            field,
            request_id: request_id::current(),
        }
    }
}

/// The HTTP side of an upstream status (see the table in the module docs).
fn upstream_parts(
    service: &str,
    status: &Status,
) -> (StatusCode, &'static str, String, Option<String>) {
    let message = status.message().to_owned();
    match resilience::grpc::effective_code(status) {
        Code::InvalidArgument | Code::OutOfRange => {
            let (field, detail) = split_field(&message);
            (StatusCode::BAD_REQUEST, "invalid-input", detail, field)
        }
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", message, None),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "forbidden", message, None),
        Code::NotFound => (StatusCode::NOT_FOUND, "not-found", message, None),
        Code::AlreadyExists => (StatusCode::CONFLICT, "already-exists", message, None),
        Code::FailedPrecondition => (StatusCode::CONFLICT, "conflicting-state", message, None),
        Code::Aborted => (StatusCode::CONFLICT, "concurrent-change", message, None),
        Code::ResourceExhausted => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream-overloaded",
            format!("the {service} service is overloaded; retry shortly"),
            None,
        ),
        Code::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream-unavailable",
            format!("the {service} service is unavailable; retry shortly"),
            None,
        ),
        Code::DeadlineExceeded => (
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
            format!("the {service} service did not answer in time"),
            None,
        ),
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error".to_owned(),
            None,
        ),
    }
}

/// Services write invalid-argument messages as `field: message` (`platform::ServiceError`).
/// The prefix is taken as a field only if it looks like one (`lines[2].quantity`), so a message
/// that merely contains a colon stays whole.
fn split_field(message: &str) -> (Option<String>, String) {
    if let Some((field, detail)) = message.split_once(": ") {
        let looks_like_a_field = !field.is_empty()
            && field.len() <= 64
            && field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-'));
        if looks_like_a_field {
            return (Some(field.to_owned()), detail.to_owned());
        }
    }
    (None, message.to_owned())
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        if problem.status >= 500 {
            tracing::error!(error = %self, status = problem.status, "request failed");
        } else {
            tracing::info!(error = %self, status = problem.status, "request refused");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            Self::Unauthenticated(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    r#"Bearer realm="ferroshop", error="invalid_token""#,
                ));
            }
            Self::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::TooManyStreams { .. } => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            // A client this slow is not worth keeping the connection for.
            Self::RequestTimeout => {
                response.insert_header((header::CONNECTION, "close"));
            }
            _ if problem.status == 503 => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        response.json(problem)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    fn status_of(code: Code, message: &str) -> (u16, Problem) {
        let error = ApiError::Upstream {
            service: "orders",
            status: Status::new(code, message),
        };
        let problem = error.problem();
        assert_eq!(error.status_code().as_u16(), problem.status);
        (problem.status, problem)
    }

    #[test]
    fn every_grpc_code_maps_to_its_http_status() {
        let expected = [
            (Code::InvalidArgument, 400),
            (Code::OutOfRange, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::FailedPrecondition, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 503),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
            (Code::Unknown, 500),
            (Code::DataLoss, 500),
            (Code::Unimplemented, 500),
            (Code::Cancelled, 500),
            (Code::Ok, 500),
        ];
        for (code, http) in expected {
            assert_eq!(status_of(code, "x").0, http, "{code:?}");
        }
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let (_, problem) = status_of(Code::InvalidArgument, "lines[0].quantity: must be positive");
        assert_eq!(problem.field.as_deref(), Some("lines[0].quantity"));
        assert_eq!(problem.detail, "must be positive");
        let (_, problem) = status_of(Code::InvalidArgument, "the thing is wrong: really wrong");
        assert_eq!(problem.field, None);
        assert_eq!(problem.detail, "the thing is wrong: really wrong");
    }

    #[test]
    fn server_errors_do_not_leak_upstream_details() {
        for code in [
            Code::Internal,
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Unknown,
        ] {
            let (_, problem) = status_of(code, "connect to 10.1.2.3:5432 refused; SELECT * FROM");
            assert!(
                !problem.detail.contains("10.1.2.3"),
                "{code:?}: {}",
                problem.detail
            );
            assert!(!problem.detail.contains("SELECT"), "{code:?}");
        }
    }

    #[test]
    fn a_client_side_timeout_is_a_gateway_timeout() {
        let status = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        let error = ApiError::upstream("inventory")(status);
        assert_eq!(error.status_code(), StatusCode::GATEWAY_TIMEOUT);
    }

    #[tokio::test]
    async fn responses_are_problem_json_with_the_right_headers() {
        let response = ApiError::Unauthenticated("token expired".into()).error_response();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        let body = to_bytes(response.into_body()).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], 401);
        assert_eq!(
            json["type"],
            "https://ferroshop.example/problems/unauthenticated"
        );
        assert_eq!(json["title"], "Unauthorized");
        assert_eq!(json["detail"], "token expired");

        let limited = ApiError::TooManyRequests {
            retry_after_secs: 7,
        }
        .error_response();
        assert_eq!(limited.headers().get(header::RETRY_AFTER).unwrap(), "7");
        let down = ApiError::upstream("inventory")(Status::unavailable("x")).error_response();
        assert_eq!(down.headers().get(header::RETRY_AFTER).unwrap(), "1");
        let shedding =
            ApiError::upstream("users")(Status::resource_exhausted("busy")).error_response();
        assert_eq!(shedding.status(), 503);
        assert_eq!(shedding.headers().get(header::RETRY_AFTER).unwrap(), "1");
    }
}
