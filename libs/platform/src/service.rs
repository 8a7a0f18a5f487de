//! Building a service from the pieces every service shares: [`ServiceBuilder`].
//!
//! Every Ferroshop service starts the same way: connect to its own database and run its
//! migrations, add its background workers (the outbox relay, event consumers, sweepers), register
//! its gRPC API, and bind the ports. The builder does each of those once, so a service's
//! `lib.rs` reads like a table of contents of what the service is made of:
//!
//! ```text
//! let service = ServiceBuilder::connect(&config.runtime, FILE_DESCRIPTOR_SET, &[&migrations]).await?;
//! let store = OrderStore::new(service.pool().clone());
//! let host = service
//!     .relay("orders")                                   // messaging::WithMessaging
//!     .consume(FULFILMENT, Fulfilment { store }).await   // messaging::WithMessaging
//!     .worker(Worker::new(move |shutdown| runner.run(shutdown)))
//!     .serve(OrdersServiceServer::new(api), grpc::CALLERS)
//!     .bind()
//!     .await?;
//! ```
//!
//! Start-up fails with one [`StartError`] type for every service: what could not be set up, in
//! words an operator can act on.

use std::net::SocketAddr;

use sqlx::{PgPool, migrate::Migrator};
use tonic::{body::Body, server::NamedService};

use crate::{
    Shutdown,
    admin::Readiness,
    config::RuntimeConfig,
    grpc::GrpcServer,
    host::{Api, HostConfig, HostError, ServiceHost, Worker},
};

/// Why a service could not start.
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
    /// Something of the service's own (a client, a key, a seed) could not be set up.
    #[error("cannot set up {what}: {reason}")]
    Setup { what: &'static str, reason: String },
}

impl StartError {
    /// A [`StartError::Setup`] for `what` (`"the Redis client"`), from any error.
    pub fn setup(what: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Setup {
            what,
            reason: error.to_string(),
        }
    }
}

/// A service being assembled: its database (connected, migrated), its runtime settings, and
/// the workers, API and readiness checks added so far.
pub struct ServiceBuilder {
    runtime: RuntimeConfig,
    pool: PgPool,
    grpc: GrpcServer,
    readiness: Readiness,
    workers: Vec<Worker>,
}

impl ServiceBuilder {
    /// Connects to the service's database (`<SERVICE>_DATABASE_URL`), runs `migrations` in
    /// order (a library's, such as the outbox's, and the service's own), and readies a gRPC
    /// server whose reflection serves `descriptor_set`. `/readyz` checks the database.
    pub async fn connect(
        runtime: &RuntimeConfig,
        descriptor_set: &'static [u8],
        migrations: &[&Migrator],
    ) -> Result<Self, StartError> {
        let pool = crate::db::connect(&runtime.database_url, runtime.db_max_connections).await?;
        crate::db::migrate(&pool, migrations).await?;
        let grpc =
            GrpcServer::new(descriptor_set).map_err(|err| StartError::Grpc(err.to_string()))?;
        Ok(Self {
            runtime: runtime.clone(),
            readiness: Readiness::new().with_postgres(pool.clone()),
            pool,
            grpc,
            workers: Vec::new(),
        })
    }

    /// The service's database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The settings every service shares (addresses, broker, exchange, queue prefix).
    pub fn runtime(&self) -> &RuntimeConfig {
        &self.runtime
    }

    /// Adds a background worker, started with the service and stopped with it.
    #[must_use]
    pub fn worker(mut self, worker: Worker) -> Self {
        self.workers.push(worker);
        self
    }

    /// Adds a `/readyz` check of the service's own (the database is always checked).
    #[must_use]
    pub fn readiness(mut self, add: impl FnOnce(Readiness) -> Readiness) -> Self {
        self.readiness = add(self.readiness);
        self
    }

    /// Registers a gRPC service on the API port, with the table of who may call each of its
    /// methods (`grpc::authz`).
    #[must_use]
    pub fn serve<S>(mut self, service: S, callers: crate::grpc::authz::Callers) -> Self
    where
        S: tower::Service<
                http::Request<Body>,
                Response = http::Response<Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.grpc = self.grpc.add_service(service, callers);
        self
    }

    /// Binds the ports: the service is ready to run.
    pub async fn bind(self) -> Result<ServiceHost, StartError> {
        Ok(ServiceHost::bind(
            &HostConfig::from(&self.runtime),
            Api::Grpc(self.grpc),
            self.readiness,
        )
        .await?
        .with_workers(self.workers))
    }
}

/// A service running in this process, for other crates' tests: its addresses, and the handle
/// that stops it. Every service's `spawn` returns one, so a test never rebuilds a service's
/// configuration and start-up by hand.
pub struct Spawned {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<(), HostError>>,
}

impl Spawned {
    /// Runs `host` on a task of its own.
    pub fn start(host: ServiceHost) -> Self {
        let shutdown = Shutdown::new();
        let (grpc_addr, admin_addr) = (host.api_addr(), host.admin_addr());
        let task = tokio::spawn(host.run(shutdown.clone()));
        Self {
            grpc_addr,
            admin_addr,
            shutdown,
            task,
        }
    }

    /// `http://<grpc address>`.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// The signal that stops it (to stop it without waiting, or to share it).
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Stops it and waits until it has drained.
    pub async fn stop(self) -> Result<(), HostError> {
        self.shutdown.trigger();
        self.task
            .await
            .map_err(|join| HostError::Grpc(Box::new(join)))?
    }
}
