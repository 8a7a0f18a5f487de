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
//! | optimistic concurrency on `(payment_id, seq)` | [`store`], [`service`] |
//! | idempotent command (AuthorizePayment per order id) | [`service`] |
//! | transactional outbox (each appended event → one integration event), published by the relay worker | [`store`], [`events`], [`Application::run`] |
//! | choreography after confirmation (capture on `OrderConfirmed`, refund on `OrderCancelled`) | [`events::OrderFollowUp`], [`service::capture_order_in`] |
//! | idempotent consumer: effect + outbox row + inbox row in one transaction | [`service::refund_cancelled_order_in`], [`store::append_in`] |
//! | fault injection (latency, errors, hangs) behind a provider trait | [`provider`] |
//! | honouring the caller's deadline | `platform::grpc::deadline`, on every call of every service |
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `PAYMENTS_*` settings: ports, database, broker, provider fault knobs |
//! | [`domain`] | money, events, the fold, the rules (and the answers to order events): pure |
//! | [`provider`] | the `PaymentProvider` trait and its simulator |
//! | [`store`] | all SQL: the event store, on the pool or on a caller's transaction |
//! | [`service`] | the ledger's commands: load → fold → decide → append, with retries; in a caller's transaction for order events |
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
pub mod provider;
pub mod service;
pub mod store;

use std::net::SocketAddr;

use contracts::payments::PaymentsServiceServer;
use messaging::WithMessaging as _;
use partitions::WithPartitions as _;
use platform::{ServiceBuilder, ServiceHost, Shutdown, Spawned, StartError, host::HostError};

pub use config::Config;

use crate::{
    events::ORDERS,
    grpc::PaymentsApi,
    provider::SimulatedProvider,
    service::{Ledger, OrderFollowUp},
    store::PaymentStore,
};

/// A built, bound, not yet serving payments service.
pub struct Application {
    host: ServiceHost,
}

impl Application {
    /// The service: its database, the ledger behind the gRPC API (with the provider
    /// simulator), the outbox relay and the order-event consumer.
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
            PaymentStore::new(service.pool().clone()),
            SimulatedProvider::new(faults),
        );
        let mut tables = messaging::partitioned_tables(&config.runtime);
        tables.push(store::events_table(config.events_retention));
        let host = service
            .relay("payments")
            .maintain_partitions(tables)
            .consume(ORDERS, OrderFollowUp)
            .await
            .serve(
                PaymentsServiceServer::new(PaymentsApi::new(ledger)),
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

    /// Serves the API, with the outbox relay and the order-event consumer beside it, until
    /// `shutdown` fires and in-flight calls and both workers have stopped.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        self.host.run(shutdown).await
    }
}
