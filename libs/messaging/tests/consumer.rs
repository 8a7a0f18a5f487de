//! The idempotent consumer (inbox) against real Postgres and RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lapin::{
    BasicProperties,
    options::{BasicGetOptions, BasicPublishOptions},
    types::{FieldTable, ShortString},
};
use messaging::{
    Consumer, Envelope, Event, EventHandler, HandlerError, Handling, ReceivedEvent,
    consumer::{ATTEMPTS_HEADER, ERROR_HEADER},
    topology::ConsumerTopology,
};
use platform::Shutdown;
use support::{Fixture, event, fixture};

/// Records each handled event in a table (inside the inbox transaction) and can fail on demand.
struct Recorder {
    /// Fails while `event.failures` is below this.
    fail_first: u32,
    permanent: bool,
    /// `(display_name, failures)` of every call, committed or not.
    calls: Mutex<Vec<(String, u32)>>,
    trace_ids: Mutex<Vec<Option<String>>>,
    /// The display names whose after-commit task ran: only for committed transactions.
    committed: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn new(fail_first: u32, permanent: bool) -> Arc<Self> {
        Arc::new(Self {
            fail_first,
            permanent,
            calls: Mutex::new(Vec::new()),
            trace_ids: Mutex::new(Vec::new()),
            committed: Arc::default(),
        })
    }
}

impl EventHandler for Recorder {
    async fn handle(
        &self,
        work: &mut Handling<'_>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let Event::UserRegistered(registered) = &event.event else {
            return Err(HandlerError::Permanent("not a registration".into()));
        };
        self.calls
            .lock()
            .unwrap()
            .push((registered.display_name.clone(), event.failures));
        self.trace_ids
            .lock()
            .unwrap()
            .push(platform::trace_context::trace_id(&tracing::Span::current()));
        sqlx::query("INSERT INTO effects (event_id, label) VALUES ($1, $2)")
            .bind(event.event_id)
            .bind(&registered.display_name)
            .execute(work.tx())
            .await?;
        if event.failures < self.fail_first {
            return Err(if self.permanent {
                HandlerError::Permanent("invariant violated".into())
            } else {
                HandlerError::Transient("dependency down".into())
            });
        }
        let label = registered.display_name.clone();
        let committed = Arc::clone(&self.committed);
        work.after_commit(async move {
            committed.lock().unwrap().push(label);
        });
        Ok(())
    }
}

async fn setup(f: &Fixture) -> ConsumerTopology {
    sqlx::query("CREATE TABLE effects (event_id UUID NOT NULL, label TEXT NOT NULL)")
        .execute(&f.pool)
        .await
        .unwrap();
    ConsumerTopology::new(
        &f.exchange,
        &testkit::unique_name("test.consumer"),
        &["users.#"],
    )
    .with_retry_delays(vec![Duration::from_millis(50), Duration::from_millis(100)])
    .with_expiry(Duration::from_secs(60))
}

