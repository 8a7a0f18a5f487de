//! The broker topology, declared idempotently by whoever needs it at start-up.
//!
//! ```text
//!                       routing key orders.order.*           ┌────────────────────────────┐
//! publishers ──► [shop.events] (topic) ───────────────────► │ inventory.orders (quorum)   │──► consumer
//!                                                            └────────────────────────────┘
//!                        ▲ after the delay (queue TTL,                  │ handler failed:
//!                        │ dead-lettered back by name)                  │ republish with attempt+1
//!          ┌─────────────┴──────────────┐                              ▼
//!          │ inventory.orders.retry.1000ms │ ◄──────────────────────── (one queue per delay tier)
//!          └────────────────────────────┘
//!     attempts exhausted / poison message / delivery limit:
//!          consumer ──► [shop.events.dlx] (direct) ──► inventory.orders.parking (inspect, replay)
//! ```
//!
//! * One durable **topic exchange** for all integration events; consumers bind the keys they need.
//! * Each consumer owns a durable **quorum queue** `<service>.<purpose>`: replicated, and with a
//!   delivery limit, so a message that crashes its consumer over and over is dead-lettered to the
//!   parking queue instead of looping forever.
//! * **Delayed retry** uses one queue per delay tier with a queue-level TTL and the main queue as
//!   dead-letter target. Per-message TTLs in a single queue would not work: RabbitMQ only expires
//!   messages at the head, so a long delay would hold up every shorter one behind it.
//! * The **parking queue** keeps failed messages with the error in their headers, for a human.
//!
//! Declarations are idempotent: declaring what exists with the same arguments is a no-op.

use std::time::Duration;

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

/// The exchange every integration event is published to (docs/architecture.md#the-topology).
pub const EVENTS_EXCHANGE: &str = "shop.events";

/// One consumer queue of the system and the routing keys bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    /// Before the service's queue prefix, e.g. `orders.fulfilment` (`<service>.<purpose>`).
    pub name: &'static str,
    /// Topic patterns, e.g. `payments.payment.*`.
    pub bindings: &'static [&'static str],
}

/// inventory: commits reservations on confirmation, restocks confirmed orders that are cancelled.
pub const INVENTORY_ORDERS: Queue = Queue {
    name: "inventory.orders",
    bindings: &["orders.order.confirmed", "orders.order.cancelled"],
};
/// payments: captures on confirmation, refunds or voids on cancellation.
pub const PAYMENTS_ORDERS: Queue = Queue {
    name: "payments.orders",
    bindings: &["orders.order.confirmed", "orders.order.cancelled"],
};
/// orders: what the choreographed steps after confirmation did.
pub const ORDERS_FULFILMENT: Queue = Queue {
    name: "orders.fulfilment",
    bindings: &["payments.payment.*", "inventory.reservation.*"],
};
/// orders: everything that changes an order's summary (the CQRS read model).
pub const ORDERS_SUMMARIES: Queue = Queue {
    name: "orders.order-summaries",
    bindings: &[
        "orders.order.*",
        "payments.payment.*",
        "inventory.reservation.*",
    ],
};

/// Every consumer queue of the system: the whole topology in one declaration.
///
/// Every outbox relay declares all of it whenever it connects, before it publishes anything, so
/// an event is never published into an exchange that does not yet route it to its consumers: not
/// on a first deploy where producers start before consumers, not after the broker lost its
/// definitions. A service adding a consumer adds its queue here.
pub const QUEUES: &[Queue] = &[
    INVENTORY_ORDERS,
    PAYMENTS_ORDERS,
    ORDERS_FULFILMENT,
    ORDERS_SUMMARIES,
];

/// The whole topology as a service's runtime settings name it (exchange, queue prefix, expiry):
/// every queue of [`QUEUES`]. What every outbox relay declares when it connects, and what
/// [`declare_system`] declares on its own.
pub fn system(runtime: &platform::config::RuntimeConfig) -> Vec<ConsumerTopology> {
    QUEUES
        .iter()
        .map(|queue| ConsumerTopology::for_service(runtime, queue.name, queue.bindings))
        .collect()
}

/// One RabbitMQ user's permissions in a virtual host: three regular expressions over resource
/// names, as `rabbitmqctl set_permissions <user> <configure> <write> <read>` and the Messaging
/// Topology Operator's `Permission` take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// Declaring and deleting exchanges and queues.
    pub configure: String,
    /// Publishing to an exchange; binding a queue (write on the queue).
    pub write: String,
    /// Consuming from, getting from and purging a queue; binding to an exchange (read on it).
    pub read: String,
}

