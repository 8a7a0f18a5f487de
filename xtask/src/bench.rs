//! `cargo xtask bench [--smoke] [--report]`: what a checkout and a catalog page cost, measured.
//!
//! The bench starts the whole system from release binaries the way `cargo xtask up --release`
//! does ([`crate::up::Stack`]), but on free ports, with four fresh databases, a broker exchange
//! and queue prefix and Redis key prefixes of its own, so it neither disturbs nor is disturbed
//! by anything else on the machine. It then runs each scenario against the gateway's REST API,
//! the way customers reach it, next to a baseline measured in the same run:
//!
//! | scenario | load | measures | baseline |
//! |---|---|---|---|
//! | B1 checkout | open loop, `--checkout-rate` orders/s, authenticated customers, Zipf SKUs | accepted orders/s, accept p50/p99 (due → 201), saga p99 (due → terminal status, polled), Postgres commits and CPU-ms per checkout | `pgbench`, two inserts per transaction: commits/s |
//! | B2 catalog | the first catalog page (20 products), open loop at `--catalog-rate` for latency and closed loop for throughput, with inventory's Redis cache on and then off | rps, p50/p99 | nginx serving the same bytes from a file |
//! | ramp | B1's checkouts in steps of rising rate until one misses its p99 objectives | accept and saga p99 per step, the saturation rate, CPU and messages per step | the first step |
//! | B3 overload | twice the saturation rate, orders placed and not followed | share accepted and shed (429/503), how fast a refusal comes, accept p99, PENDING backlog when the load stops and its drain time | the saturation step |
//! | B4 limiter | one customer at three times a real per-user limit, B1 in the background | allowed/s against the configured rate | the configuration |
//! | B5 memory | — | `VmRSS`/`VmHWM` of each service process idle, at the end of B1, after B3 | idle |
//!
//! B1 also counts the broker messages per checkout (each outbox relay's published events and
//! each queue's consumed deliveries, from the services' `/metrics`). The report turns B5 and the
//! ramp into the Kubernetes resources and autoscaling targets the manifests carry
//! ([`report`]).
//!
//! Results are ratios within one run: absolute figures on a shared box are noisy, the relation
//! between a scenario and its baseline much less so. `--smoke` runs every step for a second or
//! two with tiny rates and asserts nothing about timing (a test runs it so the harness cannot
//! rot); `--report` writes `docs/benchmarks.md` and its SVG plots.
//!
//! Submodules: [`load`] (the load generator), [`probes`] (commits, CPU, memory, counters),
//! [`meter`] (a window's costs from the probes), [`overload`] (the ramp and B3), [`limiter`]
//! (B4), [`baselines`] (pgbench, nginx), [`report`] (the tables, the Markdown page, the plots,
//! the derived Kubernetes settings).

mod baselines;
mod limiter;
mod load;
mod meter;
mod overload;
mod probes;
mod report;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection as _, PgConnection};
use tokio::time::Instant;

use crate::{
    dev_keys::DevKeys,
    infra, services,
    up::{self, Instance, Launch, Logs, Stack},
};
use load::{Outcome, Zipf};

