//! The gateway on its own: OpenAPI document, docs page, storefront, request ids, and what a
//! client sees when an upstream is simply not there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::{problem, spawn_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_and_lists_every_route() {
    let gateway = spawn_gateway(vec![]).await;
    let response = gateway.get("/api/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(document["info"]["title"], "Ferroshop API");
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/products", "get"),
        ("/api/v1/products/{sku}", "get"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders", "get"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/cancel", "post"),
        ("/api/v1/orders/{id}/events", "get"),
        ("/api/v1/orders/{id}/payment", "get"),
        ("/api/v1/admin/products/{sku}", "put"),
        ("/api/v1/admin/products/{sku}/stock-adjustments", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    let place = &paths["/api/v1/orders"]["post"];
    assert!(place["security"][0]["bearer"].is_array());
    let parameters = place["parameters"].as_array().unwrap();
    assert!(
        parameters
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_and_the_storefront_work_offline() {
    let gateway = spawn_gateway(vec![]).await;
    let docs = gateway.get("/api/docs", None).await;
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("/api/openapi.json"));
    assert!(!html.contains("<script src"), "no external scripts");
    assert!(!html.contains("cdn"), "no CDN");

    let index = gateway.get("/", None).await;
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(index.text().await.unwrap().contains("Ferroshop"));
    problem(
        gateway.get("/no-such-file.js", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id_and_a_sane_incoming_one_is_echoed() {
    let gateway = spawn_gateway(vec![]).await;
    let generated = gateway.get("/", None).await;
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");

    let echoed = gateway
        .client
        .get(format!("{}/api/v1/missing", gateway.url))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
    let body = problem(echoed, StatusCode::NOT_FOUND).await;
    assert_eq!(
        body["request_id"], "trace-me-42",
        "problems name the request"
    );

    let replaced = gateway
        .client
        .get(format!("{}/", gateway.url))
        .header("x-request-id", "<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(replaced.headers()["x-request-id"], "<script>");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_a_503_problem_without_internals() {
    // Every upstream points at a closed port.
    let gateway = spawn_gateway(vec![("GATEWAY_CALL_TIMEOUT", "500ms".to_owned())]).await;
    let response = gateway.get("/api/v1/products", None).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let body = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(
        body["detail"],
        "the inventory service is unavailable; retry shortly"
    );
    // A well-formed token cannot be checked without the users JWKS: 503, not 401 — the client
    // did nothing wrong. Garbage is refused without asking anyone.
    let response = gateway
        .get("/api/v1/orders", Some(&well_formed_token()))
        .await;
    let body = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        body["detail"].as_str().unwrap().contains("signing keys"),
        "{body}"
    );
    let response = gateway.get("/api/v1/orders", Some("a.b.c")).await;
    problem(response, StatusCode::UNAUTHORIZED).await;
    gateway.stop().await;
}

/// An EdDSA token with a key id, signed by a key nobody published.
fn well_formed_token() -> String {
    users::tokens::SigningKey::generate()
        .unwrap()
        .sign(&serde_json::json!({"sub": "x", "exp": 4_000_000_000_u64}))
        .unwrap()
}
