//! The outbox relay: moves committed events from the `outbox` table to RabbitMQ.
//!
//! The loop, per batch:
//!
//! 1. **Claim** up to `batch_size` unpublished rows in `seq` order with `FOR UPDATE SKIP LOCKED`,
//!    so several relays (one per replica) never claim the same row.
//! 2. **Keep per-aggregate order.** SKIP LOCKED alone would let relay B publish order X's second
//!    event while relay A still holds X's first. So a relay only publishes an aggregate's rows if
//!    it wins that aggregate's advisory lock for the transaction *and* its first claimed row is
//!    the aggregate's oldest unpublished one; otherwise it leaves the aggregate for later.
//! 3. **Publish with publisher confirms** and mark rows published only once the broker has
//!    confirmed them (in `seq` order, stopping at the first unconfirmed one). A crash between
//!    publish and mark re-publishes the row: delivery is *at least once*, and consumers
//!    deduplicate by message id (the inbox).
//!
//!    Every publish is **mandatory**: a message no queue takes comes back with its confirm. A
//!    confirm alone would only say the exchange had it, and an exchange with no matching binding
//!    drops a message silently. Before it publishes anything on a connection the relay declares
//!    the whole consumer topology ([`RelayConfig::topology`], every queue of
//!    [`crate::topology::QUEUES`]), so a returned message whose routing key one of those queues
//!    binds means a queue vanished behind the relay's back (a broker rebuilt from an empty
//!    volume, an operator's delete): the row stays unpublished, the relay reconnects, declares
//!    again and publishes it then. A returned message that no declared queue binds is an event
//!    nobody consumes (`UserRegistered`, today): it is counted in `outbox_unrouted_total` and
//!    marked published, or it would hold up every later event of its aggregate for ever.
//! 4. **Wait** for `NOTIFY outbox` (sent by every enqueue when its transaction commits) or the
//!    poll interval, whichever comes first: LISTEN/NOTIFY gives low latency, polling covers a
//!    missed notification or a listener reconnect.
//!
//! Published rows are not the relay's to delete: the outbox is partitioned by day, and the
//! `partitions` worker drops a day once it is past the retention and fully published
//! ([`crate::outbox`]).
//!
//! Any broker or database error drops the connection and retries with capped exponential
//! backoff and jitter; unpublished rows simply wait. That is what makes a broker restart
//! harmless: nothing is lost, and order per aggregate is kept.
//!
//! Metrics: `outbox_published_total`, `outbox_publish_failures_total`, `outbox_unrouted_total`,
//! `outbox_pending` and `outbox_lag_seconds` (age of the oldest unpublished event).

use std::time::Duration;

use contracts::events::EventEnvelope;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::{FieldTable, ShortString},
};
use platform::Shutdown;
use prost::Message as _;
use sqlx::{PgConnection, PgPool, postgres::PgListener};
use time::OffsetDateTime;
use uuid::Uuid;

use resilience::backoff::Backoff;

use crate::{
    amqp::{self, HeaderInjector},
    outbox::NOTIFY_CHANNEL,
    topology::{self, ConsumerTopology},
};
use opentelemetry::propagation::Injector as _;

/// Content type of every message: an encoded `shop.events.v1.EventEnvelope`.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `amqp://user:password@host:port/vhost`.
    pub amqp_url: String,
    /// Exchange to publish to (`shop.events`; tests use a unique one).
    pub exchange: String,
    /// Shown in the broker's connection list, e.g. `users-outbox-relay`.
    pub connection_name: String,
    /// Rows claimed per transaction.
    pub batch_size: i64,
    /// The fallback wake-up when no notification arrives.
    pub poll_interval: Duration,
    /// The consumer queues declared on every connection before anything is published; what
    /// they bind is what must reach a queue (see the module docs on mandatory publishing).
    pub topology: Vec<ConsumerTopology>,
}

impl RelayConfig {
    pub fn new(amqp_url: &str, exchange: &str, service: &str) -> Self {
        Self {
            amqp_url: amqp_url.to_owned(),
            exchange: exchange.to_owned(),
            connection_name: format!("{service}-outbox-relay"),
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            topology: Vec::new(),
        }
    }