/// The customers' password (local, throwaway accounts).
const PASSWORD: &str = "bench correct horse battery staple";
/// The test card that the payments service approves.
const APPROVE: &str = "tok_visa_approve";
/// The catalog page B2 reads.
const CATALOG_PAGE: &str = "/api/v1/products?page_size=20";
/// How often B1 polls an accepted order for its terminal status.
const SAGA_POLL: Duration = Duration::from_millis(50);
/// The longest B1 follows one saga (orders' own deadline is 2 minutes).
const SAGA_WAIT: Duration = Duration::from_secs(60);
/// The gateway's rate limit outside B4: many requests from one address and a few accounts
/// would otherwise measure the limiter, not the system.
const UNLIMITED_PER_MINUTE: u32 = 100_000_000;
const UNLIMITED_BURST: u32 = 1_000_000;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A few seconds per scenario at tiny rates, no timing assertions: proves the harness runs.
    #[arg(long)]
    smoke: bool,
    /// Write docs/benchmarks.md and its plots from this run.
    #[arg(long)]
    report: bool,
    /// Run the service binaries in this directory instead of building release binaries.
    #[arg(long, value_name = "DIR")]
    binaries: Option<PathBuf>,
    /// B1's offered load, orders per second.
    #[arg(long, default_value_t = 40.0)]
    checkout_rate: f64,
    /// B2's offered load for the latency run, requests per second.
    #[arg(long, default_value_t = 500.0)]
    catalog_rate: f64,
    /// The ramp's first rate, orders per second.
    #[arg(long, default_value_t = 20.0)]
    ramp_start: f64,
    /// How much each ramp step adds, orders per second.
    #[arg(long, default_value_t = 20.0)]
    ramp_step: f64,
    /// The most steps the ramp takes.
    #[arg(long, default_value_t = 12)]
    ramp_steps: usize,
    /// Seconds per ramp step.
    #[arg(long, default_value_t = 8)]
    ramp_seconds: u64,
    /// A ramp step holds while its accept p99 (due → 201) is at most this, in ms.
    #[arg(long, default_value_t = 100.0)]
    accept_p99_ms: f64,
    /// … and its saga p99 (due → terminal) at most this, in ms.
    #[arg(long, default_value_t = 1000.0)]
    saga_p99_ms: f64,
    /// Seconds of B3's overload (twice the saturation rate).
    #[arg(long, default_value_t = 10)]
    overload_seconds: u64,
    /// B4's configured per-user limit, requests per minute.
    #[arg(long, default_value_t = 1200)]
    limit_per_minute: u32,
    /// B4's configured burst.
    #[arg(long, default_value_t = 20)]
    limit_burst: u32,
}

/// How long each step runs.
#[derive(Clone, Copy)]
pub struct Plan {
    pub customers: usize,
    pub checkout_rate: f64,
    pub warmup: Duration,
    pub checkout: Duration,
    pub catalog_rate: f64,
    pub catalog: Duration,
    pub connections: usize,
    pub pgbench_clients: u32,
    pub pgbench: Duration,
    pub ramp_start: f64,
    pub ramp_step: f64,
    pub ramp_steps: usize,
    pub ramp_duration: Duration,
    pub accept_objective_ms: f64,
    pub saga_objective_ms: f64,
    pub overload: Duration,
    /// How long B3 (and the ramp before it) waits for PENDING orders to finish.
    pub drain_deadline: Duration,
    pub limit_per_minute: u32,
    pub limit_burst: u32,
    /// B4's answers are counted from this long after its start (the burst is spent by then)…
    pub limiter_settle: Duration,
    /// … for this long.
    pub limiter: Duration,
}

impl Plan {
    fn from(args: &BenchArgs) -> Self {
        if args.smoke {
            Self {
                customers: 2,
                checkout_rate: 4.0,
                warmup: Duration::from_secs(1),
                checkout: Duration::from_secs(2),
                catalog_rate: 20.0,
                catalog: Duration::from_secs(1),
                connections: 2,
                pgbench_clients: 2,
                pgbench: Duration::from_secs(1),
                ramp_start: 2.0,
                ramp_step: 2.0,
                ramp_steps: 2,
                ramp_duration: Duration::from_secs(1),
                accept_objective_ms: args.accept_p99_ms,
                saga_objective_ms: args.saga_p99_ms,
                overload: Duration::from_secs(1),
                drain_deadline: Duration::from_secs(30),
                limit_per_minute: 600,
                limit_burst: 2,
                limiter_settle: Duration::from_secs(1),
                limiter: Duration::from_secs(1),
            }
        } else {
            Self {
                customers: 32,
                checkout_rate: args.checkout_rate,
                warmup: Duration::from_secs(5),
                checkout: Duration::from_secs(30),
                catalog_rate: args.catalog_rate,
                catalog: Duration::from_secs(10),
                connections: 32,
                pgbench_clients: 16,
                pgbench: Duration::from_secs(10),
                ramp_start: args.ramp_start,
                ramp_step: args.ramp_step,
                ramp_steps: args.ramp_steps.max(1),
                ramp_duration: Duration::from_secs(args.ramp_seconds.max(1)),
                accept_objective_ms: args.accept_p99_ms,
                saga_objective_ms: args.saga_p99_ms,
                overload: Duration::from_secs(args.overload_seconds.max(1)),
                drain_deadline: Duration::from_secs(150),
                limit_per_minute: args.limit_per_minute.max(1),
                limit_burst: args.limit_burst.max(1),
                limiter_settle: Duration::from_secs(2),
                limiter: Duration::from_secs(10),
            }
        }
    }
}

