//! Crash tests: the orders process is killed right after each saga step in turn (after the
//! participant answered, before the outcome was persisted — the worst moment), then restarted.
//! Every saga must still end terminal with the invariants of docs/architecture.md#invariants
//! holding.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::{collections::HashMap, time::Duration};

use contracts::{
    inventory::ReservationStatus,
    orders::{Order, OrderStatus, OrdersServiceClient},
    payments::PaymentStatus,
};
use support::{APPROVE, DECLINE, World};
use testkit::{ServiceProcess, free_port};
use uuid::Uuid;

fn start_orders(world: &World, crash_after: Option<&str>) -> (ServiceProcess, u16, u16) {
    let (grpc, admin) = (free_port(), free_port());
    let mut env: HashMap<String, String> = world.orders_vars().into_iter().collect();
    env.insert("ORDERS_GRPC_ADDR".into(), format!("127.0.0.1:{grpc}"));
    env.insert("ORDERS_ADMIN_ADDR".into(), format!("127.0.0.1:{admin}"));
    // A crashed runner's lease must expire quickly for the restarted one to resume.
    env.insert("ORDERS_SAGA_LEASE".into(), "1s".into());
    if let Some(step) = crash_after {
        env.insert("ORDERS_FAULT_CRASH_AFTER".into(), step.into());
    }
    let process =
        ServiceProcess::start("orders", env!("CARGO_BIN_EXE_orders").as_ref(), &env).unwrap();
    (process, grpc, admin)
}

async fn ready(
    process: &mut ServiceProcess,
    grpc: u16,
    admin: u16,
) -> OrdersServiceClient<tonic::transport::Channel> {
    process
        .wait_until_ready(
            &format!("http://127.0.0.1:{admin}/readyz"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    OrdersServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .unwrap()
}

/// Places one order on a process that crashes after `step`, restarts orders, and returns the
/// order once terminal.
async fn crash_after(step: &str, card: &str, stock: i64, quantity: i64) -> (World, Order) {
    let mut world = World::participants(vec![]).await;
    world.product("CRASH-1", 1500, stock).await;

    let (mut doomed, grpc, admin) = start_orders(&world, Some(step));
    world.orders = Some(ready(&mut doomed, grpc, admin).await);
    // The runner may crash before PlaceOrder even answers: the order was committed either way.
    let _ = world
        .place(Uuid::now_v7(), &[("CRASH-1", quantity)], card, "k")
        .await;
    let exit = doomed.wait_for_exit(Duration::from_secs(30)).await.unwrap();
    assert_ne!(
        exit,
        Some(0),
        "the fault knob must have crashed the process after {step}"
    );
    assert!(
        doomed
            .logs()
            .iter()
            .any(|line| line.contains("fault injection")),
        "crashed by the knob, not by accident"
    );

    let (mut resumed, grpc, admin) = start_orders(&world, None);
    world.orders = Some(ready(&mut resumed, grpc, admin).await);
    let pool = world.orders_db.pool().await;
    let (order_id,): (Uuid,) = sqlx::query_as("SELECT id FROM orders WHERE idempotency_key = 'k'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let order = world
        .terminal(&order_id.to_string(), Duration::from_secs(30))
        .await;
    resumed.terminate().await.unwrap();
    assert_eq!(
        resumed
            .wait_for_exit(Duration::from_secs(10))
            .await
            .unwrap(),
        Some(0)
    );
    (world, order)
}

/// The invariants of docs/architecture.md#invariants: stock conserved; no CONFIRMED order without
/// committed stock and an authorization; a cancelled order holds neither; no payment captured
/// twice.
async fn assert_invariants(world: &World, order: &Order) {
    world.assert_stock_conserved("CRASH-1").await;
    let reservation = world.reservation(&order.id).await;
    let payment = world.payment(&order.id).await;
    match order.status() {
        OrderStatus::Confirmed => {
            assert_eq!(
                reservation,
                Some(ReservationStatus::Committed),
                "a confirmed order's units are sold"
            );
            let payment = payment.as_ref().expect("a confirmed order has a payment");
            assert!(matches!(
                payment.status(),
                PaymentStatus::Authorized | PaymentStatus::Captured
            ));
        }
        OrderStatus::Cancelled => {
            assert!(
                !matches!(
                    reservation,
                    Some(ReservationStatus::Reserved | ReservationStatus::Committed)
                ),
                "a cancelled order holds no stock: {reservation:?}"
            );
            if let Some(payment) = &payment {
                assert!(
                    !matches!(
                        payment.status(),
                        PaymentStatus::Authorized | PaymentStatus::Captured
                    ),
                    "a cancelled order holds no money: {:?}",
                    payment.status()
                );
            }
        }
        other => panic!("not terminal: {other:?}"),
    }
    if let Some(payment) = payment {
        let captures = payment
            .events
            .iter()
            .filter(|e| e.kind == "captured")
            .count();
        assert!(captures <= 1, "captured {captures} times");
    }
}

#[tokio::test]
async fn a_crash_after_reserving_stock_still_confirms() {
    let (world, order) = crash_after("reserve_stock", APPROVE, 5, 2).await;
    assert_eq!(order.status(), OrderStatus::Confirmed);
    assert_invariants(&world, &order).await;
    assert_eq!(
        world.available("CRASH-1").await,
        3,
        "reserved once despite the re-run"
    );
    world.stop();
}

#[tokio::test]
async fn a_crash_after_authorizing_the_payment_still_confirms() {
    let (world, order) = crash_after("authorize_payment", APPROVE, 5, 1).await;
    assert_eq!(order.status(), OrderStatus::Confirmed);
    assert_invariants(&world, &order).await;
    world.stop();
}

#[tokio::test]
async fn a_crash_after_committing_the_stock_still_confirms() {
    let (world, order) = crash_after("commit_stock", APPROVE, 5, 1).await;
    assert_eq!(order.status(), OrderStatus::Confirmed);
    assert_invariants(&world, &order).await;
    assert_eq!(
        world.available("CRASH-1").await,
        4,
        "sold once despite the re-run"
    );
    world.stop();
}

#[tokio::test]
async fn a_crash_after_confirming_keeps_the_order_confirmed() {
    let (world, order) = crash_after("confirm", APPROVE, 5, 1).await;
    assert_eq!(order.status(), OrderStatus::Confirmed);
    assert_invariants(&world, &order).await;
    world.stop();
}

#[tokio::test]
async fn a_crash_after_releasing_stock_still_cancels() {
    let (world, order) = crash_after("release_stock", DECLINE, 5, 2).await;
    assert_eq!(order.status(), OrderStatus::Cancelled);
    assert_eq!(order.cancellation_reason, "payment_declined");
    assert_invariants(&world, &order).await;
    assert_eq!(world.available("CRASH-1").await, 5);
    world.stop();
}

#[tokio::test]
async fn a_crash_after_cancelling_keeps_the_order_cancelled() {
    let (world, order) = crash_after("cancel", APPROVE, 1, 3).await;
    assert_eq!(order.status(), OrderStatus::Cancelled);
    assert_eq!(order.cancellation_reason, "out_of_stock");
    assert_invariants(&world, &order).await;
    world.stop();
}
