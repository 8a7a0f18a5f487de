//! Watching what a service publishes: a private queue bound to the events exchange.

use std::time::Duration;

use futures::StreamExt as _;
use lapin::{
    Channel, Connection, ConnectionProperties, ExchangeKind,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
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
        let connection = Connection::connect(amqp_url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {amqp_url}: {err}"));
        let channel = connection
            .create_channel()
            .await
            .unwrap_or_else(|err| panic!("cannot open a channel: {err}"));
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
    /// # Panics
    /// When fewer arrive within `deadline`.
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
                match consumer.next().await {
                    Some(Ok(delivery)) => {
                        let _ = delivery.ack(BasicAckOptions::default()).await;
                        received.push(delivery);
                    }
                    Some(Err(err)) => panic!("probe consumer failed: {err}"),
                    None => panic!("probe consumer closed"),
                }
            }
        };
        if tokio::time::timeout(deadline, collect).await.is_err() {
            panic!(
                "received {} of {count} messages on {} within {deadline:?}",
                received.len(),
                self.queue
            );
        }
        let _ = channel.close(200, "probe done".into()).await;
        received
    }
}
