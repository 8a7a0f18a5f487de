//! The choreography after confirmation (docs/architecture.md#the-choreography-after-confirmation)
//! and the outbox relay, against a real broker: order events published to this test's exchange
//! reach the `inventory.orders` consumer,
//! whose effects commit with their outbox rows and their inbox row; and what inventory commits
//! to its outbox arrives on the bus byte for byte.
//!
//! Order events are published exactly as the orders service's relay would: a
//! `messaging::Envelope`'s bytes, on its routing key, to the test's exchange. Nothing here
//! sleeps to synchronise: tests poll for an effect, or publish a *marker* event last and wait
//! for its effect ([`drain`]).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use contracts::{
    events::{EventEnvelope, OrderCancelled, OrderConfirmed, StockReleased, StockRestocked},
    inventory::{Reservation, ReservationStatus},
};
use lapin::{
    options::{BasicGetOptions, ConfirmSelectOptions},
    types::ShortString,
};
use messaging::{Envelope, amqp::header_str, consumer::ERROR_HEADER};
use prost::Message as _;
use support::{TestApp, eur, spawn_app};
use testkit::EventProbe;
use tonic::Code;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);
const MARKER_SKU: &str = "MARKER-1";

/// A connection to this test's exchange, bound to `pattern` (to watch what inventory
/// publishes) and able to publish with confirms (to play the orders service).
async fn bus(app: &TestApp, pattern: &str) -> EventProbe {
    let probe = EventProbe::bind(&app.amqp_url, &app.exchange, pattern).await;
    probe
        .channel()
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("publisher confirms");
    probe
}

/// Publishes `envelope` as a relay does, and waits until the broker has taken it.
async fn publish(app: &TestApp, envelope: &Envelope) {
    testkit::events::publish(
        &app.amqp_url,
        &app.exchange,
        testkit::events::Outgoing {
            routing_key: envelope.routing_key,
            message_id: envelope.event_id.to_string(),
            event_type: &envelope.event_type,
            body: &envelope.bytes,
        },
    )
    .await;
}

fn confirmed(order: Uuid) -> Envelope {
    Envelope::new(&OrderConfirmed {
        order_id: order.to_string(),
        customer_id: Uuid::now_v7().to_string(),
        payment_id: Uuid::now_v7().to_string(),
        total: eur(3870),
    })
}

fn cancelled(order: Uuid, was_confirmed: bool) -> Envelope {
    Envelope::new(&OrderCancelled {
        order_id: order.to_string(),
        customer_id: Uuid::now_v7().to_string(),
        reason: "customer_request".to_owned(),
        was_confirmed,
        payment_id: Uuid::now_v7().to_string(),
    })
}

/// Waits until the reservation of `order` is in `status`.
async fn reservation_becomes(app: &TestApp, order: Uuid, status: ReservationStatus) -> Reservation {
    testkit::poll_until(
        &format!("the reservation of {order} to be {status:?}"),
        WAIT,
        || async {
            let reservation = app.reservation(order).await.ok()?;
            (reservation.status() == status).then_some(reservation)
        },
    )
    .await
    .unwrap()
}

/// Returns once the consumer has handled everything published so far: each publish returns
/// only after the broker confirmed it, so the queue holds events in publication order, and the
/// consumer handles its queue in order, one delivery at a time; once a confirmation published
/// last has taken effect, so has everything before.
async fn drain(app: &TestApp) {
    if app.get(MARKER_SKU).await.is_err() {
        app.product(MARKER_SKU, "Marker", 100, 1000).await;
    }
    let marker = Uuid::now_v7();
    app.reserve(marker, &[(MARKER_SKU, 1)]).await.unwrap();
    publish(app, &confirmed(marker)).await;
    reservation_becomes(app, marker, ReservationStatus::Committed).await;
}

