//! `spawn_app`: a payments service on random ports with its own fresh database, publishing to and
//! consuming from a broker exchange unique to the test.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use contracts::payments::{
    AuthorizePaymentRequest, CapturePaymentRequest, GetPaymentRequest, Payment, PaymentStatus,
    PaymentsServiceClient, RefundPaymentRequest, VoidOrderPaymentRequest, VoidPaymentRequest,
    get_payment_request::Key,
};
use messaging::Envelope;
use payments::{
    Application, Config,
    domain::{Currency, Money, PaymentEvent, RecordedEvent},
};
use platform::{Shutdown, config::Env};
use testkit::TestDatabase;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tonic::{Status, transport::Channel};
use uuid::Uuid;

pub const APPROVE: &str = "tok_visa_approve";

/// A `payment_events` row: seq, kind, amount_minor, currency, detail, occurred_at.
type EventRow = (
    i64,
    String,
    Option<i64>,
    Option<String>,
    String,
    OffsetDateTime,
);

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub client: PaymentsServiceClient<Channel>,
    pub db: TestDatabase,
    /// The broker, and the exchange (unique to this test) the relay publishes to and the
    /// order-event consumer's queue is bound to.
    pub amqp_url: String,
    pub exchange: String,
    /// The customer every helper pays for.
    pub customer_id: Uuid,
    shutdown: Shutdown,
    server: JoinHandle<()>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let db = testkit::fresh_database().await;
    let amqp_url = testkit::amqp_url().await;
    let exchange = testkit::unique_name("payments.test.events");
    let mut vars: HashMap<String, String> =
        testkit::service_vars("payments", &db.url, &amqp_url, &exchange)
            .into_iter()
            .collect();
    // Room for the concurrency tests' parallel calls.
    vars.insert("PAYMENTS_DB_MAX_CONNECTIONS".into(), "20".into());
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = Config::from(&Env::from_map("payments", vars)).expect("valid test config");
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
    let client = PaymentsServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .expect("connects to the service");
    TestApp {
        grpc_addr,
        admin_addr,
        client,
        db,
        amqp_url,
        exchange,
        customer_id: Uuid::now_v7(),
        shutdown,
        server,
    }
}

pub fn eur(amount_minor: i64) -> contracts::Money {
    contracts::Money {
        amount_minor,
        currency: "EUR".to_owned(),
    }
}

pub fn authorize_request(
    order_id: Uuid,
    customer_id: Uuid,
    minor: i64,
    token: &str,
) -> AuthorizePaymentRequest {
    AuthorizePaymentRequest {
        order_id: order_id.to_string(),
        amount: Some(eur(minor)),
        customer_id: customer_id.to_string(),
        payment_method: token.to_owned(),
    }
}

impl TestApp {
    /// AuthorizePayment for `order_id` by this app's customer, in EUR.
    pub async fn try_authorize(
        &self,
        order_id: Uuid,
        minor: i64,
        token: &str,
    ) -> Result<Payment, Status> {
        self.client
            .clone()
            .authorize_payment(authorize_request(order_id, self.customer_id, minor, token))
            .await
            .map(|response| response.into_inner().payment.expect("a payment"))
    }

    /// A new order's payment, authorized (or declined, depending on `token`).
    pub async fn authorize(&self, minor: i64, token: &str) -> Payment {
        self.try_authorize(Uuid::now_v7(), minor, token)
            .await
            .expect("authorization answers")
    }

    pub async fn capture(&self, payment_id: &str) -> Result<Payment, Status> {
        self.client
            .clone()
            .capture_payment(CapturePaymentRequest {
                payment_id: payment_id.to_owned(),
            })
            .await
            .map(|response| response.into_inner().payment.expect("a payment"))
    }

    pub async fn refund(
        &self,
        payment_id: &str,
        amount: contracts::Money,
    ) -> Result<Payment, Status> {
        self.client
            .clone()
            .refund_payment(RefundPaymentRequest {
                payment_id: payment_id.to_owned(),
                amount: Some(amount),
                reason: "returned".to_owned(),
            })
            .await
            .map(|response| response.into_inner().payment.expect("a payment"))
    }

