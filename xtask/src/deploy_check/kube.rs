//! The Kubernetes steps: render every overlay × component combination with `kubectl
//! kustomize`, validate the renders against the Kubernetes schemas, and check them against the
//! services' code (`manifests.rs`).

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use hcl_edit::{
    expr::{Expression, Object, ObjectKey},
    visit::Visit,
};

use super::{
    Outcome,
    manifests::{self, Context, Render},
    service_config::{PlatformConfig, ServiceConfig},
    tools::{self, Venv, capture, combined, tail},
};

/// The Kubernetes versions the manifests run on: the kind node image's
/// (terraform/modules/cluster-kind) and the EKS cluster's (terraform/modules/cluster-eks).
pub const KUBERNETES_VERSIONS: &[&str] = &["1.32.0", "1.35.0"];

/// Custom resources the manifests use, whose schemas kubernetes-validate does not ship and that
/// have no vendored schema in xtask/schemas/ (those are validated by `crd_schemas.rs`): they are
/// applied after the platform installs their CRDs. Any other kind without a schema fails.
const ALLOWED_CRDS: &[(&str, &str)] = &[
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
];

/// One rendered combination.
#[derive(Clone)]
pub struct Rendered {
    pub name: String,
    pub yaml: PathBuf,
}

fn subdirectories_with_kustomization(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.join("kustomization.yaml").is_file()
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Every subset of `items`, the empty one first.
fn subsets(items: &[String]) -> Vec<Vec<String>> {
    (0..1_u32 << items.len())
        .map(|mask| {
            items
                .iter()
                .enumerate()
                .filter(|(index, _)| mask & (1 << index) != 0)
                .map(|(_, item)| item.clone())
                .collect()
        })
        .collect()
}

pub fn render_all(root: &Path, scratch: &Path) -> anyhow::Result<(Vec<Rendered>, Outcome)> {
    let overlays = subdirectories_with_kustomization(&root.join("k8s/overlays"))?;
    let components = subdirectories_with_kustomization(&root.join("k8s/components"))?;
    if overlays.is_empty() {
        bail!("no overlays under k8s/overlays");
    }
    let work = scratch.join("render");
    let out = scratch.join("rendered");
    for dir in [&work, &out] {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        fs::create_dir_all(dir)?;
    }
    let mut renders = Vec::new();
    let mut failures = String::new();
    for overlay in &overlays {
        for chosen in subsets(&components) {
            let name = std::iter::once(overlay.clone())
                .chain(chosen.iter().cloned())
                .collect::<Vec<_>>()
                .join("+");
            // target/deploy-check/render/<name>/ is four levels below the workspace root;
            // kustomize accepts only relative paths to other kustomizations.
            let mut kustomization = format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../../../k8s/overlays/{overlay}\n"
            );
            if !chosen.is_empty() {
                kustomization.push_str("components:\n");
                for component in &chosen {
                    let _ = writeln!(kustomization, "  - ../../../../k8s/components/{component}");
                }
            }
            let dir = work.join(&name);
            fs::create_dir_all(&dir)?;
            fs::write(dir.join("kustomization.yaml"), kustomization)?;
            let output = capture(Command::new("kubectl").arg("kustomize").arg(&dir))?;
            if !output.status.success() {
                let _ = writeln!(failures, "{name}: {}", tail(&combined(&output), 10));
                continue;
            }
            let yaml = out.join(format!("{name}.yaml"));
            fs::write(&yaml, &output.stdout)?;
            renders.push(Rendered { name, yaml });
        }
    }
    let names: Vec<&str> = renders.iter().map(|r| r.name.as_str()).collect();
    let outcome = if failures.is_empty() {
        Outcome::Pass(names.join(", "))
    } else {
        Outcome::Fail(failures)
    };
    Ok((renders, outcome))
}

/// `vendored`: the `(apiVersion, kind)` pairs whose schemas `crd_schemas.rs` checks instead.
pub fn validate_schemas(
    venv: &Venv,
    renders: &[Rendered],
    kubernetes_version: &str,
    vendored: &BTreeSet<(String, String)>,
) -> anyhow::Result<Outcome> {
    if renders.is_empty() {
        return Ok(Outcome::Fail("nothing rendered to validate".to_owned()));
    }
    let output = capture(
        Command::new(venv.bin("kubernetes-validate"))
            .args([
                "--strict",
                "--quiet",
                "--kubernetes-version",
                kubernetes_version,
            ])
            .args(renders.iter().map(|render| &render.yaml)),
    )?;
    let text = combined(&output);
    let mut errors = Vec::new();
    let mut unchecked = BTreeSet::new();
    for line in text.lines() {
        if let Some((kind, api_version)) = missing_schema(line) {
            if vendored.contains(&(api_version.to_owned(), kind.to_owned())) {
                // Validated against its vendored schema (crd_schemas.rs).
            } else if ALLOWED_CRDS.contains(&(api_version, kind)) {
                unchecked.insert(format!("{kind} ({api_version})"));
            } else {
                errors.push(format!(
                    "{line}\n  (a kind without a schema: vendor its CRD schema in xtask/schemas/ \
                     (crd_schemas.rs), or add it to ALLOWED_CRDS in xtask/src/deploy_check/kube.rs, \
                     only if the platform installs it)"
                ));
            }
        } else if line.starts_with("ERROR") || line.contains("did not validate") {
            errors.push(line.to_owned());
        }
    }
    if !output.status.success() && errors.is_empty() {
        errors.push(tail(&text, 20));
    }
    Ok(if errors.is_empty() {
        Outcome::Pass(format!(
            "{} renders; custom resources checked by kind only, no schema here: {}",
            renders.len(),
            unchecked.into_iter().collect::<Vec<_>>().join(", ")
        ))
    } else {
        Outcome::Fail(errors.join("\n"))
    })
}

