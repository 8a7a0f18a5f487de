//! Helm chart pins: every `helm_release` pins an exact chart version, and that version is one
//! the chart repository is known to serve, per `terraform/chart-versions.json`.
//!
//! Nothing here reaches a chart repository: the list is committed, with the date each chart's
//! versions were last read from its repository, and refreshed by the release step
//! (terraform/README.md, "Chart versions"). A pin missing from the list is either a typo or a
//! version that was never released; both fail `helm_release` only at apply time, after the
//! cluster was already created.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    hcl::{self, Configuration},
    terraform::is_exact_version,
};

/// The committed list, relative to the workspace root.
pub const VERSIONS_FILE: &str = "terraform/chart-versions.json";

/// One chart's entry in the list.
#[derive(Debug, PartialEq, Eq)]
struct Known {
    repository: String,
    chart: String,
    /// When the versions were read from the repository (YYYY-MM-DD).
    refreshed: String,
    versions: BTreeSet<String>,
}

/// `{"charts": [{"repository", "chart", "refreshed", "versions": [...]}]}`, or why not.
fn parse_list(list: &Value) -> Result<Vec<Known>, String> {
    let charts = list
        .get("charts")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{VERSIONS_FILE} has no `charts` array"))?;
    charts
        .iter()
        .map(|entry| {
            let text = |key: &str| {
                entry
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{VERSIONS_FILE}: an entry has no {key:?}: {entry}"))
            };
            let known = Known {
                repository: text("repository")?,
                chart: text("chart")?,
                refreshed: text("refreshed")?,
                versions: entry
                    .get("versions")
                    .and_then(Value::as_array)
                    .map(|versions| {
                        versions
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            if !is_date(&known.refreshed) {
                return Err(format!(
                    "{VERSIONS_FILE}: {} `refreshed` must be the date of the last refresh \
                     (YYYY-MM-DD), found {:?}",
                    known.chart, known.refreshed
                ));
            }
            Ok(known)
        })
        .collect()
}

fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2)
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Every problem with the chart pins of `configuration` against `list`.
pub fn check(configuration: &Configuration, list: &Value) -> Vec<String> {
    let known = match parse_list(list) {
        Ok(known) => known,
        Err(problem) => return vec![problem],
    };
    let mut problems = Vec::new();
    for module in configuration.modules.values() {
        for (name, variable) in &module.variables {
            if name.ends_with("_chart_version") {
                let default = variable.attribute("default").and_then(hcl::literal);
                // Some repositories tag their charts with a `v` (cert-manager's `v1.19.1`).
                let exact = |version: &str| is_exact_version(version.trim_start_matches('v'));
                if !default.is_some_and(exact) {
                    problems.push(format!(
                        "terraform/{}: variable {name} must default to an exact chart version, \
                         found {default:?}",
                        variable.file
                    ));
                }
            }
        }
        for ((kind, name), release) in &module.resources {
            if kind != "helm_release" {
                continue;
            }
            let at = format!("terraform/{}: helm_release.{name}", release.file);
            let version = match release.attribute("version") {
                None => {
                    problems.push(format!("{at} has no pinned chart version"));
                    continue;
                }
                Some(expression) => hcl::literal(expression).or_else(|| {
                    let variable = module.variables.get(hcl::variable_reference(expression)?)?;
                    variable.attribute("default").and_then(hcl::literal)
                }),
            };
            let Some(version) = version else {
                problems.push(format!(
                    "{at}: version must be a literal or a variable of this module with a literal \
                     default, so it can be checked"
                ));
                continue;
            };
            let chart = release.attribute("chart").and_then(hcl::literal);
            let repository = release.attribute("repository").and_then(hcl::literal);
            let (Some(chart), Some(repository)) = (chart, repository) else {
                problems.push(format!("{at}: chart and repository must be literals"));
                continue;
            };
            match known.iter().find(|k| {
                k.chart == chart
                    && k.repository.trim_end_matches('/') == repository.trim_end_matches('/')
            }) {
                None => problems.push(format!(
                    "{at}: chart {chart} of {repository} is not in {VERSIONS_FILE}: add it with \
                     its versions (terraform/README.md, \"Chart versions\")"
                )),
                Some(entry) if !entry.versions.contains(version) => problems.push(format!(
                    "{at}: {chart} {version} is not a version {repository} serves (known on {}: \
                     {}); pin one of those, or refresh {VERSIONS_FILE} if it was released since",
                    entry.refreshed,
                    entry
                        .versions
                        .iter()
                        .rev()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some(_) => {}
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::deploy_check::workspace_root;

    const PLATFORM: &str = r#"
variable "otel_chart_version" {
  type    = string
  default = "0.158.3"
}
variable "loose_chart_version" {
  default = "~> 1.0"
}
resource "helm_release" "otel" {
  repository = "https://open-telemetry.github.io/opentelemetry-helm-charts"
  chart      = "opentelemetry-collector"
  version    = var.otel_chart_version
  values = [yamlencode({
    version = "not the chart's"
  })]
}
resource "helm_release" "floating" {
  repository = "https://example.test/charts"
  chart      = "floating"
}
"#;

    fn list() -> Value {
        json!({"charts": [{
            "repository": "https://open-telemetry.github.io/opentelemetry-helm-charts",
            "chart": "opentelemetry-collector",
            "refreshed": "2026-12-01",
            "versions": ["0.158.0", "0.158.1", "0.158.2"],
        }]})
    }

    fn configuration(text: &str) -> Configuration {
        Configuration::from_files(&[("modules/platform/main.tf".to_owned(), text.to_owned())])
            .unwrap()
    }

    #[test]
    fn a_pin_the_repository_never_served_is_reported() {
        let found = check(&configuration(PLATFORM), &list());
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found.iter().any(|p| p.contains(
            "helm_release.otel: opentelemetry-collector 0.158.3 is not a version https://open-telemetry.github.io/opentelemetry-helm-charts serves (known on 2026-12-01: 0.158.2, 0.158.1, 0.158.0)"
        )), "{found:#?}");
        assert!(
            found
                .iter()
                .any(|p| p.contains("helm_release.floating has no pinned chart version")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("loose_chart_version must default to an exact chart version")),
            "{found:#?}"
        );
    }

    #[test]
    fn a_listed_pin_passes_and_the_list_needs_dates() {
        let fixed = PLATFORM
            .replace("0.158.3", "0.158.2")
            .replace("~> 1.0", "1.0.0")
            .replace(
                "chart      = \"floating\"",
                "chart      = \"floating\"\n  version = \"0.158.2\"",
            );
        let found = check(&configuration(&fixed), &list());
        assert_eq!(
            found,
            [
                "terraform/modules/platform/main.tf: helm_release.floating: chart floating of https://example.test/charts is not in terraform/chart-versions.json: add it with its versions (terraform/README.md, \"Chart versions\")"
            ]
        );
        let mut undated = list();
        undated["charts"][0]["refreshed"] = json!("last week");
        assert!(check(&configuration(&fixed), &undated)[0].contains("YYYY-MM-DD"));
    }

    #[test]
    fn the_repository_pins_are_all_listed() {
        let root = workspace_root();
        let list: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(VERSIONS_FILE)).unwrap())
                .unwrap();
        let configuration = Configuration::load(&root.join("terraform")).unwrap();
        assert_eq!(check(&configuration, &list), Vec::<String>::new());
    }
}
