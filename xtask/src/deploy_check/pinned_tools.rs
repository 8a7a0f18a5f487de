//! The tools the gate installs for itself outside its Python venv, each at one pinned version,
//! under `.tools/` (ignored by git):
//!
//! | tool | from | into | why |
//! |---|---|---|---|
//! | buf | npm, `@bufbuild/buf` | `.tools/node/` | protobuf lint and breaking-change detection |
//! | cargo-machete | crates.io, `cargo install --locked` | `.tools/cargo/` | unused dependencies |
//! | cargo-deny | crates.io, `cargo install --locked` | `.tools/cargo/` | licenses, bans, sources of the dependency graph |
//!
//! A cargo tool already on `PATH` at exactly the pinned version is used as it is. Anything else
//! is installed on first use (buf in seconds; each cargo tool compiles for a few minutes) and
//! reused while its version stays the same.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use super::tools::{capture, combined, tail};

/// `@bufbuild/buf` on npm.
pub const BUF_VERSION: &str = "1.75.0";
pub const CARGO_MACHETE: CargoTool = CargoTool {
    krate: "cargo-machete",
    version: "0.9.2",
};
pub const CARGO_DENY: CargoTool = CargoTool {
    krate: "cargo-deny",
    version: "0.20.2",
};

/// What an installation directory holds when it is complete: the package it was made for.
const STAMP: &str = "ferroshop-installed.txt";

/// `.tools/` under the workspace.
fn tools_dir(root: &Path) -> PathBuf {
    root.join(".tools")
}

/// The `buf` executable, installed from npm into `.tools/node` if needed.
///
/// npm installs into a directory of this call's own, which is then renamed into place: tests
/// running in parallel (threads, or cargo-nextest's processes) may all find buf missing at once,
/// and each either wins the rename or uses the winner's installation.
pub fn buf(root: &Path) -> anyhow::Result<PathBuf> {
    let wanted = format!("@bufbuild/buf@{BUF_VERSION}");
    let dir = tools_dir(root).join("node");
    let installed = |dir: &Path| {
        let bin = dir.join("node_modules").join(".bin").join("buf");
        let stamp = fs::read_to_string(dir.join(STAMP)).ok();
        (bin.is_file() && stamp.as_deref() == Some(wanted.as_str())).then_some(bin)
    };
    if let Some(bin) = installed(&dir) {
        return Ok(bin);
    }
    println!("deploy-check: installing {wanted} from npm into .tools/node/ (once)");
    // Unique per process and per call (tests run in threads of one process too).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let staging = tools_dir(root).join(format!("node.installing-{}-{nanos}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let output = capture(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&staging)
            .args([
                "--no-save",
                "--no-package-lock",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .arg(&wanted),
    )
    .context("buf is installed with npm: install Node.js and npm")?;
    fs::write(staging.join(STAMP), &wanted)
        .with_context(|| format!("cannot write into {}", staging.display()))?;
    if !output.status.success() || installed(&staging).is_none() {
        let _ = fs::remove_dir_all(&staging);
        bail!(
            "npm could not install {wanted} into .tools/node:\n{}",
            tail(&combined(&output), 20)
        );
    }
    if let Some(bin) = installed(&dir) {
        // Another process finished first.
        let _ = fs::remove_dir_all(&staging);
        return Ok(bin);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    fs::rename(&staging, &dir)
        .with_context(|| format!("cannot move {} to {}", staging.display(), dir.display()))?;
    installed(&dir).with_context(|| format!("buf is missing from {}", dir.display()))
}

/// A cargo subcommand from crates.io at one version.
#[derive(Debug, Clone, Copy)]
pub struct CargoTool {
    pub krate: &'static str,
    pub version: &'static str,
}

impl CargoTool {
    /// The executable: on `PATH` if it is the pinned version, else in `.tools/cargo/bin`,
    /// installed there with `cargo install --locked` if needed.
    pub fn ensure(&self, root: &Path) -> anyhow::Result<PathBuf> {
        let on_path = PathBuf::from(self.krate);
        if self.reports_version(&on_path) {
            return Ok(on_path);
        }
        let install_root = tools_dir(root).join("cargo");
        let local = install_root.join("bin").join(self.krate);
        if self.reports_version(&local) {
            return Ok(local);
        }
        println!(
            "deploy-check: installing {} {} with cargo install --locked into .tools/cargo/ \
             (once; a few minutes)",
            self.krate, self.version
        );
        let status = Command::new(crate::cargo())
            .args([
                "install",
                "--locked",
                "--quiet",
                "--version",
                self.version,
                "--root",
            ])
            .arg(&install_root)
            .arg(self.krate)
            .env("CARGO_INCREMENTAL", "0")
            .status()
            .with_context(|| format!("cannot run cargo install {}", self.krate))?;
        if !status.success() || !self.reports_version(&local) {
            bail!(
                "cargo install --locked --version {} {} failed ({status})",
                self.version,
                self.krate
            );
        }
        Ok(local)
    }

    /// Whether `program --version` names the pinned version.
    fn reports_version(&self, program: &Path) -> bool {
        Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|output| {
                output.status.success()
                    && String::from_utf8_lossy(&output.stdout)
                        .split_whitespace()
                        .any(|word| word == self.version)
            })
    }
}
