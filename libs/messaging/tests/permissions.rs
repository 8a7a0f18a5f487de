//! Least privilege on the broker: a service connecting as a user of its own, with exactly the
//! permissions the topology grants (`messaging::topology::permissions`), does what its relay and
//! consumers do, and is refused on any queue outside the topology. The user is created with
//! `rabbitmqctl` on the local broker and deleted afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lapin::{
    BasicProperties,
    options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{FieldTable, ShortString},
};
use messaging::topology::{self, INVENTORY_ORDERS, QUEUES};
use platform::config::{Env, RuntimeConfig, RuntimeDefaults};

#[tokio::test]
async fn a_service_user_runs_its_relay_and_consumer_and_reaches_nothing_outside_the_topology() {
    let amqp_url = testkit::amqp_url().await;
    let exchange = testkit::unique_name("test.events");
    let prefix = format!("{}.", testkit::unique_name("permissions"));
    let env = Env::from_pairs(
        "inventory",
        &[
            ("INVENTORY_AMQP_URL", amqp_url.as_str()),
            ("INVENTORY_EVENTS_EXCHANGE", exchange.as_str()),
            ("INVENTORY_QUEUE_PREFIX", prefix.as_str()),
            ("INVENTORY_QUEUE_EXPIRY", "60s"),
            ("INVENTORY_DATABASE_URL", "postgres://unused/unused"),
        ],
    );
    let defaults = RuntimeDefaults {
        grpc_port: 50052,
        admin_port: 9102,
        database: "inventory",
    };
    let mut runtime = RuntimeConfig::from_env(&env, defaults).unwrap();
    let granted = topology::permissions(&runtime);
    let user = testkit::BrokerUser::create(&granted.configure, &granted.write, &granted.read)
        .await
        .unwrap();
    runtime.amqp_url = user.url().to_owned();

    // The relay's part: declare the whole topology, then publish with confirms.
    assert_eq!(
        topology::declare_system(&runtime, "permissions-test")
            .await
            .unwrap(),
        QUEUES.len()
    );
    let connection = messaging::amqp::connect(user.url(), "permissions-test")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let publish = |exchange: String, key: String| {
        let channel = channel.clone();
        async move {
            channel
                .basic_publish(
                    ShortString::from(exchange),
                    ShortString::from(key),
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
                .unwrap()
        }
    };
    let confirmed = publish(exchange.clone(), "orders.order.confirmed".to_owned()).await;
    assert!(confirmed.is_ack());

    // The consumer's part: take the event from its own queue, and send a failed one to its
    // retry tier through the default exchange.
    let own = runtime.queue_name(INVENTORY_ORDERS.name);
    let taken = channel
        .basic_get(ShortString::from(own.as_str()), BasicGetOptions::default())
        .await
        .unwrap();
    assert!(taken.is_some(), "the confirmed order reached {own}");
    let retry_tier = topology::ConsumerTopology::for_service(
        &runtime,
        INVENTORY_ORDERS.name,
        INVENTORY_ORDERS.bindings,
    )
    .retry_queue(std::time::Duration::from_secs(1));
    assert!(publish(String::new(), retry_tier).await.is_ack());

    // A queue outside the topology, even one named like the service's: the broker refuses to
    // declare it, and to read one that someone else declared.
    let shadow = runtime.queue_name("inventory.orders.shadow");
    let refused = channel
        .queue_declare(
            ShortString::from(shadow.as_str()),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("ACCESS_REFUSED"), "{refused}");
    let admin = messaging::amqp::connect(&amqp_url, "permissions-test-admin")
        .await
        .unwrap();
    let admin_channel = admin.create_channel().await.unwrap();
    let spied = runtime.queue_name("spy");
    admin_channel
        .queue_declare(
            ShortString::from(spied.as_str()),
            QueueDeclareOptions {
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let refused = channel
        .basic_get(
            ShortString::from(spied.as_str()),
            BasicGetOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("ACCESS_REFUSED"), "{refused}");
    admin_channel
        .queue_delete(
            ShortString::from(spied.as_str()),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    let _ = admin.close(200, "done".into()).await;
    let _ = connection.close(200, "done".into()).await;
}
