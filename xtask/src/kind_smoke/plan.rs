//! The smoke's steps, in order, and the tools it needs: decided before anything runs, so the
//! plan is testable without Docker.

use std::fmt::Write as _;

/// What the command line chose.
pub struct Options {
    /// Leave the cluster running afterwards: no destroy step.
    pub keep: bool,
}

/// One step of the smoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `docker build` of one service's image.
    Build { service: String },
    /// `terraform init` and selecting the smoke's own workspace.
    TerraformInit,
    /// `terraform apply` in terraform/envs/local.
    TerraformApply,
    /// Every workload, database cluster and Helm release ready.
    WaitForWorkloads,
    /// The customer journey through a port-forward to the gateway.
    Journey,
    /// `terraform destroy`.
    Destroy,
}

impl Step {
    pub fn label(&self) -> String {
        match self {
            Self::Build { service } => format!("docker build ferroshop/{service}"),
            Self::TerraformInit => "terraform init".to_owned(),
            Self::TerraformApply => "terraform apply (kind cluster, platform, app)".to_owned(),
            Self::WaitForWorkloads => "every workload ready (kubectl get …, helm list)".to_owned(),
            Self::Journey => "customer journey through the gateway (port-forward)".to_owned(),
            Self::Destroy => "terraform destroy".to_owned(),
        }
    }

    /// Whether the step runs even after an earlier one failed: destroying the cluster does,
    /// so a failed smoke leaves nothing behind.
    pub fn always_runs(&self) -> bool {
        matches!(self, Self::Destroy)
    }
}

/// The steps for `options`, building `services` in the order given.
pub fn steps<'a>(options: &Options, services: impl IntoIterator<Item = &'a str>) -> Vec<Step> {
    let mut steps: Vec<Step> = services
        .into_iter()
        .map(|service| Step::Build {
            service: service.to_owned(),
        })
        .collect();
    steps.extend([
        Step::TerraformInit,
        Step::TerraformApply,
        Step::WaitForWorkloads,
        Step::Journey,
    ]);
    if !options.keep {
        steps.push(Step::Destroy);
    }
    steps
}

/// A program the smoke runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Docker,
    Kind,
    Terraform,
    Kubectl,
    Helm,
}

impl Tool {
    /// The program and the arguments that prove it works.
    pub fn probe(self) -> (&'static str, &'static [&'static str]) {
        match self {
            // `docker info` needs the engine, not only the client.
            Self::Docker => ("docker", &["info"]),
            Self::Kind => ("kind", &["version"]),
            Self::Terraform => ("terraform", &["version"]),
            Self::Kubectl => ("kubectl", &["version", "--client"]),
            Self::Helm => ("helm", &["version"]),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Docker => {
                "a running Docker engine (`docker info` failed: no docker, or its daemon is not \
                 running or not reachable)"
            }
            Self::Kind => "kind (https://kind.sigs.k8s.io/; the provider and image loading use it)",
            Self::Terraform => "terraform 1.7 or newer",
            Self::Kubectl => "kubectl",
            Self::Helm => "helm 3 (lists the platform's releases)",
        }
    }
}

/// The refusal for the tools found missing, or `None` when all are there.
pub fn refusal(found: &[(Tool, bool)]) -> Option<String> {
    let missing: Vec<Tool> = found
        .iter()
        .filter(|(_, present)| !present)
        .map(|(tool, _)| *tool)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut message = String::from(
        "kind-smoke creates a real kind cluster and needs Docker, kind, terraform, kubectl and \
         helm; missing here:",
    );
    for tool in missing {
        let _ = write!(message, "\n  - {}", tool.describe());
    }
    message.push_str(
        "\nNothing was built or created. Without them, `cargo xtask deploy-check` checks the \
         same files offline.",
    );
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_image_is_built_before_the_apply_and_the_cluster_is_destroyed_last() {
        let plan = steps(&Options { keep: false }, ["users", "gateway"]);
        assert_eq!(
            plan,
            [
                Step::Build {
                    service: "users".into()
                },
                Step::Build {
                    service: "gateway".into()
                },
                Step::TerraformInit,
                Step::TerraformApply,
                Step::WaitForWorkloads,
                Step::Journey,
                Step::Destroy,
            ]
        );
        assert!(plan.iter().filter(|s| s.always_runs()).eq([&Step::Destroy]));
    }

    #[test]
    fn keep_leaves_the_cluster() {
        let plan = steps(&Options { keep: true }, ["users"]);
        assert_eq!(plan.last(), Some(&Step::Journey));
        assert!(!plan.contains(&Step::Destroy));
    }

    #[test]
    fn the_refusal_names_every_missing_tool_and_only_those() {
        assert_eq!(refusal(&[(Tool::Docker, true), (Tool::Kind, true)]), None);
        let message = refusal(&[
            (Tool::Docker, false),
            (Tool::Kind, true),
            (Tool::Terraform, true),
            (Tool::Kubectl, true),
            (Tool::Helm, false),
        ])
        .unwrap();
        assert!(message.contains("a running Docker engine"), "{message}");
        assert!(message.contains("helm 3"), "{message}");
        assert!(!message.contains("  - kind"), "{message}");
        assert!(
            message.contains("Nothing was built or created"),
            "{message}"
        );
    }
}
