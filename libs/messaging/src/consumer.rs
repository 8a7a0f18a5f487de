//! The idempotent consumer (inbox pattern), with delayed retries and a parking queue.
//!
//! For each delivery:
//!
//! ```text
//! decode the envelope and its payload into a catalog::Event          -- undecodable → parked
//! BEGIN
//!   INSERT INTO inbox (consumer, message_id, …) ON CONFLICT DO NOTHING  -- seen before? → ack, done
//!   handler.handle(&mut handling, &event)                             -- the effects
//! COMMIT                                                              -- both or neither
//! the handler's after-commit tasks                                    -- e.g. cache invalidation
//! ack
//! ```
//!
//! Because the inbox row and the effects commit together, a redelivery (crash before the ack, a
//! relay that published twice) finds the row and changes nothing. The ack comes only after the
//! commit, so a crash never loses an event.
//!
//! When the handler fails, the transaction rolls back and what happens next depends on whose
//! fault it is:
//!
//! * **The consumer's own dependency is down** ([`HandlerError::Unavailable`]: its database, or
//!   anything else it needs to handle *any* message). The message is not at fault, so it spends
//!   no attempt: the consumer **pauses**, keeps the delivery, and tries the same message again
//!   with a capped backoff (200 ms to 5 s) until the dependency is back, however long that
//!   takes. A database outage of ten minutes delays events by ten minutes and parks none; with
//!   attempts spent on it, five failures in a minute would park every event in flight for a
//!   person to replay. `messaging_consumer_paused{queue}` is 1 while paused; the pause is
//!   logged once when it starts and once when it ends.
//! * **This message failed** ([`HandlerError::Transient`]: a lock timeout, a conflict) and may
//!   succeed later: it is republished to the retry tier for its attempt count (see
//!   [`crate::topology`]); after `max_attempts` failures it goes to the parking queue.
//! * **It can never succeed** ([`HandlerError::Permanent`], an undecodable message): parked at
//!   once, with the error in its headers.
//!
//! Republish-then-ack can duplicate a message if the process dies in between; the inbox absorbs
//! that. Parked messages are listed and replayed with [`crate::parking`].

use std::{sync::Arc, time::Duration};

use contracts::events::EventEnvelope;
use futures::{StreamExt as _, future::BoxFuture};
use lapin::{
    BasicProperties, Channel, Connection,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use platform::Shutdown;
use prost::Message as _;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tracing::Instrument as _;
use uuid::Uuid;

use resilience::backoff::Backoff;

use crate::{
    amqp::{self, HeaderExtractor},
    catalog::Event,
    inbox,
    topology::ConsumerTopology,
};

/// Header counting how many times handling this message has failed.
pub const ATTEMPTS_HEADER: &str = "x-ferroshop-attempts";
/// Header with the last handler error, on retried and parked messages.
pub const ERROR_HEADER: &str = "x-ferroshop-error";
/// Header with the routing key a retried or parked message was first published with.
pub const ORIGINAL_ROUTING_KEY_HEADER: &str = "x-ferroshop-original-routing-key";

/// An event as a handler sees it: decoded, with what its envelope says about it.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    pub event_id: Uuid,
    /// The payload, decoded by the type its envelope names.
    pub event: Event,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub routing_key: String,
    /// When the producer committed the event.
    pub occurred_at: OffsetDateTime,
    /// Failed attempts before this one (0 on first delivery).
    pub failures: u32,
}

