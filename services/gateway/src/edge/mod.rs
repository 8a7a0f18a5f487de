//! What every request passes through before a handler sees it, outermost first:
//!
//! ```text
//! normalize    `//` merged, trailing `/` trimmed, so every spelling of a route is that route
//! headers      security headers (CSP, nosniff, Referrer-Policy, frame-ancestors) on every response
//! request_id   x-request-id accepted or generated; echoed on the response; task-local scope
//! Compress     gzip when the client accepts it (event streams opt out)
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

pub mod client_ip;
pub mod extract;
pub mod headers;
pub mod limits;
pub mod observe;
pub mod request_id;
