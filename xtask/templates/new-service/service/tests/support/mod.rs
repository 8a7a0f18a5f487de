//! `spawn_app`: a {{name}} service on random ports with its own fresh database, publishing to
//! {{#if consumes}}and consuming from {{/if}}a broker exchange unique to the test.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use contracts::{{snake}}::{CreateRecordRequest, GetRecordRequest, Record, {{Pascal}}ServiceClient};
use messaging::Envelope;
use platform::{Shutdown, config::Env};
use testkit::TestDatabase;
use tokio::task::JoinHandle;
use tonic::{Status, transport::Channel};
use {{snake}}::{Application, Config};

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub client: {{Pascal}}ServiceClient<Channel>,
    pub db: TestDatabase,
    /// The broker, and the exchange (unique to this test) the relay publishes to{{#if consumes}} and the
    /// consumer's queue is bound to{{/if}}.
    pub amqp_url: String,
    pub exchange: String,
    shutdown: Shutdown,
    server: JoinHandle<()>,
}

pub async fn spawn_app() -> TestApp {
    let db = testkit::fresh_database().await;
    let amqp_url = testkit::amqp_url().await;
    let exchange = testkit::unique_name("{{name}}.test.events");
    let vars = testkit::service_vars("{{snake}}", &db.url, &amqp_url, &exchange)
        .into_iter()
        .collect();
    let config = Config::from(&Env::from_map("{{snake}}", vars)).expect("valid test config");
    let app = Application::build(config)
        .await
        .expect("the service builds");
    let grpc_addr = app.grpc_addr();
    let admin_addr = app.admin_addr();
    let shutdown = Shutdown::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            app.run(shutdown).await.expect("the service runs");
        }
    });
    let client = {{Pascal}}ServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .expect("connects to the service");
    TestApp {
        grpc_addr,
        admin_addr,
        client,
        db,
        amqp_url,
        exchange,
        shutdown,
        server,
    }
}

impl TestApp {
    pub async fn create(&self, reference: &str) -> Result<Record, Status> {
        self.client
            .clone()
            .create_record(CreateRecordRequest {
                reference: reference.to_owned(),
            })
            .await
            .map(|response| response.into_inner().record.expect("a record"))
    }

    pub async fn get(&self, id: &str) -> Result<Record, Status> {
        self.client
            .clone()
            .get_record(GetRecordRequest { id: id.to_owned() })
            .await
            .map(|response| response.into_inner().record.expect("a record"))
    }

    /// `(reference, id)` of every stored record, oldest first.
    pub async fn records(&self) -> Vec<(String, String)> {
        let pool = self.db.pool().await;
        let rows: Vec<(String, uuid::Uuid)> =
            sqlx::query_as("SELECT reference, id FROM records ORDER BY created_at, id")
                .fetch_all(&pool)
                .await
                .expect("read the records");
        pool.close().await;
        rows.into_iter()
            .map(|(reference, id)| (reference, id.to_string()))
            .collect()
    }

    /// `(routing_key, aggregate_id)` of every outbox row, in insertion order.
    pub async fn outbox(&self) -> Vec<(String, String)> {
        let pool = self.db.pool().await;
        let rows = sqlx::query_as("SELECT routing_key, aggregate_id FROM outbox ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("read the outbox");
        pool.close().await;
        rows
    }

    /// Publishes `envelope` to this test's exchange under its routing key, as another service's
    /// outbox relay would, and waits for the broker to take it.
    pub async fn publish(&self, envelope: &Envelope) {
        testkit::events::publish(
            &self.amqp_url,
            &self.exchange,
            testkit::events::Outgoing {
                routing_key: envelope.routing_key,
                message_id: envelope.event_id.to_string(),
                event_type: &envelope.event_type,
                body: &envelope.bytes,
            },
        )
        .await;
    }

    /// Waits until a record with `reference` exists (the consumer works asynchronously).
    pub async fn wait_for_record(&self, reference: &str) -> String {
        testkit::poll_until(
            &format!("a record for {reference}"),
            Duration::from_secs(20),
            || async move {
                self.records()
                    .await
                    .into_iter()
                    .find(|(stored, _)| stored == reference)
                    .map(|(_, id)| id)
            },
        )
        .await
        .unwrap()
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("the server stops in time")
            .expect("the server task ends cleanly");
    }
}
