//! The edge's guarantees against the real binaries, over HTTP only:
//!
//! * security: bad credentials are 401, another customer's order is 404, a customer on an admin
//!   route is 403, an oversized body is 413, too many requests are 429;
//! * load balancing: with two inventory processes, round-robin gives each its share, and when one
//!   is killed (SIGKILL, no goodbye) mid-run, no retryable read is lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{
    system::{Options, System},
    world::{bad_tokens, metric, problem},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_tokens_others_orders_admin_routes_big_bodies_and_floods_are_refused() {
    let system = System::start(Options {
        // Low enough for a test to reach, high enough for the steps before it.
        gateway_env: vec![
            ("GATEWAY_RATE_LIMIT_PER_MINUTE", "60".to_owned()),
            ("GATEWAY_RATE_LIMIT_BURST", "40".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let api = &system.api;
    let admin = system.admin().await;
    api.seed(&admin, "SAFE-1", 5000, 5).await;
    let (alice, alice_id) = api.sign_up("alice@example.com").await;
    let (mallory, _) = api.sign_up("mallory@example.com").await;

    for (case, token) in bad_tokens(&system.signing_pem, &alice, &alice_id) {
        let response = api.get("/api/v1/orders", token.as_deref()).await;
        let body = problem(response, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["title"], "Unauthorized", "{case}");
    }

    let order: Value = api
        .place(&alice, "mine", &[("SAFE-1", 1)])
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    for path in [
        format!("/api/v1/orders/{id}"),
        format!("/api/v1/orders/{id}/payment"),
    ] {
        problem(api.get(&path, Some(&mallory)).await, StatusCode::NOT_FOUND).await;
    }

    let upsert = api
        .request(Method::PUT, "/api/v1/admin/products/HACK-1", Some(&mallory))
        .json(&json!({"name": "Cheap", "price": {"amount_minor": 1, "currency": "EUR"}}))
        .send()
        .await
        .unwrap();
    problem(upsert, StatusCode::FORBIDDEN).await;

    let huge = "x".repeat(200 * 1024);
    let oversized = api
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"email": "big@example.com", "password": huge}),
        )
        .await;
    problem(oversized, StatusCode::PAYLOAD_TOO_LARGE).await;

    // The burst is shared by every request this client sent; keep going until it runs out.
    let limited = testkit::poll_until("a 429", std::time::Duration::from_secs(30), || async {
        let response = api.get("/api/v1/products", None).await;
        (response.status() == StatusCode::TOO_MANY_REQUESTS).then_some(response)
    })
    .await
    .unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_inventory_processes_share_reads_and_killing_one_loses_no_read() {
    let mut system = System::start(Options {
        inventory_replicas: 2,
        gateway_env: vec![
            ("GATEWAY_INVENTORY_LB_STRATEGY", "round_robin".to_owned()),
            // This test is one client sending bursts: not what the rate limiter is for.
            ("GATEWAY_RATE_LIMIT_PER_MINUTE", "100000".to_owned()),
            ("GATEWAY_RATE_LIMIT_BURST", "10000".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let admin = system.admin().await;
    system.api.seed(&admin, "SHARE-1", 900, 5).await;
    let picks = |metrics: &str, replica: &testkit::RunningService| {
        let series = format!(
            r#"upstream_picks_total{{upstream="inventory",endpoint="{}"}}"#,
            replica.grpc_endpoint()
        );
        metric(metrics, &series).unwrap_or(0.0)
    };

    let before = system.api.metrics().await;
    for _ in 0..20 {
        let response = system.api.get("/api/v1/products/SHARE-1", None).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let after = system.api.metrics().await;
    let shares: Vec<f64> = system
        .inventory
        .iter()
        .map(|replica| picks(&after, replica) - picks(&before, replica))
        .collect();
    assert_eq!(shares, [10.0, 10.0], "round-robin, strictly in turn");

    let mut failures = Vec::new();
    for round in 0..10 {
        if round == 3 {
            let doomed = &mut system.inventory[1].process;
            doomed.kill().await.unwrap();
            doomed
                .wait_for_exit(std::time::Duration::from_secs(10))
                .await
                .unwrap();
        }
        let api = &system.api;
        let reads = (0..8).map(|_| async {
            let (list, one) = tokio::join!(
                api.get("/api/v1/products", None),
                api.get("/api/v1/products/SHARE-1", None)
            );
            [list.status(), one.status()]
        });
        for statuses in futures::future::join_all(reads).await {
            failures.extend(statuses.into_iter().filter(|s| *s != StatusCode::OK));
        }
    }
    assert!(failures.is_empty(), "reads lost: {failures:?}");
    let metrics = system.api.metrics().await;
    let ejections = metric(
        &metrics,
        &format!(
            r#"load_balancer_ejections_total{{balancer="inventory",endpoint="{}"}}"#,
            system.inventory[1].grpc_endpoint()
        ),
    );
    assert_eq!(
        ejections,
        Some(1.0),
        "the dead process was ejected: {metrics}"
    );
    system.stop().await;
}
