//! Watching what a service publishes: a private queue bound to the events exchange.

use std::time::Duration;

use futures::StreamExt as _;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
        ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{FieldTable, ShortString},
};

/// An exclusive queue bound to a topic exchange; it disappears with the probe's connection.
pub struct EventProbe {
    connection: Connection,
    channel: Channel,
    queue: String,
}

impl EventProbe {
    /// Binds a new queue to `exchange` (declared if missing, exactly as the services declare it)
    /// for the routing-key `pattern`, e.g. `payments.#`.
    ///
    /// # Panics
    /// When the broker is unreachable or refuses the declarations.
    pub async fn bind(amqp_url: &str, exchange: &str, pattern: &str) -> Self {
        let (connection, channel) = open(amqp_url).await;
        channel
            .exchange_declare(
                ShortString::from(exchange),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|err| panic!("cannot declare {exchange}: {err}"));
        let queue = crate::unique_name("probe");
        channel
            .queue_declare(
                ShortString::from(queue.as_str()),
                QueueDeclareOptions {
                    exclusive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|err| panic!("cannot declare the probe queue: {err}"));
        channel
            .queue_bind(
                ShortString::from(queue.as_str()),
                ShortString::from(exchange),
                ShortString::from(pattern),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|err| panic!("cannot bind the probe queue: {err}"));
        Self {
            connection,
            channel,
            queue,
        }
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Receives exactly `count` messages, in arrival order.
    ///
    /// After the `count`-th message the probe keeps listening for [`EventProbe::QUIET`]: a
    /// duplicate or an extra event that arrives late is what "published once" tests exist to
    /// catch, so one more message within that window fails the test rather than waiting unseen
    /// in the queue.
    ///
    /// # Panics
    /// When fewer arrive within `deadline`, or more arrive within the quiet window after them.
    pub async fn receive(&self, count: usize, deadline: Duration) -> Vec<Delivery> {
        let channel = self
            .connection
            .create_channel()
            .await
            .unwrap_or_else(|err| panic!("cannot open a channel: {err}"));
        let mut consumer = channel
            .basic_consume(
                ShortString::from(self.queue.as_str()),
                ShortString::from(crate::unique_name("probe-consumer")),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|err| panic!("cannot consume the probe queue: {err}"));
        let mut received = Vec::with_capacity(count);
        let collect = async {
            while received.len() < count {
                received.push(next_delivery(&mut consumer).await);
            }
        };
        if tokio::time::timeout(deadline, collect).await.is_err() {
            panic!(
                "received {} of {count} messages on {} within {deadline:?}",
                received.len(),
                self.queue
            );
        }
        if let Ok(extra) = tokio::time::timeout(Self::QUIET, next_delivery(&mut consumer)).await {
            panic!(
                "expected exactly {count} messages on {}, but another arrived within {:?} \
                 (routing key {:?}, message id {:?})",
                self.queue,
                Self::QUIET,
                extra.routing_key.as_str(),
                extra
                    .properties
                    .message_id()
                    .as_ref()
                    .map(ShortString::as_str),
            );
        }
        let _ = channel.close(200, "probe done".into()).await;
        received
    }

    /// How long [`EventProbe::receive`] listens for an unexpected extra message. A relay that
    /// publishes twice does so within one poll interval (well under a second in tests).
    pub const QUIET: Duration = Duration::from_secs(1);
}

/// The next delivery, acknowledged.
async fn next_delivery(consumer: &mut lapin::Consumer) -> Delivery {
    match consumer.next().await {
        Some(Ok(delivery)) => {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            delivery
        }
        Some(Err(err)) => panic!("probe consumer failed: {err}"),
        None => panic!("probe consumer closed"),
    }
}

/// One event as an outbox relay publishes it: the envelope's routing key, id, type and bytes.
pub struct Outgoing<'a> {
    pub routing_key: &'a str,
    pub message_id: String,
    pub event_type: &'a str,
    pub body: &'a [u8],
}

/// Publishes `message` to `exchange` as another service's relay would (persistent, mandatory,
/// with publisher confirms), and returns once the broker has taken it.
///
/// # Panics
/// When the broker is unreachable, refuses the message, or no queue is bound to its key.
pub async fn publish(amqp_url: &str, exchange: &str, message: Outgoing<'_>) {
    let (connection, channel) = open(amqp_url).await;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_or_else(|err| panic!("publisher confirms: {err}"));
    let confirmation = channel
        .basic_publish(
            ShortString::from(exchange),
            ShortString::from(message.routing_key),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            message.body,
            BasicProperties::default()
                .with_message_id(ShortString::from(message.message_id))
                .with_type(ShortString::from(message.event_type))
                .with_content_type(ShortString::from("application/x-protobuf"))
                .with_delivery_mode(2),
        )
        .await
        .unwrap_or_else(|err| panic!("cannot publish: {err}"))
        .await
        .unwrap_or_else(|err| panic!("the broker did not confirm: {err}"));
    match confirmation {
        Confirmation::Ack(None) => {}
        Confirmation::Ack(Some(returned)) => panic!(
            "no queue is bound to {} on {exchange}: {returned:?}",
            message.routing_key
        ),
        other => panic!("the broker refused the event: {other:?}"),
    }
    let _ = connection.close(200, "published".into()).await;
}

/// A connection to the broker at `amqp_url` and a channel on it.
///
/// # Panics
/// When the broker is unreachable.
async fn open(amqp_url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {amqp_url}: {err}"));
    let channel = connection
        .create_channel()
        .await
        .unwrap_or_else(|err| panic!("cannot open a channel: {err}"));
    (connection, channel)
}
