//! The service runtime every Ferroshop service stands on.
//!
//! A service's `main` is meant to read like a table of contents:
//!
//! ```text
//! platform::entrypoint::run("users", |shutdown| async move {   // telemetry, SIGTERM, exit code
//!     let config = Config::from_env()?;                         // platform::config
//!     let app = Application::build(config).await?;              // db::connect + migrate, GrpcServer,
//!     app.run(shutdown).await?;                                 //   ServiceHost: API + admin HTTP
//!     Ok(())
//! })
//! ```
//!
//! Each module does one job and is small enough to read in one sitting:
//!
//! | module | job |
//! |---|---|
//! | [`config`] | typed configuration from environment variables, errors that name the variable |
//! | [`telemetry`] | `tracing` logs (JSON or pretty, trace id on every line), OpenTelemetry traces |
//! | [`metrics`] | the Prometheus recorder behind the `metrics` facade |
//! | [`trace_context`] | W3C trace context in and out of HTTP headers / gRPC metadata |
//! | [`admin`] | the admin HTTP port: `/healthz`, `/readyz`, `/metrics` |
//! | [`grpc`] | gRPC server with health, reflection, tracing and RED metrics; client plumbing |
//! | [`host`] | binds both ports and serves them until shutdown: a gRPC API or an axum router, the admin port, workers, drain |
//! | [`service`] | a service assembled from the shared pieces: database, workers, API; one start-up error; in-process spawning for tests |
//! | [`db`] | Postgres pool and embedded migrations |
//! | [`fencing`] | fencing tokens: participants refuse calls from a superseded saga runner |
//! | [`entrypoint`] | the `main` every binary shares: telemetry, signals, exit code |
//! | [`shutdown`] | graceful shutdown as a small type |
//! | [`error`] | the one place where service errors become `tonic::Status` |
//! | [`tls`] | service identity: mutual TLS with SPIFFE identities, credentials reloaded from disk |

pub mod admin;
pub mod config;
pub mod db;
pub mod entrypoint;
pub mod error;
pub mod fencing;
pub mod grpc;
pub mod host;
pub mod metrics;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
pub mod trace_context;

pub use error::ServiceError;
pub use host::ServiceHost;
pub use service::{ServiceBuilder, Spawned, StartError};
pub use shutdown::Shutdown;
