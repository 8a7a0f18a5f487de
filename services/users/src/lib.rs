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
//! | [`store`] | all SQL |
//! | [`grpc`] | the `shop.users.v1.UsersService` implementation |
//! | [`events`] | `UserRegistered`, through the outbox |
//! | [`admin`] | operator commands: `users admin grant|revoke|create EMAIL` |

pub mod admin;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod grpc;
pub mod passwords;
pub mod store;
pub mod tokens;

use std::net::SocketAddr;

use contracts::users::UsersServiceServer;
use messaging::{OutboxRelay, RelayConfig};
use platform::{
    ServiceHost, Shutdown,
    admin::Readiness,
    grpc::GrpcServer,
    host::{HostError, Worker},
};
use time::Duration as TimeDuration;

pub use config::Config;

use crate::{
    grpc::UsersApi,
    passwords::Hasher,
    store::UserStore,
    tokens::{SigningKey, TokenIssuer},
};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create a signing key: {0}")]
    Key(#[from] tokens::KeyError),
    #[error("cannot build the gRPC server: {0}")]
    Grpc(String),
    #[error(transparent)]
    Host(#[from] HostError),
}

/// A built, bound, not yet serving users service.
pub struct Application {
    host: ServiceHost,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let pool = platform::db::connect(
            &config.runtime.database_url,
            config.runtime.db_max_connections,
        )
        .await?;
        platform::db::migrate(&pool, &[&messaging::migrator(), &sqlx::migrate!()]).await?;

        let key = match config.jwt_key {
            Some(key) => key,
            None => {
                tracing::warn!(
                    "no USERS_JWT_PRIVATE_KEY set: generated a development signing key; tokens \
                     will not survive a restart and replicas will not share it"
                );
                SigningKey::generate()?
            }
        };
        tracing::info!(kid = key.kid(), "JWT signing key loaded");
        let ttl = TimeDuration::try_from(config.jwt_ttl)
            .map_err(|err| StartError::Grpc(format!("token lifetime: {err}")))?;
        let tokens = TokenIssuer::new(key, config.jwt_issuer, config.jwt_audience, ttl)
            .with_previous_keys(config.jwt_previous_keys);
        let hasher = Hasher::new(config.hash_concurrency, config.hash_queue);
        let api = UsersApi::new(UserStore::new(pool.clone()), tokens, hasher);

        let grpc = GrpcServer::new(contracts::FILE_DESCRIPTOR_SET)
            .map_err(|err| StartError::Grpc(err.to_string()))?
            .add_service(UsersServiceServer::new(api));
        let relay = OutboxRelay::new(
            pool.clone(),
            RelayConfig::new(
                &config.runtime.amqp_url,
                &config.runtime.events_exchange,
                "users",
            ),
        );
        // The broker is deliberately not a readiness dependency: thanks to the outbox the
        // service keeps working while RabbitMQ is away, and the relay catches up later.
        let readiness = Readiness::new().with_postgres(pool);
        let host = ServiceHost::bind(&config.runtime, grpc, readiness)
            .await?
            .with_workers([Worker::new(move |shutdown| relay.run(shutdown))]);
        Ok(Self { host })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
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
