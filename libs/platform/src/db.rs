//! Postgres: the connection pool and embedded migrations.
//!
//! Each service owns one database (database-per-service) and embeds its migrations in the binary
//! with `sqlx::migrate!`, so a deployed image can never run against a schema it was not built
//! for. Libraries that own tables (the outbox of `libs/messaging`) ship their own migrator with
//! its own ledger table; [`migrate`] runs them in order. sqlx takes a Postgres advisory lock per
//! ledger, so several replicas starting at once apply each migration exactly once.

use std::time::Duration;

use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// Opens a pool. Connections are established lazily by sqlx, but one is acquired here so that a
/// wrong URL or an unreachable server fails the start-up with a clear message.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // Fail fast instead of queueing forever when the database is down: callers get
        // UNAVAILABLE and `/readyz` turns red.
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies every migrator in order (libraries first, then the service's own).
pub async fn migrate(
    pool: &PgPool,
    migrators: &[&Migrator],
) -> Result<(), sqlx::migrate::MigrateError> {
    for migrator in migrators {
        migrator.run(pool).await?;
    }
    Ok(())
}

/// The readiness probe for a pool: one round trip.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}