/// Everything a run measured.
pub struct Results {
    pub plan: Plan,
    pub smoke: bool,
    /// `/proc/loadavg`'s first three fields when the run started: how shared the machine was.
    pub load_average: String,
    pub checkout: Checkout,
    pub pgbench_tps: f64,
    /// cached, uncached, nginx.
    pub catalog: Vec<Catalog>,
    pub ramp: overload::Ramp,
    pub overload: overload::Overload,
    pub limiter: limiter::Limiter,
    /// B5: `(process, VmRSS KiB, VmHWM KiB)` once the system is up and idle, before any load.
    pub memory_idle: Vec<(String, u64, u64)>,
    /// … after B3's overload has drained (before B4 restarts the gateway).
    pub memory_overload: Vec<(String, u64, u64)>,
}

pub struct Checkout {
    pub due: u64,
    pub accepted: u64,
    pub window: Duration,
    pub accept: load::Run,
    pub saga: load::Run,
    pub confirmed: u64,
    pub cancelled: u64,
    /// (service, commits, rollbacks) over the window.
    pub commits: Vec<(String, i64, i64)>,
    /// (process, CPU-ms) over the window.
    pub cpu_ms: Vec<(String, f64)>,
    /// (what, count) over the window: `published by <service>`, `consumed from <queue>`.
    pub messages: Vec<(String, f64)>,
    /// B5 under B1: `(process, VmRSS KiB, VmHWM KiB)` when the window ends.
    pub memory: Vec<(String, u64, u64)>,
}

pub struct Catalog {
    pub name: &'static str,
    pub body_bytes: usize,
    pub fixed: load::Run,
    pub saturated: load::Run,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let plan = Plan::from(&args);
    if cfg!(debug_assertions) && !args.smoke {
        println!(
            "bench: the load client is a debug build and may be the bottleneck; for figures worth \
             keeping run it optimised: cargo run --release -p xtask -- bench"
        );
    }
    infra::ensure_running().await?;
    let services: Vec<&'static services::Service> = services::present().collect();
    let bin_dir = match &args.binaries {
        Some(dir) => dir.clone(),
        None => {
            up::build(true, &services).await?;
            up::target_dir().join("release")
        }
    };
    let run_id = format!("{:x}{:08x}", std::process::id(), rand::random::<u32>());
    // Absolute: nginx reads the paths of its configuration relative to its own prefix.
    let work_dir = std::path::absolute(up::target_dir().join("bench").join(&run_id))?;
    let admin_url = infra::DEPENDENCIES[0].url();
    let databases: HashMap<&'static str, String> = services
        .iter()
        .filter(|service| infra::DATABASES.contains(&service.database().as_str()))
        .map(|service| {
            (
                service.name,
                format!("ferroshop_bench_{run_id}_{}", service.name),
            )
        })
        .collect();
    create_databases(&admin_url, databases.values()).await?;
    println!(
        "bench {run_id}: logs in {}",
        work_dir.join("logs").display()
    );
    let outcome = bench(
        &plan, &args, &run_id, &work_dir, &bin_dir, &services, &databases,
    )
    .await;
    drop_databases(&admin_url, databases.values()).await;
    let results = outcome?;
    let text = report::table(&results);
    println!("\n{text}");
    if args.report {
        let mut command = if cfg!(debug_assertions) {
            "cargo xtask bench --report".to_owned()
        } else {
            "cargo run --release -p xtask -- bench --report".to_owned()
        };
        if args.smoke {
            command.push_str(" --smoke");
        } else {
            command.push_str(&format!(
                " --checkout-rate {} --catalog-rate {}",
                plan.checkout_rate, plan.catalog_rate
            ));
            if plan.ramp_start != 20.0 || plan.ramp_step != 20.0 {
                command.push_str(&format!(
                    " --ramp-start {} --ramp-step {}",
                    plan.ramp_start, plan.ramp_step
                ));
            }
        }
        if args.binaries.is_some() {
            command.push_str(" --binaries target/release");
        }
        report::write(std::path::Path::new("docs"), &results, &command)?;
        println!("wrote docs/benchmarks.md");
    }
    Ok(())
}