/// "WARN f Couldn't find schema for kind Cluster with api version postgresql.cnpg.io/v1 …"
fn missing_schema(line: &str) -> Option<(&str, &str)> {
    let rest = line.split_once("Couldn't find schema for kind ")?.1;
    let (kind, rest) = rest.split_once(" with api version ")?;
    let api_version = rest.split_whitespace().next()?;
    Some((kind, api_version))
}

/// Secrets that terraform/modules/app creates: every object in it written as
/// `{ kind = "Secret", metadata = { name = "…" } }` (the manifests of its Secret resources).
fn external_secrets(app_module: &str) -> BTreeSet<String> {
    #[derive(Default)]
    struct Secrets(BTreeSet<String>);

    impl Visit for Secrets {
        fn visit_object(&mut self, object: &Object) {
            let field = |name: &str| {
                object.iter().find_map(|(key, value)| match key {
                    ObjectKey::Ident(ident) if ident.as_str() == name => Some(value.expr()),
                    _ => None,
                })
            };
            if let (Some(Expression::String(kind)), Some(Expression::Object(metadata))) =
                (field("kind"), field("metadata"))
                && kind.as_str() == "Secret"
            {
                self.0.extend(
                    metadata
                        .iter()
                        .find_map(|(key, value)| match (key, value.expr()) {
                            (ObjectKey::Ident(ident), Expression::String(name))
                                if ident.as_str() == "name" =>
                            {
                                Some(name.as_str().to_owned())
                            }
                            _ => None,
                        }),
                );
            }
            hcl_edit::visit::visit_object(self, object);
        }
    }

    let mut secrets = Secrets::default();
    if let Ok(body) = hcl_edit::parser::parse_body(app_module) {
        secrets.visit_body(&body);
    }
    secrets.0
}

pub fn check_manifests(
    root: &Path,
    venv: &Venv,
    renders: &[Rendered],
    services: &[ServiceConfig],
    platform: &PlatformConfig,
) -> anyhow::Result<Outcome> {
    if renders.is_empty() {
        return Ok(Outcome::Fail("nothing rendered to check".to_owned()));
    }
    let app_module =
        fs::read_to_string(root.join("terraform/modules/app/main.tf")).unwrap_or_default();
    let external = external_secrets(&app_module);
    let context = Context {
        services,
        platform,
        external_secrets: &external,
    };
    let mut problems = String::new();
    for service in services {
        if !root
            .join("k8s/base")
            .join(&service.name)
            .join("kustomization.yaml")
            .is_file()
        {
            let _ = writeln!(
                problems,
                "services/{} has no Kubernetes base: create k8s/base/{}/ (copy k8s/base/payments) \
                 and list it in k8s/base/kustomization.yaml",
                service.name, service.name
            );
        }
    }
    for render in renders {
        let docs = tools::yaml_documents(venv, &render.yaml)?;
        for problem in manifests::check(&Render::new(&docs), &context) {
            let _ = writeln!(problems, "[{}] {problem}", render.name);
        }
    }
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    Ok(if problems.is_empty() {
        Outcome::Pass(format!(
            "services {} in {} renders; external secrets: {}",
            names.join(", "),
            renders.len(),
            external.into_iter().collect::<Vec<_>>().join(", ")
        ))
    } else {
        Outcome::Fail(problems)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy_check::workspace_root;

    #[test]
    fn subsets_cover_every_combination_once() {
        let items = vec!["a".to_owned(), "b".to_owned()];
        let all = subsets(&items);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0], Vec::<String>::new());
        assert!(all.contains(&vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(subsets(&[]), vec![Vec::<String>::new()]);
    }

    #[test]
    fn missing_schema_warnings_are_parsed() {
        let line = "WARN /x/local.yaml Couldn't find schema for kind Cluster with api version \
                    postgresql.cnpg.io/v1 for kubernetes version 1.32";
        assert_eq!(
            missing_schema(line),
            Some(("Cluster", "postgresql.cnpg.io/v1"))
        );
        assert_eq!(missing_schema("INFO passed"), None);
    }

    #[test]
    fn generated_secrets_are_read_from_the_app_module() {
        let module = r#"
resource "kustomization_resource" "a" {
  manifest = sensitive(jsonencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = "rabbitmq-credentials", namespace = "ferroshop" }
    data       = { password = base64encode(random_password.x.result) }
  }))
}
resource "kustomization_resource" "b" {
  manifest = jsonencode({ kind = "ConfigMap", metadata = { name = "not-a-secret" } })
}
resource "kustomization_resource" "c" {
  manifest = jsonencode({
    kind     = "Secret"
    metadata = { name = "users-jwt" }
  })
}
"#;
        assert_eq!(
            external_secrets(module),
            ["rabbitmq-credentials".to_owned(), "users-jwt".to_owned()].into()
        );
    }

    #[test]
    fn the_real_app_module_generates_the_secrets_the_base_expects() {
        let module =
            fs::read_to_string(workspace_root().join("terraform/modules/app/main.tf")).unwrap();
        let secrets = external_secrets(&module);
        assert!(secrets.contains("users-jwt"), "{secrets:?}");
        assert!(secrets.contains("gateway-stream-ticket"), "{secrets:?}");
        // The broker's credentials come from the RabbitMQ Cluster Operator now.
        assert!(!secrets.contains("rabbitmq-credentials"), "{secrets:?}");
    }
}
