//! `cargo xtask …`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! * `cargo xtask up`: infrastructure check (or start), databases, every service with coloured,
//!   prefixed logs; Ctrl-C stops everything cleanly.
//! * `cargo xtask test`: the whole test suite, exactly what CI runs.

mod infra;
mod services;
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
    /// Run the whole test suite (what CI runs).
    Test {
        /// Extra arguments for the test runner, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
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

/// The test suite: infrastructure check, then every test of the workspace.
///
/// cargo-nextest runs each test in its own process, test binaries in parallel, and ends with one
/// summary line; without it, `cargo test` runs the same tests.
async fn test(extra: Vec<String>) -> anyhow::Result<()> {
    infra::require_reachable().await?;
    let mut command = tokio::process::Command::new(cargo());
    if nextest_available().await {
        command.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        println!(
            "cargo-nextest not found (cargo install cargo-nextest --locked); using cargo test"
        );
        command.args(["test", "--workspace", "--no-fail-fast"]);
    }
    let status = command.args(extra).status().await?;
    anyhow::ensure!(status.success(), "tests failed ({status})");
    Ok(())
}

async fn nextest_available() -> bool {
    tokio::process::Command::new(cargo())
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// The cargo that runs us (so `cargo +nightly xtask` stays on nightly).
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
