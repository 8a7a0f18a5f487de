//! What every request passes through before a handler sees it, outermost first:
//!
//! ```text
//! normalize    `%61` → `a` (unreserved only), `//` merged, trailing `/` trimmed: every spelling of a route is that route
//! headers      security headers (CSP, nosniff, Referrer-Policy, frame-ancestors) on every response
//! request_id   x-request-id accepted or generated; echoed on the response; task-local scope
//! compression  gzip when the client accepts it (tower-http; never event streams)
//! observe      span continuing a trusted caller's W3C trace (others: a new trace linking to it); RED metrics
//! auth         a bearer token, if any, verified against the JWKS → Identity in the extensions
//! rate_limit   GCRA in Redis per user (per IP when anonymous), local fallback; RateLimit-* headers
//! limits       one deadline for the whole request body (408)
//! handler      extractors enforce body size (413), JSON shape (400), identity (401/403)
//! ```
//!
//! The order matters: the request id must exist before the span that logs it; identity before
//! the rate limiter, which keys on it; and every layer answers with a response rather than an
//! `Err`, so the outer layers (request id, metrics) see and tag every outcome.
//!
//! [`app`] builds that stack around the routes. Each layer is an axum `from_fn` middleware or a
//! tower-http layer, the same `tower::Layer` kind tonic's servers are built from. Normalisation
//! wraps the router itself rather than being one of its layers: layers added to an axum router
//! run after routing, and the point is to route the normalised path. Requests that match no route
//! fall through to the storefront's static files (tower-http's `ServeDir`), and from there to a
//! 404 problem.

pub mod client_ip;
pub mod extract;
pub mod headers;
pub mod limits;
pub mod observe;
pub mod request_id;

use std::{path::Path, sync::Arc};

use axum::{
    Extension, Router,
    extract::{MatchedPath, Request},
    handler::HandlerWithoutStateExt as _,
    http::{Method, Uri},
    middleware::{from_fn, from_fn_with_state},
    response::Response,
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::{compression::CompressionLayer, services::ServeDir};

use crate::{
    api::{self, docs::OpenApiJson},
    auth, ratelimit,
    state::Gateway,
};

/// The whole HTTP application: `routes` (the `/api/v1` router), the docs, the storefront in
/// `static_dir`, and the middleware above around all of them.
pub fn app(
    gateway: Arc<Gateway>,
    routes: Router<Arc<Gateway>>,
    static_dir: &Path,
    openapi: OpenApiJson,
) -> Router {
    let files = ServeDir::new(static_dir).fallback(extract::not_found.into_service());
    let routed = routes
        .route("/api/openapi.json", get(api::docs::openapi_json))
        .route("/api/docs", get(api::docs::docs_page))
        .method_not_allowed_fallback(wrong_method)
        .route_layer(from_fn(observe::record_route))
        .fallback_service(files)
        // Outermost first.
        .layer(
            ServiceBuilder::new()
                .layer(from_fn(headers::middleware))
                .layer(from_fn(request_id::middleware))
                .layer(CompressionLayer::new())
                .layer(from_fn_with_state(gateway.clone(), observe::middleware))
                .layer(from_fn_with_state(gateway.clone(), auth::middleware))
                .layer(from_fn_with_state(gateway.clone(), ratelimit::middleware))
                .layer(from_fn_with_state(gateway.clone(), limits::middleware))
                .layer(Extension(openapi)),
        )
        .with_state(gateway);
    Router::new().fallback_service(ServiceBuilder::new().map_request(normalize).service(routed))
}

/// A route that exists, asked with a method it does not have: the same 404 problem as an unknown
/// route, still counted under its route.
async fn wrong_method(route: Option<MatchedPath>, method: Method, uri: Uri) -> Response {
    let mut response = extract::not_found(method, uri).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Percent-encoded unreserved characters decoded (`/%61pi` is `/api`, RFC 3986 §6.2.2.2), `//`
/// merged into `/` and a trailing `/` trimmed, so every spelling of a route is that route.
fn normalize(mut req: Request) -> Request {
    let Some(path) = normalized(req.uri().path()) else {
        return req;
    };
    let path_and_query = match req.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

/// The normal form of `path`, if it is not already in it.
fn normalized(path: &str) -> Option<String> {
    let mut normal = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(mut c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c == '%'
            && let Some(decoded) = rest
                .get(..2)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .filter(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(byte))
        {
            c = char::from(decoded);
            rest = &rest[2..];
        }
        if c == '/' && normal.ends_with('/') {
            continue;
        }
        normal.push(c);
    }
    if normal.len() > 1 && normal.ends_with('/') {
        normal.pop();
    }
    if normal.is_empty() {
        normal.push('/');
    }
    (normal != path).then_some(normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_merged_and_trimmed() {
        assert_eq!(normalized("/api/v1/products"), None);
        assert_eq!(normalized("/"), None);
        assert_eq!(
            normalized("/api//v1/products/").as_deref(),
            Some("/api/v1/products")
        );
        assert_eq!(normalized("//").as_deref(), Some("/"));
        assert_eq!(
            normalized("/%61pi/v1/%70roducts").as_deref(),
            Some("/api/v1/products")
        );
        // Reserved and non-ASCII bytes stay encoded, for the extractors to decode.
        assert_eq!(normalized("/a%2Fb/%20%C3%A9"), None);
    }
}
