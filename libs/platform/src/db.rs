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
///
/// TLS is the URL's business, as for libpq: `?sslmode=verify-full&sslrootcert=<CA file>` makes
/// every connection TLS, checks the server's certificate against that CA and its name against
/// the URL's host (Kubernetes: the CloudNativePG cluster's CA, `<cluster>-ca`, mounted from its
/// Secret). A CA file that cannot be read is reported with its path before anything is dialled
/// (sqlx alone says only "No such file or directory").
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    if let Some(path) = root_cert(url) {
        std::fs::metadata(&path).map_err(|err| {
            sqlx::Error::Configuration(
                format!("sslrootcert {path}: {err} (the CA that signs the database's certificate)")
                    .into(),
            )
        })?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        // Fail fast instead of queueing forever when the database is down: callers get
        // UNAVAILABLE and `/readyz` turns red.
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// The CA file a connection URL names (`sslrootcert`, or sqlx's spellings `ssl-root-cert` and
/// `ssl-ca`), percent-decoded.
fn root_cert(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        matches!(key, "sslrootcert" | "ssl-root-cert" | "ssl-ca").then(|| percent_decoded(value))
    })
}

fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
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

#[cfg(test)]
mod tests {
    use super::root_cert;

    #[test]
    fn the_ca_file_is_read_from_any_spelling_of_the_option() {
        let base = "postgres://app:pw@db-rw.ferroshop:5432/app";
        assert_eq!(root_cert(base), None);
        assert_eq!(root_cert(&format!("{base}?sslmode=verify-full")), None);
        for key in ["sslrootcert", "ssl-root-cert", "ssl-ca"] {
            assert_eq!(
                root_cert(&format!("{base}?sslmode=verify-full&{key}=/ca/ca.crt")).as_deref(),
                Some("/ca/ca.crt")
            );
        }
        assert_eq!(
            root_cert(&format!("{base}?sslrootcert=%2Fmy%20ca%2Fca.crt")).as_deref(),
            Some("/my ca/ca.crt")
        );
    }
}
