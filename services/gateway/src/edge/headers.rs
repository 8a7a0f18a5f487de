//! Security headers on every response: what a browser may do with what the gateway serves.
//!
//! | header | value | stops |
//! |---|---|---|
//! | `Content-Security-Policy` | [`CONTENT_SECURITY_POLICY`]: only this origin's scripts, styles, images and connections; no plugins, no `<base>`, not framed | injected scripts (XSS) running or phoning home; clickjacking |
//! | `X-Content-Type-Options` | `nosniff` | a browser running a JSON body or an upload as script |
//! | `Referrer-Policy` | `no-referrer` | URLs (order ids, stream tickets) leaking to other sites |
//! | `X-Frame-Options` | `DENY` | framing, for browsers older than `frame-ancestors` |
//! | `Cross-Origin-Opener-Policy` | `same-origin` | other windows reaching into ours |
//! | `Permissions-Policy` | camera, microphone, geolocation, payment off | features the shop never uses |
//!
//! They are defaults: a handler that needs a different policy sets its own (the API docs page
//! allows its one inline script and style by hash, see `api::docs`), and it is kept.

use actix_web::middleware::DefaultHeaders;

/// The storefront's policy: everything from this origin only, nothing inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The middleware that adds them to every response that does not have them.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("content-security-policy", CONTENT_SECURITY_POLICY))
        .add(("x-content-type-options", "nosniff"))
        .add(("referrer-policy", "no-referrer"))
        .add(("x-frame-options", "DENY"))
        .add(("cross-origin-opener-policy", "same-origin"))
        .add((
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ))
}