/// The permissions of a service's broker user under `runtime`'s names, derived from the
/// topology so they cannot drift from it: the events exchange, its dead-letter exchange, every
/// queue of [`system`] (main, retry tiers, parking) and, for writing, the default exchange
/// (`amq.default`, through which consumers send a failed message to its retry tier and replays
/// go back to the main queue). Nothing else: no other exchange, queue or virtual host.
///
/// Why every queue, and not only the service's own: every outbox relay declares and binds the
/// whole topology when it connects (see [`QUEUES`]), and RabbitMQ checks more than configure for
/// that: binding needs write on the queue, and declaring a queue with a dead-letter exchange
/// (the main queues and the retry tiers) needs read on it. Limiting `read` to a service's own
/// queues would therefore stop its relay; it needs the relays to check other services' queues
/// passively instead of declaring them, which is not done yet. What the per-service users give
/// today is a credential per service (revocable, visible in the broker's connection list) that
/// reaches nothing outside the shop's topology.
pub fn permissions(runtime: &platform::config::RuntimeConfig) -> Permissions {
    let exchanges = [
        runtime.events_exchange.clone(),
        dead_letter_exchange(&runtime.events_exchange),
    ];
    let queues = system(runtime).into_iter().flat_map(|queue| {
        let mut names = vec![queue.queue.clone(), queue.parking_queue()];
        names.extend(
            queue
                .retry_delays
                .iter()
                .map(|delay| queue.retry_queue(*delay)),
        );
        names
    });
    let topology: Vec<String> = exchanges.into_iter().chain(queues).collect();
    let mut write = topology.clone();
    write.push("amq.default".to_owned());
    Permissions {
        configure: exactly(&topology),
        write: exactly(&write),
        read: exactly(&topology),
    }
}

/// A regular expression matching exactly the `names`.
fn exactly(names: &[String]) -> String {
    let escaped: Vec<String> = names
        .iter()
        .map(|name| {
            name.chars()
                .flat_map(|c| {
                    let special = "\\.^$|?*+()[]{}".contains(c);
                    special.then_some('\\').into_iter().chain([c])
                })
                .collect()
        })
        .collect();
    format!("^({})$", escaped.join("|"))
}

/// Why [`declare_system`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error(transparent)]
    Timeout(#[from] crate::amqp::BrokerTimeout),
}

/// Declares the whole topology ([`system`]) on a connection of its own and closes it; the number
/// of consumer queues declared. The relays do the same whenever they connect; this is for
/// declaring it before any service runs: `orders admin declare-topology`, which the Kubernetes
/// Job `rabbitmq-topology` runs on every deploy (k8s/base/orders/topology-job.yaml).
pub async fn declare_system(
    runtime: &platform::config::RuntimeConfig,
    connection_name: &str,
) -> Result<usize, DeclareError> {
    let topology = system(runtime);
    let connection = crate::amqp::within(
        "a connection",
        crate::amqp::connect(&runtime.amqp_url, connection_name),
    )
    .await??;
    let declared = crate::amqp::within("the topology", async {
        let channel = connection.create_channel().await?;
        declare_events_exchange(&channel, &runtime.events_exchange).await?;
        for queue in &topology {
            queue.declare(&channel).await?;
        }
        // The channel first: closing the connection under an open channel fails the channel's
        // own close, which lapin reports as a connection error.
        channel.close(200, "topology declared".into()).await?;
        Ok::<_, lapin::Error>(topology.len())
    })
    .await;
    let _ = crate::amqp::within("closing", connection.close(200, "topology declared".into())).await;
    Ok(declared??)
}

/// Whether the topic `pattern` (`*` one word, `#` zero or more) matches `routing_key`, as a
/// RabbitMQ topic exchange decides it.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    fn matches(pattern: &[&str], key: &[&str]) -> bool {
        match (pattern.split_first(), key.split_first()) {
            (None, None) => true,
            (Some((&"#", rest)), _) => {
                matches(rest, key)
                    || key
                        .split_first()
                        .is_some_and(|(_, tail)| matches(pattern, tail))
            }
            (Some((&"*", rest)), Some((_, tail))) => matches(rest, tail),
            (Some((word, rest)), Some((head, tail))) => word == head && matches(rest, tail),
            _ => false,
        }
    }
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = routing_key.split('.').collect();
    matches(&pattern, &key)
}

/// Dead-letter exchange of `exchange`.
pub fn dead_letter_exchange(exchange: &str) -> String {
    format!("{exchange}.dlx")
}

