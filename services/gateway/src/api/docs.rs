//! The API's own description: the OpenAPI 3.1 document, generated from the handlers' annotations
//! (utoipa), and a small documentation page that renders it.
//!
//! The page is one self-contained HTML file (`docs.html`, compiled into the binary): no CDN,
//! no Swagger UI bundle, so it works offline, in an air-gapped cluster and in CI.

use std::sync::Arc;

use actix_web::{HttpResponse, get, web};

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
        .body(DOCS_PAGE)
}
