//! `cargo xtask up`: everything running locally, one terminal, Ctrl-C to stop.

use std::{process::Stdio, time::Duration};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

use crate::{infra, services};

const RESET: &str = "\x1b[0m";

#[derive(clap::Args)]
pub struct UpArgs {
    /// Build and run optimised binaries.
    #[arg(long)]
    release: bool,
}

struct Running {
    name: &'static str,
    child: Child,
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
    let mut running = Vec::new();
    for service in &services {
        let binary = format!("{target_dir}/{profile}/{}", service.name);
        let mut child = Command::new(&binary)
            .envs(service.env(&infra::database_url(service.name)))
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
            let prefix = format!("{}{:>9} |{RESET} ", service.colour, service.name);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    println!("{prefix}{line}");
                }
            });
        }
        running.push(Running {
            name: service.name,
            child,
        });
    }

    wait_until_ready(&services, &mut running).await?;
    println!();
    println!("Ferroshop is up. Ctrl-C stops everything.");
    for service in &services {
        let api = if service.api_setting == "HTTP_ADDR" {
            "HTTP"
        } else {
            "gRPC"
        };
        println!(
            "  {:<10} {api} http://127.0.0.1:{}   admin http://127.0.0.1:{}/readyz",
            service.name, service.api_port, service.admin_port
        );
    }
    if services.iter().any(|service| service.name == "gateway") {
        println!();
        println!("  storefront  http://127.0.0.1:8080/   API docs http://127.0.0.1:8080/api/docs");
    }
    println!();

    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("\nstopping…"),
        exited = first_exit(&mut running) => println!("\n{exited} exited; stopping the others…"),
    }
    stop_all(running).await
}

async fn wait_until_ready(
    services: &[&services::Service],
    running: &mut [Running],
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for service in services {
        let address = format!("127.0.0.1:{}", service.admin_port);
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
                bail!("{} was not ready within 60s", service.name);
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

async fn first_exit(running: &mut [Running]) -> &'static str {
    loop {
        for process in running.iter_mut() {
            if let Ok(Some(_)) = process.child.try_wait() {
                return process.name;
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