async fn create_databases<'a>(
    admin_url: &str,
    names: impl Iterator<Item = &'a String>,
) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("cannot connect to {admin_url}"))?;
    for name in names {
        // Our own names (a fixed prefix, a random run id, a service name): safe in DDL.
        sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut conn)
            .await
            .with_context(|| format!("cannot create database {name}"))?;
    }
    conn.close().await?;
    Ok(())
}

async fn drop_databases<'a>(admin_url: &str, names: impl Iterator<Item = &'a String>) {
    let Ok(mut conn) = PgConnection::connect(admin_url).await else {
        eprintln!("bench: cannot connect to drop the bench databases");
        return;
    };
    for name in names {
        if let Err(err) = sqlx::query(sqlx::AssertSqlSafe(format!(
            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
        )))
        .execute(&mut conn)
        .await
        {
            eprintln!("bench: cannot drop database {name}: {err}");
        }
    }
    let _ = conn.close().await;
}

/// The database URL of `database` on the server of `admin_url`.
fn replace_database(admin_url: &str, database: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{server}/{database}{query}")
}

/// A port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn bench(
    plan: &Plan,
    args: &BenchArgs,
    run_id: &str,
    work_dir: &std::path::Path,
    bin_dir: &std::path::Path,
    services: &[&'static services::Service],
    databases: &HashMap<&'static str, String>,
) -> anyhow::Result<Results> {
    let admin_url = infra::DEPENDENCIES[0].url();
    let redis_url = infra::DEPENDENCIES[1].url();
    let amqp_url = infra::DEPENDENCIES[2].url();
    let mut instances = Vec::new();
    for service in services {
        instances.push(Instance {
            service,
            index: 0,
            api_port: free_port()?,
            admin_port: free_port()?,
        });
    }
    let gateway_port = instances
        .iter()
        .find(|instance| instance.service.name == "gateway")
        .map(|instance| instance.api_port)
        .context("the gateway is not in this checkout")?;
    let mut env: Vec<(String, String)> = Vec::new();
    for service in services {
        let prefix = service.name.to_ascii_uppercase();
        env.extend([
            (format!("{prefix}_AMQP_URL"), amqp_url.clone()),
            (
                format!("{prefix}_EVENTS_EXCHANGE"),
                format!("bench.{run_id}.events"),
            ),
            (format!("{prefix}_QUEUE_PREFIX"), format!("bench.{run_id}.")),
            (format!("{prefix}_QUEUE_EXPIRY"), "60s".to_owned()),
        ]);
    }
    let vars = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect()
    };
    env.extend(vars(&[
        ("INVENTORY_REDIS_URL", redis_url.clone()),
        (
            "INVENTORY_CACHE_PREFIX",
            format!("bench:{run_id}:inventory"),
        ),
        ("GATEWAY_REDIS_URL", redis_url.clone()),
        ("GATEWAY_REDIS_PREFIX", format!("bench:{run_id}:gateway")),
        // B4 is where the limiter gets measured; see UNLIMITED_PER_MINUTE.
        (
            "GATEWAY_RATE_LIMIT_PER_MINUTE",
            UNLIMITED_PER_MINUTE.to_string(),
        ),
        ("GATEWAY_RATE_LIMIT_BURST", UNLIMITED_BURST.to_string()),
    ]));
    let database_urls = databases
        .iter()
        .map(|(service, name)| (*service, replace_database(&admin_url, name)))
        .collect::<HashMap<_, _>>();
    let keys = DevKeys::ensure(&work_dir.join("keys"))?;
    let mut stack = Stack::start(Launch {
        bin_dir: bin_dir.to_owned(),
        instances,
        databases: database_urls.clone(),
        env,
        keys,
        logs: Logs::Files(work_dir.join("logs")),
    })
    .await?;
    let outcome = scenarios(
        plan,
        args,
        &mut stack,
        &format!("http://127.0.0.1:{gateway_port}"),
        bin_dir,
        work_dir,
        databases,
        &database_urls,
        run_id,
    )
    .await;
    stack.stop().await?;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn scenarios(
    plan: &Plan,
    args: &BenchArgs,
    stack: &mut Stack,
    gateway: &str,
    bin_dir: &std::path::Path,
    work_dir: &std::path::Path,
    databases: &HashMap<&'static str, String>,
    database_urls: &HashMap<&'static str, String>,
    run_id: &str,
) -> anyhow::Result<Results> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()?;
    let api = Api {
        client: client.clone(),
        base: gateway.to_owned(),
    };
    let admin_email = "bench-admin@ferroshop.test";
    let admin_password = format!("bench-{:016x}", rand::random::<u64>());
    let users_db = database_urls.get("users").context("no users database")?;
    up::create_admin(
        &bin_dir.join("users"),
        users_db,
        admin_email,
        &admin_password,
    )
    .await?;
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split(' ')
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let admin = api.log_in(admin_email, &admin_password).await?;
    let skus = api.skus().await?;
    anyhow::ensure!(!skus.is_empty(), "the demo catalog is empty");
    for sku in &skus {
        api.add_stock(&admin, sku, 1_000_000).await?;
    }
    let memory_idle = meter::memory(stack);
    let mut customers = api.customers(run_id, plan.customers + 1).await?;
    // The last customer is B4's limited key; the others never come near a limit.
    let limited_key = customers.pop().context("no customers")?;
    let queue_prefix = format!("bench.{run_id}.");
    println!(
        "bench: {} customers, {} SKUs; B1 checkout at {}/s for {:?}",
        customers.len(),
        skus.len(),
        plan.checkout_rate,
        plan.checkout
    );

    let checkout = b1_checkout(
        plan,
        &api,
        stack,
        &customers,
        &skus,
        databases,
        &queue_prefix,
    )
    .await?;
    println!("bench: pgbench baseline");
    let pgbench_tps = baselines::pgbench(
        &infra::DEPENDENCIES[0].url(),
        &format!("ferroshop_bench_{run_id}_pgbench"),
        &work_dir.join("pgbench"),
        plan.pgbench_clients,
        plan.pgbench,
    )
    .await?;
    println!("bench: ramp");
    let names: Vec<String> = databases.values().cloned().collect();
    let ramp = overload::ramp(plan, &api, stack, &customers, &skus, &names, &queue_prefix).await?;
    let saturation = ramp.saturation().map_or(plan.ramp_start, |step| step.rate);
    println!("bench: B3 overload");
    let orders_url = database_urls.get("orders").context("no orders database")?;
    let overload =
        overload::overload(plan, &api, &customers, &skus, orders_url, 2.0 * saturation).await?;
    let memory_overload = meter::memory(stack);
    println!("bench: B4 rate limiter");
    let limiter = limiter::b4_limiter(plan, &api, stack, &limited_key, &customers, &skus).await?;
    println!("bench: B2 catalog reads");
    let catalog = b2_catalog(plan, &api, stack, work_dir).await?;
    Ok(Results {
        plan: *plan,
        smoke: args.smoke,
        load_average,
        checkout,
        pgbench_tps,
        catalog,
        ramp,
        overload,
        limiter,
        memory_idle,
        memory_overload,
    })
}

