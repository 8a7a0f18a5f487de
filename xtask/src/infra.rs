//! Local infrastructure: Postgres, Redis and RabbitMQ, found or started.
//!
//! A dependency that does not answer at its URL is started, in this order of preference:
//! with Docker Compose (`infra/compose.yaml`) when a Docker engine runs; else, when the URL is
//! the local default, with the command of its Debian package (`pg_ctlcluster`, `redis-server`,
//! `rabbitmq-server`), as on a machine where they are installed from packages but stopped; else
//! the command fails naming what is missing and how to get it.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::{Connection as _, PgConnection};

/// A dependency every service stack needs.
pub struct Dependency {
    pub name: &'static str,
    /// The variable that overrides where it is.
    pub variable: &'static str,
    pub default_url: &'static str,
    /// The compose service that provides it.
    pub compose_service: &'static str,
    /// How to get it without Docker, for the error message.
    pub install_hint: &'static str,
    /// The Debian package's server binary, and how to start it in the background.
    pub package_binary: &'static str,
    pub package_start: PackageStart,
}

/// How a packaged server is started.
#[derive(Clone, Copy, Debug)]
pub enum PackageStart {
    /// `pg_ctlcluster --skip-systemctl-redirect <version> main start` for the installed version.
    PostgresCluster,
    /// A fixed command line.
    Command(&'static [&'static str]),
}

pub const DEPENDENCIES: &[Dependency] = &[
    Dependency {
        name: "PostgreSQL",
        variable: "DATABASE_URL",
        default_url: "postgres://postgres@127.0.0.1:5432/postgres",
        compose_service: "postgres",
        install_hint: "apt-get install postgresql (trust auth for 127.0.0.1), or set DATABASE_URL",
        package_binary: "pg_ctlcluster",
        package_start: PackageStart::PostgresCluster,
    },
    Dependency {
        name: "Redis",
        variable: "REDIS_URL",
        default_url: "redis://127.0.0.1:6379",
        compose_service: "redis",
        install_hint: "apt-get install redis-server, or set REDIS_URL",
        package_binary: "redis-server",
        package_start: PackageStart::Command(&[
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ]),
    },
    Dependency {
        name: "RabbitMQ",
        variable: "AMQP_URL",
        default_url: "amqp://guest:guest@127.0.0.1:5672/%2f",
        compose_service: "rabbitmq",
        install_hint: "apt-get install rabbitmq-server, or set AMQP_URL",
        package_binary: "rabbitmq-server",
        package_start: PackageStart::Command(&["rabbitmq-server", "-detached"]),
    },
];

/// The databases of the services (database-per-service).
pub const DATABASES: &[&str] = &["users", "inventory", "orders", "payments"];

impl Dependency {
    pub fn url(&self) -> String {
        std::env::var(self.variable)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| self.default_url.to_owned())
    }

    pub async fn is_reachable(&self) -> bool {
        let Some(address) = host_port(&self.url()) else {
            return false;
        };
        matches!(
            tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect(address)
            )
            .await,
            Ok(Ok(_))
        )
    }
}

fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    host_port.contains(':').then(|| host_port.to_owned())
}

/// Before the tests: every dependency answers, or Docker runs (then testkit starts what is
/// missing through testcontainers), or what is missing is started from its Debian package;
/// otherwise fails with a precise message.
pub async fn require_reachable() -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for dependency in DEPENDENCIES {
        if !dependency.is_reachable().await {
            missing.push(dependency);
        }
    }
    if missing.is_empty() || docker_available().await {
        return Ok(());
    }
    start_from_packages(missing).await
}

impl Dependency {
    /// Whether its URL is the local default, i.e. the packaged server on this machine.
    fn is_local_default(&self) -> bool {
        self.url() == self.default_url
    }

