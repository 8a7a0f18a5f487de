//! `spawn_app`: an inventory service on random ports with its own fresh database, its own Redis
//! key prefix and its own events exchange (and queues), so tests never see each other's data or
//! messages.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use contracts::{
    Money,
    events::EventEnvelope,
    inventory::{
        AdjustStockRequest, CommitReservationRequest, GetProductRequest, GetReservationRequest,
        InventoryServiceClient, ListProductsRequest, ListProductsResponse, Product,
        ReleaseStockRequest, Reservation, ReservationLine, ReserveStockRequest, StockLevel,
        UpsertProductRequest,
    },
};
use inventory::{Application, Config, service::CatalogReads, sweeper::Sweeper};
use platform::{Shutdown, config::Env};
use prost::Message as _;
use sqlx::{PgPool, postgres::PgPoolOptions};
use testkit::TestDatabase;
use tokio::task::JoinHandle;
use tonic::{Status, transport::Channel};
use uuid::Uuid;

pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub client: InventoryServiceClient<Channel>,
    pub db: Arc<TestDatabase>,
    /// A small pool on the test's database, for assertions.
    pub pool: PgPool,
    pub sweeper: Sweeper,
    pub reads: CatalogReads,
    pub redis_url: String,
    pub cache_prefix: String,
    /// The broker and the exchange (unique to this test) the outbox relay publishes to and the
    /// order-event consumer's queue is bound to.
    pub amqp_url: String,
    pub exchange: String,
    /// The full name of the order-event consumer's queue (with this test's prefix).
    pub orders_queue: String,
    shutdown: Shutdown,
    server: JoinHandle<()>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    spawn_app_on(Arc::new(testkit::fresh_database().await), extra).await
}

/// A service on an existing database: a second replica, or a restart.
pub async fn spawn_app_on(db: Arc<TestDatabase>, extra: &[(&str, &str)]) -> TestApp {
    let redis_url = testkit::redis_url().await;
    let cache_prefix = testkit::unique_name("inventory");
    let amqp_url = testkit::amqp_url().await;
    let exchange = testkit::unique_name("inventory.test.events");
    let mut vars: HashMap<String, String> =
        testkit::service_vars("inventory", &db.url, &amqp_url, &exchange)
            .into_iter()
            .collect();
    vars.insert("INVENTORY_REDIS_URL".into(), redis_url);
    vars.insert("INVENTORY_CACHE_PREFIX".into(), cache_prefix);
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let redis_url = vars["INVENTORY_REDIS_URL"].clone();
    let cache_prefix = vars["INVENTORY_CACHE_PREFIX"].clone();
    let amqp_url = vars["INVENTORY_AMQP_URL"].clone();
    let exchange = vars["INVENTORY_EVENTS_EXCHANGE"].clone();
    let config = Config::from(&Env::from_map("inventory", vars)).expect("valid test config");
    let orders_queue = config.runtime.queue_name(inventory::events::ORDERS.name);
    let app = Application::build(config)
        .await
        .expect("the service builds");
    let grpc_addr = app.grpc_addr();
    let admin_addr = app.admin_addr();
    let sweeper = app.sweeper();
    let reads = app.catalog_reads();
    let shutdown = Shutdown::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            app.run(shutdown).await.expect("the service runs");
        }
    });
    let client = InventoryServiceClient::connect(format!("http://{grpc_addr}"))
        .await
        .expect("connects to the service");
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .expect("connects to the test database");
    TestApp {
        grpc_addr,
        admin_addr,
        client,
        db,
        pool,
        sweeper,
        reads,
        redis_url,
        cache_prefix,
        amqp_url,
        exchange,
        orders_queue,
        shutdown,
        server,
    }
}

/// The stock row of a SKU, read straight from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock {
    pub on_hand: i64,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
}

impl Stock {
    pub fn assert_conserved(&self) {
        assert!(
            self.on_hand >= 0 && self.available >= 0 && self.reserved >= 0 && self.sold >= 0,
            "negative stock: {self:?}"
        );
        assert_eq!(
            self.on_hand,
            self.available + self.reserved + self.sold,
            "stock not conserved: {self:?}"
        );
    }
}

pub fn eur(cents: i64) -> Option<Money> {
    Some(Money {
        amount_minor: cents,
        currency: "EUR".to_owned(),
    })
}

pub fn lines(lines: &[(&str, i64)]) -> Vec<ReservationLine> {
    lines
        .iter()
        .map(|(sku, quantity)| ReservationLine {
            sku: (*sku).to_owned(),
            quantity: *quantity,
        })
        .collect()
}

impl TestApp {
    pub fn client(&self) -> InventoryServiceClient<Channel> {
        self.client.clone()
    }