/// The gateway's REST API, as a customer's client uses it.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn log_in(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let response = self
            .client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        let status = response.status();
        let session: Value = response.json().await?;
        session["access_token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("login {email}: {status} {session}"))
    }

    async fn register(&self, email: &str) -> anyhow::Result<String> {
        let response = self
            .client
            .post(format!("{}/api/v1/auth/register", self.base))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::CREATED,
            "register {email}: {}",
            response.status()
        );
        self.log_in(email, PASSWORD).await
    }

    /// Registers and signs in `count` customers, four at a time (password hashing is slow on
    /// purpose); their tokens.
    async fn customers(&self, run_id: &str, count: usize) -> anyhow::Result<Vec<String>> {
        let mut tokens = Vec::new();
        let emails: Vec<String> = (0..count)
            .map(|i| format!("customer{i}.{run_id}@bench.ferroshop.test"))
            .collect();
        for chunk in emails.chunks(4) {
            let mut signing = tokio::task::JoinSet::new();
            for email in chunk {
                let (api, email) = (self.clone(), email.clone());
                signing.spawn(async move { api.register(&email).await });
            }
            while let Some(signed) = signing.join_next().await {
                tokens.push(signed??);
            }
        }
        Ok(tokens)
    }

    /// Every SKU of the catalog, most prominent first (the order of its pages).
    async fn skus(&self) -> anyhow::Result<Vec<String>> {
        let mut skus = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/api/v1/products?page_size=20", self.base);
            if let Some(token) = &token {
                url.push_str(&format!("&page_token={token}"));
            }
            let page: Value = self
                .client
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            for product in page["products"].as_array().into_iter().flatten() {
                if let Some(sku) = product["sku"].as_str() {
                    skus.push(sku.to_owned());
                }
            }
            match page["next_page_token"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(skus),
            }
        }
    }

    async fn add_stock(&self, admin: &str, sku: &str, delta: i64) -> anyhow::Result<()> {
        self.client
            .post(format!(
                "{}/api/v1/admin/products/{sku}/stock-adjustments",
                self.base
            ))
            .bearer_auth(admin)
            .json(&json!({"delta": delta, "reason": "bench stock"}))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("adding stock to {sku}"))?;
        Ok(())
    }
}