    pub async fn void(&self, payment_id: &str) -> Result<Payment, Status> {
        self.client
            .clone()
            .void_payment(VoidPaymentRequest {
                payment_id: payment_id.to_owned(),
                reason: "order cancelled".to_owned(),
            })
            .await
            .map(|response| response.into_inner().payment.expect("a payment"))
    }

    /// VoidOrderPayment for `order_id` by this app's customer, in EUR: what the checkout saga's
    /// compensation sends.
    pub async fn void_order(&self, order_id: Uuid, minor: i64) -> Result<Payment, Status> {
        self.client
            .clone()
            .void_order_payment(VoidOrderPaymentRequest {
                order_id: order_id.to_string(),
                amount: Some(eur(minor)),
                customer_id: self.customer_id.to_string(),
                reason: "checkout compensation".to_owned(),
            })
            .await
            .map(|response| response.into_inner().payment.expect("a payment"))
    }

    pub async fn get(&self, key: Key) -> Result<Payment, Status> {
        self.client
            .clone()
            .get_payment(GetPaymentRequest { key: Some(key) })
            .await
            .map(|response| response.into_inner().payment.expect("a payment"))
    }

    /// Rows in `table` of this test's database.
    pub async fn count(&self, table: &str) -> i64 {
        let pool = self.db.pool().await;
        let query = format!("SELECT count(*) FROM {table}");
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(query))
            .fetch_one(&pool)
            .await
            .expect("count rows");
        pool.close().await;
        count
    }

    /// The payment's stream exactly as stored in `payment_events`, oldest first, turned back
    /// into domain events with the domain's own constructors.
    pub async fn stored_events(&self, payment_id: &str) -> Vec<RecordedEvent> {
        let pool = self.db.pool().await;
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT seq, kind, amount_minor, currency, detail, occurred_at
                 FROM payment_events WHERE payment_id = $1 ORDER BY seq",
        )
        .bind(Uuid::parse_str(payment_id).unwrap())
        .fetch_all(&pool)
        .await
        .expect("read the stream");
        pool.close().await;
        rows.into_iter()
            .map(|(seq, kind, minor, currency, detail, occurred_at)| {
                let amount = minor.map(|minor| {
                    let currency = Currency::parse(&currency.clone().unwrap()).unwrap();
                    Money::positive(minor, currency).unwrap()
                });
                RecordedEvent {
                    seq,
                    occurred_at,
                    event: PaymentEvent::from_parts(&kind, amount, detail).unwrap(),
                }
            })
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

    /// The full name of one of this app's queues (`payments.orders` → `<exchange>.payments.orders`).
    pub fn queue(&self, name: &str) -> String {
        format!("{}.{name}", self.exchange)
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

    /// GetPayment by order id.
    pub async fn by_order(&self, order_id: Uuid) -> Payment {
        self.get(Key::OrderId(order_id.to_string()))
            .await
            .expect("the order has a payment")
    }

    /// Waits until the payment of `order_id` has `status` (the consumer works asynchronously).
    pub async fn wait_for_status(&self, order_id: Uuid, status: PaymentStatus) -> Payment {
        testkit::poll_until(
            &format!("the payment of order {order_id} to be {status:?}"),
            Duration::from_secs(20),
            || async move {
                let payment = self.by_order(order_id).await;
                (payment.status() == status).then_some(payment)
            },
        )
        .await
        .unwrap()
    }

    /// Message ids the order-event consumer has committed in its inbox.
    pub async fn inbox(&self) -> Vec<Uuid> {
        let pool = self.db.pool().await;
        let rows: Vec<(Uuid,)> =
            sqlx::query_as("SELECT message_id FROM inbox ORDER BY received_at, message_id")
                .fetch_all(&pool)
                .await
                .expect("read the inbox");
        pool.close().await;
        rows.into_iter().map(|(id,)| id).collect()
    }

    /// `(routing_key, envelope)` of every outbox row, in insertion order.
    pub async fn outbox_envelopes(&self) -> Vec<(String, Vec<u8>)> {
        let pool = self.db.pool().await;
        let rows = sqlx::query_as("SELECT routing_key, envelope FROM outbox ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("read the outbox");
        pool.close().await;
        rows
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("the server stops in time")
            .expect("the server task ends cleanly");
    }
}