    /// Declares `topology` on every connection, and treats a returned event it binds as a
    /// failure to retry.
    #[must_use]
    pub fn with_topology(mut self, topology: Vec<ConsumerTopology>) -> Self {
        self.topology = topology;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the broker did not confirm event {0}")]
    NotConfirmed(Uuid),
    #[error(transparent)]
    Timeout(#[from] amqp::BrokerTimeout),
    #[error(
        "event {event_id} ({routing_key}) was returned: no queue took it although one binds it"
    )]
    Unroutable { event_id: Uuid, routing_key: String },
}

/// Publishes the outbox of one service database.
pub struct OutboxRelay {
    pool: PgPool,
    config: RelayConfig,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    seq: i64,
    event_id: Uuid,
    event_type: String,
    routing_key: String,
    aggregate_type: String,
    aggregate_id: String,
    envelope: Vec<u8>,
    occurred_at: OffsetDateTime,
}

impl OutboxRelay {
    pub fn new(pool: PgPool, config: RelayConfig) -> Self {
        Self { pool, config }
    }

    /// Relays until `shutdown` fires, reconnecting after any failure.
    pub async fn run(self, shutdown: Shutdown) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        while !shutdown.is_triggered() {
            match self.connect_and_relay(&shutdown, &mut backoff).await {
                Ok(()) => break,
                Err(err) => {
                    metrics::counter!("outbox_publish_failures_total").increment(1);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %err, retry_in = ?delay, "outbox relay interrupted");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.wait() => break,
                    }
                }
            }
        }
        tracing::info!("outbox relay stopped");
    }

    async fn connect_and_relay(
        &self,
        shutdown: &Shutdown,
        backoff: &mut Backoff,
    ) -> Result<(), RelayError> {
        let connection = amqp::within(
            "a connection",
            amqp::connect(&self.config.amqp_url, &self.config.connection_name),
        )
        .await??;
        let outcome = self.relay_on(&connection, shutdown, backoff).await;
        // Closing is best effort: after a failure the connection is usually dead already, and
        // waiting for its close to be answered could take for ever.
        let _ = amqp::within("closing", connection.close(200, "relay stopping".into())).await;
        outcome
    }

    async fn relay_on(
        &self,
        connection: &Connection,
        shutdown: &Shutdown,
        backoff: &mut Backoff,
    ) -> Result<(), RelayError> {
        let channel = amqp::within("a channel and the topology", async {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            topology::declare_events_exchange(&channel, &self.config.exchange).await?;
            for queue in &self.config.topology {
                queue.declare(&channel).await?;
            }
            Ok::<_, lapin::Error>(channel)
        })
        .await??;
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        tracing::info!(exchange = %self.config.exchange, "outbox relay connected");
        backoff.reset();

        loop {
            loop {
                let claimed = self.relay_batch(&channel).await?;
                if claimed < usize::try_from(self.config.batch_size).unwrap_or(usize::MAX) {
                    break;
                }
            }
            self.record_lag().await?;
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                notification = listener.recv() => { notification?; }
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Claims, publishes and marks one batch; returns how many rows it claimed.
    pub async fn relay_batch(&self, channel: &Channel) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT seq, event_id, event_type, routing_key, aggregate_type, aggregate_id,
                    envelope, occurred_at
             FROM outbox
             WHERE published_at IS NULL
             ORDER BY seq
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(self.config.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        let claimed = rows.len();
        if claimed == 0 {
            return Ok(0);
        }

        let eligible = publishable(&mut tx, rows).await?;
        let mut pending = Vec::with_capacity(eligible.len());
        for row in &eligible {
            let publish = channel.basic_publish(
                ShortString::from(self.config.exchange.as_str()),
                ShortString::from(row.routing_key.as_str()),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &row.envelope,
                properties(row),
            );
            let confirm = amqp::within("a publish", publish).await??;
            pending.push((row, confirm));
        }

        let mut confirmed = Vec::with_capacity(pending.len());
        let mut failure = None;
        for (row, confirm) in pending {
            if failure.is_some() {
                break;
            }
            let confirmation = match amqp::within("a publish confirm", confirm).await {
                Ok(confirmation) => confirmation,
                Err(timeout) => {
                    failure = Some(RelayError::Timeout(timeout));
                    break;
                }
            };
            match confirmation {
                Ok(Confirmation::Ack(None)) => confirmed.push(row.seq),
                Ok(Confirmation::Ack(Some(_returned))) => {
                    if self
                        .config
                        .topology
                        .iter()
                        .any(|queue| queue.binds(&row.routing_key))
                    {
                        failure = Some(RelayError::Unroutable {
                            event_id: row.event_id,
                            routing_key: row.routing_key.clone(),
                        });
                    } else {
                        tracing::debug!(routing_key = %row.routing_key, "no queue consumes this event");
                        metrics::counter!("outbox_unrouted_total").increment(1);
                        confirmed.push(row.seq);
                    }
                }
                Ok(_) => failure = Some(RelayError::NotConfirmed(row.event_id)),
                Err(err) => failure = Some(RelayError::Broker(err)),
            }
        }
        if !confirmed.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = now() WHERE seq = ANY($1)")
                .bind(&confirmed)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        metrics::counter!("outbox_published_total").increment(confirmed.len() as u64);
        if let Some(err) = failure {
            self.record_failure(&eligible, confirmed.len(), &err).await;
            return Err(err);
        }
        Ok(claimed)
    }

    async fn record_failure(&self, eligible: &[OutboxRow], confirmed: usize, err: &RelayError) {
        if let Some(row) = eligible.get(confirmed) {
            let recorded = sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1",
            )
            .bind(row.seq)
            .bind(err.to_string())
            .execute(&self.pool)
            .await;
            if let Err(db) = recorded {
                tracing::warn!(error = %db, "cannot record the publish failure");
            }
        }
    }

    async fn record_lag(&self) -> Result<(), sqlx::Error> {
        let (pending, lag): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(occurred_at))::float8
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        metrics::gauge!("outbox_pending").set(pending as f64);
        metrics::gauge!("outbox_lag_seconds").set(lag.unwrap_or(0.0).max(0.0));
        Ok(())
    }
}