    fn package_installed(&self) -> bool {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths)
                .chain(["/usr/sbin".into(), "/usr/bin".into()])
                .any(|dir| dir.join(self.package_binary).is_file())
        })
    }

    /// Starts the packaged server in the background.
    async fn start_package(&self) -> anyhow::Result<()> {
        let args: Vec<String> = match self.package_start {
            PackageStart::PostgresCluster => {
                let version = std::fs::read_dir("/etc/postgresql")
                    .context("no /etc/postgresql: is PostgreSQL installed from packages?")?
                    .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                    .max()
                    .context("no PostgreSQL cluster under /etc/postgresql")?;
                [
                    "pg_ctlcluster",
                    "--skip-systemctl-redirect",
                    &version,
                    "main",
                    "start",
                ]
                .map(str::to_owned)
                .to_vec()
            }
            PackageStart::Command(args) => args.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        let status = tokio::process::Command::new(&args[0])
            .args(&args[1..])
            .stdin(std::process::Stdio::null())
            .status()
            .await
            .with_context(|| format!("cannot run {}", args[0]))?;
        anyhow::ensure!(status.success(), "{} exited with {status}", args.join(" "));
        Ok(())
    }
}

/// Starts each missing dependency from its Debian package, when it is installed and expected
/// at its local default; fails naming the rest.
async fn start_from_packages(missing: Vec<&'static Dependency>) -> anyhow::Result<()> {
    let (startable, unstartable): (Vec<_>, Vec<_>) = missing
        .into_iter()
        .partition(|dependency| dependency.is_local_default() && dependency.package_installed());
    if !unstartable.is_empty() {
        bail!("{}", describe_missing(&unstartable));
    }
    for dependency in &startable {
        println!("starting {} from its package", dependency.name);
        dependency
            .start_package()
            .await
            .with_context(|| format!("cannot start {}", dependency.name))?;
    }
    let started = Instant::now();
    for dependency in startable {
        while !dependency.is_reachable().await {
            if started.elapsed() > Duration::from_secs(90) {
                bail!("{} did not come up within 90s", dependency.name);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

fn describe_missing(missing: &[&Dependency]) -> String {
    let mut message =
        String::from("required infrastructure is not reachable and Docker is not available:\n");
    for dependency in missing {
        message.push_str(&format!(
            "  - {} at {} ({}); to get it: {}\n",
            dependency.name,
            dependency.url(),
            dependency.variable,
            dependency.install_hint
        ));
    }
    message.push_str("  or install Docker and run `docker compose -f infra/compose.yaml up -d`.");
    message
}

pub async fn docker_available() -> bool {
    tokio::process::Command::new("docker")
        .arg("info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// Makes sure every dependency answers, starting the missing ones with Docker Compose.
pub async fn ensure_running() -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for dependency in DEPENDENCIES {
        if !dependency.is_reachable().await {
            missing.push(dependency);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !docker_available().await {
        return start_from_packages(missing).await;
    }
    let services: Vec<&str> = missing.iter().map(|d| d.compose_service).collect();
    println!("starting {} with Docker Compose", services.join(", "));
    let status = tokio::process::Command::new("docker")
        .args(["compose", "-f", "infra/compose.yaml", "up", "-d", "--wait"])
        .args(&services)
        .status()
        .await
        .context("cannot run docker compose")?;
    anyhow::ensure!(status.success(), "docker compose failed ({status})");
    let started = Instant::now();
    for dependency in missing {
        while !dependency.is_reachable().await {
            if started.elapsed() > Duration::from_secs(90) {
                bail!("{} did not come up within 90s", dependency.name);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// Creates each service database that does not exist yet.
pub async fn create_databases() -> anyhow::Result<()> {
    let url = DEPENDENCIES[0].url();
    let mut conn = PgConnection::connect(&url)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    for database in DATABASES {
        let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(database)
            .fetch_optional(&mut conn)
            .await?;
        if exists.is_none() {
            // Names come from the constant list above, never from input.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                r#"CREATE DATABASE "{database}""#
            )))
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot create database {database}"))?;
            println!("created database {database}");
        }
    }
    conn.close().await?;
    Ok(())
}

/// The URL of one service database on the configured server.
pub fn database_url(database: &str) -> String {
    let admin = DEPENDENCIES[0].url();
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base.to_owned(), format!("?{query}")),
        None => (admin.clone(), String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base.as_str(),
    };
    format!("{server}/{database}{query}")
}
