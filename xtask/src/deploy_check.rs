//! `cargo xtask deploy-check`: the offline gate for everything that deploys Ferroshop.
//!
//! | step | what |
//! |---|---|
//! | yamllint | every YAML file of `infra/` and `k8s/` (`infra/yamllint.yaml`) |
//! | kustomize | `kubectl kustomize` of every overlay × subset of components |
//! | kubernetes-validate | each render, `--strict`, against each Kubernetes version of [`kube::KUBERNETES_VERSIONS`] (kind's and EKS's); only the CRDs in `kube::ALLOWED_CRDS` may go without a schema |
//! | custom resources | RabbitmqCluster, User, Permission, ScaledObject, TriggerAuthentication against the CRD schemas vendored in `xtask/schemas/`, strictly, and each schema's release against its pin in terraform/modules/platform (`crd_schemas.rs`) |
//! | credentials | broker users instead of the default user, broker permissions as the code derives them, Redis URLs with the component's ACL user, Postgres `verify-full` and TLS at the public load balancer in the cloud, the generated grants current (`credentials.rs`) |
//! | manifests | each render against the services' declarations in `libs/declarations` (see `manifests.rs`) |
//! | data plane | autoscalers' metric sources, the operators, broker replicas and quorum queue replication, Redis failover in the cloud, disruption budgets, ScaledObject targets and queues, against terraform/modules/platform and `libs/messaging` (`data_plane.rs`) |
//! | local stack | `infra/compose.yaml`, Prometheus targets, alert rules and dashboard copies, queried metric names |
//! | checkov | rendered manifests, the Dockerfile, `terraform/` (skips justified in `k8s/.checkov.yaml` and next to the resource) |
//! | healthcheck | the image's health-check source compiles |
//! | terraform | `fmt -check`; exact provider and chart pins, each chart pin listed in `terraform/chart-versions.json` (`charts.rs`); `for_each` keys and counts known at plan (`plan_known.rs`); `init -backend=false` + `validate` + `test` where the providers can be installed |
//! | docs | links, heading fragments and file references resolve inside the repository (`docs.rs`); every test the README's pattern map names exists (`pattern_map.rs`) |
//! | workflows | actionlint + ShellCheck over `.github/workflows`, actions pinned by commit, the image matrix (`workflows.rs`) |
//! | contracts | `buf lint`, `buf breaking` against the released contract (`contracts.rs`) |
//! | dependencies | cargo-machete, cargo-deny licenses / bans / sources (`dependencies.rs`) |
//!
//! The Python tools come from `.venv-deploy/`, built from `requirements-deploy.txt` on first
//! use and reused while that file is unchanged; buf, cargo-machete and cargo-deny from
//! `.tools/` (`pinned_tools.rs`). Scratch files go to `target/deploy-check/`.
//! Every step runs even after a failure; the summary lists each with its outcome, and a step
//! that could not run says why.

mod charts;
mod contracts;
mod crd_schemas;
mod credentials;
mod data_plane;
mod dependencies;
mod docs;
mod hcl;
mod kube;
mod local_stack;
mod manifests;
mod pattern_map;
pub(crate) mod pinned_tools;
mod plan_known;
mod repository;
mod secret_files;
mod service_config;
mod terraform;
mod terraform_steps;
pub(crate) mod tools;
mod workflows;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use self::{
    manifests::Context,
    service_config::{PlatformConfig, ServiceConfig},
    tools::{Venv, capture, combined, tail},
};

enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

#[derive(Default)]
struct Report {
    steps: Vec<(String, Outcome)>,
}

impl Report {
    fn record(&mut self, step: &str, outcome: Outcome) {
        let (label, detail) = match &outcome {
            Outcome::Pass(detail) => ("PASS", detail),
            Outcome::Fail(detail) => ("FAIL", detail),
            Outcome::Skip(detail) => ("SKIP", detail),
        };
        println!("deploy-check: {label} {step}");
        if !detail.is_empty() && !matches!(outcome, Outcome::Pass(_)) {
            for line in detail.lines() {
                println!("    {line}");
            }
        }
        self.steps.push((step.to_owned(), outcome));
    }

    fn record_result(&mut self, step: &str, result: anyhow::Result<Outcome>) {
        let outcome = result.unwrap_or_else(|err| Outcome::Fail(format!("{err:#}")));
        self.record(step, outcome);
    }

