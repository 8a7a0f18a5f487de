//! The orders service: order placement, the checkout saga orchestrator, the CQRS read model.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `ORDERS_*` settings |
//! | [`domain`] | order rules and the saga state machine: pure, exhaustively tested |
//! | [`participants`] | inventory and payments over gRPC, failures classified |
//! | [`saga`] | the runner: leases, steps, retries, compensation, resumption |
//! | [`store`] | all SQL: write model, saga rows, read model |
//! | [`events`] | the fulfilment consumer and the order-summary projection |
//! | [`grpc`] | the `shop.orders.v1.OrdersService` implementation |

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod participants;
pub mod saga;
pub mod store;

use std::{net::SocketAddr, sync::Arc};

use contracts::orders::OrdersServiceServer;
use messaging::{Consumer, OutboxRelay, RelayConfig, topology::ConsumerTopology};
use platform::{
    ServiceHost, Shutdown,
    admin::Readiness,
    grpc::GrpcServer,
    host::{HostError, Worker},
};

pub use config::Config;

use crate::{
    events::{
        FULFILMENT_BINDINGS, FULFILMENT_QUEUE, Fulfilment, SUMMARIES_BINDINGS, SUMMARIES_QUEUE,
        SummaryProjection,
    },
    grpc::OrdersApi,
    participants::Participants,
    saga::{RunnerConfig, SagaRunner},
    store::OrderStore,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Participants(#[from] participants::ConnectError),
    #[error("cannot build the gRPC server: {0}")]
    Grpc(String),
    #[error(transparent)]
    Host(#[from] HostError),
}

pub struct Application {
    host: ServiceHost,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let runtime = &config.runtime;
        let pool = platform::db::connect(&runtime.database_url, runtime.db_max_connections).await?;
        platform::db::migrate(&pool, &[&messaging::migrator(), &sqlx::migrate!()]).await?;
        let store = OrderStore::new(pool.clone());
        let participants = Participants::connect(
            &config.inventory_url,
            &config.payments_url,
            config.call_timeout,
        )?;

        let runner = Arc::new(SagaRunner::new(
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
        let relay = OutboxRelay::new(
            pool.clone(),
            RelayConfig::new(&runtime.amqp_url, &runtime.events_exchange, "orders"),
        );
        let fulfilment = Consumer::new(
            pool.clone(),
            &runtime.amqp_url,
            ConsumerTopology::for_service(runtime, FULFILMENT_QUEUE, FULFILMENT_BINDINGS),
        );
        let summaries = Consumer::new(
            pool.clone(),
            &runtime.amqp_url,
            ConsumerTopology::for_service(runtime, SUMMARIES_QUEUE, SUMMARIES_BINDINGS),
        );
        for consumer in [&fulfilment, &summaries] {
            consumer.prepare().await;
        }
        let fulfilment_handler = Arc::new(Fulfilment {
            store: store.clone(),
        });
        let workers = vec![
            Worker::new(move |shutdown| runner.run(shutdown)),
            Worker::new(move |shutdown| relay.run(shutdown)),
            Worker::new(move |shutdown| fulfilment.run(fulfilment_handler, shutdown)),
            Worker::new(move |shutdown| summaries.run(Arc::new(SummaryProjection), shutdown)),
        ];

        let api = OrdersApi::new(store, participants, config.saga_deadline);
        let grpc = GrpcServer::new(contracts::FILE_DESCRIPTOR_SET)
            .map_err(|err| StartError::Grpc(err.to_string()))?
            .add_service(OrdersServiceServer::new(api));
        let host = ServiceHost::bind(runtime, grpc, Readiness::new().with_postgres(pool))
            .await?
            .with_workers(workers);
        Ok(Self { host })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.host.admin_addr()
    }

    /// Serves the API with the saga runner, the outbox relay and both consumers beside it.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        self.host.run(shutdown).await
    }
}
