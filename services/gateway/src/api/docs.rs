//! The API's own description: the OpenAPI 3.1 document, generated from the handlers' annotations
//! (utoipa), and a small documentation page that renders it.
//!
//! The page is one self-contained HTML file (`docs.html`, compiled into the binary): no CDN,
//! no Swagger UI bundle, so it works offline, in an air-gapped cluster and in CI. Its one
//! `<style>` and one `<script>` are inline, which the gateway's default Content-Security-Policy
//! forbids; the page's own policy allows exactly those two, by their SHA-256 (CSP level 2
//! hashes), and nothing else inline.

use std::sync::{Arc, OnceLock};

use actix_web::{HttpResponse, get, web};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use sha2::{Digest as _, Sha256};

/// The OpenAPI document, rendered once at start.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<str>);

const DOCS_PAGE: &str = include_str!("docs.html");

#[get("/api/openapi.json")]
pub async fn openapi_json(document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.to_string())
}

#[get("/api/docs")]
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("content-security-policy", docs_policy()))
        .body(DOCS_PAGE)
}

/// The page's policy: the default one, with its inline style and script allowed by hash.
fn docs_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = |tag: &str| {
            inline(DOCS_PAGE, tag).map_or_else(String::new, |body| {
                format!(
                    " 'sha256-{}'",
                    STANDARD.encode(Sha256::digest(body.as_bytes()))
                )
            })
        };
        format!(
            "default-src 'self'; script-src 'self'{}; style-src 'self'{}; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
            hash("script"),
            hash("style"),
        )
    })
}

/// The text between `<tag>` and `</tag>`: what a browser hashes for CSP.
fn inline<'a>(page: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = page.find(&open)? + open.len();
    let end = start + page[start..].find(&format!("</{tag}>"))?;
    Some(&page[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_policy_allows_the_pages_own_inline_code_by_hash_only() {
        let policy = docs_policy();
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(policy.matches("'sha256-").count(), 2, "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(inline(DOCS_PAGE, "script").is_some_and(|body| body.contains("openapi.json")));
    }
}
