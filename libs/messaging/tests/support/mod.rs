//! Shared fixtures: a fresh database with the messaging tables, a unique exchange, probe queues.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use contracts::events::UserRegistered;
use lapin::{Channel, Connection};
use messaging::{Envelope, outbox};
use sqlx::PgPool;
use testkit::TestDatabase;

pub struct Fixture {
    pub db: TestDatabase,
    pub pool: PgPool,
    pub amqp_url: String,
    pub exchange: String,
    pub connection: Connection,
    pub channel: Channel,
}

pub async fn fixture() -> Fixture {
    let db = testkit::fresh_database().await;
    let pool = db.pool().await;
    messaging::migrator().run(&pool).await.unwrap();
    let amqp_url = testkit::amqp_url().await;
    let exchange = testkit::unique_name("test.events");
    let connection = messaging::amqp::connect(&amqp_url, "messaging-tests")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    messaging::topology::declare_events_exchange(&channel, &exchange)
        .await
        .unwrap();
    Fixture {
        db,
        pool,
        amqp_url,
        exchange,
        connection,
        channel,
    }
}

impl Fixture {
    /// A probe queue bound to `pattern` on the test exchange.
    pub async fn probe(&self, pattern: &str) -> testkit::EventProbe {
        testkit::EventProbe::bind(&self.amqp_url, &self.exchange, pattern).await
    }

    /// Commits `envelopes` to the outbox in one transaction.
    pub async fn enqueue(&self, envelopes: &[Envelope]) {
        let mut tx = self.pool.begin().await.unwrap();
        for envelope in envelopes {
            outbox::enqueue(&mut tx, envelope).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    pub async fn unpublished(&self) -> i64 {
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&self.pool)
                .await
                .unwrap();
        count
    }
}

/// A test event: `user_id` names the aggregate, `display_name` carries a sequence number.
pub fn event(aggregate: &str, n: usize) -> Envelope {
    Envelope::new(&UserRegistered {
        user_id: aggregate.to_owned(),
        email: format!("{aggregate}@example.com"),
        display_name: n.to_string(),
        registered_at: None,
    })
}
