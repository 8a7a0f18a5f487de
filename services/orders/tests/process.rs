//! The orders binary as a real process: health, readiness, saga metrics, graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use contracts::orders::{OrderStatus, OrdersServiceClient};
use support::{APPROVE, World};
use testkit::RunningService;
use uuid::Uuid;

#[tokio::test]
async fn the_binary_serves_health_readiness_saga_metrics_and_stops_cleanly() {
    let mut world = World::participants(vec![]).await;
    world.product("PROC-1", 700, 5).await;
    let env = world
        .orders_vars()
        .into_iter()
        .filter(|(k, _)| !k.ends_with("_ADDR"));
    let mut service = RunningService::start("orders", env!("CARGO_BIN_EXE_orders").as_ref(), env)
        .await
        .unwrap();
    service.assert_healthy("shop.orders.v1.OrdersService").await;
    world.orders = Some(
        OrdersServiceClient::connect(service.grpc_endpoint())
            .await
            .unwrap(),
    );
    let order = world
        .place(Uuid::now_v7(), &[("PROC-1", 1)], APPROVE, "k")
        .await
        .unwrap();
    let order = world.terminal(&order.id, Duration::from_secs(20)).await;
    assert_eq!(order.status(), OrderStatus::Confirmed);

    let metrics = service.metrics().await;
    for needle in [
        r#"saga_outcomes_total{outcome="confirmed"} 1"#,
        "saga_step_duration_seconds_bucket",
        r#"grpc_server_requests_total{service="shop.orders.v1.OrdersService",method="PlaceOrder",code="Ok"}"#,
        r#"circuit_breaker_state{breaker="inventory"} 0"#,
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }

    assert_eq!(service.stop(Duration::from_secs(5)).await.unwrap(), Some(0));
    world.stop();
}
