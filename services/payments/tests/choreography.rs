//! The choreographed half of the checkout
//! (docs/architecture.md#the-choreography-after-confirmation) and the outbox relay, against a
//! real Postgres and RabbitMQ: order events published to the test's exchange capture, refund or
//! void the order's payment through the inbox; what payments commits reaches the bus unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use contracts::{
    events::{EventEnvelope, OrderCancelled, OrderConfirmed, PaymentCaptured},
    payments::{Payment, PaymentStatus},
};
use lapin::{Connection, ConnectionProperties, options::BasicGetOptions, types::AMQPValue};
use messaging::{
    Envelope, EventHandler, HandlerError, Handling, ReceivedEvent, consumer::ERROR_HEADER,
};
use payments::{service::OrderFollowUp, store};
use prost::{Message as _, Name as _};
use support::{APPROVE, TestApp, eur, spawn_app};
use time::OffsetDateTime;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(20);

fn confirmed(app: &TestApp, payment: &Payment) -> Envelope {
    Envelope::new(&OrderConfirmed {
        order_id: payment.order_id.clone(),
        customer_id: app.customer_id.to_string(),
        payment_id: payment.id.clone(),
        total: payment.authorized.clone(),
    })
}

fn cancelled(app: &TestApp, payment: &Payment, was_confirmed: bool) -> Envelope {
    Envelope::new(&OrderCancelled {
        order_id: payment.order_id.clone(),
        customer_id: app.customer_id.to_string(),
        reason: "customer_request".to_owned(),
        was_confirmed,
        payment_id: payment.id.clone(),
    })
}

fn order_id(payment: &Payment) -> Uuid {
    Uuid::parse_str(&payment.order_id).unwrap()
}

/// Kinds and details of the payment's stored stream, oldest first.
async fn stream(app: &TestApp, payment: &Payment) -> Vec<(&'static str, String)> {
    app.stored_events(&payment.id)
        .await
        .into_iter()
        .map(|recorded| (recorded.event.kind(), recorded.event.detail().to_owned()))
        .collect()
}

/// A barrier: confirms a fresh order and waits for its capture. The consumer handles one
/// delivery at a time in queue order, so everything published before it has been handled too.
async fn barrier(app: &TestApp) {
    let payment = app.authorize(100, APPROVE).await;
    app.publish(&confirmed(app, &payment)).await;
    app.wait_for_status(order_id(&payment), PaymentStatus::Captured)
        .await;
}

#[tokio::test]
async fn order_confirmed_captures_the_authorized_payment() {
    let app = spawn_app().await;
    let payment = app.authorize(2599, APPROVE).await;
    app.publish(&confirmed(&app, &payment)).await;

    let captured = app
        .wait_for_status(order_id(&payment), PaymentStatus::Captured)
        .await;
    assert_eq!(captured.captured, Some(eur(2599)));
    assert_eq!(
        stream(&app, &payment).await,
        [("authorized", String::new()), ("captured", String::new())]
    );
    let routing_keys: Vec<String> = app.outbox().await.into_iter().map(|(key, _)| key).collect();
    assert_eq!(
        routing_keys,
        ["payments.payment.authorized", "payments.payment.captured"]
    );
    app.stop().await;
}

#[tokio::test]
async fn the_same_order_confirmed_delivered_twice_or_sent_again_captures_once() {
    let app = spawn_app().await;
    let payment = app.authorize(1500, APPROVE).await;
    let first = confirmed(&app, &payment);
    // A redelivery (same message id: the inbox drops it) and a new message about the same fact
    // (a new id, as a replayed or re-sent event would have: the ledger finds nothing to do).
    app.publish(&first).await;
    app.publish(&first).await;
    let again = confirmed(&app, &payment);
    app.publish(&again).await;
    barrier(&app).await;

    assert_eq!(
        app.by_order(order_id(&payment)).await.status(),
        PaymentStatus::Captured
    );
    let captures = app
        .stored_events(&payment.id)
        .await
        .iter()
        .filter(|recorded| recorded.event.kind() == "captured")
        .count();
    assert_eq!(captures, 1, "exactly one Captured event");
    let inbox = app.inbox().await;
    assert_eq!(inbox.len(), 3, "first, again and the barrier: {inbox:?}");
    assert!(inbox.contains(&first.event_id) && inbox.contains(&again.event_id));
    let published_captures = app
        .outbox()
        .await
        .iter()
        .filter(|(key, aggregate)| key == "payments.payment.captured" && *aggregate == payment.id)
        .count();
    assert_eq!(published_captures, 1, "one PaymentCaptured for the order");
    app.stop().await;
}

