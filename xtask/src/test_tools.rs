//! What `cargo xtask test` needs besides the workspace, installed by the command itself so that
//! the README's two commands work on a fresh clone:
//!
//! | tool | used by | installed |
//! |---|---|---|
//! | cargo-nextest | the test runner | `cargo install --locked` into `.tools/cargo/` when `cargo nextest` is missing |
//! | schemathesis, grpcio, grpcio-reflection, grpcio-health-checking | `tests/e2e/tests/api_contract.rs`, `tests/e2e/tests/grpc_clients.rs` | into `.venv/` from `requirements-test.txt`, pinned |
//! | chromium, chromium-driver | `tests/e2e/tests/storefront.rs` | with apt when running as root on Debian; otherwise one message with the command (the browser test then fails naming it) |
//! | pgbench (postgresql-client), nginx (nginx-light) | `xtask/tests/bench_smoke.rs`: the bench's baselines | the same way |
//!
//! The deploy gate installs its own tools the same way (`deploy_check::tools`,
//! `deploy_check::pinned_tools`).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::deploy_check::{
    pinned_tools::CargoTool,
    tools::{Venv, VenvSpec},
};

/// The Python test clients.
pub const TEST_TOOLS: VenvSpec = VenvSpec {
    dir: ".venv",
    requirements: "requirements-test.txt",
    by: "xtask test",
};

/// Installed only when no `cargo nextest` answers (any version that answers is used).
const NEXTEST: CargoTool = CargoTool {
    krate: "cargo-nextest",
    version: "0.9.143",
};

/// Debian packages some tests need: the files they look for, the packages that provide them,
/// and who needs them (for the message when they cannot be installed).
struct DebianPackages {
    files: &'static [&'static str],
    packages: &'static [&'static str],
    needed_by: &'static str,
}

const CHROMIUM: DebianPackages = DebianPackages {
    files: &["/usr/bin/chromium", "/usr/bin/chromedriver"],
    packages: &["chromium", "chromium-driver"],
    needed_by: "the browser test needs Chromium and ChromeDriver",
};

const BENCH_BASELINES: DebianPackages = DebianPackages {
    files: &["/usr/bin/pgbench", "/usr/sbin/nginx"],
    packages: &["postgresql-client", "nginx-light"],
    needed_by: "the bench smoke test needs pgbench and nginx",
};

/// How to run the test runner: `cargo nextest` (on PATH or installed), or `cargo test` if even
/// installing it failed.
pub enum Runner {
    /// `cargo nextest …` (a `cargo-nextest` on PATH).
    CargoSubcommand,
    /// `<path to cargo-nextest> nextest …`, installed under `.tools/cargo`.
    Installed(PathBuf),
    CargoTest,
}

impl Runner {
    /// `… nextest run` or `cargo test`, ready for the workspace arguments.
    pub fn command(&self) -> tokio::process::Command {
        let (program, args): (PathBuf, &[&str]) = match self {
            Self::CargoSubcommand => (crate::cargo().into(), &["nextest", "run"]),
            // A cargo subcommand's binary takes its own name as the first argument.
            Self::Installed(path) => (path.clone(), &["nextest", "run"]),
            Self::CargoTest => (crate::cargo().into(), &["test"]),
        };
        let mut command = tokio::process::Command::new(program);
        command.args(args);
        command
    }
}

/// Makes sure every tool is there; reports what it could not do instead of failing, so the
/// tests still run and the ones that need a missing tool fail with their own message.
pub fn ensure(root: &Path) -> Runner {
    if let Err(err) = Venv::ensure_spec(root, &TEST_TOOLS) {
        eprintln!("xtask test: the Python test clients are not installed: {err:#}");
    }
    for packages in [&CHROMIUM, &BENCH_BASELINES] {
        if let Err(err) = ensure_debian(packages) {
            eprintln!("xtask test: {err:#}");
        }
    }
    if cargo_nextest_answers() {
        return Runner::CargoSubcommand;
    }
    match NEXTEST.ensure(root) {
        Ok(path) => Runner::Installed(path),
        Err(err) => {
            eprintln!("xtask test: cargo-nextest is not installed ({err:#}); using cargo test");
            Runner::CargoTest
        }
    }
}

fn cargo_nextest_answers() -> bool {
    Command::new(crate::cargo())
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Debian packages installed with apt as root; otherwise the command to run.
fn ensure_debian(wanted: &DebianPackages) -> anyhow::Result<()> {
    if wanted.files.iter().all(|path| Path::new(path).is_file()) {
        return Ok(());
    }
    let packages = wanted.packages.join(" ");
    if !running_as_root() {
        bail!(
            "{}: run `sudo apt-get install -y {packages}` (Debian/Ubuntu)",
            wanted.needed_by
        );
    }
    println!("xtask test: installing {packages} with apt (once)");
    let install: Vec<&str> = ["install", "-y"]
        .into_iter()
        .chain(wanted.packages.iter().copied())
        .collect();
    for args in [&["update"][..], &install] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("cannot run apt-get (not a Debian-based system?)")?;
        if !status.success() {
            bail!("apt-get {} failed ({status})", args.join(" "));
        }
    }
    Ok(())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}