    fn count(&self, wanted: fn(&Outcome) -> bool) -> usize {
        self.steps
            .iter()
            .filter(|(_, outcome)| wanted(outcome))
            .count()
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs every step and prints the summary; fails when any step failed.
pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let root = workspace_root();
    let scratch = root.join("target").join("deploy-check");
    fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let mut report = Report::default();

    let kubectl = tools::available("kubectl", &["version", "--client"]);
    let terraform_cli = tools::available("terraform", &["version"]);
    let venv = match Venv::ensure(&root) {
        Ok(venv) => {
            report.record(
                "python tools (.venv-deploy from requirements-deploy.txt)",
                Outcome::Pass(String::new()),
            );
            Some(venv)
        }
        Err(err) => {
            report.record(
                "python tools (.venv-deploy from requirements-deploy.txt)",
                Outcome::Fail(format!("{err:#}")),
            );
            None
        }
    };
    let configs = load_configs(&root);
    if let Err(err) = &configs {
        report.record(
            "service declarations (libs/declarations)",
            Outcome::Fail(format!("{err:#}")),
        );
    }

    match &venv {
        Some(venv) => report.record_result("yamllint infra/ k8s/", yamllint(&root, venv)),
        None => report.record(
            "yamllint infra/ k8s/",
            Outcome::Fail("needs .venv-deploy".to_owned()),
        ),
    }

    let renders = if kubectl {
        let result = kube::render_all(&root, &scratch);
        let renders = result
            .as_ref()
            .map(|(renders, _)| renders.clone())
            .unwrap_or_default();
        report.record_result(
            "kubectl kustomize: every overlay × component combination",
            result.map(|(_, outcome)| outcome),
        );
        renders
    } else {
        report.record(
            "kubectl kustomize: every overlay × component combination",
            Outcome::Fail(
                "kubectl not found: install kubectl 1.27 or newer (it embeds kustomize)".to_owned(),
            ),
        );
        Vec::new()
    };

    if let Some(venv) = &venv {
        let vendored = crd_schemas::vendored(&root, venv);
        for version in kube::KUBERNETES_VERSIONS {
            report.record_result(
                &format!("kubernetes-validate --strict, Kubernetes {version}"),
                vendored
                    .as_ref()
                    .map_err(|err| anyhow::anyhow!("{err:#}"))
                    .and_then(|vendored| kube::validate_schemas(venv, &renders, version, vendored)),
            );
        }
        report.record_result(
            "custom resources against the vendored CRD schemas (xtask/schemas), their pins",
            crd_schemas::validate(&root, venv, &renders),
        );
        report.record_result(
            "data plane and autoscaling match terraform/modules/platform (metric sources, \
             operators, replicas, failover, disruption budgets, queues)",
            data_plane::run(&root, venv, &renders),
        );
        report.record_result(
            "data plane credentials and edge TLS (broker users and permissions, Redis ACL users, \
             Postgres verify-full, TLS listeners, generated grants)",
            credentials::run(&root, venv, &renders),
        );
        if let Ok((services, platform)) = &configs {
            report.record_result(
                "manifests match the services' declarations (images, ports, probes, variables, \
                 secrets, network policies)",
                kube::check_manifests(&root, venv, &renders, services, platform),
            );
            report.record_result(
                "local stack matches (compose, Prometheus, alert rules, dashboard, metric names)",
                check_local_stack(&root, venv, services, platform),
            );
        }
        report.record_result(
            "checkov: rendered manifests",
            checkov(
                venv,
                &root,
                &[
                    "--config-file",
                    "k8s/.checkov.yaml",
                    "--framework",
                    "kubernetes",
                    "--directory",
                    "target/deploy-check/rendered",
                ],
            ),
        );
        report.record_result(
            "checkov: Dockerfile",
            checkov(
                venv,
                &root,
                &[
                    "--skip-download",
                    "--compact",
                    "--quiet",
                    "--framework",
                    "dockerfile",
                    "--file",
                    "Dockerfile",
                ],
            ),
        );
        report.record_result(
            "checkov: terraform/",
            checkov(
                venv,
                &root,
                &[
                    "--config-file",
                    "terraform/.checkov.yaml",
                    "--directory",
                    "terraform",
                ],
            ),
        );
    }

    report.record_result(
        "image health check compiles (infra/docker/healthcheck.rs)",
        healthcheck(&root, &scratch),
    );

    repository::run(&root, venv.as_ref(), &mut report);

    if terraform_cli {
        terraform_steps::run(&root, &scratch, &mut report);
    } else {
        report.record(
            "terraform",
            Outcome::Fail("terraform not found: install Terraform 1.7 or newer".to_owned()),
        );
    }

    let passed = report.count(|o| matches!(o, Outcome::Pass(_)));
    let failed = report.count(|o| matches!(o, Outcome::Fail(_)));
    let skipped = report.count(|o| matches!(o, Outcome::Skip(_)));
    println!();
    println!("deploy-check summary ({:.0?}):", started.elapsed());
    for (step, outcome) in &report.steps {
        let (label, detail) = match outcome {
            Outcome::Pass(detail) => ("PASS", detail),
            Outcome::Fail(_) => ("FAIL", &String::new()),
            Outcome::Skip(detail) => ("SKIP", detail),
        };
        let detail = detail.lines().next().unwrap_or_default();
        if detail.is_empty() {
            println!("  {label}  {step}");
        } else {
            println!("  {label}  {step}: {detail}");
        }
    }
    println!("deploy-check: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        bail!("{failed} deploy check(s) failed (details above)");
    }
    Ok(())
}

fn load_configs(root: &Path) -> anyhow::Result<(Vec<ServiceConfig>, PlatformConfig)> {
    let platform = service_config::load_platform();
    let services = service_config::service_names(root)?
        .iter()
        .map(|name| service_config::load_service(name))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if services.is_empty() {
        bail!("no services under services/");
    }
    Ok((services, platform))
}

fn yamllint(root: &Path, venv: &Venv) -> anyhow::Result<Outcome> {
    let output = capture(Command::new(venv.bin("yamllint")).current_dir(root).args([
        "--config-file",
        "infra/yamllint.yaml",
        "--format",
        "parsable",
        "--strict",
        "infra",
        "k8s",
    ]))?;
    Ok(if output.status.success() {
        Outcome::Pass(String::new())
    } else {
        Outcome::Fail(combined(&output))
    })
}

fn rust_sources(dir: &Path, sources: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "target") {
                continue;
            }
            rust_sources(&path, sources)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            sources.push(
                fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            );
        }
    }
    Ok(())
}