/// What a stream of checkouts records as it goes: the accept latencies (due → 201), the
/// latencies of refusals (due → 429 or 503: how fast excess load is shed) and the terminal
/// statuses of the orders it followed.
#[derive(Clone)]
struct Tallies {
    accept: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
    refused: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
    /// (CONFIRMED, CANCELLED).
    statuses: Arc<Mutex<(u64, u64)>>,
}

impl Tallies {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            accept: Arc::new(Mutex::new(load::histogram()?)),
            refused: Arc::new(Mutex::new(load::histogram()?)),
            statuses: Arc::new(Mutex::new((0, 0))),
        })
    }

    fn accepted(&self) -> u64 {
        self.accept.lock().map(|h| h.len()).unwrap_or(0)
    }

    fn accept_run(&self, run: &load::Run) -> load::Run {
        let latency = self
            .accept
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| run.latency.clone());
        load::Run {
            sent: run.sent,
            ok: latency.len(),
            failures: run.failures.clone(),
            latency,
            elapsed: run.elapsed,
        }
    }

    fn refused(&self) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
        match self.refused.lock() {
            Ok(histogram) => Ok(histogram.clone()),
            Err(_) => load::histogram(),
        }
    }

    fn statuses(&self) -> (u64, u64) {
        self.statuses.lock().map(|s| *s).unwrap_or_default()
    }
}

/// The checkout request of B1, the ramp and B3: request `i` is customer `i` (round robin)
/// ordering one Zipf-drawn SKU, or two on odd `i`; `follow` also polls each accepted order to
/// its terminal status (and the request then succeeds only when it gets there).
fn checkouts(
    api: &Api,
    customers: &[String],
    skus: &[String],
    follow: bool,
    tallies: &Tallies,
) -> impl Fn(u64, Instant) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    let zipf = Arc::new(Zipf::new(skus.len(), 1.0));
    let (api, customers, skus, tallies) = (
        api.clone(),
        Arc::new(customers.to_vec()),
        Arc::new(skus.to_vec()),
        tallies.clone(),
    );
    move |i: u64, due: Instant| {
        let (api, tallies) = (api.clone(), tallies.clone());
        let token = customers[i as usize % customers.len()].clone();
        let first = zipf.sample();
        let mut lines = vec![json!({"sku": skus[first], "quantity": 1})];
        let second = zipf.sample();
        if i % 2 == 1 && second != first {
            lines.push(json!({"sku": skus[second], "quantity": 1}));
        }
        Box::pin(async move { checkout_once(&api, &token, lines, due, follow, &tallies).await })
    }
}

