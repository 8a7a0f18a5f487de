//! Bounded, validated request input: how actix's extractors fail, in problem+json.
//!
//! * **Body size**: JSON bodies above `GATEWAY_BODY_LIMIT_BYTES` are refused with 413 while they
//!   stream in (a `Content-Length` above the limit is refused before a byte is read), so a client
//!   cannot make the gateway buffer megabytes.
//! * **Shape**: a body that is not the documented JSON is 400, naming the problem serde found; a
//!   body sent as something other than `application/json` is 415.
//! * **Query and path**: malformed parameters are 400.
//! * **Unknown routes** under `/api` are 404 problems rather than HTML.
//!
//! Semantic validation (is this an email address, is the quantity positive) stays with the
//! services that own the rules; the gateway bounds sizes and counts, which it can judge alone.

use actix_web::{
    HttpRequest, HttpResponse, ResponseError as _,
    error::{JsonPayloadError, PathError, QueryPayloadError},
    web,
};

use crate::problem::ApiError;

/// JSON bodies: size limit and problem+json errors.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |error, _req| json_error(&error, limit).into())
}

fn json_error(error: &JsonPayloadError, limit: usize) -> ApiError {
    match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("send the body as application/json".to_owned())
        }
        JsonPayloadError::Payload(error) if super::limits::is_body_timeout(error) => {
            ApiError::RequestTimeout
        }
        JsonPayloadError::Deserialize(error) => ApiError::invalid("body", error.to_string()),
        other => ApiError::invalid("body", other.to_string()),
    }
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _req| {
        let detail = match &error {
            QueryPayloadError::Deserialize(error) => error.to_string(),
            other => other.to_string(),
        };
        ApiError::invalid("query", detail).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, _req| {
        let detail = match &error {
            PathError::Deserialize(error) => error.to_string(),
            other => other.to_string(),
        };
        ApiError::invalid("path", detail).into()
    })
}

/// The answer for a route that does not exist.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_bodies_are_413_and_bad_ones_400_or_415() {
        let too_big = json_error(
            &JsonPayloadError::OverflowKnownLength {
                length: 9,
                limit: 8,
            },
            8,
        );
        assert_eq!(too_big.problem().status, 413);
        assert_eq!(
            json_error(&JsonPayloadError::Overflow { limit: 8 }, 8)
                .problem()
                .status,
            413
        );
        assert_eq!(
            json_error(&JsonPayloadError::ContentType, 8)
                .problem()
                .status,
            415
        );
        let broken = serde_json::from_str::<u32>("{").unwrap_err();
        let problem = json_error(&JsonPayloadError::Deserialize(broken), 8).problem();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.field.as_deref(), Some("body"));
    }
}
