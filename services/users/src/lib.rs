//! The users service: accounts, argon2id passwords and JWT issuing with a public JWKS.
//!
//! [`Application::build`] assembles the service from its [`Config`]; `main` and the integration
//! tests both go through it, so tests exercise exactly what production runs.
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `USERS_*` settings |
//! | [`domain`] | email, password policy, display name, user and role: pure rules |
//! | [`passwords`] | Argon2id hashing on the blocking pool, bounded (shed when full) |
//! | [`tokens`] | Ed25519 signing key, access tokens, JWKS |
//! | [`service`] | what each API call does: registration, sign-in, roles |
//! | [`store`] | all SQL |
//! | [`grpc`] | the `shop.users.v1.UsersService` implementation: decode → service → encode |
//! | [`events`] | `UserRegistered`, through the outbox |
//! | [`admin`] | operator commands: `users admin grant|revoke|create EMAIL` |

pub mod admin;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod passwords;
pub mod service;
pub mod store;
pub mod tokens;

use std::net::SocketAddr;

use contracts::users::UsersServiceServer;
use messaging::WithMessaging as _;
use partitions::WithPartitions as _;
use platform::{ServiceBuilder, ServiceHost, Shutdown, Spawned, StartError, host::HostError};

pub use config::Config;

use crate::{grpc::UsersApi, service::Accounts, store::UserStore};

/// A built, bound, not yet serving users service.
pub struct Application {
    host: ServiceHost,
}

impl Application {
    /// The service: its database, the accounts behind the gRPC API, the outbox relay.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let service = ServiceBuilder::connect(
            &config.runtime,
            contracts::FILE_DESCRIPTOR_SET,
            &[&messaging::migrator(), &sqlx::migrate!()],
        )
        .await?;
        let accounts = Accounts::configured(&config, UserStore::new(service.pool().clone()))?;
        let tables = messaging::partitioned_tables(&config.runtime);
        let host = service
            .relay("users")
            .maintain_partitions(tables)
            .serve(
                UsersServiceServer::new(UsersApi::new(accounts)),
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

    /// Serves until `shutdown` fires and in-flight calls have drained. The outbox relay runs
    /// beside the API.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        self.host.run(shutdown).await
    }
}