impl ReceivedEvent {
    /// Decodes a delivery's body: the envelope, then its payload by the type the envelope
    /// names. Whatever does not decode is [`HandlerError::Permanent`]: it will not change on
    /// redelivery, so it is parked for an operator (and a replay once the consumer knows it).
    pub fn decode(body: &[u8], routing_key: &str, failures: u32) -> Result<Self, HandlerError> {
        let envelope = EventEnvelope::decode(body)
            .map_err(|err| HandlerError::Permanent(format!("undecodable envelope: {err}")))?;
        let event_id = Uuid::parse_str(&envelope.event_id).map_err(|_| {
            HandlerError::Permanent(format!("bad event id {:?}", envelope.event_id))
        })?;
        let event = Event::decode(&envelope.event_type, &envelope.payload)
            .ok_or_else(|| {
                HandlerError::Permanent(format!("unknown event type {}", envelope.event_type))
            })?
            .map_err(|err| {
                HandlerError::Permanent(format!("undecodable {}: {err}", envelope.event_type))
            })?;
        Ok(Self {
            event_id,
            event,
            aggregate_type: envelope.aggregate_type,
            aggregate_id: envelope.aggregate_id,
            routing_key: routing_key.to_owned(),
            occurred_at: envelope
                .occurred_at
                .and_then(|at| {
                    OffsetDateTime::from_unix_timestamp_nanos(
                        i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos),
                    )
                    .ok()
                })
                .unwrap_or_else(OffsetDateTime::now_utc),
            failures,
        })
    }
}

/// The inbox transaction a handler works in, and what it wants done once that commits.
///
/// Some effects must wait for the commit: invalidating a cache before it would let a reader
/// load the old row and cache it under the new generation. A handler registers such work with
/// [`Handling::after_commit`]; the consumer runs it after a successful commit, and never after
/// a rollback.
pub struct Handling<'t> {
    tx: &'t mut PgConnection,
    after_commit: Vec<BoxFuture<'static, ()>>,
}

impl<'t> Handling<'t> {
    /// Handling on `tx` (the consumer makes one per delivery; tests that drive a handler
    /// directly make their own).
    pub fn new(tx: &'t mut PgConnection) -> Self {
        Self {
            tx,
            after_commit: Vec::new(),
        }
    }

    /// Runs the registered after-commit tasks: call it once the transaction has committed.
    pub async fn committed(tasks: Vec<BoxFuture<'static, ()>>) {
        for task in tasks {
            task.await;
        }
    }

    /// The tasks registered so far, taken out so the transaction can be committed first.
    pub fn take_after_commit(&mut self) -> Vec<BoxFuture<'static, ()>> {
        std::mem::take(&mut self.after_commit)
    }

    /// The transaction's connection: every effect goes through it.
    pub fn tx(&mut self) -> &mut PgConnection {
        self.tx
    }

    /// Runs `task` once the transaction has committed (not at all if it rolls back).
    pub fn after_commit(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.after_commit.push(Box::pin(task));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Something the consumer needs for every message is down (its database, a provider): the
    /// consumer pauses and handles this message again once it is back, spending no attempt.
    #[error("{0}")]
    Unavailable(String),
    /// This message failed but may succeed later (a lock timeout, a concurrent change): retried
    /// through the delay tiers, parked after `max_attempts`.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: the message is malformed or violates an invariant. Parked at once.
    #[error("{0}")]
    Permanent(String),
}

impl HandlerError {
    /// Parses the id an event carries in `field`. A malformed id will never parse, however often
    /// the event is redelivered: permanent.
    pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, Self> {
        Uuid::parse_str(raw).map_err(|_| Self::Permanent(format!("bad {field} {raw:?}")))
    }
}

impl HandlerError {
    /// A database error met while handling, described as `reason`: the database being
    /// unreachable is [`HandlerError::Unavailable`] (pause); any other database error is about
    /// this message's statements (a lock timeout, a conflict): [`HandlerError::Transient`].
    pub fn database(error: &sqlx::Error, reason: impl Into<String>) -> Self {
        if platform::error::database_unavailable(error) {
            Self::Unavailable(reason.into())
        } else {
            Self::Transient(reason.into())
        }
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        Self::database(&error, format!("database: {error}"))
    }
}

