//! `cargo xtask up`: everything running locally, one terminal, Ctrl-C to stop.

use std::{process::Stdio, time::Duration};

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

struct Running {
    name: String,
    child: Child,
}

/// One process to start: a service and its instance number.
struct Instance {
    service: &'static services::Service,
    index: u16,
}

impl Instance {
    fn label(&self) -> String {
        if self.index == 0 {
            self.service.name.to_owned()
        } else {
            format!("{}#{}", self.service.name, self.index + 1)
        }
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    infra::ensure_running().await?;
    infra::create_databases().await?;

    let services: Vec<_> = services::present().collect();
    let mut build = Command::new(crate::cargo());
    build.arg("build");
    if args.release {
        build.arg("--release");
    }
    for service in &services {
        build.args(["--package", service.name]);
    }
    let status = build.status().await.context("cannot run cargo build")?;
    anyhow::ensure!(status.success(), "build failed ({status})");

    let profile = if args.release { "release" } else { "debug" };
    let target_dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let keys = DevKeys::ensure(std::path::Path::new(&target_dir))?;
    let replicas = |name: &str| {
        args.replicas
            .iter()
            .find(|(service, _)| service == name)
            .map_or(1, |(_, count)| *count)
    };
    let instances: Vec<Instance> = services
        .iter()
        .flat_map(|service| {
            (0..replicas(service.name)).map(move |index| Instance { service, index })
        })
        .collect();
    // The gateway learns every replica of each upstream (static endpoints, balanced client-side).
    let upstreams: Vec<(String, String)> = services
        .iter()
        .filter(|service| service.api_setting == "GRPC_ADDR")
        .map(|service| {
            let urls: Vec<String> = (0..replicas(service.name))
                .map(|index| format!("http://127.0.0.1:{}", service.ports(index).0))
                .collect();
            (
                format!("GATEWAY_{}_URLS", service.name.to_ascii_uppercase()),
                urls.join(","),
            )
        })
        .collect();
    let mut running = Vec::new();
    for instance in &instances {
        let service = instance.service;
        let binary = format!("{target_dir}/{profile}/{}", service.name);
        let mut command = Command::new(&binary);
        if service.name == "gateway" {
            command.envs(upstreams.iter().cloned());
        }
        let mut child = command
            .envs(service.instance_env(&infra::database_url(service.name), instance.index))
            .envs(keys.env(service.name))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
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
            let prefix = format!("{}{:>11} |{RESET} ", service.colour, instance.label());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    println!("{prefix}{line}");
                }
            });
        }
        running.push(Running {
            name: instance.label(),
            child,
        });
    }

    wait_until_ready(&instances, &mut running).await?;
    let admin = create_admin(&format!("{target_dir}/{profile}/users")).await;
    println!();
    println!("Ferroshop is up. Ctrl-C stops everything.");
    for instance in &instances {
        let api = if instance.service.api_setting == "HTTP_ADDR" {
            "HTTP"
        } else {
            "gRPC"
        };
        let (api_port, admin_port) = instance.service.ports(instance.index);
        println!(
            "  {:<12} {api} http://127.0.0.1:{api_port}   admin http://127.0.0.1:{admin_port}/readyz",
            instance.label()
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
    println!();

    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("\nstopping…"),
        exited = first_exit(&mut running) => println!("\n{exited} exited; stopping the others…"),
    }
    stop_all(running).await
}

/// The local administrator, made the way an operator makes one: `users admin create`, which
/// creates the account or, when it exists, grants it the role again.
async fn create_admin(users: &str) -> anyhow::Result<()> {
    let output = Command::new(users)
        .args(["admin", "create", ADMIN_EMAIL])
        .env("USERS_DATABASE_URL", infra::database_url("users"))
        .env("USERS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {users}"))?;
    anyhow::ensure!(
        output.status.success(),
        "users admin create: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

async fn wait_until_ready(instances: &[Instance], running: &mut [Running]) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for instance in instances {
        let address = format!("127.0.0.1:{}", instance.service.ports(instance.index).1);
        loop {
            for process in running.iter_mut() {
                if let Some(status) = process.child.try_wait()? {
                    bail!("{} exited during start-up ({status})", process.name);
                }
            }
            if readyz_ok(&address).await {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{} was not ready within 60s", instance.label());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
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

async fn first_exit(running: &mut [Running]) -> String {
    loop {
        for process in running.iter_mut() {
            if let Ok(Some(_)) = process.child.try_wait() {
                return process.name.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// SIGTERM to everyone, then up to 15 s for graceful exits before SIGKILL.
async fn stop_all(mut running: Vec<Running>) -> anyhow::Result<()> {
    for process in &running {
        if let Some(pid) = process.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
    }
    for process in &mut running {
        match tokio::time::timeout(Duration::from_secs(15), process.child.wait()).await {
            Ok(Ok(status)) => println!("{} stopped ({status})", process.name),
            _ => {
                let _ = process.child.kill().await;
                println!("{} killed after 15s", process.name);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let env = inventory.instance_env("postgres://db/inventory", 1);
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