#[tokio::test]
async fn a_customer_cancellation_after_confirmation_refunds_the_whole_capture() {
    let app = spawn_app().await;
    let payment = app.authorize(4200, APPROVE).await;
    app.publish(&confirmed(&app, &payment)).await;
    app.wait_for_status(order_id(&payment), PaymentStatus::Captured)
        .await;

    let cancellation = cancelled(&app, &payment, true);
    app.publish(&cancellation).await;
    let refunded = app
        .wait_for_status(order_id(&payment), PaymentStatus::Refunded)
        .await;
    assert_eq!(refunded.refunded, refunded.captured);
    assert_eq!(refunded.refunded, Some(eur(4200)));
    assert_eq!(
        stream(&app, &payment).await,
        [
            ("authorized", String::new()),
            ("captured", String::new()),
            ("refunded", "customer_cancellation".to_owned()),
        ]
    );

    // Sent again (a new message id): the money is back already, nothing more happens.
    app.publish(&cancelled(&app, &payment, true)).await;
    barrier(&app).await;
    assert_eq!(stream(&app, &payment).await.len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn a_cancellation_after_a_partial_refund_refunds_what_is_left() {
    let app = spawn_app().await;
    let payment = app.authorize(1000, APPROVE).await;
    app.capture(&payment.id).await.unwrap();
    app.refund(&payment.id, eur(400)).await.unwrap();

    app.publish(&cancelled(&app, &payment, true)).await;
    let refunded = app
        .wait_for_status(order_id(&payment), PaymentStatus::Refunded)
        .await;
    assert_eq!(refunded.refunded, Some(eur(1000)));
    let last = app.stored_events(&payment.id).await.pop().unwrap();
    assert_eq!(last.event.amount().map(|amount| amount.minor()), Some(600));
    app.stop().await;
}

#[tokio::test]
async fn a_cancelled_confirmed_order_whose_capture_never_ran_is_voided() {
    let app = spawn_app().await;
    let payment = app.authorize(1000, APPROVE).await;
    app.publish(&cancelled(&app, &payment, true)).await;
    let voided = app
        .wait_for_status(order_id(&payment), PaymentStatus::Voided)
        .await;
    assert_eq!(voided.captured, Some(eur(0)));
    assert_eq!(
        stream(&app, &payment).await,
        [
            ("authorized", String::new()),
            ("voided", "customer_cancellation".to_owned())
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cancellation_before_confirmation_changes_nothing() {
    let app = spawn_app().await;
    let payment = app.authorize(1000, APPROVE).await;
    let cancellation = cancelled(&app, &payment, false);
    app.publish(&cancellation).await;
    barrier(&app).await;

    assert!(
        app.inbox().await.contains(&cancellation.event_id),
        "the cancellation was handled (and committed), not lost"
    );
    assert_eq!(
        app.by_order(order_id(&payment)).await.status(),
        PaymentStatus::Authorized
    );
    assert_eq!(stream(&app, &payment).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_order_without_a_payment_is_parked_with_the_reason_and_nothing_is_committed() {
    let app = spawn_app().await;
    let unknown = Envelope::new(&OrderConfirmed {
        order_id: Uuid::now_v7().to_string(),
        customer_id: app.customer_id.to_string(),
        payment_id: Uuid::now_v7().to_string(),
        total: Some(eur(100)),
    });
    app.publish(&unknown).await;

    let connection = Connection::connect(&app.amqp_url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let parking = app.queue("payments.orders.parking");
    let parked = testkit::poll_until("the event to be parked", DEADLINE, || {
        let (channel, parking) = (&channel, parking.as_str());
        async move {
            channel
                .basic_get(parking.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(parked.delivery.data, unknown.bytes);
    let headers = parked.delivery.properties.headers().clone().unwrap();
    let reason = match headers.inner().get(ERROR_HEADER) {
        Some(AMQPValue::LongString(reason)) => reason.to_string(),
        other => panic!("no error header: {other:?}"),
    };
    assert!(reason.ends_with("has no payment"), "{reason}");
    assert!(app.inbox().await.is_empty(), "the inbox row rolled back");
    let _ = connection.close(200, "done".into()).await;
    app.stop().await;
}

#[tokio::test]
async fn each_published_event_arrives_on_a_bound_test_queue_exactly_as_committed() {
    let app = spawn_app().await;
    let probe = testkit::EventProbe::bind(&app.amqp_url, &app.exchange, "payments.#").await;
    let payment = app.authorize(2599, APPROVE).await;
    app.capture(&payment.id).await.unwrap();

    let deliveries = probe.receive(2, DEADLINE).await;
    let committed = app.outbox_envelopes().await;
    assert_eq!(committed.len(), 2);
    let routing_keys: Vec<&str> = deliveries.iter().map(|d| d.routing_key.as_str()).collect();
    assert_eq!(
        routing_keys,
        ["payments.payment.authorized", "payments.payment.captured"]
    );
    for (delivery, (routing_key, envelope)) in deliveries.iter().zip(&committed) {
        assert_eq!(delivery.routing_key.as_str(), routing_key);
        assert_eq!(&delivery.data, envelope, "bytes on the wire = outbox row");
    }
    let envelope = EventEnvelope::decode(deliveries[1].data.as_slice()).unwrap();
    assert_eq!(envelope.event_type, PaymentCaptured::full_name());
    let captured = PaymentCaptured::decode(envelope.payload.as_slice()).unwrap();
    assert_eq!(
        (captured.payment_id, captured.order_id, captured.amount),
        (
            payment.id.clone(),
            payment.order_id.clone(),
            Some(eur(2599))
        )
    );
    app.stop().await;
}

/// The event as the consumer hands it to its handler.
fn received(envelope: &Envelope) -> ReceivedEvent {
    ReceivedEvent::decode(&envelope.bytes, envelope.routing_key, 0).unwrap()
}

#[tokio::test]
async fn the_capture_and_its_outbox_row_commit_or_roll_back_with_the_handlers_transaction() {
    let app = spawn_app().await;
    let payment = app.authorize(700, APPROVE).await;
    let event = received(&confirmed(&app, &payment));
    let pool = app.db.pool().await;

    let mut tx = pool.begin().await.unwrap();
    OrderFollowUp
        .handle(&mut Handling::new(&mut tx), &event)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(stream(&app, &payment).await.len(), 1, "rolled back with it");
    assert_eq!(app.outbox().await.len(), 1, "no PaymentCaptured either");

    let mut tx = pool.begin().await.unwrap();
    OrderFollowUp
        .handle(&mut Handling::new(&mut tx), &event)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        app.by_order(order_id(&payment)).await.status(),
        PaymentStatus::Captured
    );
    assert_eq!(app.outbox().await.len(), 2);
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_concurrent_append_inside_the_handler_is_transient_and_the_retry_is_a_no_op() {
    let app = spawn_app().await;
    let payment = app.authorize(900, APPROVE).await;
    let pool = app.db.pool().await;

    // Writer 1 appends the capture and holds its transaction open.
    let mut first = pool.begin().await.unwrap();
    let event = received(&confirmed(&app, &payment));
    OrderFollowUp
        .handle(&mut Handling::new(&mut first), &event)
        .await
        .unwrap();

    // Writer 2 reads the payment as still AUTHORIZED and appends at the same seq: Postgres makes
    // it wait for writer 1.
    let second = tokio::spawn({
        let pool = pool.clone();
        let event = received(&confirmed(&app, &payment));
        async move {
            let mut tx = pool.begin().await.unwrap();
            let outcome = OrderFollowUp
                .handle(&mut Handling::new(&mut tx), &event)
                .await;
            tx.rollback().await.unwrap();
            outcome
        }
    });
    testkit::poll_until("the second writer to wait for the first", DEADLINE, || {
        let pool = pool.clone();
        async move {
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        }
    })
    .await
    .unwrap();
    first.commit().await.unwrap();

    match second.await.unwrap() {
        Err(HandlerError::Transient(reason)) => {
            assert!(reason.contains("concurrently"), "{reason}");
        }
        other => panic!("a lost race must be retried later, got {other:?}"),
    }
    // The consumer's retry, in a new transaction, finds the capture and does nothing.
    let mut retry = pool.begin().await.unwrap();
    OrderFollowUp
        .handle(
            &mut Handling::new(&mut retry),
            &received(&confirmed(&app, &payment)),
        )
        .await
        .unwrap();
    retry.commit().await.unwrap();
    assert_eq!(
        stream(&app, &payment).await,
        [("authorized", String::new()), ("captured", String::new())]
    );
    pool.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_conflicting_append_in_a_transaction_reports_the_conflict_and_aborts_it() {
    let app = spawn_app().await;
    let payment = app.authorize(900, APPROVE).await;
    let pool = app.db.pool().await;

    let mut tx = pool.begin().await.unwrap();
    let loaded = store::load_by_order_in(&mut tx, order_id(&payment))
        .await
        .unwrap()
        .unwrap();
    // Another writer captures after we read.
    app.capture(&payment.id).await.unwrap();
    let capture = loaded.state.decide_capture().unwrap();
    let envelope = payments::events::envelope(&loaded.header, &capture);
    let payment_id = loaded.header.id;
    let (recorded, _) = loaded.record(capture, OffsetDateTime::now_utc());
    let appended = store::append_in(&mut tx, payment_id, &recorded, &envelope)
        .await
        .unwrap();
    assert_eq!(appended, store::Appended::Conflict);
    assert!(
        sqlx::query("SELECT 1").execute(&mut *tx).await.is_err(),
        "the transaction is aborted: only a rollback helps"
    );
    tx.rollback().await.unwrap();
    assert_eq!(stream(&app, &payment).await.len(), 2);
    pool.close().await;
    app.stop().await;
}
