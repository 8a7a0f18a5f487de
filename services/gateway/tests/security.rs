//! The edge's security rules, against the real users service and its JWKS: authentication,
//! object-level authorization, the admin role, and bounded input — each refusal a problem+json.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{ADMIN_EMAIL, Parts, TestGateway, World, claims, problem, spawn_gateway};

async fn world() -> (World, TestGateway) {
    let world = World::start(Parts {
        inventory: 1,
        everything: true,
    })
    .await;
    let gateway = spawn_gateway(world.gateway_vars()).await;
    (world, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_expired_misaddressed_unsigned_and_tampered_tokens_are_401() {
    let (world, gateway) = world().await;
    let (token, user_id) = gateway.sign_up("eve@example.com").await;
    assert_eq!(
        gateway.get("/api/v1/orders", Some(&token)).await.status(),
        StatusCode::OK
    );
    // The forging helper signs exactly like users does: a correct token passes.
    let forged_ok = world.forge(&claims(&user_id));
    assert_eq!(
        gateway
            .get("/api/v1/orders", Some(&forged_ok))
            .await
            .status(),
        StatusCode::OK
    );

    let cases = support::bad_tokens(&world.signing_pem, &token, &user_id);
    for (case, token) in cases {
        let response = gateway.get("/api/v1/orders", token.as_deref()).await;
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{case}"
        );
        let body = problem(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["title"], "Unauthorized", "{case}");
    }
    // Not a bearer scheme at all.
    let basic = gateway
        .request(Method::GET, "/api/v1/orders", None)
        .header("authorization", "Basic YWRhOnB3")
        .send()
        .await
        .unwrap();
    problem(basic, StatusCode::UNAUTHORIZED).await;
    gateway.stop().await;
    world.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_never_sees_another_customers_order_or_payment() {
    let (world, gateway) = world().await;
    let admin = world.admin(&gateway).await;
    gateway.seed(&admin, "BAG-1", 3000, 5).await;
    let (alice, _) = gateway.sign_up("alice@example.com").await;
    let (mallory, _) = gateway.sign_up("mallory@example.com").await;
    let order: Value = gateway
        .place(&alice, "a-1", &[("BAG-1", 1)])
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    gateway.settled(&alice, id).await;

    for path in [
        format!("/api/v1/orders/{id}"),
        format!("/api/v1/orders/{id}/payment"),
        format!("/api/v1/orders/{id}/events"),
    ] {
        problem(
            gateway.get(&path, Some(&mallory)).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let cancel = gateway
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&mallory),
            &json!({}),
        )
        .await;
    problem(cancel, StatusCode::NOT_FOUND).await;
    // Indistinguishable from an order that does not exist.
    let unknown = gateway
        .get(
            &format!("/api/v1/orders/{}", uuid::Uuid::now_v7()),
            Some(&mallory),
        )
        .await;
    problem(unknown, StatusCode::NOT_FOUND).await;
    // The owner still sees it, and an admin may too.
    assert_eq!(
        gateway
            .get(&format!("/api/v1/orders/{id}"), Some(&alice))
            .await
            .status(),
        200
    );
    assert_eq!(
        gateway
            .get(&format!("/api/v1/orders/{id}"), Some(&admin))
            .await
            .status(),
        200
    );
    let mallorys: Value = gateway
        .get("/api/v1/orders", Some(&mallory))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mallorys["orders"], json!([]));
    gateway.stop().await;
    world.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalog_writes_need_the_admin_role() {
    let (world, gateway) = world().await;
    let (customer, _) = gateway.sign_up("carl@example.com").await;
    let body = json!({"name": "Cheap", "price": {"amount_minor": 1, "currency": "EUR"}});
    let put = |token: Option<String>| {
        let gateway = &gateway;
        let body = body.clone();
        async move {
            gateway
                .request(
                    Method::PUT,
                    "/api/v1/admin/products/HACK-1",
                    token.as_deref(),
                )
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let body_403 = problem(put(Some(customer.clone())).await, StatusCode::FORBIDDEN).await;
    assert!(
        body_403["detail"]
            .as_str()
            .unwrap()
            .contains("administrators")
    );
    problem(put(None).await, StatusCode::UNAUTHORIZED).await;
    let stock = gateway
        .post(
            "/api/v1/admin/products/HACK-1/stock-adjustments",
            Some(&customer),
            &json!({"delta": 100, "reason": "free stuff"}),
        )
        .await;
    problem(stock, StatusCode::FORBIDDEN).await;

    // Registering the address an operator will promote makes nobody an admin by itself.
    let (self_made, _) = gateway.sign_up(ADMIN_EMAIL).await;
    problem(put(Some(self_made)).await, StatusCode::FORBIDDEN).await;
    let admin = world.grant_admin(&gateway, ADMIN_EMAIL).await;
    assert_eq!(put(Some(admin)).await.status(), StatusCode::OK);
    gateway.stop().await;
    world.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_malformed_and_unbounded_requests_are_refused_with_problems() {
    let (world, gateway) = world().await;
    let huge = "x".repeat(70 * 1024);
    let oversized = gateway
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"email": "big@example.com", "password": huge}),
        )
        .await;
    problem(oversized, StatusCode::PAYLOAD_TOO_LARGE).await;

    let malformed = gateway
        .request(Method::POST, "/api/v1/auth/login", None)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    let body = problem(malformed, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["field"], "body");

    let too_many = gateway.get("/api/v1/products?page_size=101", None).await;
    let body = problem(too_many, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["field"], "page_size");

    // A service's INVALID_ARGUMENT names the field.
    let bad_email = gateway
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"email": "not-an-email", "password": support::PASSWORD}),
        )
        .await;
    let body = problem(bad_email, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["field"], "email", "{body}");

    let taken = gateway.sign_up("dup@example.com").await;
    drop(taken);
    let again = gateway
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"email": "dup@example.com", "password": support::PASSWORD}),
        )
        .await;
    problem(again, StatusCode::CONFLICT).await;

    let wrong_password = gateway
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"email": "dup@example.com", "password": "wrong password!!"}),
        )
        .await;
    problem(wrong_password, StatusCode::UNAUTHORIZED).await;

    let (token, _) = gateway.sign_up("lines@example.com").await;
    let not_an_id = gateway.get("/api/v1/orders/42", Some(&token)).await;
    let body = problem(not_an_id, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["field"], "order_id");
    let no_lines = gateway.place(&token, "k", &[]).await;
    let body = problem(no_lines, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["field"], "lines");
    problem(
        gateway.get("/api/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    gateway.stop().await;
    world.stop();
}