/// B1: checkouts at a constant rate; each accepted order followed to its terminal status.
async fn b1_checkout(
    plan: &Plan,
    api: &Api,
    stack: &Stack,
    customers: &[String],
    skus: &[String],
    databases: &HashMap<&'static str, String>,
    queue_prefix: &str,
) -> anyhow::Result<Checkout> {
    let admin_url = infra::DEPENDENCIES[0].url();
    let names: Vec<String> = databases.values().cloned().collect();
    // Warm-up: connections, pools, caches, JIT-free but not cold.
    let warm = Tallies::new()?;
    let _ = load::open_loop(
        plan.checkout_rate,
        plan.warmup,
        checkouts(api, customers, skus, true, &warm),
    )
    .await?;

    let tallies = Tallies::new()?;
    let meter = meter::Meter::start(stack, &admin_url, &names, queue_prefix).await?;
    // The window ends when the last request is due: commits, CPU, messages and memory are read
    // then, and its sagas finish after it, as the warm-up's did inside it.
    let window = plan.checkout;
    let window_end = tokio::spawn(async move {
        tokio::time::sleep(window).await;
        meter.finish().await
    });
    let saga = load::open_loop(
        plan.checkout_rate,
        window,
        checkouts(api, customers, skus, true, &tallies),
    )
    .await?;
    let costs = window_end.await??;

    let mut accept = tallies.accept_run(&saga);
    accept.elapsed = window;
    let (confirmed, cancelled) = tallies.statuses();
    let mut commits: Vec<(String, i64, i64)> = databases
        .iter()
        .map(|(service, name)| {
            let (c, r) = costs.commits.get(name).copied().unwrap_or_default();
            ((*service).to_owned(), c, r)
        })
        .collect();
    commits.sort();
    Ok(Checkout {
        due: saga.sent,
        accepted: accept.ok,
        window,
        accept,
        saga,
        confirmed,
        cancelled,
        commits,
        cpu_ms: costs.cpu_ms,
        messages: costs.messages,
        memory: costs.memory,
    })
}

/// One checkout: POST /orders (201 is "accepted", timed from `due`; a 429 or 503 refusal is
/// timed too), then, when `follow`, GET the order until its status is terminal (timed from
/// `due` too).
async fn checkout_once(
    api: &Api,
    token: &str,
    lines: Vec<Value>,
    due: Instant,
    follow: bool,
    tallies: &Tallies,
) -> Outcome {
    let key = format!("bench-{:032x}", rand::random::<u128>());
    let placed = api
        .client
        .post(format!("{}/api/v1/orders", api.base))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"lines": lines, "payment_method": APPROVE}))
        .send()
        .await;
    let response = match placed {
        Ok(response) => response,
        Err(err) => return Outcome::Failed(transport(&err)),
    };
    let status = response.status();
    if status != StatusCode::CREATED {
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            load::record(&tallies.refused, due.elapsed());
        }
        return Outcome::Failed(format!("place {status}"));
    }
    load::record(&tallies.accept, due.elapsed());
    if !follow {
        return Outcome::Ok;
    }
    let Ok(order) = response.json::<Value>().await else {
        return Outcome::Failed("place: unreadable body".to_owned());
    };
    let Some(id) = order["id"].as_str().map(str::to_owned) else {
        return Outcome::Failed("place: no id".to_owned());
    };
    let url = format!("{}/api/v1/orders/{id}", api.base);
    let deadline = Instant::now() + SAGA_WAIT;
    loop {
        tokio::time::sleep(SAGA_POLL).await;
        if let Ok(response) = api.client.get(&url).bearer_auth(token).send().await
            && let Ok(order) = response.json::<Value>().await
        {
            match order["status"].as_str() {
                Some("PENDING") | None => {}
                Some(status) => {
                    if let Ok(mut counts) = tallies.statuses.lock() {
                        if status == "CONFIRMED" {
                            counts.0 += 1;
                        } else {
                            counts.1 += 1;
                        }
                    }
                    return Outcome::Ok;
                }
            }
        }
        if Instant::now() > deadline {
            return Outcome::Failed("saga not terminal within 60s".to_owned());
        }
    }
}

