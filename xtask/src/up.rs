//! `cargo xtask up`: everything running locally, one terminal, Ctrl-C to stop.
//!
//! The pieces are public so that other commands start the same system the same way:
//! [`build`] compiles the services, [`Stack::start`] runs a [`Launch`] (which binaries, which
//! ports, which databases, which extra settings, where the logs go) and waits until every
//! process answers `/readyz`, [`create_admin`] makes an administrator the way an operator does,
//! and [`Stack::stop`] ends it all gracefully. `up` uses the fixed local ports of
//! [`services::SERVICES`] and prefixed coloured logs; `bench` uses free ports, fresh databases
//! and log files.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

use crate::{dev_keys::DevKeys, infra, services};

const RESET: &str = "\x1b[0m";

/// The local administrator `up` creates (`users admin create`), and its password: local only.
const ADMIN_EMAIL: &str = "admin@ferroshop.test";
const ADMIN_PASSWORD: &str = "ferroshop-local-dev";

/// How long every process together may take to become ready.
const READY: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
pub struct UpArgs {
    /// Build and run optimised binaries.
    #[arg(long)]
    release: bool,
    /// Run several instances of a service behind the gateway's client-side load balancer,
    /// e.g. `--replicas inventory=2` (repeatable).
    #[arg(long, value_name = "SERVICE=N", value_parser = parse_replicas)]
    replicas: Vec<(String, u16)>,
}

fn parse_replicas(raw: &str) -> Result<(String, u16), String> {
    let (name, count) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected SERVICE=N, got {raw:?}"))?;
    let count: u16 = count
        .parse()
        .map_err(|_| format!("{count:?} is not a number of replicas"))?;
    if !(1..=9).contains(&count) {
        return Err("between 1 and 9 replicas".to_owned());
    }
    if !services::SERVICES.iter().any(|s| s.name == name) || name == "gateway" {
        return Err(format!("{name:?} is not a service that can be replicated"));
    }
    Ok((name.to_owned(), count))
}

/// One process to start: a service, its instance number and its two ports.
#[derive(Clone, Copy)]
pub struct Instance {
    pub service: &'static services::Service,
    pub index: u16,
    /// gRPC (services) or HTTP (gateway).
    pub api_port: u16,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub admin_port: u16,
}

impl Instance {
    /// Instance `index` on the service's fixed local ports (`up`).
    pub fn local(service: &'static services::Service, index: u16) -> Self {
        let (api_port, admin_port) = service.ports(index);
        Self {
            service,
            index,
            api_port,
            admin_port,
        }
    }

    /// `orders`, or `orders#2` for the second replica.
    pub fn label(&self) -> String {
        if self.index == 0 {
            self.service.name.to_owned()
        } else {
            format!("{}#{}", self.service.name, self.index + 1)
        }
    }
}

/// Where the processes' output goes.
pub enum Logs {
    /// Echoed to this terminal, each line prefixed with the coloured process label.
    Prefixed,
    /// Appended to `<dir>/<label>.log`.
    Files(PathBuf),
}

/// Everything [`Stack::start`] needs to know.
pub struct Launch {
    /// The directory of the service binaries (`target/release`).
    pub bin_dir: PathBuf,
    pub instances: Vec<Instance>,
    /// The database URL of each service, by service name.
    pub databases: HashMap<&'static str, String>,
    /// Settings given to every process after its own (each service reads only its prefix).
    pub env: Vec<(String, String)>,
    pub keys: DevKeys,
    pub logs: Logs,
}

struct Running {
    label: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    admin_address: String,
    child: Child,
}

/// A running system: every process of a [`Launch`], ready.
pub struct Stack {
    running: Vec<Running>,
    logs: Logs,
}

/// `cargo build [--release] -p <service>…`.
pub async fn build(release: bool, services: &[&services::Service]) -> anyhow::Result<()> {
    let mut build = Command::new(crate::cargo());
    build.arg("build");
    if release {
        build.arg("--release");
    }
    for service in services {
        build.args(["--package", service.name]);
    }
    let status = build.status().await.context("cannot run cargo build")?;
    anyhow::ensure!(status.success(), "build failed ({status})");
    Ok(())
}