/// The claimed rows this relay may publish without overtaking another relay on any aggregate.
///
/// For each aggregate in the batch: take its advisory lock (or leave the aggregate to whoever
/// holds it), then keep the claimed rows only as long as they are exactly the aggregate's oldest
/// unpublished rows, in order. SKIP LOCKED can leave gaps (rows another relay holds); a row after
/// a gap must wait, or it would overtake the rows in the gap.
async fn publishable(
    tx: &mut PgConnection,
    rows: Vec<OutboxRow>,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let mut by_aggregate: Vec<((String, String), Vec<OutboxRow>)> = Vec::new();
    for row in rows {
        let key = (row.aggregate_type.clone(), row.aggregate_id.clone());
        match by_aggregate.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(row),
            None => by_aggregate.push((key, vec![row])),
        }
    }
    let mut eligible = Vec::new();
    for ((aggregate_type, aggregate_id), group) in by_aggregate {
        let (locked,): (bool,) = sqlx::query_as(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))",
        )
        .bind(&aggregate_type)
        .bind(&aggregate_id)
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            continue;
        }
        let oldest: Vec<(i64,)> = sqlx::query_as(
            "SELECT seq FROM outbox
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND published_at IS NULL
             ORDER BY seq LIMIT $3",
        )
        .bind(&aggregate_type)
        .bind(&aggregate_id)
        .bind(i64::try_from(group.len()).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        eligible.extend(
            group
                .into_iter()
                .zip(oldest)
                .take_while(|(row, (seq,))| row.seq == *seq)
                .map(|(row, _)| row),
        );
    }
    eligible.sort_by_key(|row| row.seq);
    Ok(eligible)
}

/// AMQP properties: message-id, type and content-type repeat the envelope's facts so brokers
/// and tools can route and inspect without decoding protobuf; headers carry trace context.
fn properties(row: &OutboxRow) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Ok(envelope) = EventEnvelope::decode(row.envelope.as_slice()) {
        let mut injector = HeaderInjector(&mut headers);
        if !envelope.traceparent.is_empty() {
            injector.set("traceparent", envelope.traceparent);
        }
        if !envelope.tracestate.is_empty() {
            injector.set("tracestate", envelope.tracestate);
        }
    }
    BasicProperties::default()
        .with_message_id(ShortString::from(row.event_id.to_string()))
        .with_type(ShortString::from(row.event_type.as_str()))
        .with_content_type(ShortString::from(CONTENT_TYPE))
        // 2 = persistent: the message survives a broker restart once it is in a durable queue.
        .with_delivery_mode(2)
        .with_timestamp(u64::try_from(row.occurred_at.unix_timestamp()).unwrap_or_default())
        .with_headers(headers)
}
