//! The inventory binary as a real process: health, readiness (without Redis), metrics, the demo
//! seed and graceful shutdown.

use std::{collections::HashMap, time::Duration};

use contracts::inventory::{GetProductRequest, InventoryServiceClient, ListProductsRequest};
use testkit::{RunningService, ServiceProcess, free_port};

/// `pairs`, plus the broker and an exchange (and queue prefix) unique to this test, so the
/// relay and the order-event consumer run as in production without meeting other tests.
async fn environment(pairs: &[(&str, String)]) -> HashMap<String, String> {
    let exchange = testkit::unique_name("inventory.test.events");
    let mut env: HashMap<String, String> = [
        ("INVENTORY_AMQP_URL", testkit::amqp_url().await),
        ("INVENTORY_QUEUE_PREFIX", format!("{exchange}.")),
        ("INVENTORY_EVENTS_EXCHANGE", exchange),
        ("INVENTORY_QUEUE_EXPIRY", "60s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

#[tokio::test]
async fn the_binary_serves_health_readiness_metrics_and_stops_cleanly_on_sigterm() {
    let db = testkit::fresh_database().await;
    let env = environment(&[
        ("INVENTORY_DATABASE_URL", db.url.clone()),
        ("INVENTORY_REDIS_URL", testkit::redis_url().await),
        ("INVENTORY_CACHE_PREFIX", testkit::unique_name("inventory")),
        ("INVENTORY_SEED_DEMO", "true".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
    ])
    .await;
    let mut service =
        RunningService::start("inventory", env!("CARGO_BIN_EXE_inventory").as_ref(), env)
            .await
            .unwrap();
    service
        .assert_healthy("shop.inventory.v1.InventoryService")
        .await;
    let readyz: serde_json::Value = reqwest::get(format!("{}/readyz", service.admin_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        readyz["checks"].get("redis").is_none(),
        "Redis is not a readiness dependency"
    );

    let mut inventory = InventoryServiceClient::connect(service.grpc_endpoint())
        .await
        .unwrap();
    let page = inventory
        .list_products(ListProductsRequest {
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.products.len(),
        inventory::seed::DEMO_CATALOG.len(),
        "the demo catalog"
    );
    for _ in 0..2 {
        inventory
            .get_product(GetProductRequest {
                sku: "MUG-CERAMIC-350".into(),
            })
            .await
            .unwrap();
    }
    let missing = inventory
        .get_product(GetProductRequest {
            sku: "NO-SUCH-SKU".into(),
        })
        .await;
    assert!(missing.is_err());

    let scrape = service.scrape().await;
    let count = |name: &str, labels: &[(&str, &str)]| scrape.value(name, labels);
    assert_eq!(
        count(
            "grpc_server_requests_total",
            &[("method", "GetProduct"), ("code", "Ok")]
        ),
        Some(2.0),
        "two successful GetProduct calls:\n{}",
        scrape.text()
    );
    assert_eq!(
        count(
            "grpc_server_requests_total",
            &[("method", "GetProduct"), ("code", "NotFound")]
        ),
        Some(1.0),
        "one GetProduct of a missing SKU:\n{}",
        scrape.text()
    );
    assert!(
        count(
            "inventory_cache_requests_total",
            &[("kind", "product"), ("result", "hit")]
        )
        .is_some_and(|hits| hits >= 1.0),
        "cache hit counter missing:\n{}",
        scrape.text()
    );
    assert!(
        count(
            "inventory_cache_requests_total",
            &[("kind", "product"), ("result", "miss")]
        )
        .is_some_and(|misses| misses >= 1.0),
        "cache miss counter missing:\n{}",
        scrape.text()
    );
    assert!(
        count("inventory_catalog_db_reads_total", &[]).is_some_and(|reads| reads >= 1.0),
        "db read counter missing:\n{}",
        scrape.text()
    );

    // The background workers are up: the relay is connected to the broker, the order-event
    // consumer is consuming (and the sweeper ticks) when SIGTERM arrives.
    testkit::poll_until(
        "the relay and the consumer to connect",
        Duration::from_secs(15),
        || async {
            let logs = service.process.logs();
            let logged = |needle: &str| logs.iter().any(|line| line.contains(needle));
            (logged("outbox relay connected") && logged("consuming")).then_some(())
        },
    )
    .await
    .unwrap();

    let code = service.stop(Duration::from_secs(5)).await.unwrap();
    assert_eq!(code, Some(0), "SIGTERM must lead to a clean exit");
    // The workers stopped on their own rather than being abandoned. (The log collector reads
    // the closed pipes a moment after the exit, hence the polling.)
    let logs = testkit::poll_until(
        "the workers' last log lines",
        Duration::from_secs(5),
        || async {
            let logs = service.process.logs();
            let logged = |needle: &str| logs.iter().any(|line| line.contains(needle));
            (logged("outbox relay stopped") && logged("consumer stopped")).then_some(logs)
        },
    )
    .await
    .unwrap();
    assert!(
        !logs.iter().any(|line| line.contains("still busy")),
        "no worker outlived the grace period"
    );
}

#[tokio::test]
async fn the_service_is_ready_and_answers_without_redis() {
    let db = testkit::fresh_database().await;
    let (grpc_port, admin_port) = (free_port(), free_port());
    let env = environment(&[
        ("INVENTORY_DATABASE_URL", db.url.clone()),
        ("INVENTORY_GRPC_ADDR", format!("127.0.0.1:{grpc_port}")),
        ("INVENTORY_ADMIN_ADDR", format!("127.0.0.1:{admin_port}")),
        (
            "INVENTORY_REDIS_URL",
            format!("redis://127.0.0.1:{}", free_port()),
        ),
        ("INVENTORY_SEED_DEMO", "true".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
    ])
    .await;
    let mut process =
        ServiceProcess::start("inventory", env!("CARGO_BIN_EXE_inventory").as_ref(), &env).unwrap();
    process
        .wait_until_ready(
            &format!("http://127.0.0.1:{admin_port}/readyz"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let mut inventory = InventoryServiceClient::connect(format!("http://127.0.0.1:{grpc_port}"))
        .await
        .unwrap();
    for _ in 0..3 {
        let product = inventory
            .get_product(GetProductRequest {
                sku: "MUG-CERAMIC-350".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap();
        assert_eq!(product.available, 120);
    }
    let warnings: Vec<String> = process
        .logs()
        .into_iter()
        .filter(|line| line.contains("Redis unavailable"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning per outage, not one per read: {warnings:?}"
    );
    process.terminate().await.unwrap();
    assert_eq!(
        process.wait_for_exit(Duration::from_secs(5)).await.unwrap(),
        Some(0)
    );
}

#[tokio::test]
async fn invalid_configuration_stops_the_binary_with_a_message_naming_the_variable() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_inventory"))
        .env_clear()
        .env("INVENTORY_RESERVATION_TTL", "forever")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(logs.contains("INVENTORY_RESERVATION_TTL"), "{logs}");
}