/// The cargo target directory (`CARGO_TARGET_DIR`, else `target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    infra::ensure_running().await?;
    infra::create_databases().await?;

    let services: Vec<_> = services::present().collect();
    build(args.release, &services).await?;

    let profile = if args.release { "release" } else { "debug" };
    let target_dir = target_dir();
    let keys = DevKeys::ensure(&target_dir)?;
    let replicas = |name: &str| {
        args.replicas
            .iter()
            .find(|(service, _)| service == name)
            .map_or(1, |(_, count)| *count)
    };
    let instances: Vec<Instance> = services
        .iter()
        .flat_map(|service| {
            (0..replicas(service.name)).map(move |index| Instance::local(service, index))
        })
        .collect();
    let databases = services
        .iter()
        .map(|service| (service.name, infra::database_url(&service.database())))
        .collect();
    let telemetry = telemetry_destination(
        std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok(),
        collector_listening().await,
    );
    let mut stack = Stack::start(Launch {
        bin_dir: target_dir.join(profile),
        instances: instances.clone(),
        databases,
        env: telemetry.env(),
        keys,
        logs: Logs::Prefixed,
    })
    .await?;
    let admin = create_admin(
        &target_dir.join(profile).join("users"),
        &infra::database_url("users"),
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    )
    .await;
    println!();
    println!("Ferroshop is up. Ctrl-C stops everything.");
    for instance in &instances {
        let api = if instance.service.api_setting == "HTTP_ADDR" {
            "HTTP"
        } else {
            "gRPC"
        };
        println!(
            "  {:<12} {api} http://127.0.0.1:{}   admin http://127.0.0.1:{}/readyz",
            instance.label(),
            instance.api_port,
            instance.admin_port,
        );
    }
    if services.iter().any(|service| service.name == "gateway") {
        println!();
        println!("  storefront  http://127.0.0.1:8080/   API docs http://127.0.0.1:8080/api/docs");
    }
    match admin {
        Ok(()) => println!("  admin       {ADMIN_EMAIL} / {ADMIN_PASSWORD}"),
        Err(err) => println!("  admin       not created: {err:#}"),
    }
    println!("  {}", telemetry.banner());
    let certs = target_dir.join("dev-certs");
    println!(
        "  gRPC        mutual TLS; certificates in {}/ (grpcurl: see README)",
        certs.display()
    );
    println!();

    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("\nstopping…"),
        exited = stack.first_exit() => println!("\n{exited} exited; stopping the others…"),
    }
    stack.stop().await
}