fn transport(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".to_owned()
    } else if err.is_connect() {
        "connect error".to_owned()
    } else {
        "transport error".to_owned()
    }
}

/// One GET of `url` that must answer 200 with `bytes` bytes.
async fn read_page(client: &reqwest::Client, url: &str, bytes: usize) -> Outcome {
    match client.get(url).send().await {
        Ok(response) if response.status() == StatusCode::OK => match response.bytes().await {
            Ok(body) if body.len() == bytes => Outcome::Ok,
            Ok(body) => Outcome::Failed(format!("{} bytes", body.len())),
            Err(err) => Outcome::Failed(transport(&err)),
        },
        Ok(response) => Outcome::Failed(response.status().to_string()),
        Err(err) => Outcome::Failed(transport(&err)),
    }
}

/// The open-loop latency run and the closed-loop throughput run of one target.
async fn catalog_runs(
    plan: &Plan,
    client: &reqwest::Client,
    name: &'static str,
    url: &str,
    bytes: usize,
) -> anyhow::Result<Catalog> {
    let get = |client: reqwest::Client, url: String| {
        move || {
            let (client, url) = (client.clone(), url.clone());
            async move { read_page(&client, &url, bytes).await }
        }
    };
    // Warm: a few requests so connections and caches exist.
    for _ in 0..20 {
        let _ = read_page(client, url, bytes).await;
    }
    let one = get(client.clone(), url.to_owned());
    let fixed = load::open_loop(plan.catalog_rate, plan.catalog, move |_, _| one()).await?;
    let one = get(client.clone(), url.to_owned());
    let saturated = load::closed_loop(plan.connections, plan.catalog, move |_| one()).await?;
    println!(
        "bench: B2 {name}: {:.0} rps saturated, p99 {:.1} ms at {}/s",
        saturated.ok_per_second(),
        fixed.percentile_ms(99.0),
        plan.catalog_rate
    );
    Ok(Catalog {
        name,
        body_bytes: bytes,
        fixed,
        saturated,
    })
}

/// B2: the first catalog page with the cache, from nginx, and without the cache.
async fn b2_catalog(
    plan: &Plan,
    api: &Api,
    stack: &mut Stack,
    work_dir: &std::path::Path,
) -> anyhow::Result<Vec<Catalog>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{}{CATALOG_PAGE}", api.base);
    let body = client
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let bytes = body.len();
    let cached = catalog_runs(plan, &client, "gateway, Redis cache on", &url, body.len()).await?;

    let nginx = baselines::Nginx::start(&work_dir.join("nginx"), free_port()?, &body).await?;
    let nginx_url = nginx.url.clone();
    let served = poll_until("nginx to serve the page", Duration::from_secs(10), || {
        let (client, nginx_url) = (client.clone(), nginx_url.clone());
        async move { matches!(read_page(&client, &nginx_url, bytes).await, Outcome::Ok) }
    })
    .await;
    let baseline = match served {
        Ok(()) => {
            catalog_runs(
                plan,
                &client,
                "nginx, same bytes from a file",
                &nginx_url,
                body.len(),
            )
            .await
        }
        Err(err) => Err(err),
    };
    nginx.stop().await;
    let baseline = baseline?;

    // Inventory with its cache pointed at a port nothing listens on: every read goes to
    // Postgres (the cache client gives up at once on a refused connection).
    let closed_port = free_port()?;
    stack
        .restart(
            "inventory",
            &[(
                "INVENTORY_REDIS_URL".to_owned(),
                format!("redis://127.0.0.1:{closed_port}"),
            )],
        )
        .await?;
    poll_until(
        "the catalog through the gateway again",
        Duration::from_secs(30),
        || {
            let (client, url) = (client.clone(), url.clone());
            async move { matches!(read_page(&client, &url, bytes).await, Outcome::Ok) }
        },
    )
    .await?;
    let uncached =
        catalog_runs(plan, &client, "gateway, Redis cache off", &url, body.len()).await?;
    Ok(vec![cached, uncached, baseline])
}

/// Polls `check` every 50 ms until it is true, or fails after `deadline`.
async fn poll_until<F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        if started.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