    pub async fn upsert(&self, request: UpsertProductRequest) -> Result<Product, Status> {
        self.client()
            .upsert_product(request)
            .await
            .map(|response| response.into_inner().product.expect("a product"))
    }

    /// An active product priced in euro cents, with `units` in stock.
    pub async fn product(&self, sku: &str, name: &str, cents: i64, units: i64) -> Product {
        let product = self
            .upsert(UpsertProductRequest {
                sku: sku.to_owned(),
                name: name.to_owned(),
                description: format!("The {name}."),
                price: eur(cents),
                active: true,
            })
            .await
            .expect("upsert succeeds");
        if units > 0 {
            self.adjust(sku, units).await.expect("stock added");
        }
        product
    }

    pub async fn adjust(&self, sku: &str, delta: i64) -> Result<StockLevel, Status> {
        self.client()
            .adjust_stock(AdjustStockRequest {
                sku: sku.to_owned(),
                delta,
                reason: "test delivery".to_owned(),
            })
            .await
            .map(|response| response.into_inner().stock.expect("a stock level"))
    }

    pub async fn get(&self, sku: &str) -> Result<Product, Status> {
        self.client()
            .get_product(GetProductRequest {
                sku: sku.to_owned(),
            })
            .await
            .map(|response| response.into_inner().product.expect("a product"))
    }

    pub async fn list(
        &self,
        page_size: u32,
        page_token: &str,
        query: &str,
    ) -> Result<ListProductsResponse, Status> {
        self.client()
            .list_products(ListProductsRequest {
                page_size,
                page_token: page_token.to_owned(),
                query: query.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn reserve(
        &self,
        order_id: Uuid,
        wanted: &[(&str, i64)],
    ) -> Result<Reservation, Status> {
        self.client()
            .reserve_stock(ReserveStockRequest {
                order_id: order_id.to_string(),
                lines: lines(wanted),
            })
            .await
            .map(|response| response.into_inner().reservation.expect("a reservation"))
    }

    pub async fn release(&self, order_id: Uuid) -> Result<Reservation, Status> {
        self.client()
            .release_stock(ReleaseStockRequest {
                order_id: order_id.to_string(),
                reason: "payment_declined".to_owned(),
            })
            .await
            .map(|response| response.into_inner().reservation.expect("a reservation"))
    }

    pub async fn commit(&self, order_id: Uuid) -> Result<Reservation, Status> {
        self.client()
            .commit_reservation(CommitReservationRequest {
                order_id: order_id.to_string(),
            })
            .await
            .map(|response| response.into_inner().reservation.expect("a reservation"))
    }

    pub async fn reservation(&self, order_id: Uuid) -> Result<Reservation, Status> {
        self.client()
            .get_reservation(GetReservationRequest {
                order_id: order_id.to_string(),
            })
            .await
            .map(|response| response.into_inner().reservation.expect("a reservation"))
    }

    pub async fn stock(&self, sku: &str) -> Stock {
        let (on_hand, available, reserved, sold): (i64, i64, i64, i64) =
            sqlx::query_as("SELECT on_hand, available, reserved, sold FROM stock WHERE sku = $1")
                .bind(sku)
                .fetch_one(&self.pool)
                .await
                .expect("a stock row");
        Stock {
            on_hand,
            available,
            reserved,
            sold,
        }
    }

    /// `(routing_key, aggregate_id)` of every outbox row, in order.
    pub async fn outbox(&self) -> Vec<(String, String)> {
        sqlx::query_as("SELECT routing_key, aggregate_id FROM outbox ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .expect("outbox rows")
    }

    /// The payloads recorded in the outbox under `routing_key`, decoded.
    pub async fn events<E: prost::Message + Default>(&self, routing_key: &str) -> Vec<E> {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT envelope FROM outbox WHERE routing_key = $1 ORDER BY seq")
                .bind(routing_key)
                .fetch_all(&self.pool)
                .await
                .expect("outbox rows");
        rows.into_iter()
            .map(|(bytes,)| {
                let envelope = EventEnvelope::decode(bytes.as_slice()).expect("an envelope");
                E::decode(envelope.payload.as_slice()).expect("the payload")
            })
            .collect()
    }

    /// Rows in `table` of this test's database.
    pub async fn count(&self, table: &str) -> i64 {
        let query = format!("SELECT count(*) FROM {table}");
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(query))
            .fetch_one(&self.pool)
            .await
            .expect("count rows");
        count
    }

    /// Catalog reads that reached Postgres so far.
    pub fn db_reads(&self) -> u64 {
        self.reads.get()
    }

    /// A plain Redis connection to the service's cache, for looking at keys.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connects to Redis")
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        self.server.await.expect("the server task ends cleanly");
        self.pool.close().await;
    }
}
