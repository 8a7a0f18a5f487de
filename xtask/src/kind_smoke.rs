//! `cargo xtask kind-smoke [--keep]`: the deployment, for real, on a throwaway kind cluster.
//!
//! The offline gate (`cargo xtask deploy-check`) reads the deployment files; this command runs
//! them, exactly as terraform/envs/local/README.md tells a user to:
//!
//! 1. **preflight**: Docker (a running engine), kind, terraform, kubectl and helm are installed;
//!    otherwise it refuses, naming what is missing, before touching anything;
//! 2. **build**: one image per service with the repository's Dockerfile (`docker build`,
//!    tagged `ferroshop/<service>:dev`, what the local overlay runs);
//! 3. **terraform init** and **terraform apply** in `terraform/envs/local`, in a Terraform
//!    workspace of its own (`kind-smoke`) and a cluster of its own (`ferroshop-smoke`), so a
//!    developer's `ferroshop` cluster and its state are never touched;
//! 4. **workloads ready**: every Deployment, StatefulSet and DaemonSet of the cluster has all
//!    its replicas ready, every CloudNativePG Cluster all its instances, every Helm release is
//!    `deployed` (polled with a deadline, see `readiness.rs`);
//! 5. **journey**: `kubectl port-forward svc/gateway` and a customer's journey over HTTP
//!    (`journey.rs`): sign-up, catalog, an order confirmed, paid and committed, a declined card
//!    cancelled with its stock returned, the storefront page;
//! 6. **destroy**: `terraform destroy`, whatever happened before, unless `--keep`.
//!
//! Then it prints one line per step (outcome, duration) and fails if any step failed.
//!
//! Why its own journey rather than `tests/e2e`: the end-to-end suite owns the processes it
//! drives (a fresh database per test, a signing key it generated to forge tokens, an in-test
//! OTLP receiver, killing a replica mid-test), none of which a deployed cluster offers. The
//! journey here needs nothing but the gateway's public API, so it runs against any deployment.

mod journey;
mod plan;
mod readiness;
mod summary;

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::process::Command;

use self::{
    plan::{Options, Step},
    summary::{Outcome, StepResult},
};

#[derive(clap::Args)]
pub struct KindSmokeArgs {
    /// Keep the cluster afterwards (context kind-ferroshop-smoke); remove it later with the
    /// `terraform destroy` command this prints.
    #[arg(long)]
    keep: bool,
}

/// The kind cluster, and the Terraform workspace holding its state.
const CLUSTER: &str = "ferroshop-smoke";
const WORKSPACE: &str = "kind-smoke";
/// The tag the local overlay runs.
const IMAGE_TAG: &str = "dev";
/// How long the cluster may take to have every workload ready after the apply.
const READY_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_secs(5);

pub async fn run(args: KindSmokeArgs) -> anyhow::Result<()> {
    let root = crate::deploy_check::workspace_root();
    if let Some(refusal) = preflight().await {
        bail!("{refusal}");
    }
    let options = Options { keep: args.keep };
    let steps = plan::steps(&options, crate::services::SERVICES.iter().map(|s| s.name));
    let mut results: Vec<StepResult> = Vec::new();
    let mut failed = false;
    for step in &steps {
        if failed && !step.always_runs() {
            results.push(StepResult {
                step: step.label(),
                outcome: Outcome::Skipped,
                duration: Duration::ZERO,
            });
            continue;
        }
        println!("kind-smoke: {}", step.label());
        let started = Instant::now();
        let outcome = match execute(step, &root).await {
            Ok(detail) => Outcome::Passed(detail),
            Err(err) => {
                failed = true;
                eprintln!("kind-smoke: {} failed: {err:#}", step.label());
                Outcome::Failed(format!("{err:#}"))
            }
        };
        results.push(StepResult {
            step: step.label(),
            outcome,
            duration: started.elapsed(),
        });
    }
    println!("\n{}", summary::render(&results));
    if args.keep {
        println!(
            "kind-smoke: cluster kept: kubectl --context kind-{CLUSTER} -n ferroshop get pods; \
             remove it with: terraform -chdir=terraform/envs/local workspace select {WORKSPACE} \
             && terraform -chdir=terraform/envs/local destroy -var cluster_name={CLUSTER}"
        );
    }
    if failed {
        bail!("kind-smoke failed (summary above)");
    }
    Ok(())
}

/// What is missing to run at all, as a refusal naming it; `None` when everything is there.
async fn preflight() -> Option<String> {
    let mut found = vec![(plan::Tool::Docker, crate::infra::docker_available().await)];
    for tool in [
        plan::Tool::Kind,
        plan::Tool::Terraform,
        plan::Tool::Kubectl,
        plan::Tool::Helm,
    ] {
        let (program, args) = tool.probe();
        let present = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|status| status.success());
        found.push((tool, present));
    }
    plan::refusal(&found)
}

