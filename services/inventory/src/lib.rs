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
//! | [`sweeper`] | expires reservations nobody committed in time |
//! | [`seed`] | the demo catalog |
//! | [`grpc`] | the `shop.inventory.v1.InventoryService` implementation |
//! | [`wire`] | domain ⇄ protobuf, for the API and the cache |
//! | [`events`] | `ProductUpdated`, `StockReserved`, … through the outbox |
//!
//! Dependencies: Postgres is required (and checked by `/readyz`); Redis is optional at run time
//! — without it catalog reads go to Postgres — and is therefore not part of `/readyz`.

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

use std::{net::SocketAddr, time::Duration};

use contracts::inventory::InventoryServiceServer;
use platform::{ServiceHost, Shutdown, admin::Readiness, grpc::GrpcServer, host::HostError};

pub use config::Config;

use crate::{
    cache::CatalogCache,
    catalog::{Catalog, CatalogReads},
    error::InventoryError,
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
    grpc: GrpcServer,
    readiness: Readiness,
    grace: Duration,
    sweeper: Sweeper,
    sweep_interval: Duration,
    catalog_reads: CatalogReads,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let pool = platform::db::connect(
            &config.runtime.database_url,
            config.runtime.db_max_connections,
        )
        .await?;
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
        let api = InventoryApi::new(catalog, reservations, config.reservation_ttl);

        let grpc = GrpcServer::new(contracts::FILE_DESCRIPTOR_SET)
            .map_err(|err| StartError::Grpc(err.to_string()))?
            .add_service(InventoryServiceServer::new(api));
        let host = ServiceHost::bind(config.runtime.grpc_addr, config.runtime.admin_addr).await?;
        Ok(Self {
            host,
            grpc,
            // Redis is left out on purpose: see the crate docs.
            readiness: Readiness::new().with_postgres(pool),
            grace: config.runtime.shutdown_grace,
            sweeper,
            sweep_interval: config.sweep_interval,
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

    /// Serves, and sweeps expired reservations, until `shutdown` fires and in-flight calls have
    /// drained.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        let sweeper = tokio::spawn(self.sweeper.run(self.sweep_interval, shutdown.clone()));
        let served = self
            .host
            .serve(self.grpc, self.readiness, shutdown.clone(), self.grace)
            .await;
        if shutdown.is_triggered() {
            // It stops at its next check of the shutdown signal: within one sweep.
            if let Err(err) = sweeper.await {
                tracing::warn!(error = %err, "the reservation sweeper ended abnormally");
            }
        } else {
            // The server failed on its own: do not leave the sweeper running behind it.
            sweeper.abort();
        }
        served
    }
}
