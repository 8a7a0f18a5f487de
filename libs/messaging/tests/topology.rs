//! The whole topology declared on its own, before any service runs (what the Kubernetes Job
//! `rabbitmq-topology` does with `orders admin declare-topology`), against the real broker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lapin::{
    BasicProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{FieldTable, ShortString},
};
use messaging::{
    catalog::ROUTING_KEYS,
    topology::{self, QUEUES, topic_matches},
};
use platform::config::{Env, RuntimeConfig, RuntimeDefaults};

#[tokio::test]
async fn the_topology_declared_before_any_service_keeps_every_event_for_its_consumers() {
    let amqp_url = testkit::amqp_url().await;
    let exchange = testkit::unique_name("test.events");
    let prefix = format!("{}.", testkit::unique_name("topology"));
    let env = Env::from_pairs(
        "orders",
        &[
            ("ORDERS_AMQP_URL", amqp_url.as_str()),
            ("ORDERS_EVENTS_EXCHANGE", exchange.as_str()),
            ("ORDERS_QUEUE_PREFIX", prefix.as_str()),
            // The test's queues are deleted by the broker a minute after the test.
            ("ORDERS_QUEUE_EXPIRY", "60s"),
            ("ORDERS_DATABASE_URL", "postgres://unused/unused"),
        ],
    );
    let defaults = RuntimeDefaults {
        grpc_port: 50053,
        admin_port: 9103,
        database: "orders",
    };
    let runtime = RuntimeConfig::from_env(&env, defaults).unwrap();

    let declared = topology::declare_system(&runtime, "topology-test")
        .await
        .unwrap();
    assert_eq!(declared, QUEUES.len());

    // No consumer has run: every event is published (mandatory, confirmed) into the exchange.
    let connection = messaging::amqp::connect(&amqp_url, "topology-test-publisher")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for key in ROUTING_KEYS {
        let routed_somewhere = QUEUES
            .iter()
            .any(|queue| queue.bindings.iter().any(|b| topic_matches(b, key)));
        let confirmation = channel
            .basic_publish(
                ShortString::from(exchange.as_str()),
                ShortString::from(*key),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                b"{}",
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirmation.is_ack(), "{key}");
        assert_eq!(
            confirmation.take_message().is_some(),
            !routed_somewhere,
            "{key}: returned exactly when no queue binds it"
        );
    }

    // Each queue holds one message per routing key its bindings match.
    for queue in QUEUES {
        let expected = ROUTING_KEYS
            .iter()
            .filter(|key| queue.bindings.iter().any(|b| topic_matches(b, key)))
            .count();
        let name = runtime.queue_name(queue.name);
        let state = channel
            .queue_declare(
                ShortString::from(name.as_str()),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            usize::try_from(state.message_count()).unwrap(),
            expected,
            "{name}"
        );
    }

    // Declaring again, as every relay does when it connects, agrees with what is there: the
    // same arguments, no PRECONDITION_FAILED.
    assert_eq!(
        topology::declare_system(&runtime, "topology-test")
            .await
            .unwrap(),
        QUEUES.len()
    );
    let _ = connection.close(200, "done".into()).await;
}
