//! The tools the gate runs: its own Python virtual environment (yamllint, kubernetes-validate,
//! checkov at the versions pinned in `requirements-deploy.txt`), and kubectl, terraform and
//! rustc from the machine.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use anyhow::{Context as _, bail};

/// A Python virtual environment under the workspace, (re)built when its requirements change.
pub struct Venv {
    dir: PathBuf,
}

/// Which venv: where it lives, what it holds, and who says so while installing.
pub struct VenvSpec {
    /// Directory under the workspace (git-ignored), e.g. `.venv-deploy`.
    pub dir: &'static str,
    /// The pinned requirements file at the workspace root.
    pub requirements: &'static str,
    /// The command that installs it, for the progress line.
    pub by: &'static str,
}

/// The deploy gate's tools (yamllint, kubernetes-validate, checkov, actionlint).
pub const DEPLOY_TOOLS: VenvSpec = VenvSpec {
    dir: ".venv-deploy",
    requirements: "requirements-deploy.txt",
    by: "deploy-check",
};

/// The requirements as installed, kept inside the venv: the venv is reused while it matches.
const STAMP: &str = "ferroshop-requirements.txt";

impl Venv {
    /// The deploy gate's venv.
    pub fn ensure(root: &Path) -> anyhow::Result<Self> {
        Self::ensure_spec(root, &DEPLOY_TOOLS)
    }

    /// The venv `spec` describes, installed from its requirements if it does not match them.
    pub fn ensure_spec(root: &Path, spec: &VenvSpec) -> anyhow::Result<Self> {
        let requirements_path = root.join(spec.requirements);
        let requirements = fs::read_to_string(&requirements_path)
            .with_context(|| format!("cannot read {}", requirements_path.display()))?;
        let venv = Self {
            dir: root.join(spec.dir),
        };
        let stamp = venv.dir.join(STAMP);
        let python = venv.bin("python");
        if python.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(&requirements) {
            return Ok(venv);
        }
        println!(
            "{}: installing the pinned tools of {} into {}/ (once; about a minute)",
            spec.by, spec.requirements, spec.dir
        );
        if venv.dir.exists() {
            fs::remove_dir_all(&venv.dir)
                .with_context(|| format!("cannot remove {}", venv.dir.display()))?;
        }
        let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let status = Command::new(&system_python)
            .args(["-m", "venv"])
            .arg(&venv.dir)
            .status()
            .with_context(|| {
                format!("cannot run {system_python} (install Python 3.10+ with its venv module)")
            })?;
        if !status.success() {
            bail!(
                "`{system_python} -m venv {}` failed ({status}); on Debian install python3-venv",
                spec.dir
            );
        }
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--requirement",
            ])
            .arg(&requirements_path)
            .status()
            .with_context(|| format!("cannot run pip in {}", spec.dir))?;
        if !status.success() {
            bail!(
                "pip could not install {} into {} ({status})",
                spec.requirements,
                spec.dir
            );
        }
        fs::write(&stamp, &requirements)
            .with_context(|| format!("cannot write {}", stamp.display()))?;
        Ok(venv)
    }

    /// A program installed in the venv.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }
}

/// Whether `program --version`-like invocation works, i.e. the tool is installed.
pub fn available(program: &str, version_args: &[&str]) -> bool {
    Command::new(program)
        .args(version_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs a command to completion, capturing its output.
pub fn capture(command: &mut Command) -> anyhow::Result<Output> {
    command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))
}

/// Stdout and stderr of a finished command, for messages.
pub fn combined(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&stderr);
    }
    text
}

/// The last `lines` lines of `text`, for failure details that stay readable.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Converts YAML (one or more documents) to JSON with the venv's PyYAML: the gate needs no YAML
/// crate, and PyYAML is what yamllint already parses with.
pub fn yaml_documents(venv: &Venv, path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    const TO_JSON: &str = "import json, sys, yaml\n\
        with open(sys.argv[1], encoding='utf-8') as f:\n    \
            docs = [d for d in yaml.safe_load_all(f) if d is not None]\n\
        json.dump(docs, sys.stdout)\n";
    let output = capture(
        Command::new(venv.bin("python"))
            .args(["-c", TO_JSON])
            .arg(path),
    )?;
    if !output.status.success() {
        bail!(
            "cannot parse {} as YAML:\n{}",
            path.display(),
            tail(&combined(&output), 5)
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("unexpected output converting {}", path.display()))
}
