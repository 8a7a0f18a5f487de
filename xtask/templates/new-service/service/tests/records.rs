//! The {{name}} service against a real Postgres and RabbitMQ: CreateRecord and GetRecord, one
//! record per reference, each announced once on the bus through the outbox{{#if consumes}}, and the
//! `{{queue}}` consumer creating records from {{consumed_events}}{{/if}}.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use messaging::{Event, ReceivedEvent};
use support::spawn_app;
use testkit::EventProbe;
use tonic::Code;

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_record_is_created_once_per_reference_and_found_by_its_id() {
    let app = spawn_app().await;
    let first = app.create(" ref-1 ").await.unwrap();
    assert_eq!(first.reference, "ref-1");
    let again = app.create("ref-1").await.unwrap();
    assert_eq!(again.id, first.id, "the same reference is the same record");
    assert_eq!(app.get(&first.id).await.unwrap(), first);
    assert_eq!(app.records().await.len(), 1);
    assert_eq!(
        app.outbox().await,
        [("{{name}}.record.created".to_owned(), first.id.clone())],
        "the record is announced once, not once per call"
    );
    app.stop().await;
}

#[tokio::test]
async fn invalid_requests_name_the_field_and_unknown_records_are_not_found() {
    let app = spawn_app().await;
    let status = app.create("").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "reference: is required");
    let status = app.get("not-a-uuid").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "id: must be a UUID");
    let status = app.get(&uuid::Uuid::now_v7().to_string()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn the_relay_publishes_the_created_event_to_the_exchange() {
    let app = spawn_app().await;
    let bus = EventProbe::bind(&app.amqp_url, &app.exchange, "{{name}}.#").await;
    let record = app.create("ref-published").await.unwrap();
    let deliveries = bus.receive(1, DEADLINE).await;
    let received =
        ReceivedEvent::decode(&deliveries[0].data, deliveries[0].routing_key.as_str(), 0).unwrap();
    assert_eq!(received.routing_key, "{{name}}.record.created");
    assert_eq!(received.aggregate_id, record.id);
    match received.event {
        Event::{{Pascal}}RecordCreated(created) => {
            assert_eq!(created.record_id, record.id);
            assert_eq!(created.reference, "ref-published");
        }
        other => panic!("expected {{Pascal}}RecordCreated, got {other:?}"),
    }
    app.stop().await;
}
{{#if consumes}}

#[tokio::test]
async fn a_consumed_event_creates_one_record_even_when_delivered_twice() {
    let app = spawn_app().await;
    let reference = uuid::Uuid::now_v7().to_string();
    let event = messaging::Envelope::new(&{{sample_event}});
    app.publish(&event).await;
    app.publish(&event).await;
    let id = app.wait_for_record(&reference).await;
    // A barrier: the consumer handles one delivery at a time in queue order, so once a later
    // event's record exists, both copies of the first have been handled.
    let barrier = uuid::Uuid::now_v7().to_string();
    let later = {{sample_event_barrier}};
    app.publish(&messaging::Envelope::new(&later)).await;
    app.wait_for_record(&barrier).await;
    let mine: Vec<_> = app
        .records()
        .await
        .into_iter()
        .filter(|(stored, _)| *stored == reference)
        .collect();
    assert_eq!(mine, [(reference.clone(), id.clone())], "one record per event");
    let announced = app
        .outbox()
        .await
        .into_iter()
        .filter(|(_, aggregate)| *aggregate == id)
        .count();
    assert_eq!(announced, 1, "and one event announcing it");
    app.stop().await;
}
{{/if}}
