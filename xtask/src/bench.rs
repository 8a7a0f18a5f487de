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
//!
//! Results are ratios within one run: absolute figures on a shared box are noisy, the relation
//! between a scenario and its baseline much less so. `--smoke` runs every step for a second or
//! two with tiny rates and asserts nothing about timing (a test runs it so the harness cannot
//! rot); `--report` writes `docs/benchmarks.md` and its SVG plots.
//!
//! Submodules: [`load`] (the load generator), [`probes`] (commits and CPU), [`baselines`]
//! (pgbench, nginx), [`report`] (the table, the Markdown page, the plots).

mod baselines;
mod load;
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
            }
        }
    }
}

/// Everything a run measured.
pub struct Results {
    pub plan: Plan,
    pub smoke: bool,
    pub checkout: Checkout,
    pub pgbench_tps: f64,
    /// cached, uncached, nginx.
    pub catalog: Vec<Catalog>,
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
        // The bench is many requests from one address and a few accounts: the limiter would
        // measure itself, not the system (B4 is where the limiter gets measured).
        ("GATEWAY_RATE_LIMIT_PER_MINUTE", "100000000".to_owned()),
        ("GATEWAY_RATE_LIMIT_BURST", "1000000".to_owned()),
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
    let admin = api.log_in(admin_email, &admin_password).await?;
    let skus = api.skus().await?;
    anyhow::ensure!(!skus.is_empty(), "the demo catalog is empty");
    for sku in &skus {
        api.add_stock(&admin, sku, 1_000_000).await?;
    }
    let customers = api.customers(run_id, plan.customers).await?;
    println!(
        "bench: {} customers, {} SKUs; B1 checkout at {}/s for {:?}",
        customers.len(),
        skus.len(),
        plan.checkout_rate,
        plan.checkout
    );

    let checkout = b1_checkout(plan, &api, stack, &customers, &skus, databases).await?;
    println!("bench: pgbench baseline");
    let pgbench_tps = baselines::pgbench(
        &infra::DEPENDENCIES[0].url(),
        &format!("ferroshop_bench_{run_id}_pgbench"),
        &work_dir.join("pgbench"),
        plan.pgbench_clients,
        plan.pgbench,
    )
    .await?;
    println!("bench: B2 catalog reads");
    let catalog = b2_catalog(plan, &api, stack, work_dir).await?;
    Ok(Results {
        plan: *plan,
        smoke: args.smoke,
        checkout,
        pgbench_tps,
        catalog,
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

/// B1: checkouts at a constant rate; each accepted order followed to its terminal status.
async fn b1_checkout(
    plan: &Plan,
    api: &Api,
    stack: &Stack,
    customers: &[String],
    skus: &[String],
    databases: &HashMap<&'static str, String>,
) -> anyhow::Result<Checkout> {
    let admin_url = infra::DEPENDENCIES[0].url();
    let names: Vec<String> = databases.values().cloned().collect();
    let zipf = Arc::new(Zipf::new(skus.len(), 1.0));
    let accept = Arc::new(Mutex::new(load::histogram()?));
    let statuses = Arc::new(Mutex::new((0_u64, 0_u64)));
    let order = {
        let (api, customers, skus) = (api.clone(), customers.to_vec(), skus.to_vec());
        let (zipf, accept, statuses) = (zipf.clone(), accept.clone(), statuses.clone());
        move |i: u64, due: Instant| {
            let (api, zipf, accept, statuses) =
                (api.clone(), zipf.clone(), accept.clone(), statuses.clone());
            let token = customers[i as usize % customers.len()].clone();
            let first = zipf.sample();
            let mut lines = vec![json!({"sku": skus[first], "quantity": 1})];
            let second = zipf.sample();
            if i % 2 == 1 && second != first {
                lines.push(json!({"sku": skus[second], "quantity": 1}));
            }
            async move { checkout_once(&api, &token, lines, due, &accept, &statuses).await }
        }
    };
    // Warm-up: connections, pools, caches, JIT-free but not cold.
    let _ = load::open_loop(plan.checkout_rate, plan.warmup, order.clone()).await?;
    if let Ok(mut histogram) = accept.lock() {
        histogram.reset();
    }
    if let Ok(mut statuses) = statuses.lock() {
        *statuses = (0, 0);
    }

    let ticks = probes::clock_ticks();
    let mut pids: Vec<(String, Vec<u32>)> = stack
        .pids()
        .into_iter()
        .map(|(label, pid)| (label, vec![pid]))
        .collect();
    let backends_before = probes::postgres_backends(&admin_url, &names).await?;
    let commits_before = probes::Commits::read(&admin_url, &names).await?;
    pids.push(("postgres (backends)".to_owned(), backends_before));
    let cpu_before = probes::Cpu::read(pids.iter().flat_map(|(_, p)| p.iter().copied()));

    // The window ends when the last request is due: commits and CPU are read then, and its
    // sagas finish after it, as the warm-up's did inside it.
    let window = plan.checkout;
    let window_end = {
        let (admin_url, names, mut pids) = (admin_url.clone(), names.clone(), pids.clone());
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            let commits = probes::Commits::read(&admin_url, &names).await?;
            let backends = probes::postgres_backends(&admin_url, &names).await?;
            if let Some((_, known)) = pids.last_mut() {
                for pid in backends {
                    if !known.contains(&pid) {
                        known.push(pid);
                    }
                }
            }
            let cpu = probes::Cpu::read(pids.iter().flat_map(|(_, p)| p.iter().copied()));
            anyhow::Ok((commits, cpu, pids))
        })
    };
    let saga = load::open_loop(plan.checkout_rate, window, order).await?;
    let (commits_after, cpu_after, pids) = window_end.await??;

    let accept_run = load::Run {
        sent: saga.sent,
        ok: accept.lock().map(|h| h.len()).unwrap_or(0),
        failures: saga.failures.clone(),
        latency: accept
            .lock()
            .map(|h| h.clone())
            .unwrap_or(saga.latency.clone()),
        elapsed: window,
    };
    let (confirmed, cancelled) = statuses.lock().map(|s| *s).unwrap_or_default();
    let by_database = commits_after.since(&commits_before);
    let mut commits: Vec<(String, i64, i64)> = databases
        .iter()
        .map(|(service, name)| {
            let (c, r) = by_database.get(name).copied().unwrap_or_default();
            ((*service).to_owned(), c, r)
        })
        .collect();
    commits.sort();
    let cpu_ms = pids
        .iter()
        .map(|(label, pids)| (label.clone(), cpu_after.ms_since(&cpu_before, pids, ticks)))
        .collect();
    Ok(Checkout {
        due: saga.sent,
        accepted: accept_run.ok,
        window,
        accept: accept_run,
        saga,
        confirmed,
        cancelled,
        commits,
        cpu_ms,
    })
}

/// One checkout: POST /orders (201 is "accepted", timed from `due`), then GET the order until
/// its status is terminal (timed from `due` too).
async fn checkout_once(
    api: &Api,
    token: &str,
    lines: Vec<Value>,
    due: Instant,
    accept: &Mutex<hdrhistogram::Histogram<u64>>,
    statuses: &Mutex<(u64, u64)>,
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
    if response.status() != StatusCode::CREATED {
        return Outcome::Failed(format!("place {}", response.status()));
    }
    load::record(accept, due.elapsed());
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
                    if let Ok(mut counts) = statuses.lock() {
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
