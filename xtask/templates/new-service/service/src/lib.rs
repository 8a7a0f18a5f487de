//! The {{name}} service: records, one per reference, each announced with a
//! `{{Pascal}}RecordCreated` event through the transactional outbox.
//!
//! [`Application::build`] assembles the service from its [`Config`]; `main` and the integration
//! tests both go through it, so tests exercise exactly what production runs.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `{{PREFIX}}_*` settings: ports, database, broker |
//! | [`domain`] | the record and its reference, and the rules: pure |
//! | [`store`] | all SQL: records and their outbox rows, on the pool or on a caller's transaction |
//! | [`service`] | what each API call does |
//! | [`grpc`] | the `shop.{{snake}}.v1.{{Pascal}}Service` implementation |
//! | [`events`] | the `{{Pascal}}RecordCreated` integration event{{#if consumes}}; the `{{queue}}` consumer's handler{{/if}} |
//! | [`error`] | what can fail, and the gRPC status each failure is |
//!
//! Besides the gRPC API (with `grpc.health.v1` and reflection, from `platform`),
//! [`Application::run`] runs the **outbox relay** (publishes `{{name}}.record.*` from this
//! database's outbox to the events exchange){{#if consumes}}, the **`{{queue}}` consumer** (bound to
//! {{consumed_keys}}){{/if}} and the **partition worker** (the outbox and the inbox partitioned by
//! day, made ahead and dropped past their retention: `partitions`). The broker does not need to be up for the
//! service to start: the workers reconnect on their own and stop on shutdown.

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod service;
pub mod store;

use std::net::SocketAddr;

use contracts::{{snake}}::{{Pascal}}ServiceServer;
use messaging::WithMessaging as _;
use partitions::WithPartitions as _;
use platform::{ServiceBuilder, ServiceHost, Shutdown, Spawned, StartError, host::HostError};

pub use config::Config;

use crate::{
{{#if consumes}}
    events::{{{Consumer}}, {{QUEUE_ALIAS}}},
{{/if}}
    grpc::{{Pascal}}Api,
    service::Records,
    store::RecordStore,
};

/// A built, bound, not yet serving {{name}} service.
pub struct Application {
    host: ServiceHost,
}

impl Application {
    /// The service: its database, the records behind the gRPC API, the outbox relay{{#if consumes}},
    /// the `{{queue}}` consumer{{/if}} and the partition worker of the outbox and the inbox.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let service = ServiceBuilder::connect(
            &config.runtime,
            contracts::FILE_DESCRIPTOR_SET,
            &[&messaging::migrator(), &sqlx::migrate!()],
        )
        .await?;
        let records = Records::new(RecordStore::new(service.pool().clone()));
        let tables = messaging::partitioned_tables(&config.runtime);
        let host = service
            .relay("{{name}}")
            .maintain_partitions(tables)
{{#if consumes}}
            .consume({{QUEUE_ALIAS}}, {{Consumer}})
            .await
{{/if}}
            .serve({{Pascal}}ServiceServer::new({{Pascal}}Api::new(records)), grpc::CALLERS)
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

    /// Serves the API, with the workers beside it, until `shutdown` fires and in-flight calls
    /// and the workers have stopped.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        self.host.run(shutdown).await
    }
}
