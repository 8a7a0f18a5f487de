//! The outbox relay against real Postgres and RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::{collections::HashMap, time::Duration};

use contracts::events::{EventEnvelope, UserRegistered};
use lapin::types::AMQPValue;
use messaging::{OutboxRelay, RelayConfig, relay::CONTENT_TYPE};
use platform::Shutdown;
use prost::Message as _;
use support::{event, fixture};

fn relay_config(amqp_url: &str, exchange: &str) -> RelayConfig {
    let mut config = RelayConfig::new(amqp_url, exchange, "test");
    config.poll_interval = Duration::from_millis(200);
    config.batch_size = 20;
    config
}

#[tokio::test]
async fn committed_events_arrive_on_a_bound_queue_exactly_as_committed() {
    let f = fixture().await;
    let probe = f.probe("users.#").await;
    let committed: Vec<_> = (0..3).map(|n| event("u-1", n)).collect();
    f.enqueue(&committed).await;
    // An event whose transaction rolls back must never be published.
    let mut tx = f.pool.begin().await.unwrap();
    messaging::outbox::enqueue(&mut tx, &event("u-rolled-back", 0))
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let shutdown = Shutdown::new();
    let relay = tokio::spawn(
        OutboxRelay::new(f.pool.clone(), relay_config(&f.amqp_url, &f.exchange))
            .run(shutdown.clone()),
    );
    let received = probe.receive(3, Duration::from_secs(10)).await;
    for (delivery, envelope) in received.iter().zip(&committed) {
        assert_eq!(
            delivery.data, envelope.bytes,
            "the bytes that were committed"
        );
        assert_eq!(delivery.routing_key.as_str(), "users.user.registered");
        let properties = &delivery.properties;
        assert_eq!(
            properties.message_id().as_ref().map(|id| id.as_str()),
            Some(envelope.event_id.to_string().as_str())
        );
        assert_eq!(
            properties.kind().as_ref().map(|kind| kind.as_str()),
            Some("shop.events.v1.UserRegistered")
        );
        assert_eq!(
            properties.content_type().as_ref().map(|ct| ct.as_str()),
            Some(CONTENT_TYPE)
        );
        assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
        let decoded = EventEnvelope::decode(delivery.data.as_slice()).unwrap();
        assert_eq!(decoded.event_id, envelope.event_id.to_string());
    }
    testkit::poll_until("rows marked published", Duration::from_secs(5), || async {
        (f.unpublished().await == 0).then_some(())
    })
    .await
    .unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    assert_eq!(rows, 3, "the rolled-back event was never recorded");
    shutdown.trigger();
    relay.await.unwrap();
}

