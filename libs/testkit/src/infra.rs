//! Finding (or starting) Postgres, Redis and RabbitMQ for tests.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, PgConnection, PgPool};
use testcontainers_modules::{
    postgres::Postgres,
    rabbitmq::RabbitMq,
    redis::Redis,
    testcontainers::{ContainerAsync, ImageExt as _, runners::AsyncRunner as _},
};
use tokio::sync::OnceCell;

/// Documented local defaults (README "Prerequisites"), used when the variables are unset.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Prefix of every database a test creates; the cleanup only ever touches these.
const TEST_DB_PREFIX: &str = "ferroshop_test_";

const HOW_TO_GET_IT: &str = "start it locally (see README, Prerequisites) and point the variable \
                             at it, or install Docker so testcontainers can start one";

/// A server URL plus the container that serves it, if we had to start one. Containers live in a
/// static for the whole test process; testcontainers' reaper removes them when it exits.
struct Server {
    url: String,
    _container: Option<Box<dyn std::any::Any + Send + Sync>>,
}

static POSTGRES: OnceCell<Server> = OnceCell::const_new();
static REDIS: OnceCell<Server> = OnceCell::const_new();
static RABBITMQ: OnceCell<Server> = OnceCell::const_new();

fn keep<I: testcontainers_modules::testcontainers::Image + 'static>(
    container: ContainerAsync<I>,
) -> Option<Box<dyn std::any::Any + Send + Sync>> {
    Some(Box::new(container))
}

/// URL of a Postgres server where tests may create databases (the maintenance database).
///
/// # Panics
/// When no server is reachable and none can be started: the message says what to do.
pub async fn postgres_admin_url() -> String {
    let server = POSTGRES
        .get_or_try_init(|| async {
            let url = env_or("DATABASE_URL", DEFAULT_DATABASE_URL);
            match probe_postgres(&url).await {
                Ok(()) => {
                    drop_abandoned_databases(&url).await;
                    Ok(Server {
                        url,
                        _container: None,
                    })
                }
                Err(local) => start_postgres()
                    .await
                    .map_err(|docker| missing("PostgreSQL", "DATABASE_URL", &url, &local, &docker)),
            }
        })
        .await;
    match server {
        Ok(server) => server.url.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// URL of a Redis server.
///
/// # Panics
/// When no server is reachable and none can be started.
pub async fn redis_url() -> String {
    let server = REDIS
        .get_or_try_init(|| async {
            let url = env_or("REDIS_URL", DEFAULT_REDIS_URL);
            match probe_tcp(&url).await {
                Ok(()) => Ok(Server {
                    url,
                    _container: None,
                }),
                Err(local) => start_redis()
                    .await
                    .map_err(|docker| missing("Redis", "REDIS_URL", &url, &local, &docker)),
            }
        })
        .await;
    match server {
        Ok(server) => server.url.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// URL of a RabbitMQ broker.
///
/// # Panics
/// When no broker is reachable and none can be started.
pub async fn amqp_url() -> String {
    let server = RABBITMQ
        .get_or_try_init(|| async {
            let url = env_or("AMQP_URL", DEFAULT_AMQP_URL);
            match probe_tcp(&url).await {
                Ok(()) => Ok(Server {
                    url,
                    _container: None,
                }),
                Err(local) => start_rabbitmq()
                    .await
                    .map_err(|docker| missing("RabbitMQ", "AMQP_URL", &url, &local, &docker)),
            }
        })
        .await;
    match server {
        Ok(server) => server.url.clone(),
        Err(message) => panic!("{message}"),
    }
}

fn missing(
    what: &str,
    variable: &str,
    url: &str,
    local: &anyhow::Error,
    docker: &anyhow::Error,
) -> String {
    format!(
        "{what} is required by this test but is not available.\n  \
         {variable}={url}: {local:#}\n  \
         testcontainers: {docker:#}\n\
         To fix: {HOW_TO_GET_IT}."
    )
}

fn env_or(variable: &str, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

async fn probe_postgres(url: &str) -> anyhow::Result<()> {
    let mut conn = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url))
        .await
        .map_err(|_| anyhow!("no answer within 5s"))??;
    conn.execute("SELECT 1").await?;
    conn.close().await?;
    Ok(())
}

/// `scheme://[user[:password]@]host[:port][/path]` → a TCP connect to host:port.
async fn probe_tcp(url: &str) -> anyhow::Result<()> {
    let address = host_port(url).ok_or_else(|| anyhow!("cannot find host:port in the URL"))?;
    tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&address),
    )
    .await
    .map_err(|_| anyhow!("no answer from {address} within 3s"))?
    .with_context(|| format!("cannot connect to {address}"))?;
    Ok(())
}

/// `host:port` of a URL, with the scheme's default port when none is given.
pub fn host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.is_empty() {
        return None;
    }
    if host_port.contains(':') {
        return Some(host_port.to_owned());
    }
    let port = match scheme {
        "redis" => 6379,
        "amqp" => 5672,
        "postgres" | "postgresql" => 5432,
        _ => return None,
    };
    Some(format!("{host_port}:{port}"))
}

