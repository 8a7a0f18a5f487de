//! A customer's journey through the gateway, against the real services: register, log in,
//! browse, order with an idempotency key, watch checkout settle, list orders, see the payment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Parts, World, spawn_gateway};

async fn world() -> (World, support::TestGateway, String) {
    let world = World::start(Parts {
        inventory: 1,
        everything: true,
    })
    .await;
    let gateway = spawn_gateway(world.gateway_vars()).await;
    let admin = world.admin(&gateway).await;
    (world, gateway, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_login_browse_order_and_see_it_confirmed() {
    let (world, gateway, admin) = world().await;
    gateway.seed(&admin, "MUG-1", 1299, 10).await;
    gateway.seed(&admin, "TEA-1", 450, 10).await;
    let (token, user_id) = gateway.sign_up("ada@example.com").await;

    let me: Value = gateway
        .get("/api/v1/me", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["role"], "customer");

    let page = gateway.get("/api/v1/products?page_size=1", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers().contains_key("ratelimit-remaining"));
    let page: Value = page.json().await.unwrap();
    assert_eq!(page["products"].as_array().unwrap().len(), 1);
    let cursor = page["next_page_token"].as_str().expect("a second page");
    let second: Value = gateway
        .get(
            &format!("/api/v1/products?page_size=1&page_token={cursor}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let skus: Vec<&str> = [&page, &second]
        .iter()
        .map(|p| p["products"][0]["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["MUG-1", "TEA-1"]);
    let product: Value = gateway
        .get("/api/v1/products/MUG-1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        product["price"],
        json!({"amount_minor": 1299, "currency": "EUR"})
    );

    let placed = gateway
        .place(&token, "journey-1", &[("MUG-1", 2), ("TEA-1", 1)])
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let location = placed.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = placed.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/orders/{}", order["id"].as_str().unwrap())
    );
    assert_eq!(order["customer_id"], user_id.as_str());
    assert_eq!(
        order["total"],
        json!({"amount_minor": 2 * 1299 + 450, "currency": "EUR"})
    );

    let id = order["id"].as_str().unwrap();
    let settled = gateway.settled(&token, id).await;
    assert_eq!(settled["status"], "CONFIRMED", "{settled}");
    let steps: Vec<&str> = settled["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["step"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"reserve_stock"), "{steps:?}");

    let listed = gateway
        .my_orders_until(&token, |orders| {
            orders.iter().any(|o| o["status"] == "CONFIRMED")
        })
        .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);

    let payment: Value = gateway
        .get(&format!("/api/v1/orders/{id}/payment"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment["order_id"], id);
    assert!(
        ["AUTHORIZED", "CAPTURED"].contains(&payment["status"].as_str().unwrap()),
        "{payment}"
    );
    gateway.stop().await;
    world.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_idempotency_key_places_one_order() {
    let (world, gateway, admin) = world().await;
    gateway.seed(&admin, "PEN-1", 199, 10).await;
    let (token, _) = gateway.sign_up("bob@example.com").await;

    let first: Value = gateway
        .place(&token, "retry-me", &[("PEN-1", 1)])
        .await
        .json()
        .await
        .unwrap();
    let again = gateway.place(&token, "retry-me", &[("PEN-1", 1)]).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);

    let conflicting = gateway.place(&token, "retry-me", &[("PEN-1", 3)]).await;
    support::problem(conflicting, StatusCode::CONFLICT).await;
    let missing_key = gateway
        .post(
            "/api/v1/orders",
            Some(&token),
            &json!({"lines": [{"sku": "PEN-1", "quantity": 1}], "payment_method": support::APPROVE}),
        )
        .await;
    let problem = support::problem(missing_key, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["field"], "Idempotency-Key");

    let id = first["id"].as_str().unwrap();
    gateway.settled(&token, id).await;
    let orders = gateway
        .my_orders_until(&token, |orders| !orders.is_empty())
        .await;
    assert_eq!(orders.len(), 1, "one order for one key: {orders:?}");
    gateway.stop().await;
    world.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_order_event_stream_delivers_every_step_up_to_the_capture() {
    let (world, gateway, admin) = world().await;
    gateway.seed(&admin, "LAMP-1", 2500, 5).await;
    let (token, _) = gateway.sign_up("cy@example.com").await;
    let order: Value = gateway
        .place(&token, "sse-1", &[("LAMP-1", 1)])
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();

    // As the storefront does: a stream ticket for this order, then EventSource with it in the
    // URL (the bearer token never is).
    let ticket: Value = gateway
        .post(
            &format!("/api/v1/orders/{id}/stream-tickets"),
            Some(&token),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let ticket = ticket["ticket"].as_str().unwrap();
    let with_token = gateway
        .client
        .get(format!(
            "{}/api/v1/orders/{id}/events?access_token={token}",
            gateway.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_token.status(),
        StatusCode::UNAUTHORIZED,
        "a bearer token in the URL is not a credential"
    );
    let mut stream = gateway
        .client
        .get(format!(
            "{}/api/v1/orders/{id}/events?ticket={ticket}",
            gateway.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
        .await
        .expect("events keep coming")
        .unwrap()
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The stream ended by itself after the settling step: one `step` event per timeline step,
    // its id the step's sequence, up to the capture.
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert!(text.starts_with("event: step\nid: "), "{text}");
    let last = events.last().unwrap();
    assert_eq!(last["status"], "CONFIRMED", "{text}");
    assert_eq!(last["step"], "capture_payment", "{text}");
    assert_eq!(last["settled"], true, "{text}");
    let order: Value = gateway
        .get(&format!("/api/v1/orders/{id}"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let timeline: Vec<&Value> = order["timeline"].as_array().unwrap().iter().collect();
    assert_eq!(events.len(), timeline.len(), "{text}");
    for (event, step) in events.iter().zip(timeline) {
        assert_eq!(event["sequence"], step["sequence"]);
        assert_eq!(event["step"], step["step"]);
    }
    gateway.stop().await;
    world.stop();
}
