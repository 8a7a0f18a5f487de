//! A checkout world: inventory, payments and orders, each with its own fresh database, sharing a
//! broker exchange unique to the test, all in this process on random ports.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::{net::SocketAddr, time::Duration};

use contracts::{
    Money,
    inventory::{
        AdjustStockRequest, GetProductRequest, GetReservationRequest, InventoryServiceClient,
        ReservationStatus, UpsertProductRequest,
    },
    orders::{
        GetOrderRequest, Order, OrderStatus, OrdersServiceClient, PlaceOrderLine, PlaceOrderRequest,
    },
    payments::{GetPaymentRequest, Payment, PaymentsServiceClient, get_payment_request::Key},
};
use platform::{Shutdown, config::Env};
use testkit::TestDatabase;
use tonic::transport::Channel;
use uuid::Uuid;

pub const APPROVE: &str = "tok_visa_approve";
pub const DECLINE: &str = "tok_visa_decline";

/// Settings for the three services, by variable name.
pub type Vars = Vec<(&'static str, String)>;

pub struct World {
    pub amqp_url: String,
    pub exchange: String,
    pub inventory_addr: SocketAddr,
    pub payments_addr: SocketAddr,
    pub orders_db: TestDatabase,
    pub inventory_db: TestDatabase,
    pub payments_db: TestDatabase,
    pub inventory: InventoryServiceClient<Channel>,
    pub payments: PaymentsServiceClient<Channel>,
    pub orders: Option<OrdersServiceClient<Channel>>,
    /// How the first inventory replica was configured, for more replicas.
    inventory_config: inventory::Config,
    shutdowns: Vec<Shutdown>,
}

/// `base` (from [`testkit::service_vars`]) with `extra` on top.
fn env(prefix: &str, base: Vec<(String, String)>, extra: Vars) -> Env {
    let extra = extra.into_iter().map(|(k, v)| (k.to_owned(), v));
    Env::from_map(prefix, base.into_iter().chain(extra).collect())
}

impl World {
    /// Inventory and payments running; orders started separately (in-process or as a binary).
    pub async fn participants(payments_vars: Vars) -> Self {
        Self::participants_via(payments_vars, testkit::amqp_url().await).await
    }

    /// Like [`World::participants`], with every service reaching the broker at `amqp_url`
    /// (e.g. through a [`testkit::TcpProxy`] a test can cut).
    pub async fn participants_via(payments_vars: Vars, amqp_url: String) -> Self {
        Self::participants_with(vec![], payments_vars, amqp_url).await
    }

    /// Like [`World::participants_via`], with settings for inventory too.
    pub async fn participants_with(
        inventory_vars: Vars,
        payments_vars: Vars,
        amqp_url: String,
    ) -> Self {
        let redis_url = testkit::redis_url().await;
        let exchange = testkit::unique_name("orders.test.events");
        let (inventory_db, payments_db, orders_db) = (
            testkit::fresh_database().await,
            testkit::fresh_database().await,
            testkit::fresh_database().await,
        );
        let mut shutdowns = Vec::new();

        let inventory_config = inventory::Config::from(&env(
            "inventory",
            testkit::service_vars("inventory", &inventory_db.url, &amqp_url, &exchange),
            [
                ("INVENTORY_REDIS_URL", redis_url.clone()),
                ("INVENTORY_CACHE_PREFIX", testkit::unique_name("inventory")),
                ("INVENTORY_DB_MAX_CONNECTIONS", "20".into()),
            ]
            .into_iter()
            .chain(inventory_vars)
            .collect(),
        ))
        .unwrap();
        let inventory = inventory::Application::spawn(inventory_config.clone())
            .await
            .unwrap();
        let mut vars = vec![("PAYMENTS_DB_MAX_CONNECTIONS", "20".to_owned())];
        vars.extend(payments_vars);
        let base = testkit::service_vars("payments", &payments_db.url, &amqp_url, &exchange);
        let payments = payments::Application::spawn(
            payments::Config::from(&env("payments", base, vars)).unwrap(),
        )
        .await
        .unwrap();
        let (inventory_addr, payments_addr) = (inventory.grpc_addr, payments.grpc_addr);
        shutdowns.extend([inventory.shutdown(), payments.shutdown()]);

        Self {
            inventory: InventoryServiceClient::connect(format!("http://{inventory_addr}"))
                .await
                .unwrap(),
            payments: PaymentsServiceClient::connect(format!("http://{payments_addr}"))
                .await
                .unwrap(),
            orders: None,
            amqp_url,
            exchange,
            inventory_addr,
            payments_addr,
            orders_db,
            inventory_db,
            payments_db,
            inventory_config,
            shutdowns,
        }
    }

    /// Another inventory replica on the same database (ports: 0 on loopback). Returns its
    /// address and what stops it.
    pub async fn inventory_replica(&mut self) -> (SocketAddr, Shutdown) {
        let replica = inventory::Application::spawn(self.inventory_config.clone())
            .await
            .unwrap();
        let (addr, shutdown) = (replica.grpc_addr, replica.shutdown());
        self.shutdowns.push(shutdown.clone());
        (addr, shutdown)
    }

    /// Stops the first inventory replica, the one [`World::inventory`] talks to.
    pub fn stop_first_inventory(&self) {
        self.shutdowns[0].trigger();
    }

    /// The settings an orders instance of this world needs (ports: 0 on loopback).
    pub fn orders_vars(&self) -> Vec<(String, String)> {
        let mut vars = testkit::service_vars(
            "orders",
            &self.orders_db.url,
            &self.amqp_url,
            &self.exchange,
        );
        let own: Vars = vec![
            (
                "ORDERS_INVENTORY_URL",
                format!("http://{}", self.inventory_addr),
            ),
            (
                "ORDERS_PAYMENTS_URL",
                format!("http://{}", self.payments_addr),
            ),
            ("ORDERS_SAGA_POLL_INTERVAL", "100ms".into()),
            ("ORDERS_SAGA_RETRY_BASE", "50ms".into()),
            ("ORDERS_SAGA_RETRY_CAP", "500ms".into()),
            ("ORDERS_DB_MAX_CONNECTIONS", "20".into()),
        ];
        vars.extend(own.into_iter().map(|(k, v)| (k.to_owned(), v)));
        vars
    }

    /// The orders configuration of this world, as an operator command would read it.
    pub fn orders_config(&self) -> orders::Config {
        orders::Config::from(&env("orders", self.orders_vars(), vec![])).unwrap()
    }

    /// Starts orders in this process.
    pub async fn start_orders(&mut self, extra: Vars) {
        let base = self.orders_vars();
        let orders =
            orders::Application::spawn(orders::Config::from(&env("orders", base, extra)).unwrap())
                .await
                .unwrap();
        self.shutdowns.push(orders.shutdown());
        self.orders = Some(
            OrdersServiceClient::connect(orders.grpc_url())
                .await
                .unwrap(),
        );
    }

    pub async fn full(payments_vars: Vars, orders_vars: Vars) -> Self {
        let mut world = Self::participants(payments_vars).await;
        world.start_orders(orders_vars).await;
        world
    }

    pub fn orders(&self) -> OrdersServiceClient<Channel> {
        self.orders.clone().expect("orders started")
    }

    /// A product priced in EUR with `stock` units available.
    pub async fn product(&self, sku: &str, price_minor: i64, stock: i64) {
        let mut inventory = self.inventory.clone();
        inventory
            .upsert_product(UpsertProductRequest {
                sku: sku.to_owned(),
                name: format!("Product {sku}"),
                description: "A test product".into(),
                price: Some(Money {
                    amount_minor: price_minor,
                    currency: "EUR".into(),
                }),
                active: true,
            })
            .await
            .unwrap();
        if stock > 0 {
            inventory
                .adjust_stock(AdjustStockRequest {
                    sku: sku.to_owned(),
                    delta: stock,
                    reason: "test delivery".into(),
                })
                .await
                .unwrap();
        }
    }

    pub async fn place(
        &self,
        customer: Uuid,
        lines: &[(&str, i64)],
        card: &str,
        key: &str,
    ) -> Result<Order, tonic::Status> {
        self.orders()
            .place_order(PlaceOrderRequest {
                customer_id: customer.to_string(),
                lines: lines
                    .iter()
                    .map(|(sku, quantity)| PlaceOrderLine {
                        sku: (*sku).to_owned(),
                        quantity: *quantity,
                    })
                    .collect(),
                payment_method: card.to_owned(),
                idempotency_key: key.to_owned(),
            })
            .await
            .map(|response| response.into_inner().order.unwrap())
    }

    /// The order `id`, read as an administrator.
    pub async fn order(&self, id: &str) -> Order {
        self.orders()
            .get_order(admin(GetOrderRequest {
                order_id: id.to_owned(),
                customer_id: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap()
    }

    /// Polls until the order leaves PENDING (every saga must reach a terminal state).
    pub async fn terminal(&self, id: &str, deadline: Duration) -> Order {
        testkit::poll_until("the order to leave PENDING", deadline, || async {
            let order = self.order(id).await;
            (order.status() != OrderStatus::Pending).then_some(order)
        })
        .await
        .unwrap()
    }

    pub async fn reservation(&self, order_id: &str) -> Option<ReservationStatus> {
        self.inventory
            .clone()
            .get_reservation(GetReservationRequest {
                order_id: order_id.to_owned(),
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().reservation)
            .map(|r| r.status())
    }

    pub async fn payment(&self, order_id: &str) -> Option<Payment> {
        self.payments
            .clone()
            .get_payment(GetPaymentRequest {
                key: Some(Key::OrderId(order_id.to_owned())),
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().payment)
    }

    pub async fn available(&self, sku: &str) -> i64 {
        self.inventory
            .clone()
            .get_product(GetProductRequest {
                sku: sku.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap()
            .available
    }

    /// Stock conservation, read straight from inventory's database:
    /// on_hand = available + reserved + sold, nothing negative.
    pub async fn assert_stock_conserved(&self, sku: &str) -> (i64, i64, i64, i64) {
        let pool = self.inventory_db.pool().await;
        let (on_hand, available, reserved, sold): (i64, i64, i64, i64) =
            sqlx::query_as("SELECT on_hand, available, reserved, sold FROM stock WHERE sku = $1")
                .bind(sku)
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        assert_eq!(
            on_hand,
            available + reserved + sold,
            "stock of {sku} not conserved"
        );
        assert!(available >= 0 && reserved >= 0 && sold >= 0);
        (on_hand, available, reserved, sold)
    }

    /// Unpublished outbox rows across the three databases.
    pub async fn unpublished_events(&self) -> i64 {
        let mut total = 0;
        for db in [&self.orders_db, &self.inventory_db, &self.payments_db] {
            let pool = db.pool().await;
            let (count,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            total += count;
        }
        total
    }

    pub fn stop(&self) {
        for shutdown in &self.shutdowns {
            shutdown.trigger();
        }
    }
}

/// `message` as a call made for an administrator (the admin scope; these worlds run without
/// TLS, where orders takes the scope as given).
pub fn admin<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    platform::grpc::authz::grant_admin(&mut request);
    request
}