#[tokio::test]
async fn trace_context_travels_in_amqp_headers() {
    let f = fixture().await;
    let probe = f.probe("#").await;
    let mut envelope = event("u-traced", 0);
    // Rewrite the stored envelope as if it had been produced inside a trace.
    let mut decoded = EventEnvelope::decode(envelope.bytes.as_slice()).unwrap();
    decoded.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into();
    envelope.bytes = decoded.encode_to_vec();
    f.enqueue(&[envelope]).await;

    let shutdown = Shutdown::new();
    let relay = tokio::spawn(
        OutboxRelay::new(f.pool.clone(), relay_config(&f.amqp_url, &f.exchange))
            .run(shutdown.clone()),
    );
    let received = probe.receive(1, Duration::from_secs(10)).await;
    let headers = received[0].properties.headers().clone().unwrap();
    assert_eq!(
        messaging::amqp::header_str(&headers, "traceparent"),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert!(!headers.inner().contains_key("tracestate"));
    assert!(matches!(
        headers.inner().get("traceparent"),
        Some(AMQPValue::LongString(_))
    ));
    shutdown.trigger();
    relay.await.unwrap();
}

#[tokio::test]
async fn several_relays_publish_each_event_once_and_keep_per_aggregate_order() {
    let f = fixture().await;
    let probe = f.probe("#").await;
    let aggregates = ["a", "b", "c", "d", "e"];
    let per_aggregate = 40;
    // Interleaved commits across aggregates, in several transactions.
    for n in 0..per_aggregate {
        let batch: Vec<_> = aggregates.iter().map(|a| event(a, n)).collect();
        f.enqueue(&batch).await;
    }

    let shutdown = Shutdown::new();
    let relays: Vec<_> = (0..3)
        .map(|_| {
            let mut config = relay_config(&f.amqp_url, &f.exchange);
            config.batch_size = 7;
            tokio::spawn(OutboxRelay::new(f.pool.clone(), config).run(shutdown.clone()))
        })
        .collect();

    let total = aggregates.len() * per_aggregate;
    let received = probe.receive(total, Duration::from_secs(30)).await;
    let mut last_seen: HashMap<String, i64> = HashMap::new();
    let mut ids = std::collections::HashSet::new();
    for delivery in &received {
        let envelope = EventEnvelope::decode(delivery.data.as_slice()).unwrap();
        assert!(ids.insert(envelope.event_id.clone()), "published twice");
        let event = UserRegistered::decode(envelope.payload.as_slice()).unwrap();
        let n: i64 = event.display_name.parse().unwrap();
        let previous = last_seen.insert(event.user_id.clone(), n).unwrap_or(-1);
        assert_eq!(n, previous + 1, "aggregate {} out of order", event.user_id);
    }
    // A row is marked published after the broker confirmed it, so the last marks may commit a
    // moment after the probe already holds the messages.
    testkit::poll_until(
        "every row marked published",
        Duration::from_secs(10),
        || async { (f.unpublished().await == 0).then_some(()) },
    )
    .await
    .unwrap();
    shutdown.trigger();
    for relay in relays {
        relay.await.unwrap();
    }
}

#[tokio::test]
async fn a_broker_outage_loses_nothing_and_keeps_order() {
    let f = fixture().await;
    let probe = f.probe("#").await;
    let proxy = testkit::TcpProxy::start(&testkit::host_port(&f.amqp_url).unwrap()).await;
    let mut config = relay_config(&proxy.rewrite_url(&f.amqp_url), &f.exchange);
    config.poll_interval = Duration::from_millis(100);

    let shutdown = Shutdown::new();
    let relay = tokio::spawn(OutboxRelay::new(f.pool.clone(), config).run(shutdown.clone()));
    f.enqueue(&(0..5).map(|n| event("x", n)).collect::<Vec<_>>())
        .await;
    let before = probe.receive(5, Duration::from_secs(10)).await;

    proxy.cut();
    f.enqueue(&(5..15).map(|n| event("x", n)).collect::<Vec<_>>())
        .await;
    // The relay must notice the outage: its connection drops, and it keeps trying to reconnect
    // (two refused connections). Until then the test has proven nothing about an outage.
    testkit::poll_until(
        "the relay to notice the outage and retry",
        Duration::from_secs(10),
        || async { (proxy.refused() >= 2).then_some(()) },
    )
    .await
    .unwrap();
    // While the broker is unreachable nothing can be confirmed, so nothing is marked.
    assert_eq!(f.unpublished().await, 10);

    proxy.restore();
    let after = probe.receive(10, Duration::from_secs(20)).await;
    let numbers: Vec<i64> = before
        .iter()
        .chain(&after)
        .map(|delivery| {
            let envelope = EventEnvelope::decode(delivery.data.as_slice()).unwrap();
            UserRegistered::decode(envelope.payload.as_slice())
                .unwrap()
                .display_name
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers, (0..15).collect::<Vec<_>>());
    testkit::poll_until("all rows marked", Duration::from_secs(5), || async {
        (f.unpublished().await == 0).then_some(())
    })
    .await
    .unwrap();
    shutdown.trigger();
    relay.await.unwrap();
}

/// A consumer queue of this test (`<exchange>.<purpose>`), bound to `users.#`, expiring when
/// unused.
fn users_queue(f: &support::Fixture, purpose: &str) -> messaging::topology::ConsumerTopology {
    messaging::topology::ConsumerTopology::new(
        &f.exchange,
        &format!("{}.{purpose}", f.exchange),
        &["users.#"],
    )
    .with_expiry(Duration::from_secs(60))
}

/// Messages waiting in `queue`, or `None` when it does not exist.
async fn depth(f: &support::Fixture, queue: &str) -> Option<u32> {
    // A failed passive declare closes the channel it ran on, so each look gets its own.
    let channel = f.connection.create_channel().await.unwrap();
    let declared = channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..lapin::options::QueueDeclareOptions::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .ok()?;
    let _ = channel.close(200, "looked".into()).await;
    Some(declared.message_count())
}

#[tokio::test]
async fn events_published_before_their_consumer_ever_ran_wait_in_its_queue() {
    // A first deploy: the producer is up, the consumer has not started (nor declared anything).
    let f = fixture().await;
    let queue = users_queue(&f, "welcome-mails");
    let config = relay_config(&f.amqp_url, &f.exchange).with_topology(vec![queue.clone()]);
    let shutdown = Shutdown::new();
    let relay = tokio::spawn(OutboxRelay::new(f.pool.clone(), config).run(shutdown.clone()));

    f.enqueue(&[event("u-1", 0), event("u-2", 1)]).await;
    testkit::poll_until(
        "both events in the consumer's queue",
        Duration::from_secs(10),
        || async { (depth(&f, &queue.queue).await == Some(2)).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(f.unpublished().await, 0);
    shutdown.trigger();
    relay.await.unwrap();
}

#[tokio::test]
async fn an_event_returned_for_want_of_its_queue_stays_unpublished_until_the_queue_is_back() {
    let f = fixture().await;
    let queue = users_queue(&f, "welcome-mails");
    let config = relay_config(&f.amqp_url, &f.exchange).with_topology(vec![queue.clone()]);
    let shutdown = Shutdown::new();
    let relay = tokio::spawn(OutboxRelay::new(f.pool.clone(), config).run(shutdown.clone()));
    // A first event delivered proves the relay has declared the queue *and its binding* and is
    // relaying; the queue alone exists a moment before its binding, and deleting it then would
    // fail the relay's declaration instead of its publish.
    f.enqueue(&[event("u-0", 0)]).await;
    testkit::poll_until(
        "the first event delivered",
        Duration::from_secs(10),
        || async { (depth(&f, &queue.queue).await == Some(1)).then_some(()) },
    )
    .await
    .unwrap();

    // The queue disappears behind the relay's back (a broker rebuilt, an operator's mistake).
    f.channel
        .queue_delete(
            queue.queue.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    f.enqueue(&[event("u-1", 1)]).await;

    // The broker returns the event: it is not marked published, the failure is recorded, and
    // the relay's reconnect declares the queue again and delivers it there.
    testkit::poll_until(
        "the event to reach the declared-again queue",
        Duration::from_secs(15),
        || async { (depth(&f, &queue.queue).await == Some(1)).then_some(()) },
    )
    .await
    .unwrap();
    let (attempts, last_error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM outbox ORDER BY seq DESC LIMIT 1")
            .fetch_one(&f.pool)
            .await
            .unwrap();
    assert!(attempts >= 1, "the return counted as a failed attempt");
    assert!(
        last_error
            .as_deref()
            .is_some_and(|error| error.contains("returned")),
        "{last_error:?}"
    );
    testkit::poll_until("the row marked", Duration::from_secs(5), || async {
        (f.unpublished().await == 0).then_some(())
    })
    .await
    .unwrap();
    shutdown.trigger();
    relay.await.unwrap();
}

#[tokio::test]
async fn an_event_no_queue_of_the_topology_binds_is_published_and_counted_not_retried() {
    let f = fixture().await;
    let orders_only = messaging::topology::ConsumerTopology::new(
        &f.exchange,
        &format!("{}.orders-only", f.exchange),
        &["orders.#"],
    )
    .with_expiry(Duration::from_secs(60));
    let config = relay_config(&f.amqp_url, &f.exchange).with_topology(vec![orders_only]);
    let shutdown = Shutdown::new();
    let relay = tokio::spawn(OutboxRelay::new(f.pool.clone(), config).run(shutdown.clone()));
    f.enqueue(&[event("u-1", 0)]).await;
    testkit::poll_until("the row marked", Duration::from_secs(10), || async {
        (f.unpublished().await == 0).then_some(())
    })
    .await
    .unwrap();
    let (attempts,): (i32,) = sqlx::query_as("SELECT attempts FROM outbox")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0, "an event nobody consumes is not a failure");
    shutdown.trigger();
    relay.await.unwrap();
}
