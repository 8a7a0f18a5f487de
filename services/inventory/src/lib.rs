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
//! | [`service`] | what each API call does: the catalog read and write paths (store, cache, single-flight), the saga's stock moves |
//! | [`sweeper`] | expires reservations nobody committed in time (a background worker) |
//! | [`seed`] | the demo catalog |
//! | [`grpc`] | the `shop.inventory.v1.InventoryService` implementation: decode → service → encode |
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
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod seed;
pub mod service;
pub mod single_flight;
pub mod store;
pub mod sweeper;
pub mod wire;

use std::net::SocketAddr;

use contracts::inventory::InventoryServiceServer;
use messaging::WithMessaging as _;
use partitions::WithPartitions as _;
use platform::{
    ServiceBuilder, ServiceHost, Shutdown, Spawned, StartError,
    host::{HostError, Worker},
};

pub use config::Config;

use crate::{
    cache::CatalogCache,
    events::{ANNOUNCE, ORDERS},
    grpc::InventoryApi,
    service::{Catalog, CatalogReads, OrderLifecycle, Reservations},
    store::{CatalogStore, ReservationStore},
    sweeper::Sweeper,
};

/// A built, bound, not yet serving inventory service.
pub struct Application {
    host: ServiceHost,
    sweeper: Sweeper,
    catalog_reads: CatalogReads,
}

impl Application {
    /// The service: its database, the catalog behind its cache, the reservations, the outbox
    /// relay, the order-event consumer and the reservation sweeper beside the gRPC API. Redis
    /// and RabbitMQ are not readiness dependencies (see the crate docs).
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let service = ServiceBuilder::connect(
            &config.runtime,
            contracts::FILE_DESCRIPTOR_SET,
            &[
                &messaging::migrator(),
                &platform::fencing::migrator(),
                &sqlx::migrate!(),
            ],
        )
        .await?;
        let cache = CatalogCache::new(
            &config.redis,
            &config.cache_prefix,
            config.cache_ttl,
            config.cache_timeout,
        )
        .map_err(|err| StartError::setup("the Redis client", err))?;
        let catalog = Catalog::new(CatalogStore::new(service.pool().clone(), ANNOUNCE), cache);
        if config.seed_demo {
            catalog
                .seed_demo()
                .await
                .map_err(|err| StartError::setup("the demo catalog", err))?;
        }
        let store = ReservationStore::new(service.pool().clone(), ANNOUNCE);
        let sweeper = Sweeper::new(store.clone(), catalog.clone());
        let catalog_reads = catalog.reads();
        let reservations = Reservations::new(store, catalog.clone(), config.reservation_ttl);
        let (worker_sweeper, sweep_interval) = (sweeper.clone(), config.sweep_interval);
        let tables = messaging::partitioned_tables(&config.runtime);
        let host = service
            .relay("inventory")
            .maintain_partitions(tables)
            .consume(ORDERS, OrderLifecycle::new(catalog.clone()))
            .await
            // It stops at its next check of the shutdown signal: within one sweep.
            .worker(Worker::new(move |shutdown| {
                worker_sweeper.run(sweep_interval, shutdown)
            }))
            .serve(
                InventoryServiceServer::new(InventoryApi::new(catalog, reservations)),
                grpc::CALLERS,
            )
            .bind()
            .await?;
        Ok(Self {
            host,
            sweeper,
            catalog_reads,
        })
    }

    /// Builds the service from `config` and runs it on a task of this process (other crates'
    /// tests).
    pub async fn spawn(config: Config) -> Result<Spawned, StartError> {
        Ok(Spawned::start(Self::build(config).await?.host))
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.api_addr()
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
