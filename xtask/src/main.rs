//! `cargo xtask …`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! * `cargo xtask up`: infrastructure check (or start), databases, every service with coloured,
//!   prefixed logs; Ctrl-C stops everything cleanly.
//! * `cargo xtask test`: the whole test suite, exactly what CI runs, including the deploy check.
//! * `cargo xtask deploy-check`: the offline gate for Dockerfile, compose, Kubernetes manifests
//!   and Terraform (see `deploy_check.rs`).
//! * `cargo xtask kind-smoke [--keep]`: builds the images, applies terraform/envs/local to a
//!   throwaway kind cluster, waits for every workload, runs a customer journey through the
//!   gateway and destroys the cluster (see `kind_smoke.rs`). Needs Docker, kind, terraform,
//!   kubectl and helm.
//! * `cargo xtask parked list|replay SERVICE`: the parked messages of a service's queues, and
//!   putting them back once their cause is fixed (see `parked.rs`).
//! * `cargo xtask bench [--smoke] [--report]`: the system from release binaries on free ports
//!   and fresh databases, load from an open-loop generator, each scenario next to its baseline
//!   (pgbench, nginx); `--report` writes docs/benchmarks.md (see `bench.rs`).
//! * `cargo xtask new-service NAME [--port N] [--consumes EVENT...] [--expose] [--force]`: a new
//!   service with the shape of every service, added wherever services are listed (see
//!   `new_service.rs`).
//! * `cargo xtask grants`: the broker permissions and Redis ACL rules the deployment applies,
//!   written from the code's declarations (see `grants.rs`).
//! * `cargo xtask config-docs`: docs/configuration.md, every setting of every service, from
//!   their declarations (`libs/declarations`).

mod bench;
mod deploy_check;
mod dev_keys;
mod grants;
mod infra;
mod kind_smoke;
mod layering;
mod new_service;
mod new_service_gateway;
mod parked;
mod services;
mod test_tools;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Ferroshop project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build and run every service locally, starting infrastructure if needed.
    Up(up::UpArgs),
    /// Run the whole test suite (what CI runs): the deploy check, then every test.
    Test {
        /// Extra arguments for the test runner, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Check the deployment files offline: lint, render, schema-validate, policy-check, and
    /// compare them with the services' configuration code.
    DeployCheck,
    /// Deploy to a throwaway kind cluster with terraform/envs/local, wait for every workload,
    /// run a customer journey through the gateway, then destroy the cluster.
    KindSmoke(kind_smoke::KindSmokeArgs),
    /// List or replay the parked (dead-lettered) messages of a service's queues.
    Parked(parked::ParkedArgs),
    /// Benchmark checkout and catalog reads against their baselines (pgbench, nginx) on a
    /// system started from release binaries; `--report` writes docs/benchmarks.md.
    Bench(bench::BenchArgs),
    /// Create a service with the shape of every service (crate, contract, events, tests,
    /// manifests, local stack) and add it wherever services are listed.
    NewService(new_service::NewServiceArgs),
    /// Write docs/configuration.md from the services' declarations (libs/declarations).
    ConfigDocs,
    /// Write the broker permissions and Redis ACL rules the deployment applies
    /// (k8s/base/broker-permissions.yaml, terraform/modules/platform/redis-acl.json) from the
    /// code's declarations.
    Grants,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("xtask: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Test { args } => test(args).await,
            Command::DeployCheck => deploy_check::run(),
            Command::KindSmoke(args) => kind_smoke::run(args).await,
            Command::Parked(args) => parked::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::NewService(args) => new_service::run(&args),
            Command::ConfigDocs => config_docs(),
            Command::Grants => grants::run(),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The test suite: its tools, the deploy check, the infrastructure check, then every test of
/// the workspace.
///
/// The tools the tests need are installed first (`test_tools`: cargo-nextest, the Python test
/// clients, Chromium), so that this works on a fresh clone. The deploy check runs next (it
/// needs no infrastructure and takes about a minute once its tools are installed); the tests
/// run even when it fails, so one run reports both, and the command fails if either failed.
/// cargo-nextest runs each test in its own process, test binaries in parallel, and ends with
/// one summary line.
async fn test(extra: Vec<String>) -> anyhow::Result<()> {
    let root = deploy_check::workspace_root();
    let runner = tokio::task::spawn_blocking(move || test_tools::ensure(&root)).await?;
    let deploy_check = tokio::task::spawn_blocking(deploy_check::run).await?;
    if let Err(err) = &deploy_check {
        eprintln!("xtask: {err:#}; running the tests anyway");
    }
    infra::require_reachable().await?;
    let mut command = runner.command();
    command.args(["--workspace", "--no-fail-fast"]);
    let status = command.args(extra).status().await?;
    anyhow::ensure!(status.success(), "tests failed ({status})");
    deploy_check.map_err(|err| err.context("the deploy check failed (the tests passed)"))
}

/// `cargo xtask config-docs`: docs/configuration.md from the declarations.
fn config_docs() -> anyhow::Result<()> {
    let path = deploy_check::workspace_root().join("docs/configuration.md");
    std::fs::write(
        &path,
        declarations::configuration_markdown(declarations::ALL),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The cargo that runs us (so `cargo +nightly xtask` stays on nightly).
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