/// Applies one event's effects inside the inbox transaction.
///
/// Implement it with `async fn handle(&self, work: &mut Handling<'_>, event: &ReceivedEvent)`,
/// matching on the [`Event`] variants the handler cares about; the rest are `Ok(())`.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(
        &self,
        work: &mut Handling<'_>,
        event: &ReceivedEvent,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Handled,
    Duplicate,
    Retried,
    Parked,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Duplicate => "duplicate",
            Self::Retried => "retried",
            Self::Parked => "parked",
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ConsumeError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker did not confirm the republished message")]
    NotConfirmed,
    #[error("the consumer was cancelled by the broker")]
    Cancelled,
    #[error("the broker connection is no longer connected")]
    Disconnected,
    #[error(transparent)]
    Timeout(#[from] amqp::BrokerTimeout),
}

/// A failure that is the message's: what is left once the pause has absorbed
/// [`HandlerError::Unavailable`].
enum MessageFailure {
    Transient(String),
    Permanent(String),
}

/// Consumes one queue into one handler.
pub struct Consumer {
    pool: PgPool,
    amqp_url: String,
    topology: ConsumerTopology,
    /// Failed attempts after which a message is parked.
    pub max_attempts: u32,
    /// Unacknowledged deliveries the broker may push at once.
    pub prefetch: u16,
}

impl Consumer {
    pub fn new(pool: PgPool, amqp_url: &str, topology: ConsumerTopology) -> Self {
        Self {
            pool,
            amqp_url: amqp_url.to_owned(),
            topology,
            max_attempts: 5,
            prefetch: 16,
        }
    }

    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Declares the queues and bindings now, so that events published from here on are kept
    /// even before the consumer runs. Best effort: without a broker the consumer declares them
    /// when it connects.
    pub async fn declare_topology(&self) -> Result<(), lapin::Error> {
        let connection = amqp::connect(&self.amqp_url, &self.topology.queue).await?;
        let declared = async {
            let channel = connection.create_channel().await?;
            self.topology.declare(&channel).await?;
            // The channel first: closing the connection under an open channel fails the
            // channel's own close, which lapin reports as a connection error.
            channel.close(200, "topology declared".into()).await
        }
        .await;
        let _ = connection.close(200, "topology declared".into()).await;
        declared
    }

