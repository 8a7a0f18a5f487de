//! The payments service: an event-sourced payment ledger in front of a payment provider.
//!
//! [`Application::build`] assembles the service from its [`Config`]; `main` and the integration
//! tests both go through it, so tests exercise exactly what production runs.
//!
//! Patterns this crate teaches, and where to read them:
//!
//! | pattern | where |
//! |---|---|
//! | event sourcing (state = fold of the events; decide / evolve) | [`domain`] |
//! | optimistic concurrency on `(payment_id, seq)` | [`store`], [`ledger`] |
//! | idempotent command (AuthorizePayment per order id) | [`ledger`] |
//! | transactional outbox (each appended event → one integration event), published by the relay worker | [`store`], [`events`], [`Application::run`] |
//! | choreography after confirmation (capture on `OrderConfirmed`, refund on `OrderCancelled`) | [`events::OrderFollowUp`], [`ledger::capture_order_in`] |
//! | idempotent consumer: effect + outbox row + inbox row in one transaction | [`ledger::refund_cancelled_order_in`], [`store::append_in`] |
//! | fault injection (latency, errors, hangs) behind a provider trait | [`provider`] |
//! | honouring the caller's deadline | `platform::grpc::deadline`, on every call of every service |
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `PAYMENTS_*` settings: ports, database, broker, provider fault knobs |
//! | [`domain`] | money, events, the fold, the rules (and the answers to order events): pure |
//! | [`provider`] | the `PaymentProvider` trait and its simulator |
//! | [`store`] | all SQL: the event store, on the pool or on a caller's transaction |
//! | [`ledger`] | the commands: load → fold → decide → append, with retries; in a caller's transaction for order events |
//! | [`grpc`] | the `shop.payments.v1.PaymentsService` implementation |
//! | [`events`] | `Payment*` integration events, through the outbox; the `payments.orders` consumer's handler |
//!
//! Besides the gRPC API, [`Application::run`] runs two background workers: the **outbox relay**
//! (publishes `payments.payment.*` from this database's outbox to the events exchange) and the
//! **order-event consumer** (queue `payments.orders`, bound to `orders.order.confirmed` and
//! `orders.order.cancelled`). Neither needs the broker to be up for the service to start; both
//! reconnect on their own and stop on shutdown.

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod ledger;
pub mod provider;
pub mod store;

use std::{net::SocketAddr, sync::Arc};

use contracts::payments::PaymentsServiceServer;
use messaging::{Consumer, OutboxRelay, RelayConfig, topology::ConsumerTopology};
use platform::{
    ServiceHost, Shutdown,
    admin::Readiness,
    grpc::GrpcServer,
    host::{HostError, Worker},
};

pub use config::Config;

use crate::{
    events::{ORDERS_BINDINGS, ORDERS_QUEUE, OrderFollowUp},
    grpc::PaymentsApi,
    ledger::Ledger,
    provider::SimulatedProvider,
    store::PaymentStore,
};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot build the gRPC server: {0}")]
    Grpc(String),
    #[error(transparent)]
    Host(#[from] HostError),
}

/// A built, bound, not yet serving payments service.
pub struct Application {
    host: ServiceHost,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let runtime = &config.runtime;
        let pool = platform::db::connect(&runtime.database_url, runtime.db_max_connections).await?;
        platform::db::migrate(&pool, &[&messaging::migrator(), &sqlx::migrate!()]).await?;

        let faults = config.provider;
        if faults != provider::ProviderFaults::default() {
            tracing::warn!(
                latency_ms = faults.latency.as_millis(),
                error_rate = faults.error_rate,
                hang = faults.hang,
                "payment provider simulator runs with injected faults"
            );
        }
        let ledger = Ledger::new(
            PaymentStore::new(pool.clone()),
            SimulatedProvider::new(faults),
        );

        let relay = OutboxRelay::new(
            pool.clone(),
            RelayConfig::new(&runtime.amqp_url, &runtime.events_exchange, "payments"),
        );
        let topology = ConsumerTopology::for_service(runtime, ORDERS_QUEUE, ORDERS_BINDINGS);
        let order_events = Consumer::new(pool.clone(), &runtime.amqp_url, topology);
        // Declared before serving, so that order events published from now on are kept for us
        // even if the consumer only connects later. Best effort: without a broker, the consumer
        // declares them when it first connects.
        order_events.prepare().await;
        let workers = vec![
            Worker::new(move |shutdown| relay.run(shutdown)),
            Worker::new(move |shutdown| order_events.run(Arc::new(OrderFollowUp), shutdown)),
        ];

        let grpc = GrpcServer::new(contracts::FILE_DESCRIPTOR_SET)
            .map_err(|err| StartError::Grpc(err.to_string()))?
            .add_service(PaymentsServiceServer::new(PaymentsApi::new(ledger)));
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

    /// Serves the API, with the outbox relay and the order-event consumer beside it, until
    /// `shutdown` fires and in-flight calls and both workers have stopped.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        self.host.run(shutdown).await
    }
}
