//! Bounded, validated request input: the gateway's extractors, failing in problem+json.
//!
//! * **Body size**: JSON bodies above `GATEWAY_BODY_LIMIT_BYTES` are refused with 413 while they
//!   stream in (a `Content-Length` above the limit is refused before a byte is read), so a client
//!   cannot make the gateway buffer megabytes.
//! * **Shape**: a body that is not the documented JSON is 400, naming the problem serde found; a
//!   body sent as something other than `application/json` is 415.
//! * **Query and path**: malformed parameters are 400.
//! * **Unknown routes** are 404 problems rather than HTML.
//!
//! axum's own `Json`, `Query` and `Path` answer in plain text with their own wording; these
//! wrappers read the same input and answer with an [`ApiError`] instead, so every refusal a
//! client can get has the same shape. Handlers use them under the same names.
//!
//! Semantic validation (is this an email address, is the quantity positive) stays with the
//! services that own the rules; the gateway bounds sizes and counts, which it can judge alone.

use std::sync::Arc;

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::{Method, Uri, header, request::Parts},
    response::{IntoResponse as _, Response},
};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::{problem::ApiError, state::Gateway};

/// Why a JSON body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the limit (by its `Content-Length`, or as it streamed in).
    TooLarge,
    /// Not sent as JSON (`Content-Type` missing or not `…/json`, `…+json`).
    NotJson,
    /// The body did not arrive within `GATEWAY_BODY_TIMEOUT` (`edge::limits`).
    TimedOut,
    /// Not the JSON the route expects, or the connection broke while it was read.
    Malformed(String),
}

fn json_error(error: &BodyError, limit: usize) -> ApiError {
    match error {
        BodyError::TooLarge => ApiError::PayloadTooLarge { limit },
        BodyError::NotJson => {
            ApiError::UnsupportedMediaType("send the body as application/json".to_owned())
        }
        BodyError::TimedOut => ApiError::RequestTimeout,
        BodyError::Malformed(detail) => ApiError::invalid("body", detail.clone()),
    }
}

/// Whether `content-type` says JSON: `application/json`, any `*/json` or `*/*+json`.
fn is_json(req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.split_once('/').is_some_and(|(_, subtype)| {
        let subtype = subtype.to_ascii_lowercase();
        subtype == "json" || subtype.ends_with("+json")
    })
}

/// The body of `req`, at most `limit` bytes, parsed as `T`.
async fn read_json<T: DeserializeOwned>(req: Request, limit: usize) -> Result<T, BodyError> {
    if !is_json(&req) {
        return Err(BodyError::NotJson);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let bytes = match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => return Err(BodyError::TooLarge),
        Err(error) if super::limits::is_body_timeout(&*error) => return Err(BodyError::TimedOut),
        Err(error) => return Err(BodyError::Malformed(error.to_string())),
    };
    serde_json::from_slice(&bytes).map_err(|error| BodyError::Malformed(error.to_string()))
}

/// A JSON body, bounded by `GATEWAY_BODY_LIMIT_BYTES`; problems as in the module docs.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Gateway>> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, gateway: &Arc<Gateway>) -> Result<Self, ApiError> {
        let limit = gateway.body_limit;
        read_json(req, limit)
            .await
            .map(Json)
            .map_err(|error| json_error(&error, limit))
    }
}

/// An optional JSON body: `None` when there is none, or none that can be read.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<Arc<Gateway>> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, gateway: &Arc<Gateway>) -> Result<Self, ApiError> {
        Ok(Self(read_json(req, gateway.body_limit).await.ok()))
    }
}

/// The query string, parsed as `T`; 400 naming `query` if it does not parse.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(Query)
            .map_err(|error| ApiError::invalid("query", error.to_string()))
    }
}

/// The route's path parameters, parsed as `T`; 400 naming `path` if they do not parse.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| ApiError::invalid("path", rejection.body_text()))
    }
}

/// The answer for a route that does not exist.
pub async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::NotFound(format!("no route for {method} {}", uri.path())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_bodies_are_413_and_bad_ones_400_or_415() {
        let too_big = json_error(&BodyError::TooLarge, 8);
        assert_eq!(too_big.problem().status, 413);
        assert_eq!(json_error(&BodyError::TimedOut, 8).problem().status, 408);
        assert_eq!(json_error(&BodyError::NotJson, 8).problem().status, 415);
        let broken = serde_json::from_str::<u32>("{").unwrap_err();
        let problem = json_error(&BodyError::Malformed(broken.to_string()), 8).problem();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.field.as_deref(), Some("body"));
    }

    #[tokio::test]
    async fn only_json_content_types_are_read_and_the_limit_holds() {
        let request = |content_type: Option<&str>, body: &'static str| {
            let mut builder = Request::builder().method("POST").uri("/");
            if let Some(content_type) = content_type {
                builder = builder.header(header::CONTENT_TYPE, content_type);
            }
            builder.body(axum::body::Body::from(body)).unwrap()
        };
        let read = |req| read_json::<serde_json::Value>(req, 8);
        assert!(read(request(Some("application/json"), "[1]")).await.is_ok());
        assert!(
            read(request(
                Some("application/problem+json; charset=utf-8"),
                "[1]"
            ))
            .await
            .is_ok()
        );
        assert!(matches!(
            read(request(Some("text/plain"), "[1]")).await,
            Err(BodyError::NotJson)
        ));
        assert!(matches!(
            read(request(None, "[1]")).await,
            Err(BodyError::NotJson)
        ));
        assert!(matches!(
            read(request(Some("application/json"), "[1,2,3,4,5]")).await,
            Err(BodyError::TooLarge)
        ));
    }
}
