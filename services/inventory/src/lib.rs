//! The inventory service: catalog, stock levels, reservations with a TTL, and a Redis
//! cache-aside in front of catalog reads.
//!
//! [`Application::build`] assembles the service from its [`Config`]; `main` and the integration
//! tests both go through it, so tests exercise exactly what production runs.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `INVENTORY_*` settings |
//! | [`domain`] | SKUs, prices, stock arithmetic, reservation rules and states, listing: pure rules |
//! | [`store`] | all SQL: catalog, stock, reservations (conditional updates, ordered locks) |
//! | [`cache`] | cache-aside in Redis: versioned keys, generation, TTL jitter, outage handling |
//! | [`single_flight`] | one load per key per process (stampede guard) |
//! | [`catalog`] | the catalog read and write paths, wiring store, cache and single-flight |
//! | [`sweeper`] | expires reservations nobody committed in time (a background worker) |
//! | [`seed`] | the demo catalog |
//! | [`grpc`] | the `shop.inventory.v1.InventoryService` implementation |
//! | [`wire`] | domain ⇄ protobuf, for the API and the cache |
//! | [`events`] | `ProductUpdated`, `StockReserved`, `StockRestocked`, … through the outbox; the `inventory.orders` consumer's handler ([`events::OrderLifecycle`]) |
//!
//! Besides the gRPC API, [`Application::run`] runs three background workers, each stopping on
//! shutdown (within `INVENTORY_SHUTDOWN_GRACE`, after the API has drained):
//!
//! | worker | job |
//! |---|---|
//! | outbox relay (`messaging::OutboxRelay`) | publishes `inventory.*` events from this database's outbox to the events exchange |
//! | order-event consumer (`messaging::Consumer`, queue `inventory.orders`) | the choreography after confirmation: commits the reservation on `orders.order.confirmed`, restocks on `orders.order.cancelled` of a confirmed order |
//! | reservation sweeper ([`sweeper::Sweeper`]) | expires reservations past their TTL, every `INVENTORY_SWEEP_INTERVAL` |
//!
//! Dependencies: Postgres is required (and checked by `/readyz`); Redis is optional at run time
//! — without it catalog reads go to Postgres — and is therefore not part of `/readyz`. Neither
//! is RabbitMQ: the service starts without it, events wait in the outbox, order events wait in
//! the queue, and the relay and the consumer reconnect on their own.

pub mod cache;
pub mod catalog;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod seed;
pub mod single_flight;
pub mod store;
pub mod sweeper;
pub mod wire;

use std::{net::SocketAddr, sync::Arc};

use contracts::inventory::InventoryServiceServer;
use messaging::{Consumer, OutboxRelay, RelayConfig, topology::ConsumerTopology};
use platform::{
    ServiceHost, Shutdown,
    admin::Readiness,
    grpc::GrpcServer,
    host::{HostError, Worker},
};

pub use config::Config;

use crate::{
    cache::CatalogCache,
    catalog::{Catalog, CatalogReads},
    error::InventoryError,
    events::{ORDERS_BINDINGS, ORDERS_QUEUE, OrderLifecycle},
    grpc::InventoryApi,
    store::{CatalogStore, ReservationStore},
    sweeper::Sweeper,
};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot set up the Redis client: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot seed the demo catalog: {0}")]
    Seed(#[from] InventoryError),
    #[error("cannot build the gRPC server: {0}")]
    Grpc(String),
    #[error(transparent)]
    Host(#[from] HostError),
}

/// A built, bound, not yet serving inventory service.
pub struct Application {
    host: ServiceHost,
    sweeper: Sweeper,
    catalog_reads: CatalogReads,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let runtime = &config.runtime;
        let pool = platform::db::connect(&runtime.database_url, runtime.db_max_connections).await?;
        platform::db::migrate(&pool, &[&messaging::migrator(), &sqlx::migrate!()]).await?;

        let cache = CatalogCache::new(
            &config.redis_url,
            &config.cache_prefix,
            config.cache_ttl,
            config.cache_timeout,
        )?;
        let catalog = Catalog::new(CatalogStore::new(pool.clone()), cache);
        if config.seed_demo {
            let added = seed::apply(catalog.store()).await?;
            if added > 0 {
                let skus: Vec<_> = seed::drafts()
                    .map_err(InventoryError::from)?
                    .into_iter()
                    .map(|(draft, _)| draft.sku)
                    .collect();
                catalog.changed(&skus).await;
            }
            tracing::info!(added, "demo catalog checked");
        }
        let reservations = ReservationStore::new(pool.clone());
        let sweeper = Sweeper::new(reservations.clone(), catalog.clone());
        let catalog_reads = catalog.reads();

        let relay = OutboxRelay::new(
            pool.clone(),
            RelayConfig::new(&runtime.amqp_url, &runtime.events_exchange, "inventory"),
        );
        let topology = ConsumerTopology::for_service(runtime, ORDERS_QUEUE, ORDERS_BINDINGS);
        let order_events = Consumer::new(pool.clone(), &runtime.amqp_url, topology);
        // Declared before serving, so that order events published from now on are kept for us
        // even if the consumer only connects later. Best effort: without a broker, the consumer
        // declares them when it first connects.
        order_events.prepare().await;
        let order_lifecycle = Arc::new(OrderLifecycle::new(reservations.clone(), catalog.clone()));

        let api = InventoryApi::new(catalog, reservations, config.reservation_ttl);

        let grpc = GrpcServer::new(contracts::FILE_DESCRIPTOR_SET)
            .map_err(|err| StartError::Grpc(err.to_string()))?
            .add_service(InventoryServiceServer::new(api));
        // Redis and RabbitMQ are left out on purpose: see the crate docs.
        let readiness = Readiness::new().with_postgres(pool);
        let (worker_sweeper, sweep_interval) = (sweeper.clone(), config.sweep_interval);
        let host = ServiceHost::bind(runtime, grpc, readiness)
            .await?
            .with_workers([
                Worker::new(move |shutdown| relay.run(shutdown)),
                Worker::new(move |shutdown| order_events.run(order_lifecycle, shutdown)),
                // It stops at its next check of the shutdown signal: within one sweep.
                Worker::new(move |shutdown| worker_sweeper.run(sweep_interval, shutdown)),
            ]);
        Ok(Self {
            host,
            sweeper,
            catalog_reads,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.host.admin_addr()
    }

    /// The sweeper, to run one sweep on demand (tests, operations).
    pub fn sweeper(&self) -> Sweeper {
        self.sweeper.clone()
    }

    /// How many catalog reads reached Postgres.
    pub fn catalog_reads(&self) -> CatalogReads {
        self.catalog_reads.clone()
    }

    /// Serves the API, with the outbox relay, the order-event consumer and the reservation
    /// sweeper running beside it, until `shutdown` fires, in-flight calls have drained and the
    /// workers have stopped.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        self.host.run(shutdown).await
    }
}
