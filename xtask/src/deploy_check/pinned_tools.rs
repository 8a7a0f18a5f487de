//! The tools the gate installs for itself outside its Python venv, each at one pinned version,
//! under `.tools/` (ignored by git):
//!
//! | tool | from | into | why |
//! |---|---|---|---|
//! | buf | npm, `@bufbuild/buf` | `.tools/node/` | protobuf lint and breaking-change detection |
//!
//! It is installed on first use and reused while its version stays the same.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use super::tools::{capture, combined, tail};

/// `@bufbuild/buf` on npm.
pub const BUF_VERSION: &str = "1.75.0";
/// `.tools/` under the workspace.
fn tools_dir(root: &Path) -> PathBuf {
    root.join(".tools")
}

/// The `buf` executable, installed from npm into `.tools/node` if needed.
pub fn buf(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = tools_dir(root).join("node");
    let bin = dir.join("node_modules").join(".bin").join("buf");
    let wanted = format!("@bufbuild/buf@{BUF_VERSION}");
    let stamp = dir.join("ferroshop-installed.txt");
    if bin.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(bin);
    }
    println!("deploy-check: installing {wanted} from npm into .tools/node/ (once)");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let output = capture(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&dir)
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
    if !output.status.success() || !bin.is_file() {
        bail!(
            "npm could not install {wanted} into .tools/node:\n{}",
            tail(&combined(&output), 20)
        );
    }
    fs::write(&stamp, &wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(bin)
}
