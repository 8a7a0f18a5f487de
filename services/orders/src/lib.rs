//! The orders service: order placement, the checkout saga orchestrator, the CQRS read model.
//!
//! | module | job |
//! |---|---|
//! | [`admin`] | operator commands (`orders admin rebuild-summaries`) |
//! | [`config`] | `ORDERS_*` settings |
//! | [`domain`] | order rules and the saga state machine: pure, exhaustively tested |
//! | [`participants`] | inventory and payments over gRPC, failures classified |
//! | [`saga`] | the runner: leases, steps, retries, compensation, resumption |
//! | [`service`] | what each API call does (idempotent placement with server-side prices, ownership, cancellation, the read model's pages) and what each consumed event does (fulfilment, projection) |
//! | [`store`] | all SQL: write model, saga rows, read model |
//! | [`events`] | the events orders publishes (built only here), and the queues it consumes |
//! | [`grpc`] | the `shop.orders.v1.OrdersService` implementation: decode → service → encode |

pub mod admin;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod participants;
pub mod saga;
pub mod service;
pub mod store;

use std::net::SocketAddr;

use contracts::orders::OrdersServiceServer;
use messaging::WithMessaging as _;
use partitions::WithPartitions as _;
use platform::{
    ServiceBuilder, ServiceHost, Shutdown, Spawned, StartError,
    host::{HostError, Worker},
};

pub use config::Config;

use crate::{
    events::{FULFILMENT, SUMMARIES},
    grpc::OrdersApi,
    participants::Participants,
    saga::{RunnerConfig, SagaRunner},
    service::{Checkout, Fulfilment, SummaryProjection, TimelineFeed, Watcher},
    store::OrderStore,
};

/// A built, bound, not yet serving orders service.
pub struct Application {
    host: ServiceHost,
}

impl Application {
    /// The service: its database, the saga runner, the outbox relay, the fulfilment consumer,
    /// the order-summary projection and the timeline feed (`WatchOrder`'s listener) beside the
    /// gRPC API.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let service = ServiceBuilder::connect(
            &config.runtime,
            contracts::FILE_DESCRIPTOR_SET,
            &[&messaging::migrator(), &sqlx::migrate!()],
        )
        .await?;
        let store = OrderStore::new(service.pool().clone());
        let participants = Participants::connect(&config.participants)
            .await
            .map_err(|err| StartError::setup("the participants' clients", err))?;
        let runner = std::sync::Arc::new(SagaRunner::new(
            store.clone(),
            participants.clone(),
            RunnerConfig {
                lease: config.saga_lease,
                poll_interval: config.saga_poll_interval,
                retry_base: config.saga_retry_base,
                retry_cap: config.saga_retry_cap,
                batch: 32,
                crash_after: config.crash_after,
            },
        ));
        let participants_maintenance = participants.maintenance(&config.participants);
        let checkout = Checkout::new(store.clone(), participants, config.saga_deadline);
        let feed = TimelineFeed::new();
        let watcher = Watcher::new(store.clone(), feed.clone());
        let pool = store.pool().clone();
        let mut tables = messaging::partitioned_tables(&config.runtime);
        tables.push(store::timeline_table(config.timeline_retention));
        let host = service
            .relay("orders")
            .maintain_partitions(tables)
            .consume(FULFILMENT, Fulfilment { store })
            .await
            .consume(SUMMARIES, SummaryProjection)
            .await
            .worker(participants_maintenance)
            .worker(Worker::new(move |shutdown| runner.run(shutdown)))
            .worker(Worker::new(move |shutdown| feed.run(pool, shutdown)))
            .serve(
                OrdersServiceServer::new(OrdersApi::new(checkout, watcher)),
                grpc::CALLERS,
            )
            .bind()
            .await?;
        Ok(Self { host })
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

    /// Serves the API with the saga runner, the outbox relay and both consumers beside it.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        self.host.run(shutdown).await
    }
}