async fn execute(step: &Step, root: &Path) -> anyhow::Result<String> {
    let local_env = root.join("terraform/envs/local");
    match step {
        Step::Build { service } => {
            let known = crate::services::SERVICES
                .iter()
                .find(|s| s.name == service)
                .with_context(|| format!("{service} is not in xtask/src/services.rs"))?;
            let tag = format!("ferroshop/{service}:{IMAGE_TAG}");
            run_command(Command::new("docker").current_dir(root).args([
                "build",
                "--file",
                "Dockerfile",
                "--build-arg",
                &format!("SERVICE={service}"),
                "--build-arg",
                &format!("API_PORT={}", known.api_port),
                "--build-arg",
                &format!("ADMIN_PORT={}", known.admin_port),
                "--tag",
                &tag,
                ".",
            ]))
            .await?;
            Ok(tag)
        }
        Step::TerraformInit => {
            run_command(terraform(&local_env).args(["init", "-input=false"])).await?;
            run_command(terraform(&local_env).args([
                "workspace",
                "select",
                "-or-create=true",
                WORKSPACE,
            ]))
            .await?;
            Ok(format!("workspace {WORKSPACE}"))
        }
        Step::TerraformApply => {
            run_command(
                terraform(&local_env)
                    .args(["apply", "-auto-approve", "-input=false"])
                    .args(terraform_vars()),
            )
            .await?;
            Ok(format!("cluster {CLUSTER}"))
        }
        Step::WaitForWorkloads => wait_for_workloads().await,
        Step::Journey => {
            let forward = PortForward::start().await?;
            journey::run(&forward.base_url, |email| async move {
                // The users binary is in its image: the operator command of k8s/README.md.
                run_command(Command::new("kubectl").args([
                    &format!("--context=kind-{CLUSTER}"),
                    "--namespace=ferroshop",
                    "exec",
                    "deploy/users",
                    "--",
                    "users",
                    "admin",
                    "grant",
                    email,
                ]))
                .await
            })
            .await
        }
        Step::Destroy => {
            run_command(
                terraform(&local_env)
                    .args(["destroy", "-auto-approve", "-input=false"])
                    .args(terraform_vars()),
            )
            .await
            .with_context(|| {
                format!("the cluster may be left behind: kind delete cluster --name {CLUSTER}")
            })?;
            Ok(String::new())
        }
    }
}

fn terraform(dir: &Path) -> Command {
    let mut command = Command::new("terraform");
    command
        .arg(format!("-chdir={}", dir.display()))
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0");
    command
}

fn terraform_vars() -> [String; 4] {
    [
        "-var".to_owned(),
        format!("cluster_name={CLUSTER}"),
        "-var".to_owned(),
        format!("image_tag={IMAGE_TAG}"),
    ]
}

/// Runs a command with its output streamed to ours; fails on a non-zero exit.
async fn run_command(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{:?}", command.as_std());
    let status = command
        .stdin(Stdio::null())
        .status()
        .await
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} exited with {status}");
    }
    Ok(())
}

/// Runs a command and returns its stdout; fails on a non-zero exit, with its stderr.
async fn output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Polls the cluster until every workload is ready, or fails at the deadline with what is not.
async fn wait_for_workloads() -> anyhow::Result<String> {
    let context = format!("--context=kind-{CLUSTER}");
    let started = Instant::now();
    loop {
        let workloads = output(
            "kubectl",
            &[
                &context,
                "get",
                "deployments,statefulsets,daemonsets,jobs",
                "--all-namespaces",
                "-o",
                "json",
            ],
        )
        .await?;
        let clusters = output(
            "kubectl",
            &[
                &context,
                "get",
                "clusters.postgresql.cnpg.io",
                "--all-namespaces",
                "-o",
                "json",
            ],
        )
        .await?;
        let releases = output(
            "helm",
            &[
                "--kube-context",
                &format!("kind-{CLUSTER}"),
                "list",
                "--all-namespaces",
                "--all",
                "--output",
                "json",
            ],
        )
        .await?;
        let status = readiness::Status::parse(&workloads, &clusters, &releases)?;
        if status.pending.is_empty() {
            return Ok(status.describe_ready());
        }
        if started.elapsed() > READY_DEADLINE {
            let pods = output("kubectl", &[&context, "get", "pods", "--all-namespaces"])
                .await
                .unwrap_or_default();
            bail!(
                "not ready after {READY_DEADLINE:?}:\n  {}\npods:\n{pods}",
                status.pending.join("\n  ")
            );
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// `kubectl port-forward svc/gateway` on a free local port, stopped on drop.
struct PortForward {
    base_url: String,
    _child: tokio::process::Child,
}

impl PortForward {
    async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("no free local port")?
            .port();
        let child = Command::new("kubectl")
            .args([
                &format!("--context=kind-{CLUSTER}"),
                "--namespace=ferroshop",
                "port-forward",
                "svc/gateway",
                &format!("{port}:8080"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot run kubectl port-forward")?;
        let forward = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            _child: child,
        };
        journey::wait_until_serving(&forward.base_url).await?;
        Ok(forward)
    }
}
