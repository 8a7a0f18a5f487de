//! What happens after confirmation, without an orchestrator: inventory and payments react to
//! order events (choreography), and orders records what they report back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use contracts::{
    inventory::ReservationStatus,
    orders::{CancelOrderRequest, Order, OrderStatus},
    payments::PaymentStatus,
};
use support::{APPROVE, World};
use uuid::Uuid;

const SETTLE: Duration = Duration::from_secs(30);

async fn settled(world: &World, id: &str, payment: &str, stock: &str) -> Order {
    testkit::poll_until(
        &format!("payment {payment} and stock {stock}"),
        SETTLE,
        || async {
            let order = world.order(id).await;
            (order.payment_status == payment && order.stock_status == stock).then_some(order)
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_confirmed_order_is_captured_and_its_stock_committed() {
    let world = World::full(vec![], vec![]).await;
    world.product("VASE-1", 3900, 4).await;
    let placed = world
        .place(Uuid::now_v7(), &[("VASE-1", 2)], APPROVE, "k")
        .await
        .unwrap();
    assert_eq!(
        world.terminal(&placed.id, SETTLE).await.status(),
        OrderStatus::Confirmed
    );
    let order = settled(&world, &placed.id, "captured", "committed").await;
    let steps: Vec<_> = order.timeline.iter().map(|s| s.step.as_str()).collect();
    assert!(
        steps.contains(&"capture_payment") && steps.contains(&"commit_stock"),
        "{steps:?}"
    );
    assert_eq!(
        world.payment(&order.id).await.unwrap().status(),
        PaymentStatus::Captured
    );
    assert_eq!(
        world.reservation(&order.id).await,
        Some(ReservationStatus::Committed)
    );
    let (_, available, reserved, sold) = world.assert_stock_conserved("VASE-1").await;
    assert_eq!((available, reserved, sold), (2, 0, 2));
    world.stop();
}

/// One unit of `sku` ordered, confirmed, captured and committed, then cancelled by its
/// customer: the customer, the order's id and the order `CancelOrder` answered.
async fn cancelled_after_confirmation(world: &World, sku: &str) -> (Uuid, String, Order) {
    let customer = Uuid::now_v7();
    let placed = world
        .place(customer, &[(sku, 1)], APPROVE, "k")
        .await
        .unwrap();
    world.terminal(&placed.id, SETTLE).await;
    settled(world, &placed.id, "captured", "committed").await;
    let cancelled = world
        .orders()
        .cancel_order(CancelOrderRequest {
            order_id: placed.id.clone(),
            customer_id: customer.to_string(),
            reason: "changed my mind".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    (customer, placed.id, cancelled)
}

#[tokio::test]
async fn cancelling_a_confirmed_order_refunds_and_restocks() {
    let world = World::full(vec![], vec![]).await;
    world.product("DESK-1", 25000, 3).await;
    let (_, id, cancelled) = cancelled_after_confirmation(&world, "DESK-1").await;
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(cancelled.cancellation_reason, "customer_request");

    settled(&world, &id, "refunded", "restocked").await;
    let payment = world.payment(&id).await.unwrap();
    assert_eq!(payment.status(), PaymentStatus::Refunded);
    assert_eq!(
        payment.refunded.unwrap().amount_minor,
        payment.captured.unwrap().amount_minor
    );
    assert_eq!(world.available("DESK-1").await, 3, "restocked");
    world.assert_stock_conserved("DESK-1").await;
    world.stop();
}

#[tokio::test]
async fn a_broker_outage_delays_events_but_loses_and_duplicates_nothing() {
    let upstream = testkit::host_port(&testkit::amqp_url().await).unwrap();
    let broker = testkit::TcpProxy::start(&upstream).await;
    let amqp_url = broker.rewrite_url(&testkit::amqp_url().await);
    let mut world = World::participants_via(vec![], amqp_url).await;
    world.start_orders(vec![]).await;
    world.product("LAMP-9", 1200, 20).await;

    broker.cut();
    let mut ids = Vec::new();
    for n in 0..5 {
        let order = world
            .place(Uuid::now_v7(), &[("LAMP-9", 1)], APPROVE, &format!("k{n}"))
            .await
            .unwrap();
        ids.push(order.id);
    }
    // The saga speaks gRPC, so checkout goes on without the broker; the events wait in the
    // outboxes.
    for id in &ids {
        assert_eq!(
            world.terminal(id, SETTLE).await.status(),
            OrderStatus::Confirmed
        );
    }
    assert!(
        world.unpublished_events().await >= 10,
        "placed + confirmed per order"
    );

    broker.restore();
    for id in &ids {
        settled(&world, id, "captured", "committed").await;
    }
    testkit::poll_until("every outbox row published", SETTLE, || async {
        (world.unpublished_events().await == 0).then_some(())
    })
    .await
    .unwrap();
    // Exactly once: one capture per payment, five units sold, not more.
    for id in &ids {
        let payment = world.payment(id).await.unwrap();
        let captures = payment
            .events
            .iter()
            .filter(|e| e.kind == "captured")
            .count();
        assert_eq!(captures, 1, "order {id}");
    }
    let (_, available, reserved, sold) = world.assert_stock_conserved("LAMP-9").await;
    assert_eq!((available, reserved, sold), (15, 0, 5));
    world.stop();
}

/// Publishes `event` to the world's exchange as its own service's relay would; returns its id.
async fn publish<E: messaging::IntegrationEvent>(world: &World, event: &E) -> Uuid {
    let envelope = messaging::Envelope::new(event);
    testkit::events::publish(
        &world.amqp_url,
        &world.exchange,
        testkit::events::Outgoing {
            routing_key: envelope.routing_key,
            message_id: envelope.event_id.to_string(),
            event_type: &envelope.event_type,
            body: &envelope.bytes,
        },
    )
    .await;
    envelope.event_id
}

#[tokio::test]
async fn late_reports_never_move_an_order_or_its_summary_backwards() {
    let world = World::full(vec![], vec![]).await;
    world.product("LAMP-1", 4200, 2).await;
    let (customer, id, _) = cancelled_after_confirmation(&world, "LAMP-1").await;
    settled(&world, &id, "refunded", "restocked").await;

    // The capture and the commit come round again, as a retry tier would bring back an event
    // that failed once, long after what followed it: both the write model (orders.fulfilment)
    // and the read model (orders.order-summaries) consume them.
    let payment = world.payment(&id).await.unwrap();
    let ids = [
        publish(
            &world,
            &contracts::events::PaymentCaptured {
                payment_id: payment.id.clone(),
                order_id: id.clone(),
                amount: payment.captured.clone(),
            },
        )
        .await,
        publish(
            &world,
            &contracts::events::ReservationCommitted {
                order_id: id.clone(),
                lines: vec![],
            },
        )
        .await,
    ];
    let pool = world.orders_db.pool().await;
    testkit::poll_until("both consumers handled both events", SETTLE, || async {
        let (handled,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM inbox WHERE message_id = ANY($1)")
                .bind(&ids[..])
                .fetch_one(&pool)
                .await
                .unwrap();
        (handled == 4).then_some(())
    })
    .await
    .unwrap();
    pool.close().await;

    let order = world.order(&id).await;
    assert_eq!(
        (order.payment_status.as_str(), order.stock_status.as_str()),
        ("refunded", "restocked"),
        "the order went back"
    );
    let summary = world
        .orders()
        .list_orders(contracts::orders::ListOrdersRequest {
            customer_id: customer.to_string(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .orders
        .remove(0);
    assert_eq!(
        (
            summary.status(),
            summary.payment_status.as_str(),
            summary.stock_status.as_str()
        ),
        (OrderStatus::Cancelled, "refunded", "restocked"),
        "the summary went back"
    );
    world.stop();
}
