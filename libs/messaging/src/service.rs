//! Messaging as part of a service being built: [`WithMessaging`] adds the outbox relay and
//! event consumers to a [`platform::ServiceBuilder`], so every service wires them the same way.
//!
//! * [`WithMessaging::relay`]: the outbox relay worker, publishing this database's outbox to
//!   the events exchange (`<SERVICE>_AMQP_URL`, `<SERVICE>_EVENTS_EXCHANGE`), after declaring
//!   the whole topology ([`crate::topology::QUEUES`]) on every connection.
//! * [`WithMessaging::consume`]: a consumer of one of the service's queues
//!   (`<QUEUE_PREFIX><queue>`, bound to its routing keys), its topology declared now — so
//!   events published from here on are kept even before the consumer connects (best effort: a
//!   broker that is not there yet only delays the declaration to the first connection) — and
//!   run as a worker with its handler.
//!
//! The outbox and inbox age out by partition: [`crate::partitioned_tables`] lists them for the
//! service's `partitions` worker (`partitions::WithPartitions::maintain_partitions`).
//!
//! The broker is deliberately not a readiness dependency: thanks to the outbox a service keeps
//! working while RabbitMQ is away, and the relay and consumers reconnect by themselves.

use std::sync::Arc;

use platform::{ServiceBuilder, host::Worker};

use crate::{
    Consumer, EventHandler, OutboxRelay, RelayConfig,
    topology::{self, ConsumerTopology, Queue},
};

/// The relay and consumers, for [`ServiceBuilder`].
pub trait WithMessaging: Sized {
    /// Adds the outbox relay of `service` (its connection name) as a worker.
    #[must_use]
    fn relay(self, service: &str) -> Self;

    /// Declares `queue`'s topology and adds its consumer, handled by `handler`, as a worker.
    fn consume<H: EventHandler>(
        self,
        queue: Queue,
        handler: H,
    ) -> impl Future<Output = Self> + Send;
}

impl WithMessaging for ServiceBuilder {
    fn relay(self, service: &str) -> Self {
        let runtime = self.runtime();
        let topology = topology::system(runtime);
        let relay = OutboxRelay::new(
            self.pool().clone(),
            RelayConfig::new(&runtime.amqp_url, &runtime.events_exchange, service)
                .with_topology(topology),
        );
        self.worker(Worker::new(move |shutdown| relay.run(shutdown)))
    }

    async fn consume<H: EventHandler>(self, queue: Queue, handler: H) -> Self {
        let topology = ConsumerTopology::for_service(self.runtime(), queue.name, queue.bindings);
        let consumer = Consumer::new(self.pool().clone(), &self.runtime().amqp_url, topology);
        consumer.prepare().await;
        let handler = Arc::new(handler);
        self.worker(Worker::new(move |shutdown| consumer.run(handler, shutdown)))
    }
}