/// Rows in the inbox for one delivered event.
async fn inbox_rows(app: &TestApp, event_id: Uuid) -> i64 {
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM inbox WHERE consumer = $1 AND message_id = $2")
            .bind(&app.orders_queue)
            .bind(event_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    count
}

/// Takes the next message off the consumer's parking queue, if any.
async fn parked(app: &TestApp, bus: &EventProbe) -> Option<lapin::message::Delivery> {
    bus.channel()
        .basic_get(
            ShortString::from(format!("{}.parking", app.orders_queue)),
            BasicGetOptions { no_ack: true },
        )
        .await
        .expect("basic.get on the parking queue")
        .map(|message| message.delivery)
}

#[tokio::test]
async fn order_confirmed_commits_the_reservation_with_its_event_and_inbox_row() {
    let app = spawn_app().await;
    let bus = bus(&app, "inventory.reservation.committed").await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("MUG-1", 3)]).await.unwrap();

    let event = confirmed(order);
    publish(&app, &event).await;
    let committed = reservation_becomes(&app, order, ReservationStatus::Committed).await;
    assert_eq!(committed.lines, support::lines(&[("MUG-1", 3)]));

    let stock = app.stock("MUG-1").await;
    assert_eq!(
        (stock.on_hand, stock.available, stock.reserved, stock.sold),
        (10, 7, 0, 3),
        "reserved units were sold"
    );
    stock.assert_conserved();
    let events: Vec<contracts::events::ReservationCommitted> =
        app.events("inventory.reservation.committed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].order_id, order.to_string());
    assert_eq!(
        inbox_rows(&app, event.event_id).await,
        1,
        "the inbox row committed with the effect"
    );
    // The relay publishes the commit for the orders service's fulfilment consumer.
    let delivery = bus.receive(1, WAIT).await.remove(0);
    let announced = EventEnvelope::decode(delivery.data.as_slice()).unwrap();
    assert_eq!(announced.aggregate_id, order.to_string());
    app.stop().await;
}

#[tokio::test]
async fn the_same_order_confirmed_delivered_twice_commits_once() {
    let app = spawn_app().await;
    let bus = bus(&app, "inventory.reservation.committed").await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("MUG-1", 3)]).await.unwrap();

    // One event, delivered twice: what a relay that crashed between publish and mark does.
    let event = confirmed(order);
    publish(&app, &event).await;
    publish(&app, &event).await;
    drain(&app).await;

    assert_eq!(
        app.reservation(order).await.unwrap().status(),
        ReservationStatus::Committed
    );
    let stock = app.stock("MUG-1").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (7, 0, 3));
    stock.assert_conserved();
    let committed: Vec<contracts::events::ReservationCommitted> =
        app.events("inventory.reservation.committed").await;
    let for_order = committed
        .iter()
        .filter(|event| event.order_id == order.to_string())
        .count();
    assert_eq!(for_order, 1, "committed once, announced once");
    assert_eq!(inbox_rows(&app, event.event_id).await, 1);
    assert!(parked(&app, &bus).await.is_none(), "nothing was parked");
    app.stop().await;
}

#[tokio::test]
async fn a_confirmed_order_cancelled_by_its_customer_is_restocked_once() {
    let app = spawn_app().await;
    let bus = bus(&app, "inventory.reservation.restocked").await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("MUG-1", 3)]).await.unwrap();
    publish(&app, &confirmed(order)).await;
    reservation_becomes(&app, order, ReservationStatus::Committed).await;
    assert_eq!(
        app.get("MUG-1").await.unwrap().available,
        7,
        "read (and cached) before the cancellation"
    );

    let cancellation = cancelled(order, true);
    publish(&app, &cancellation).await;
    let restocked = reservation_becomes(&app, order, ReservationStatus::Restocked).await;
    assert_eq!(restocked.lines, support::lines(&[("MUG-1", 3)]));
    let stock = app.stock("MUG-1").await;
    assert_eq!(
        (stock.on_hand, stock.available, stock.reserved, stock.sold),
        (10, 10, 0, 0),
        "sold units are available again, on_hand unchanged"
    );
    stock.assert_conserved();
    let events: Vec<StockRestocked> = app.events("inventory.reservation.restocked").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].order_id, order.to_string());
    assert_eq!(events[0].lines.len(), 1);
    assert_eq!(
        (events[0].lines[0].sku.as_str(), events[0].lines[0].quantity),
        ("MUG-1", 3)
    );
    assert_eq!(inbox_rows(&app, cancellation.event_id).await, 1);

    // The cached catalog entry is invalidated once the consumer's transaction has committed.
    testkit::poll_until("the catalog to show the restocked units", WAIT, || async {
        (app.get("MUG-1").await.ok()?.available == 10).then_some(())
    })
    .await
    .unwrap();

    // The relay announces the restock.
    let delivery = bus.receive(1, WAIT).await.remove(0);
    let (committed,): (Vec<u8>,) = sqlx::query_as(
        "SELECT envelope FROM outbox WHERE routing_key = 'inventory.reservation.restocked'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(delivery.data, committed);

    // A second cancellation (another event, so the inbox does not catch it): already restocked.
    publish(&app, &cancelled(order, true)).await;
    drain(&app).await;
    assert_eq!(
        app.reservation(order).await.unwrap().status(),
        ReservationStatus::Restocked
    );
    assert_eq!(app.stock("MUG-1").await, stock, "restocked once");
    assert_eq!(
        app.events::<StockRestocked>("inventory.reservation.restocked")
            .await
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn an_order_cancelled_before_confirmation_changes_nothing() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("MUG-1", 3)]).await.unwrap();
    let before = app.stock("MUG-1").await;

    // The saga compensated already (it released the stock over gRPC, or never reserved it).
    let cancellation = cancelled(order, false);
    publish(&app, &cancellation).await;
    drain(&app).await;

    assert_eq!(
        app.reservation(order).await.unwrap().status(),
        ReservationStatus::Reserved
    );
    assert_eq!(app.stock("MUG-1").await, before);
    assert_eq!((before.available, before.reserved, before.sold), (7, 3, 0));
    assert!(
        app.events::<StockReleased>("inventory.reservation.released")
            .await
            .is_empty()
    );
    assert!(
        app.events::<StockRestocked>("inventory.reservation.restocked")
            .await
            .is_empty()
    );
    assert_eq!(inbox_rows(&app, cancellation.event_id).await, 1, "seen");
    app.stop().await;
}

