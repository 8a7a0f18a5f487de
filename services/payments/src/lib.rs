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
//! | transactional outbox (each appended event → one integration event) | [`store`], [`events`] |
//! | fault injection (latency, errors, hangs) behind a provider trait | [`provider`] |
//! | honouring the caller's deadline | [`deadline`] |
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `PAYMENTS_*` settings, provider fault knobs |
//! | [`domain`] | money, events, the fold, the rules: pure |
//! | [`provider`] | the `PaymentProvider` trait and its simulator |
//! | [`store`] | all SQL: the event store |
//! | [`ledger`] | the commands: load → fold → decide → append, with retries |
//! | [`grpc`] | the `shop.payments.v1.PaymentsService` implementation |
//! | [`events`] | `Payment*` integration events, through the outbox |

pub mod config;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod ledger;
pub mod provider;
pub mod store;

use std::{net::SocketAddr, time::Duration};

use contracts::payments::PaymentsServiceServer;
use platform::{ServiceHost, Shutdown, admin::Readiness, grpc::GrpcServer, host::HostError};

pub use config::Config;

use crate::{grpc::PaymentsApi, ledger::Ledger, provider::SimulatedProvider, store::PaymentStore};

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
    grpc: GrpcServer,
    readiness: Readiness,
    grace: Duration,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let pool = platform::db::connect(
            &config.runtime.database_url,
            config.runtime.db_max_connections,
        )
        .await?;
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

        let grpc = GrpcServer::new(contracts::FILE_DESCRIPTOR_SET)
            .map_err(|err| StartError::Grpc(err.to_string()))?
            .add_service(PaymentsServiceServer::new(PaymentsApi::new(ledger)));
        let host = ServiceHost::bind(config.runtime.grpc_addr, config.runtime.admin_addr).await?;
        Ok(Self {
            host,
            grpc,
            readiness: Readiness::new().with_postgres(pool),
            grace: config.runtime.shutdown_grace,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.host.admin_addr()
    }

    /// Serves until `shutdown` fires and in-flight calls have drained.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        self.host
            .serve(self.grpc, self.readiness, shutdown, self.grace)
            .await
    }
}