/// Declares the durable topic exchange events are published to.
pub async fn declare_events_exchange(channel: &Channel, exchange: &str) -> lapin::Result<()> {
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
}

/// The queues of one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerTopology {
    /// The topic exchange to bind to.
    pub exchange: String,
    /// `<service>.<purpose>`, e.g. `inventory.orders`.
    pub queue: String,
    /// Routing keys (topic patterns) the queue receives.
    pub bindings: Vec<String>,
    /// Delay tiers for retries: attempt n waits `retry_delays[min(n, len) - 1]`.
    pub retry_delays: Vec<Duration>,
    /// How often the broker may redeliver one message (crash loops) before it parks it.
    pub delivery_limit: u32,
    /// Deletes the queues after this long without consumers (`x-expires`). Tests set it so
    /// their uniquely named queues do not pile up in the broker; services leave it unset.
    pub expires: Option<Duration>,
}

impl ConsumerTopology {
    pub fn new(exchange: &str, queue: &str, bindings: &[&str]) -> Self {
        Self {
            exchange: exchange.to_owned(),
            queue: queue.to_owned(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ],
            delivery_limit: 10,
            expires: None,
        }
    }

    /// One of a service's queues, named (`<QUEUE_PREFIX><queue>`) and configured
    /// (`<PREFIX>_QUEUE_EXPIRY`) from its runtime settings.
    pub fn for_service(
        runtime: &platform::config::RuntimeConfig,
        queue: &str,
        bindings: &[&str],
    ) -> Self {
        let topology = Self::new(
            &runtime.events_exchange,
            &runtime.queue_name(queue),
            bindings,
        );
        match runtime.queue_expiry {
            Some(unused_for) => topology.with_expiry(unused_for),
            None => topology,
        }
    }

    /// Whether one of the queue's bindings routes `routing_key` to it.
    pub fn binds(&self, routing_key: &str) -> bool {
        self.bindings
            .iter()
            .any(|pattern| topic_matches(pattern, routing_key))
    }

    pub fn with_expiry(mut self, unused_for: Duration) -> Self {
        self.expires = Some(unused_for);
        self
    }

    /// Arguments every queue of this topology gets.
    fn base_arguments(&self) -> FieldTable {
        let mut args = FieldTable::default();
        if let Some(expires) = self.expires {
            args.insert(
                "x-expires".into(),
                AMQPValue::LongLongInt(i64::try_from(expires.as_millis()).unwrap_or(i64::MAX)),
            );
        }
        args
    }

    pub fn with_retry_delays(mut self, delays: Vec<Duration>) -> Self {
        self.retry_delays = delays;
        self
    }

    pub fn parking_queue(&self) -> String {
        format!("{}.parking", self.queue)
    }