#[tokio::test]
async fn a_cancellation_that_overtakes_the_confirmation_releases_and_the_late_confirmation_sells_nothing()
 {
    let app = spawn_app().await;
    let bus = bus(&app, "inventory.#").await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("MUG-1", 3)]).await.unwrap();

    // The confirmation is still waiting for a retry when the cancellation arrives.
    publish(&app, &cancelled(order, true)).await;
    reservation_becomes(&app, order, ReservationStatus::Released).await;
    let stock = app.stock("MUG-1").await;
    assert_eq!((stock.available, stock.reserved, stock.sold), (10, 0, 0));
    stock.assert_conserved();
    let released: Vec<StockReleased> = app.events("inventory.reservation.released").await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].reason, "order_cancelled");

    publish(&app, &confirmed(order)).await;
    drain(&app).await;
    assert_eq!(
        app.reservation(order).await.unwrap().status(),
        ReservationStatus::Released
    );
    assert_eq!(app.stock("MUG-1").await, stock, "nothing was sold");
    assert!(
        parked(&app, &bus).await.is_none(),
        "an explained late confirmation is not an operator's problem"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_confirmation_without_a_reservation_is_parked_and_a_cancellation_without_one_ignored() {
    let app = spawn_app().await;
    let bus = bus(&app, "inventory.#").await;
    let unknown = Uuid::now_v7();

    let event = confirmed(unknown);
    publish(&app, &event).await;
    let delivery = testkit::poll_until("the confirmation to be parked", WAIT, || async {
        parked(&app, &bus).await
    })
    .await
    .unwrap();
    assert_eq!(delivery.data, event.bytes, "parked as published");
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let error = header_str(&headers, ERROR_HEADER).unwrap_or_default();
    assert!(error.contains("no reservation"), "{error}");
    assert_eq!(inbox_rows(&app, event.event_id).await, 0, "rolled back");

    publish(&app, &cancelled(unknown, true)).await;
    drain(&app).await;
    assert!(
        parked(&app, &bus).await.is_none(),
        "nothing to restock is fine"
    );
    assert_eq!(
        app.reservation(unknown).await.unwrap_err().code(),
        Code::NotFound,
        "and leaves nothing behind"
    );
    app.stop().await;
}

#[tokio::test]
async fn each_published_event_arrives_on_a_bound_test_queue_exactly_as_committed() {
    let app = spawn_app().await;
    let probe = EventProbe::bind(&app.amqp_url, &app.exchange, "inventory.#").await;

    app.product("MUG-1", "Mug", 1290, 10).await; // upsert + adjust
    let order = Uuid::now_v7();
    app.reserve(order, &[("MUG-1", 2)]).await.unwrap();
    app.release(order).await.unwrap();

    let rows: Vec<(Uuid, String, Vec<u8>)> =
        sqlx::query_as("SELECT event_id, routing_key, envelope FROM outbox ORDER BY seq")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let keys: Vec<&str> = rows.iter().map(|(_, key, _)| key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "inventory.product.updated",
            "inventory.product.updated",
            "inventory.reservation.reserved",
            "inventory.reservation.released",
        ]
    );

    let deliveries = probe.receive(rows.len(), WAIT).await;
    for ((event_id, routing_key, envelope), delivery) in rows.iter().zip(&deliveries) {
        assert_eq!(delivery.routing_key.as_str(), routing_key);
        assert_eq!(
            &delivery.data, envelope,
            "{routing_key}: the committed bytes"
        );
        assert_eq!(
            delivery
                .properties
                .message_id()
                .as_ref()
                .map(ShortString::as_str),
            Some(event_id.to_string().as_str())
        );
    }
    testkit::poll_until("every outbox row to be marked published", WAIT, || async {
        let (pending,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&app.pool)
                .await
                .ok()?;
        (pending == 0).then_some(())
    })
    .await
    .unwrap();
    app.stop().await;
}