/// An administrator, made the way an operator makes one: `users admin create`, which creates
/// the account or, when it exists, grants it the role again.
pub async fn create_admin(
    users: &Path,
    database_url: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let output = Command::new(users)
        .args(["admin", "create", email])
        .env("USERS_DATABASE_URL", database_url)
        .env("USERS_ADMIN_PASSWORD", password)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", users.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "users admin create: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

impl Stack {
    /// Starts every instance of `launch` and waits until each answers `/readyz`.
    ///
    /// The gateway learns every replica of each upstream (static endpoints, balanced
    /// client-side).
    pub async fn start(launch: Launch) -> anyhow::Result<Self> {
        let upstreams: Vec<(String, String)> = services::SERVICES
            .iter()
            .filter(|service| service.api_setting == "GRPC_ADDR")
            .filter_map(|service| {
                let urls: Vec<String> = launch
                    .instances
                    .iter()
                    .filter(|instance| instance.service.name == service.name)
                    .map(|instance| format!("http://127.0.0.1:{}", instance.api_port))
                    .collect();
                (!urls.is_empty()).then(|| {
                    (
                        format!("GATEWAY_{}_URLS", service.env_prefix()),
                        urls.join(","),
                    )
                })
            })
            .collect();
        let mut stack = Self {
            running: Vec::new(),
            logs: launch.logs,
        };
        for instance in &launch.instances {
            let service = instance.service;
            let database_url = launch
                .databases
                .get(service.name)
                .cloned()
                .unwrap_or_else(|| infra::database_url(&service.database()));
            let mut env = Vec::new();
            if service.name == "gateway" {
                env.extend(upstreams.iter().cloned());
            }
            if service.name == "orders" {
                // The saga's participants: the first instance of each.
                for participant in ["inventory", "payments"] {
                    if let Some(first) = launch
                        .instances
                        .iter()
                        .find(|instance| instance.service.name == participant)
                    {
                        env.push((
                            format!("ORDERS_{}_URL", participant.to_ascii_uppercase()),
                            format!("http://127.0.0.1:{}", first.api_port),
                        ));
                    }
                }
            }
            env.extend(service.instance_env(&database_url, instance.api_port, instance.admin_port));
            env.extend(launch.keys.env(service.name));
            env.extend(launch.env.iter().cloned());
            let binary = launch.bin_dir.join(service.name);
            let child = spawn(
                &binary,
                &env,
                &instance.label(),
                service.colour,
                &stack.logs,
            )?;
            stack.running.push(Running {
                label: instance.label(),
                binary,
                env,
                admin_address: format!("127.0.0.1:{}", instance.admin_port),
                child,
            });
        }
        if let Err(err) = stack.wait_until_ready().await {
            let _ = stack.stop().await;
            return Err(err);
        }
        Ok(stack)
    }

    /// The process id of each running process, by label.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.running
            .iter()
            .filter_map(|process| Some((process.label.clone(), process.child.id()?)))
            .collect()
    }

    /// `(label, http://host:port/metrics)` of each process's admin server.
    pub fn metrics_urls(&self) -> Vec<(String, String)> {
        self.running
            .iter()
            .map(|process| {
                (
                    process.label.clone(),
                    format!("http://{}/metrics", process.admin_address),
                )
            })
            .collect()
    }

    /// Stops the process `label` gracefully and starts it again with `changes` applied to its
    /// settings, on the same ports; waits until it is ready.
    pub async fn restart(
        &mut self,
        label: &str,
        changes: &[(String, String)],
    ) -> anyhow::Result<()> {
        let process = self
            .running
            .iter_mut()
            .find(|process| process.label == label)
            .with_context(|| format!("no process {label}"))?;
        terminate(&mut process.child, &process.label).await;
        process
            .env
            .retain(|(name, _)| !changes.iter().any(|(changed, _)| changed == name));
        process.env.extend(changes.iter().cloned());
        let colour = services::SERVICES
            .iter()
            .find(|service| label.split('#').next() == Some(service.name))
            .map_or(RESET, |service| service.colour);
        process.child = spawn(&process.binary, &process.env, label, colour, &self.logs)?;
        self.wait_until_ready().await
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + READY;
        for index in 0..self.running.len() {
            loop {
                for process in &mut self.running {
                    if let Some(status) = process.child.try_wait()? {
                        bail!("{} exited during start-up ({status})", process.label);
                    }
                }
                if readyz_ok(&self.running[index].admin_address).await {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!(
                        "{} was not ready within {READY:?}",
                        self.running[index].label
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// Resolves when the first process exits, with its label.
    pub async fn first_exit(&mut self) -> String {
        loop {
            for process in &mut self.running {
                if let Ok(Some(_)) = process.child.try_wait() {
                    return process.label.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// SIGTERM to everyone, then up to 15 s for graceful exits before SIGKILL.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for process in &self.running {
            if let Some(pid) = process.child.id() {
                send_term(pid).await;
            }
        }
        for process in &mut self.running {
            wait_or_kill(&mut process.child, &process.label).await;
        }
        Ok(())
    }
}

fn spawn(
    binary: &Path,
    env: &[(String, String)],
    label: &str,
    colour: &str,
    logs: &Logs,
) -> anyhow::Result<Child> {
    let mut command = Command::new(binary);
    command
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    match logs {
        Logs::Prefixed => {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Logs::Files(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(format!("{label}.log"));
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            command.stdout(file.try_clone()?).stderr(file);
        }
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let prefix = format!("{colour}{label:>11} |{RESET} ");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                println!("{prefix}{line}");
            }
        });
    }
    Ok(child)
}

async fn send_term(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await;
}

async fn terminate(child: &mut Child, label: &str) {
    if let Some(pid) = child.id() {
        send_term(pid).await;
    }
    wait_or_kill(child, label).await;
}

async fn wait_or_kill(child: &mut Child, label: &str) {
    match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
        Ok(Ok(status)) => println!("{label} stopped ({status})"),
        _ => {
            let _ = child.kill().await;
            println!("{label} killed after 15s");
        }
    }
}

/// Where compose's collector listens for OTLP/gRPC (`infra/compose.yaml`, `otel-collector`).
const LOCAL_COLLECTOR: &str = "127.0.0.1:4317";

/// Where the services send their spans and log records.
#[derive(Debug, PartialEq, Eq)]
enum Telemetry {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` was set by the caller: every process inherits it.
    Configured(String),
    /// Nothing was set, and the local collector answers: `up` points every process at it.
    LocalCollector,
    /// Nothing was set and no collector runs: trace ids are still in every log line.
    Off,
}

fn telemetry_destination(configured: Option<String>, collector_listening: bool) -> Telemetry {
    match configured.filter(|endpoint| !endpoint.trim().is_empty()) {
        Some(endpoint) => Telemetry::Configured(endpoint),
        None if collector_listening => Telemetry::LocalCollector,
        None => Telemetry::Off,
    }
}

impl Telemetry {
    /// The settings `up` adds to every process.
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Self::LocalCollector => vec![(
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                format!("http://{LOCAL_COLLECTOR}"),
            )],
            Self::Configured(_) | Self::Off => Vec::new(),
        }
    }

    /// The banner's line about it: where to look, or how to turn it on.
    fn banner(&self) -> String {
        match self {
            Self::Configured(endpoint) => {
                format!(
                    "telemetry   traces and logs over OTLP to {endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT)"
                )
            }
            Self::LocalCollector => format!(
                "telemetry   traces and logs to the collector on {LOCAL_COLLECTOR}: traces in \
                 Jaeger http://127.0.0.1:16686, logs in Grafana http://127.0.0.1:3000"
            ),
            Self::Off => format!(
                "telemetry   off: no collector on {LOCAL_COLLECTOR}. Start one with `docker \
                 compose -f infra/compose.yaml up -d otel-collector grafana` and run up again, \
                 or set OTEL_EXPORTER_OTLP_ENDPOINT"
            ),
        }
    }
}

async fn collector_listening() -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(LOCAL_COLLECTOR)
        )
        .await,
        Ok(Ok(_))
    )
}

/// A minimal HTTP/1.0 GET, enough for a readiness probe without an HTTP client dependency.
async fn readyz_ok(address: &str) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
        return false;
    };
    if stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    response.starts_with(b"HTTP/1.0 200") || response.starts_with(b"HTTP/1.1 200")
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_goes_where_the_caller_said_else_to_a_running_collector_else_nowhere() {
        let configured = telemetry_destination(Some("http://collector:4317".into()), true);
        assert_eq!(
            configured,
            Telemetry::Configured("http://collector:4317".into())
        );
        assert!(configured.env().is_empty(), "inherited, not overridden");

        let local = telemetry_destination(Some("  ".into()), true);
        assert_eq!(local, Telemetry::LocalCollector);
        assert_eq!(
            local.env(),
            [(
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                "http://127.0.0.1:4317".to_owned()
            )]
        );
        assert!(local.banner().contains("Jaeger http://127.0.0.1:16686"));

        let off = telemetry_destination(None, false);
        assert_eq!(off, Telemetry::Off);
        assert!(off.env().is_empty());
        assert!(off.banner().contains("docker compose"), "{}", off.banner());
    }

    #[test]
    fn replicas_name_a_replicable_service_and_a_small_count() {
        assert_eq!(
            parse_replicas("inventory=2"),
            Ok(("inventory".to_owned(), 2))
        );
        for bad in [
            "inventory",
            "inventory=0",
            "inventory=10",
            "nope=2",
            "gateway=2",
            "orders=x",
        ] {
            assert!(parse_replicas(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replicas_get_ports_a_hundred_apart() {
        let inventory = services::SERVICES
            .iter()
            .find(|s| s.name == "inventory")
            .unwrap();
        assert_eq!(inventory.ports(0), (50052, 9102));
        assert_eq!(inventory.ports(1), (50152, 9202));
        let (api_port, admin_port) = inventory.ports(1);
        let env = inventory.instance_env("postgres://db/inventory", api_port, admin_port);
        assert!(env.contains(&(
            "INVENTORY_GRPC_ADDR".to_owned(),
            "127.0.0.1:50152".to_owned()
        )));
        assert!(env.contains(&(
            "INVENTORY_ADMIN_ADDR".to_owned(),
            "127.0.0.1:9202".to_owned()
        )));
    }
}
