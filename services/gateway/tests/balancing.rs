//! Client-side load balancing and the circuit breaker's fallback, against real inventory
//! replicas, each behind a TCP proxy a test can cut to make it vanish as a crash would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use support::{Parts, World, metric, spawn_gateway};

async fn catalog(replicas: usize) -> World {
    World::start(Parts {
        inventory: replicas,
        everything: false,
    })
    .await
}

/// A product straight through inventory (no admin token needed).
async fn seed(world: &World, sku: &str) {
    let url = format!("http://{}", world.inventory[0].0.upstream());
    let mut inventory = contracts::inventory::InventoryServiceClient::connect(url)
        .await
        .unwrap();
    inventory
        .upsert_product(contracts::inventory::UpsertProductRequest {
            sku: sku.to_owned(),
            name: format!("Product {sku}"),
            description: "test".into(),
            price: Some(contracts::Money {
                amount_minor: 500,
                currency: "EUR".into(),
            }),
            active: true,
        })
        .await
        .unwrap();
}

fn picks(metrics: &str, world: &World, replica: usize) -> f64 {
    let endpoint = format!("http://{}", world.inventory[replica].0.addr());
    let series = format!(r#"upstream_picks_total{{upstream="inventory",endpoint="{endpoint}"}}"#);
    metric(metrics, &series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_spreads_reads_over_both_inventory_replicas() {
    let world = catalog(2).await;
    seed(&world, "RR-1").await;
    let mut vars = world.gateway_vars();
    vars.push(("GATEWAY_INVENTORY_LB_STRATEGY", "round_robin".to_owned()));
    let gateway = spawn_gateway(vars).await;
    for _ in 0..20 {
        assert_eq!(
            gateway.get("/api/v1/products/RR-1", None).await.status(),
            StatusCode::OK
        );
    }
    let metrics = gateway.metrics().await;
    let (first, second) = (picks(&metrics, &world, 0), picks(&metrics, &world, 1));
    assert_eq!(first + second, 20.0, "{metrics}");
    assert_eq!((first, second), (10.0, 10.0), "strictly in turn");
    gateway.stop().await;
    world.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_replica_mid_run_loses_no_retryable_read() {
    let world = catalog(2).await;
    seed(&world, "KILL-1").await;
    let mut vars = world.gateway_vars();
    vars.push(("GATEWAY_LB_STRATEGY", "least_requests".to_owned()));
    let gateway = spawn_gateway(vars).await;

    let mut failures = Vec::new();
    for round in 0..10 {
        if round == 3 {
            // The second replica dies: open connections drop, new ones are refused.
            world.inventory[1].0.cut();
        }
        let reads = (0..8).map(|_| async {
            let (list, one) = tokio::join!(
                gateway.get("/api/v1/products", None),
                gateway.get("/api/v1/products/KILL-1", None)
            );
            [list.status(), one.status()]
        });
        for statuses in futures::future::join_all(reads).await {
            failures.extend(statuses.into_iter().filter(|s| *s != StatusCode::OK));
        }
    }
    assert!(failures.is_empty(), "reads lost: {failures:?}");
    let metrics = gateway.metrics().await;
    assert!(
        picks(&metrics, &world, 1) > 0.0,
        "the dead replica had its share before"
    );
    // Passive health: the dead replica was ejected after consecutive failures.
    let ejections = metric(
        &metrics,
        &format!(
            r#"load_balancer_ejections_total{{balancer="inventory",endpoint="http://{}"}}"#,
            world.inventory[1].0.addr()
        ),
    );
    assert_eq!(ejections, Some(1.0), "{metrics}");
    gateway.stop().await;
    world.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_inventory_is_down_the_last_good_catalog_page_is_served_marked_stale() {
    let world = catalog(1).await;
    seed(&world, "STALE-1").await;
    let mut vars = world.gateway_vars();
    vars.push(("GATEWAY_BREAKER_FAILURES", "2".to_owned()));
    vars.push(("GATEWAY_BREAKER_OPEN_FOR", "1s".to_owned()));
    let gateway = spawn_gateway(vars).await;

    let fresh = gateway.get("/api/v1/products?page_size=10", None).await;
    assert_eq!(fresh.status(), StatusCode::OK);
    assert!(!fresh.headers().contains_key("x-ferroshop-stale"));
    let fresh: Value = fresh.json().await.unwrap();

    world.inventory[0].0.cut();
    for _ in 0..3 {
        let stale = gateway.get("/api/v1/products?page_size=10", None).await;
        assert_eq!(stale.status(), StatusCode::OK);
        assert_eq!(stale.headers()["x-ferroshop-stale"], "true");
        assert_eq!(stale.headers()["warning"], r#"110 - "Response is Stale""#);
        assert!(stale.headers().contains_key("age"));
        assert_eq!(stale.json::<Value>().await.unwrap(), fresh);
    }
    // A page never seen has no fallback: 503.
    let unseen = gateway.get("/api/v1/products?page_size=3", None).await;
    support::problem(unseen, StatusCode::SERVICE_UNAVAILABLE).await;
    // The breaker opened: later calls were refused without reaching inventory.
    let metrics = gateway.metrics().await;
    assert!(
        metric(
            &metrics,
            r#"circuit_breaker_rejected_total{breaker="inventory"}"#
        )
        .is_some_and(|rejected| rejected >= 1.0),
        "{metrics}"
    );
    assert!(metric(&metrics, "gateway_stale_responses_total").is_some_and(|n| n >= 3.0));

    // Inventory comes back: once the breaker lets probes through, answers are fresh again.
    world.inventory[0].0.restore();
    testkit::poll_until("a fresh catalog page", Duration::from_secs(20), || async {
        let response = gateway.get("/api/v1/products?page_size=3", None).await;
        (response.status() == StatusCode::OK
            && !response.headers().contains_key("x-ferroshop-stale"))
        .then_some(())
    })
    .await
    .unwrap();
    gateway.stop().await;
    world.stop();
}