fn check_local_stack(
    root: &Path,
    venv: &Venv,
    services: &[ServiceConfig],
    platform: &PlatformConfig,
) -> anyhow::Result<Outcome> {
    let first = |path: &str| -> anyhow::Result<Value> {
        tools::yaml_documents(venv, &root.join(path))?
            .into_iter()
            .next()
            .with_context(|| format!("{path} is empty"))
    };
    let external = BTreeSet::new();
    let context = Context {
        services,
        platform,
        external_secrets: &external,
    };
    let mut problems = Vec::new();
    problems.extend(local_stack::check_compose(
        &first("infra/compose.yaml")?,
        &context,
    ));
    problems.extend(local_stack::check_prometheus(
        &first("infra/prometheus/prometheus.yaml")?,
        services,
    ));
    problems.extend(local_stack::check_alert_rules(
        &first("infra/prometheus/alerts.yaml")?,
        &first("k8s/components/observability/prometheus-rule.yaml")?,
    ));
    let dashboard = fs::read_to_string(root.join("infra/grafana/dashboards/ferroshop.json"))
        .context("cannot read infra/grafana/dashboards/ferroshop.json")?;
    let dashboard_copy =
        fs::read_to_string(root.join("k8s/components/observability/grafana/ferroshop.json"))
            .context("cannot read k8s/components/observability/grafana/ferroshop.json")?;
    if dashboard != dashboard_copy {
        problems.push(
            "k8s/components/observability/grafana/ferroshop.json differs from \
             infra/grafana/dashboards/ferroshop.json: copy the latter over the former"
                .to_owned(),
        );
    }
    serde_json::from_str::<Value>(&dashboard).context("the Grafana dashboard is not valid JSON")?;
    let mut sources = Vec::new();
    rust_sources(&root.join("libs"), &mut sources)?;
    rust_sources(&root.join("services"), &mut sources)?;
    let recorded = local_stack::recorded_metrics(&sources);
    let alerts = fs::read_to_string(root.join("infra/prometheus/alerts.yaml"))?;
    problems.extend(local_stack::check_metric_names(
        &format!("{dashboard}\n{alerts}"),
        &recorded,
    ));
    Ok(if problems.is_empty() {
        Outcome::Pass(format!("{} metric names recorded in code", recorded.len()))
    } else {
        Outcome::Fail(problems.join("\n"))
    })
}

fn checkov(venv: &Venv, root: &Path, args: &[&str]) -> anyhow::Result<Outcome> {
    let output = capture(
        Command::new(venv.bin("checkov"))
            .current_dir(root)
            .args(args),
    )?;
    let text = combined(&output);
    let totals: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("Passed checks:"))
        .collect();
    let summary = totals.join("; ");
    Ok(if output.status.success() && !totals.is_empty() {
        Outcome::Pass(summary)
    } else if totals.is_empty() {
        Outcome::Fail(format!("checkov printed no result:\n{}", tail(&text, 30)))
    } else {
        Outcome::Fail(text)
    })
}

fn healthcheck(root: &Path, scratch: &Path) -> anyhow::Result<Outcome> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = capture(
        Command::new(rustc)
            .current_dir(root)
            .args(["--edition", "2024", "--crate-type", "bin", "-o"])
            .arg(scratch.join("healthcheck"))
            .arg("infra/docker/healthcheck.rs"),
    )?;
    Ok(if output.status.success() {
        Outcome::Pass(String::new())
    } else {
        Outcome::Fail(combined(&output))
    })
}