async fn publish_raw(f: &Fixture, routing_key: &str, body: &[u8], headers: FieldTable) {
    f.channel
        .basic_publish(
            ShortString::from(f.exchange.as_str()),
            ShortString::from(routing_key),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_headers(headers),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn publish(f: &Fixture, envelope: &Envelope) {
    publish_raw(
        f,
        envelope.routing_key,
        &envelope.bytes,
        FieldTable::default(),
    )
    .await;
}

async fn effects(f: &Fixture) -> Vec<String> {
    sqlx::query_as::<_, (String,)>("SELECT label FROM effects ORDER BY label")
        .fetch_all(&f.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(label,)| label)
        .collect()
}

fn start(
    f: &Fixture,
    topology: &ConsumerTopology,
    handler: Arc<Recorder>,
    max_attempts: u32,
) -> (Shutdown, tokio::task::JoinHandle<()>) {
    let shutdown = Shutdown::new();
    let consumer = Consumer::new(f.pool.clone(), &f.amqp_url, topology.clone())
        .with_max_attempts(max_attempts);
    let task = tokio::spawn(consumer.run(handler, shutdown.clone()));
    (shutdown, task)
}

/// Declares the topology before anything is published, so no message is unroutable.
async fn declare(f: &Fixture, topology: &ConsumerTopology) {
    topology.declare(&f.channel).await.unwrap();
}

#[tokio::test]
async fn the_same_event_delivered_twice_changes_nothing() {
    let f = fixture().await;
    let topology = setup(&f).await;
    declare(&f, &topology).await;
    let recorder = Recorder::new(0, false);
    let (shutdown, task) = start(&f, &topology, Arc::clone(&recorder), 3);

    let duplicated = event("u-1", 1);
    publish(&f, &duplicated).await;
    publish(&f, &duplicated).await;
    // A marker after the duplicates: once it is handled, both copies have been processed.
    publish(&f, &event("u-2", 2)).await;
    testkit::poll_until("the marker", Duration::from_secs(10), || async {
        (effects(&f).await.contains(&"2".to_owned())).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(effects(&f).await, vec!["1", "2"]);
    assert_eq!(
        recorder.calls.lock().unwrap().len(),
        2,
        "the duplicate never reached the handler"
    );
    let (inbox,): (i64,) = sqlx::query_as("SELECT count(*) FROM inbox")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    assert_eq!(inbox, 2);
    shutdown.trigger();
    task.await.unwrap();
}

#[tokio::test]
async fn a_transient_failure_is_retried_with_backoff_and_rolled_back_each_time() {
    let f = fixture().await;
    let topology = setup(&f).await;
    declare(&f, &topology).await;
    let recorder = Recorder::new(2, false);
    let (shutdown, task) = start(&f, &topology, Arc::clone(&recorder), 5);

    publish(&f, &event("u-1", 7)).await;
    testkit::poll_until(
        "the third attempt to succeed",
        Duration::from_secs(10),
        || async { (!effects(&f).await.is_empty()).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(
        *recorder.calls.lock().unwrap(),
        vec![
            ("7".to_owned(), 0),
            ("7".to_owned(), 1),
            ("7".to_owned(), 2)
        ]
    );
    assert_eq!(
        effects(&f).await,
        vec!["7"],
        "failed attempts left no effect"
    );
    // The after-commit task ran once: for the attempt that committed, not the rolled-back ones.
    testkit::poll_until("the after-commit task", Duration::from_secs(10), || async {
        (!recorder.committed.lock().unwrap().is_empty()).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(*recorder.committed.lock().unwrap(), vec!["7"]);
    shutdown.trigger();
    task.await.unwrap();
}

async fn parked(f: &Fixture, topology: &ConsumerTopology) -> lapin::message::BasicGetMessage {
    let channel = f.connection.create_channel().await.unwrap();
    testkit::poll_until("a parked message", Duration::from_secs(10), || {
        let channel = channel.clone();
        let queue = topology.parking_queue();
        async move {
            channel
                .basic_get(
                    ShortString::from(queue.as_str()),
                    BasicGetOptions { no_ack: true },
                )
                .await
                .unwrap()
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn exhausted_retries_park_the_message_with_the_error_recorded() {
    let f = fixture().await;
    let topology = setup(&f).await;
    declare(&f, &topology).await;
    let recorder = Recorder::new(u32::MAX, false);
    let (shutdown, task) = start(&f, &topology, Arc::clone(&recorder), 3);

    let envelope = event("u-1", 3);
    publish(&f, &envelope).await;
    let message = parked(&f, &topology).await;
    let headers = message.delivery.properties.headers().clone().unwrap();
    assert_eq!(
        messaging::amqp::header_u32(&headers, ATTEMPTS_HEADER),
        Some(3)
    );
    assert_eq!(
        messaging::amqp::header_str(&headers, ERROR_HEADER),
        Some("dependency down")
    );
    assert_eq!(
        message.delivery.data, envelope.bytes,
        "parked unchanged, ready to replay"
    );
    assert_eq!(recorder.calls.lock().unwrap().len(), 3);
    assert!(effects(&f).await.is_empty());
    shutdown.trigger();
    task.await.unwrap();
}

#[tokio::test]
async fn permanent_failures_and_malformed_messages_are_parked_at_once() {
    let f = fixture().await;
    let topology = setup(&f).await;
    declare(&f, &topology).await;
    let recorder = Recorder::new(u32::MAX, true);
    let (shutdown, task) = start(&f, &topology, Arc::clone(&recorder), 5);

    publish(&f, &event("u-1", 1)).await;
    let message = parked(&f, &topology).await;
    let headers = message.delivery.properties.headers().clone().unwrap();
    assert_eq!(
        messaging::amqp::header_u32(&headers, ATTEMPTS_HEADER),
        Some(1)
    );
    assert_eq!(
        recorder.calls.lock().unwrap().len(),
        1,
        "no retry for a permanent failure"
    );

    publish_raw(
        &f,
        "users.user.registered",
        b"not protobuf at all",
        FieldTable::default(),
    )
    .await;
    let message = parked(&f, &topology).await;
    let headers = message.delivery.properties.headers().clone().unwrap();
    let error = messaging::amqp::header_str(&headers, ERROR_HEADER).unwrap();
    assert!(error.starts_with("undecodable envelope"), "{error}");
    assert_eq!(
        recorder.calls.lock().unwrap().len(),
        1,
        "the handler never saw it"
    );
    shutdown.trigger();
    task.await.unwrap();
}

#[tokio::test]
async fn the_consumer_continues_the_producers_trace() {
    telemetry();
    let f = fixture().await;
    let topology = setup(&f).await;
    declare(&f, &topology).await;
    let recorder = Recorder::new(0, false);
    let (shutdown, task) = start(&f, &topology, Arc::clone(&recorder), 3);

    let mut headers = FieldTable::default();
    headers.insert(
        "traceparent".into(),
        lapin::types::AMQPValue::LongString(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .to_owned()
                .into(),
        ),
    );
    let envelope = event("u-1", 1);
    publish_raw(&f, envelope.routing_key, &envelope.bytes, headers).await;
    testkit::poll_until("the event", Duration::from_secs(10), || async {
        (!effects(&f).await.is_empty()).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        recorder.trace_ids.lock().unwrap()[0].as_deref(),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
    shutdown.trigger();
    task.await.unwrap();
}

/// Installs the OpenTelemetry bridge once, so spans have trace ids in this test process.
fn telemetry() {
    static INIT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        let telemetry = platform::telemetry::init(&platform::telemetry::TelemetryConfig {
            service_name: "messaging-tests".into(),
            log_format: platform::telemetry::LogFormat::Pretty,
            otlp_endpoint: None,
        })
        .unwrap();
        std::mem::forget(telemetry);
    });
}

#[tokio::test]
async fn a_database_outage_longer_than_every_retry_pauses_the_consumer_and_parks_nothing() {
    let f = fixture().await;
    let topology = setup(&f).await;
    declare(&f, &topology).await;
    // The consumer reaches its database through a proxy the test can cut.
    let proxy = testkit::TcpProxy::start(&testkit::host_port(&f.db.url).unwrap()).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect(&proxy.rewrite_url(&f.db.url))
        .await
        .unwrap();
    let recorder = Recorder::new(0, false);
    let shutdown = Shutdown::new();
    // Three attempts 50 ms and 100 ms apart: without the pause, the outage below parks the event
    // in well under a second.
    let consumer = Consumer::new(pool, &f.amqp_url, topology.clone()).with_max_attempts(3);
    let task = tokio::spawn(consumer.run(Arc::clone(&recorder), shutdown.clone()));
    publish(&f, &event("u-0", 0)).await;
    testkit::poll_until("the consumer to run", Duration::from_secs(10), || async {
        (effects(&f).await == ["0"]).then_some(())
    })
    .await
    .unwrap();

    proxy.cut();
    let outage = std::time::Instant::now();
    publish(&f, &event("u-1", 1)).await;
    // The outage outlasts every retry the consumer has, and it keeps trying its database.
    testkit::poll_until(
        "an outage of 2 s with the consumer retrying its database",
        Duration::from_secs(20),
        || async {
            (proxy.refused() >= 4 && outage.elapsed() >= Duration::from_secs(2)).then_some(())
        },
    )
    .await
    .unwrap();
    proxy.restore();

    testkit::poll_until(
        "the event handled once the database is back",
        Duration::from_secs(20),
        || async { (effects(&f).await == ["0", "1"]).then_some(()) },
    )
    .await
    .unwrap();
    let channel = f.connection.create_channel().await.unwrap();
    let parked = channel
        .basic_get(
            ShortString::from(topology.parking_queue().as_str()),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap();
    assert!(parked.is_none(), "nothing was parked");
    assert!(
        recorder
            .calls
            .lock()
            .unwrap()
            .iter()
            .all(|(_, failures)| *failures == 0),
        "the outage spent no attempt: {:?}",
        recorder.calls.lock().unwrap()
    );
    shutdown.trigger();
    task.await.unwrap();
}

/// Refuses every event (permanently) until it is fixed, then records them.
struct Fixable {
    broken: std::sync::atomic::AtomicBool,
}

impl EventHandler for Fixable {
    async fn handle(
        &self,
        work: &mut Handling<'_>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(HandlerError::Permanent("a bug, deployed".into()));
        }
        let Event::UserRegistered(registered) = &event.event else {
            return Err(HandlerError::Permanent("not a registration".into()));
        };
        sqlx::query("INSERT INTO effects (event_id, label) VALUES ($1, $2)")
            .bind(event.event_id)
            .bind(&registered.display_name)
            .execute(work.tx())
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn parked_messages_are_listed_with_their_error_and_replayed_once_the_cause_is_fixed() {
    use messaging::parking;

    let f = fixture().await;
    let topology = setup(&f).await;
    declare(&f, &topology).await;
    let handler = Arc::new(Fixable {
        broken: std::sync::atomic::AtomicBool::new(true),
    });
    let shutdown = Shutdown::new();
    let consumer = Consumer::new(f.pool.clone(), &f.amqp_url, topology.clone());
    let task = tokio::spawn(consumer.run(Arc::clone(&handler), shutdown.clone()));

    let (first, second) = (event("u-1", 1), event("u-2", 2));
    publish(&f, &first).await;
    publish(&f, &second).await;
    let listed = testkit::poll_until("two parked messages", Duration::from_secs(10), || async {
        let listed = parking::list(&f.connection, &topology).await.unwrap();
        (listed.len() == 2).then_some(listed)
    })
    .await
    .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|parked| parked.event_id.as_str())
            .collect::<Vec<_>>(),
        [first.event_id.to_string(), second.event_id.to_string()]
    );
    assert!(listed.iter().all(|parked| parked.error == "a bug, deployed"
        && parked.routing_key == "users.user.registered"
        && parked.event_type == "shop.events.v1.UserRegistered"));
    // Listing left them parked.
    assert_eq!(
        parking::list(&f.connection, &topology).await.unwrap(),
        listed
    );

    // Only the first, then the fix, then everything left.
    handler
        .broken
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let only_first = [first.event_id.to_string()];
    let replayed = parking::replay(&f.connection, &topology, Some(&only_first))
        .await
        .unwrap();
    assert_eq!(replayed.len(), 1);
    testkit::poll_until("the first replayed", Duration::from_secs(10), || async {
        (effects(&f).await == ["1"]).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        parking::list(&f.connection, &topology).await.unwrap().len(),
        1
    );
    assert_eq!(
        parking::replay(&f.connection, &topology, None)
            .await
            .unwrap()
            .len(),
        1
    );
    testkit::poll_until("both handled", Duration::from_secs(10), || async {
        (effects(&f).await == ["1", "2"]).then_some(())
    })
    .await
    .unwrap();

    // A copy of an event already handled, parked (a duplicate that failed after its twin
    // succeeded): replaying it changes nothing, thanks to the inbox.
    f.channel
        .basic_publish(
            ShortString::from(""),
            ShortString::from(topology.parking_queue().as_str()),
            BasicPublishOptions::default(),
            &first.bytes,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        parking::replay(&f.connection, &topology, None)
            .await
            .unwrap()
            .len(),
        1
    );
    // A marker after it: once the marker is handled, the replayed duplicate was too.
    publish(&f, &event("u-3", 3)).await;
    testkit::poll_until("the marker", Duration::from_secs(10), || async {
        (effects(&f).await == ["1", "2", "3"]).then_some(())
    })
    .await
    .unwrap();
    assert!(
        parking::list(&f.connection, &topology)
            .await
            .unwrap()
            .is_empty()
    );
    shutdown.trigger();
    task.await.unwrap();
}