    /// The retry queue for a delay tier, named after its delay.
    pub fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.retry.{}ms", self.queue, delay.as_millis())
    }

    /// The delay before attempt `attempt` (1-based count of failures so far).
    pub fn retry_delay(&self, failures: u32) -> Option<Duration> {
        let index = usize::try_from(failures.saturating_sub(1)).ok()?;
        self.retry_delays
            .get(index)
            .or_else(|| self.retry_delays.last())
            .copied()
    }

    /// Declares exchanges, the main queue and its bindings, the retry tiers and the parking queue.
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        declare_events_exchange(channel, &self.exchange).await?;
        let dlx = dead_letter_exchange(&self.exchange);
        channel
            .exchange_declare(
                ShortString::from(dlx.as_str()),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;

        let parking = self.parking_queue();
        channel
            .queue_declare(
                ShortString::from(parking.as_str()),
                durable(),
                self.base_arguments(),
            )
            .await?;
        channel
            .queue_bind(
                ShortString::from(parking.as_str()),
                ShortString::from(dlx.as_str()),
                ShortString::from(parking.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        let mut main_args = self.base_arguments();
        main_args.insert("x-queue-type".into(), long_string("quorum"));
        main_args.insert("x-dead-letter-exchange".into(), long_string(&dlx));
        main_args.insert("x-dead-letter-routing-key".into(), long_string(&parking));
        main_args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.delivery_limit)),
        );
        channel
            .queue_declare(ShortString::from(self.queue.as_str()), durable(), main_args)
            .await?;
        for binding in &self.bindings {
            channel
                .queue_bind(
                    ShortString::from(self.queue.as_str()),
                    ShortString::from(self.exchange.as_str()),
                    ShortString::from(binding.as_str()),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }

        for delay in &self.retry_delays {
            let mut args = self.base_arguments();
            // Expired messages go back to the main queue through the default exchange, which
            // routes by queue name.
            args.insert("x-dead-letter-exchange".into(), long_string(""));
            args.insert("x-dead-letter-routing-key".into(), long_string(&self.queue));
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            );
            channel
                .queue_declare(
                    ShortString::from(self.retry_queue(*delay).as_str()),
                    durable(),
                    args,
                )
                .await?;
        }
        Ok(())
    }
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_escalate_then_stay_at_the_last_tier() {
        let topology = ConsumerTopology::new("shop.events", "inventory.orders", &["orders.#"])
            .with_retry_delays(vec![Duration::from_millis(100), Duration::from_secs(2)]);
        assert_eq!(topology.retry_delay(1), Some(Duration::from_millis(100)));
        assert_eq!(topology.retry_delay(2), Some(Duration::from_secs(2)));
        assert_eq!(topology.retry_delay(7), Some(Duration::from_secs(2)));
        assert_eq!(
            topology.retry_queue(Duration::from_millis(100)),
            "inventory.orders.retry.100ms"
        );
        assert_eq!(topology.parking_queue(), "inventory.orders.parking");
    }

    #[test]
    fn topic_patterns_match_as_rabbitmq_matches_them() {
        for (pattern, key, expected) in [
            ("orders.order.confirmed", "orders.order.confirmed", true),
            ("orders.order.*", "orders.order.confirmed", true),
            ("orders.order.*", "orders.order", false),
            ("orders.*", "orders.order.confirmed", false),
            ("orders.#", "orders.order.confirmed", true),
            ("orders.#", "orders", true),
            ("#", "users.user.registered", true),
            ("#.confirmed", "orders.order.confirmed", true),
            ("*.order.#", "orders.order.confirmed", true),
            ("payments.payment.*", "orders.order.confirmed", false),
        ] {
            assert_eq!(topic_matches(pattern, key), expected, "{pattern} ~ {key}");
        }
    }

    #[test]
    fn every_event_a_queue_binds_is_in_the_catalog_and_queue_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for queue in QUEUES {
            assert!(names.insert(queue.name), "{} twice", queue.name);
            for pattern in queue.bindings {
                assert!(
                    crate::catalog::ROUTING_KEYS
                        .iter()
                        .any(|key| topic_matches(pattern, key)),
                    "{}: {pattern} matches no event",
                    queue.name
                );
            }
        }
    }

    #[test]
    fn a_service_user_is_granted_the_topology_and_nothing_else() {
        let env = platform::config::Env::from_pairs(
            "inventory",
            &[
                ("INVENTORY_EVENTS_EXCHANGE", "shop.events"),
                ("INVENTORY_DATABASE_URL", "postgres://unused/unused"),
            ],
        );
        let defaults = platform::config::RuntimeDefaults {
            grpc_port: 50052,
            admin_port: 9102,
            database: "inventory",
        };
        let runtime = platform::config::RuntimeConfig::from_env(&env, defaults).unwrap();
        let granted = permissions(&runtime);
        assert!(
            granted
                .read
                .starts_with(r"^(shop\.events|shop\.events\.dlx|inventory\.orders|")
        );
        // Every queue of the topology, whatever services it has, and nothing beyond it: the two
        // exchanges, then each queue with its parking queue and retry tiers.
        let alternatives: Vec<&str> = granted
            .read
            .trim_start_matches("^(")
            .trim_end_matches(")$")
            .split('|')
            .collect();
        assert!(alternatives.contains(&r"orders\.order-summaries\.retry\.30000ms"));
        let queues = system(&runtime);
        for queue in &queues {
            let escaped = queue.queue.replace('.', r"\.");
            assert!(alternatives.contains(&escaped.as_str()), "{escaped}");
        }
        let expected: usize = 2 + queues
            .iter()
            .map(|queue| 2 + queue.retry_delays.len())
            .sum::<usize>();
        assert_eq!(alternatives.len(), expected, "{alternatives:?}");
        assert!(granted.configure.contains(r"|payments\.orders\.parking|"));
        assert_eq!(granted.configure, granted.read);
        assert_eq!(
            granted.write,
            granted.read.replace(")$", r"|amq\.default)$")
        );
    }

    #[test]
    fn no_tiers_means_no_retry() {
        let topology = ConsumerTopology::new("x", "q", &[]).with_retry_delays(vec![]);
        assert_eq!(topology.retry_delay(1), None);
    }
}