    /// [`Consumer::declare_topology`] at start-up, waiting at most 5 s: a missing broker only
    /// delays the declaration to the consumer's first connection.
    pub async fn prepare(&self) {
        match tokio::time::timeout(Duration::from_secs(5), self.declare_topology()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(queue = %self.topology.queue, error = %err, "cannot declare queues yet")
            }
            Err(_) => {
                tracing::warn!(queue = %self.topology.queue, "the broker did not answer; queues will be declared later")
            }
        }
    }

    /// Consumes until `shutdown` fires, reconnecting after any failure.
    pub async fn run<H: EventHandler>(self, handler: Arc<H>, shutdown: Shutdown) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        while !shutdown.is_triggered() {
            let connecting = amqp::connect(&self.amqp_url, &self.topology.queue);
            let outcome = match amqp::within("a connection", connecting).await {
                Ok(Ok(connection)) => {
                    let outcome = self
                        .consume_on(&connection, handler.as_ref(), &shutdown, &mut backoff)
                        .await;
                    // Best effort, and bounded: a dead connection may never answer its close.
                    let closing = connection.close(200, "consumer stopping".into());
                    let _ = amqp::within("closing", closing).await;
                    outcome
                }
                Ok(Err(err)) => Err(ConsumeError::Broker(err)),
                Err(timeout) => Err(ConsumeError::Timeout(timeout)),
            };
            match outcome {
                Ok(()) => break,
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(queue = %self.topology.queue, error = %err, retry_in = ?delay, "consumer interrupted");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.wait() => break,
                    }
                }
            }
        }
        tracing::info!(queue = %self.topology.queue, "consumer stopped");
    }

    async fn consume_on<H: EventHandler>(
        &self,
        connection: &Connection,
        handler: &H,
        shutdown: &Shutdown,
        backoff: &mut Backoff,
    ) -> Result<(), ConsumeError> {
        let (channel, mut deliveries) = amqp::within("a channel and the topology", async {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            channel
                .basic_qos(self.prefetch, BasicQosOptions::default())
                .await?;
            self.topology.declare(&channel).await?;
            let deliveries = channel
                .basic_consume(
                    ShortString::from(self.topology.queue.as_str()),
                    ShortString::from(format!(
                        "{}-{}",
                        self.topology.queue,
                        Uuid::now_v7().simple()
                    )),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>((channel, deliveries))
        })
        .await??;
        tracing::info!(queue = %self.topology.queue, "consuming");
        backoff.reset();
        let mut depth_probe = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                _ = depth_probe.tick() => {
                    // A connection that died without ending the delivery stream would leave
                    // this loop waiting for deliveries that can never come.
                    if !connection.status().connected() {
                        return Err(ConsumeError::Disconnected);
                    }
                    self.record_parking_depth(&channel).await?;
                }
                delivery = deliveries.next() => match delivery {
                    Some(delivery) => {
                        if self.process(&channel, handler, delivery?, shutdown).await?.is_none() {
                            return Ok(());
                        }
                    }
                    None => return Err(ConsumeError::Cancelled),
                },
            }
        }
    }

    async fn process<H: EventHandler>(
        &self,
        channel: &Channel,
        handler: &H,
        delivery: Delivery,
        shutdown: &Shutdown,
    ) -> Result<Option<Outcome>, ConsumeError> {
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(&headers))
        });
        let span = tracing::info_span!(
            "amqp.consume",
            otel.kind = "consumer",
            otel.name = %format!("{} receive", self.topology.queue),
            messaging.system = "rabbitmq",
            messaging.destination = %self.topology.queue,
            messaging.routing_key = %delivery.routing_key.as_str(),
            trace_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        platform::trace_context::continue_trace(&span, parent);
        async {
            let started = std::time::Instant::now();
            let failures = amqp::header_u32(&headers, ATTEMPTS_HEADER).unwrap_or(0);
            let Some(handled) = self.handle_unpaused(handler, &delivery, failures, shutdown).await
            else {
                // Shut down while paused: the delivery goes back to the queue unacknowledged.
                return Ok(None);
            };
            let outcome = match handled {
                Ok(outcome) => outcome,
                Err(MessageFailure::Transient(reason)) if failures + 1 < self.max_attempts => {
                    match self.topology.retry_delay(failures + 1) {
                        Some(delay) => {
                            tracing::warn!(error = %reason, attempt = failures + 1, retry_in = ?delay, "handler failed; will retry");
                            self.republish(channel, &delivery, &self.topology.retry_queue(delay), failures + 1, &reason).await?;
                            Outcome::Retried
                        }
                        None => self.park(channel, &delivery, failures + 1, &reason).await?,
                    }
                }
                Err(MessageFailure::Transient(reason) | MessageFailure::Permanent(reason)) => {
                    self.park(channel, &delivery, failures + 1, &reason).await?
                }
            };
            amqp::within("an ack", delivery.ack(BasicAckOptions::default())).await??;
            tracing::Span::current().record("outcome", outcome.as_str());
            metrics::counter!(
                "messaging_consumed_total",
                "queue" => self.topology.queue.clone(),
                "outcome" => outcome.as_str(),
            )
            .increment(1);
            metrics::histogram!(
                "messaging_handler_duration_seconds",
                "queue" => self.topology.queue.clone(),
            )
            .record(started.elapsed().as_secs_f64());
            Ok(Some(outcome))
        }
        .instrument(span)
        .await
    }

    /// [`Consumer::handle`], again and again while it reports [`HandlerError::Unavailable`]:
    /// the pause. `None` when `shutdown` fired first.
    async fn handle_unpaused<H: EventHandler>(
        &self,
        handler: &H,
        delivery: &Delivery,
        failures: u32,
        shutdown: &Shutdown,
    ) -> Option<Result<Outcome, MessageFailure>> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut paused = false;
        let handled = loop {
            match self.handle(handler, delivery, failures).await {
                Err(HandlerError::Unavailable(reason)) => {
                    if !paused {
                        paused = true;
                        tracing::warn!(queue = %self.topology.queue, error = %reason, "a dependency is unavailable: consumer paused; the message waits and spends no attempt");
                        metrics::gauge!("messaging_consumer_paused", "queue" => self.topology.queue.clone()).set(1.0);
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                        () = shutdown.wait() => break None,
                    }
                }
                Err(HandlerError::Transient(reason)) => {
                    break Some(Err(MessageFailure::Transient(reason)));
                }
                Err(HandlerError::Permanent(reason)) => {
                    break Some(Err(MessageFailure::Permanent(reason)));
                }
                Ok(outcome) => break Some(Ok(outcome)),
            }
        };
        if paused {
            metrics::gauge!("messaging_consumer_paused", "queue" => self.topology.queue.clone())
                .set(0.0);
            if handled.is_some() {
                tracing::info!(queue = %self.topology.queue, "dependency back: consumer resumed");
            }
        }
        handled
    }

    /// The inbox transaction: dedupe row + effects, committed together; then the handler's
    /// after-commit tasks.
    async fn handle<H: EventHandler>(
        &self,
        handler: &H,
        delivery: &Delivery,
        failures: u32,
    ) -> Result<Outcome, HandlerError> {
        let event = ReceivedEvent::decode(
            delivery.data.as_slice(),
            delivery.routing_key.as_str(),
            failures,
        )?;
        let mut tx = self.pool.begin().await?;
        let first = inbox::record(
            &mut tx,
            &self.topology.queue,
            event.event_id,
            &event.event.type_name(),
        )
        .await?;
        if !first {
            tracing::debug!(event_id = %event.event_id, "duplicate delivery ignored");
            return Ok(Outcome::Duplicate);
        }
        let mut handling = Handling::new(&mut tx);
        handler.handle(&mut handling, &event).await?;
        let after_commit = handling.take_after_commit();
        tx.commit().await?;
        Handling::committed(after_commit).await;
        Ok(Outcome::Handled)
    }

    async fn park(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        failures: u32,
        reason: &str,
    ) -> Result<Outcome, ConsumeError> {
        tracing::error!(error = %reason, attempts = failures, "parking message");
        self.republish(
            channel,
            delivery,
            &self.topology.parking_queue(),
            failures,
            reason,
        )
        .await?;
        Ok(Outcome::Parked)
    }

    /// Publishes a copy to `queue` (through the default exchange, which routes by queue name)
    /// and waits for the broker's confirm, so the original can be acked safely.
    async fn republish(
        &self,
        channel: &Channel,
        delivery: &Delivery,
        queue: &str,
        failures: u32,
        reason: &str,
    ) -> Result<(), ConsumeError> {
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongUInt(failures));
        let reason: String = reason.chars().take(1000).collect();
        headers.insert(
            ERROR_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason)),
        );
        headers.insert(
            ORIGINAL_ROUTING_KEY_HEADER.into(),
            AMQPValue::LongString(LongString::from(delivery.routing_key.as_str().to_owned())),
        );
        let properties: BasicProperties = delivery.properties.clone().with_headers(headers);
        let publish = channel.basic_publish(
            ShortString::from(""),
            ShortString::from(queue),
            BasicPublishOptions::default(),
            &delivery.data,
            properties,
        );
        let confirm = amqp::within("a republish", publish).await??;
        let confirmation = amqp::within("a republish confirm", confirm).await??;
        if confirmation.is_ack() {
            Ok(())
        } else {
            Err(ConsumeError::NotConfirmed)
        }
    }

    /// Exports the parking queue's depth (`messaging_parked_messages`): the DLQ alarm. A
    /// refused declare is skipped (the gauge keeps its value); one that never answers is a dead
    /// connection.
    async fn record_parking_depth(&self, channel: &Channel) -> Result<(), ConsumeError> {
        let parking = self.topology.parking_queue();
        let declare = channel.queue_declare(
            ShortString::from(parking.as_str()),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        );
        if let Ok(queue) = amqp::within("the parking queue's depth", declare).await? {
            metrics::gauge!("messaging_parked_messages", "queue" => parking)
                .set(f64::from(queue.message_count()));
        }
        Ok(())
    }
}