async fn start_postgres() -> anyhow::Result<Server> {
    let container = Postgres::default().with_tag("17-alpine").start().await?;
    let port = container.get_host_port_ipv4(5432).await?;
    let host = container.get_host().await?;
    Ok(Server {
        url: format!("postgres://postgres:postgres@{host}:{port}/postgres"),
        _container: keep(container),
    })
}

async fn start_redis() -> anyhow::Result<Server> {
    let container = Redis::default().with_tag("7-alpine").start().await?;
    let port = container.get_host_port_ipv4(6379).await?;
    let host = container.get_host().await?;
    Ok(Server {
        url: format!("redis://{host}:{port}"),
        _container: keep(container),
    })
}

async fn start_rabbitmq() -> anyhow::Result<Server> {
    let container = RabbitMq::default().with_tag("4-management").start().await?;
    let port = container.get_host_port_ipv4(5672).await?;
    let host = container.get_host().await?;
    Ok(Server {
        url: format!("amqp://guest:guest@{host}:{port}/%2f"),
        _container: keep(container),
    })
}

/// A database created for one test, dropped when a later test process finds its creator gone.
pub struct TestDatabase {
    /// Connection URL of the new database.
    pub url: String,
    /// Its name, `ferroshop_test_<pid>_<uuid>`.
    pub name: String,
}

impl TestDatabase {
    /// A pool on the database (the test's own, not shared with other tests).
    pub async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to test database {}: {err}", self.name))
    }
}

/// Creates a new, empty database for one test.
///
/// # Panics
/// When Postgres is unavailable (see [`postgres_admin_url`]) or refuses to create it.
pub async fn fresh_database() -> TestDatabase {
    let admin_url = postgres_admin_url().await;
    let name = format!(
        "{TEST_DB_PREFIX}{}_{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    );
    let mut conn = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {admin_url}: {err}"));
    // The name is ours (prefix, pid, UUID): safe to splice; DDL cannot take bind parameters.
    conn.execute(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .await
        .unwrap_or_else(|err| panic!("cannot create database {name}: {err}"));
    let _ = conn.close().await;
    TestDatabase {
        url: replace_database(&admin_url, &name),
        name,
    }
}

/// Swaps the database name (the URL path) of a Postgres URL.
fn replace_database(url: &str, database: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = without_query.find("://").map_or(0, |i| i + 3);
    let base = match without_query[scheme_end..].find('/') {
        Some(slash) => &without_query[..scheme_end + slash],
        None => without_query,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// Drops test databases whose creating process no longer runs. Best effort: a failure here
/// only leaves disk space used, never a wrong test result.
async fn drop_abandoned_databases(admin_url: &str) {
    let Ok(mut conn) = PgConnection::connect(admin_url).await else {
        return;
    };
    let names: Vec<(String,)> =
        match sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{TEST_DB_PREFIX}%"))
            .fetch_all(&mut conn)
            .await
        {
            Ok(names) => names,
            Err(_) => return,
        };
    for (name,) in names {
        let pid = name
            .strip_prefix(TEST_DB_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        // Only names this module could have made are ever spliced into DDL.
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = conn
                .execute(AssertSqlSafe(format!(
                    r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                )))
                .await;
        }
    }
    let _ = conn.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_found_in_urls() {
        assert_eq!(
            host_port("amqp://guest:guest@127.0.0.1:5672/%2f").as_deref(),
            Some("127.0.0.1:5672")
        );
        assert_eq!(
            host_port("redis://localhost").as_deref(),
            Some("localhost:6379")
        );
        assert_eq!(host_port("nonsense"), None);
    }

    #[test]
    fn the_database_name_is_swapped() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://u:p@db/postgres?sslmode=disable", "t1"),
            "postgres://u:p@db/t1?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://db:5432", "t1"),
            "postgres://db:5432/t1"
        );
    }
}
