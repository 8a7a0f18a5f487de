//! Custom resources validated against vendored CRD schemas.
//!
//! kubernetes-validate knows Kubernetes' own kinds only. The kinds whose operators
//! terraform/modules/platform installs and whose schemas are vendored in `xtask/schemas/`
//! (RabbitmqCluster, User, Permission, ScaledObject, TriggerAuthentication) are validated here
//! instead, strictly (an unknown field is an error), by `crd_validate.py` with the jsonschema
//! package of the gate's venv. Each schema file names, in its header, the platform variable that pins the operator
//! it comes from (`# pin: keda_chart_version = 2.16.0`); the pin must equal that variable's
//! default, so bumping an operator without its schema fails here.

use std::{collections::BTreeSet, fs, path::Path, process::Command};

use anyhow::Context as _;

use super::{
    Outcome,
    hcl::{self, Configuration},
    kube::Rendered,
    tools::{self, Venv, capture, combined, tail},
};

/// The vendored schemas, relative to the workspace root.
pub const SCHEMA_DIR: &str = "xtask/schemas";

/// The validator, run with the venv's Python.
const VALIDATOR: &str = include_str!("crd_validate.py");

/// `(apiVersion, kind)` of every vendored schema, e.g. `("keda.sh/v1alpha1", "ScaledObject")`.
pub fn vendored(root: &Path, venv: &Venv) -> anyhow::Result<BTreeSet<(String, String)>> {
    let mut kinds = BTreeSet::new();
    for path in schema_files(root)? {
        for crd in tools::yaml_documents(venv, &path)? {
            let group = crd["spec"]["group"].as_str().unwrap_or_default();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
            for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
                let version = version["name"].as_str().unwrap_or_default();
                kinds.insert((format!("{group}/{version}"), kind.to_owned()));
            }
        }
    }
    Ok(kinds)
}

fn schema_files(root: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let dir = root.join(SCHEMA_DIR);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The `# pin: <variable> = <version>` line of a schema file's header.
fn pin(text: &str) -> Option<(&str, &str)> {
    text.lines()
        .take_while(|line| line.starts_with('#'))
        .find_map(|line| line.strip_prefix("# pin:"))
        .and_then(|rest| rest.split_once('='))
        .map(|(variable, version)| {
            let version = version.split_whitespace().next().unwrap_or_default();
            (variable.trim(), version)
        })
}

/// Problems with the pins of the schema files (`(file name, text)`) against the platform
/// module's variables.
fn check_pins(files: &[(String, String)], configuration: &Configuration) -> Vec<String> {
    let variables = configuration
        .modules
        .get("modules/platform")
        .map(|module| &module.variables);
    let mut problems = Vec::new();
    for (file, text) in files {
        let Some((variable, version)) = pin(text) else {
            problems.push(format!(
                "{SCHEMA_DIR}/{file} has no `# pin: <variable> = <version>` header line"
            ));
            continue;
        };
        let default = variables
            .and_then(|variables| variables.get(variable))
            .and_then(|declared| declared.attribute("default"))
            .and_then(hcl::literal);
        if default != Some(version) {
            problems.push(format!(
                "{SCHEMA_DIR}/{file} is the schema of {variable} = {version}, but \
                 terraform/modules/platform pins {default:?}: vendor the schema of the pinned \
                 release (or pin the release of the schema)"
            ));
        }
    }
    problems
}

/// The gate step: every render's custom resources against the vendored schemas, and the
/// schemas' pins against the platform module.
pub fn validate(root: &Path, venv: &Venv, renders: &[Rendered]) -> anyhow::Result<Outcome> {
    if renders.is_empty() {
        return Ok(Outcome::Fail("nothing rendered to validate".to_owned()));
    }
    let mut files = Vec::new();
    for path in schema_files(root)? {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_owned();
        files.push((name, fs::read_to_string(&path)?));
    }
    let configuration = Configuration::load(&root.join("terraform"))?;
    let mut problems = check_pins(&files, &configuration);
    let output = capture(
        Command::new(venv.bin("python"))
            .arg("-c")
            .arg(VALIDATOR)
            .arg(root.join(SCHEMA_DIR))
            .args(renders.iter().map(|render| &render.yaml)),
    )?;
    let text = combined(&output);
    let mut checked = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("CHECKED ") {
            let mut parts = rest.split_whitespace();
            if let (Some(api_version), Some(kind)) = (parts.next(), parts.next()) {
                checked.insert(format!("{kind} ({api_version})"));
            }
        } else if line.starts_with("ERROR") {
            problems.push(line.to_owned());
        }
    }
    if !output.status.success() && problems.is_empty() {
        problems.push(tail(&text, 20));
    }
    Ok(if problems.is_empty() {
        Outcome::Pass(format!(
            "{} renders; {}",
            renders.len(),
            checked.into_iter().collect::<Vec<_>>().join(", ")
        ))
    } else {
        Outcome::Fail(problems.join("\n"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy_check::workspace_root;

    fn platform(default: &str) -> Configuration {
        let text = format!("variable \"keda_chart_version\" {{\n  default = \"{default}\"\n}}\n");
        Configuration::from_files(&[("modules/platform/variables.tf".to_owned(), text)]).unwrap()
    }

    #[test]
    fn a_schema_of_another_release_than_the_pinned_one_is_reported() {
        let schema = "# upstream: kedacore/keda v2.16.0\n# pin: keda_chart_version = 2.16.0 (x)\n\
                      apiVersion: apiextensions.k8s.io/v1\n";
        let files = vec![("keda.yaml".to_owned(), schema.to_owned())];
        assert_eq!(
            check_pins(&files, &platform("2.16.0")),
            Vec::<String>::new()
        );
        let problems = check_pins(&files, &platform("2.17.0"));
        assert!(
            problems.len() == 1 && problems[0].contains("pins Some(\"2.17.0\")"),
            "{problems:#?}"
        );
        let unpinned = vec![("keda.yaml".to_owned(), "apiVersion: v1\n".to_owned())];
        assert!(check_pins(&unpinned, &platform("2.16.0"))[0].contains("no `# pin:"));
    }

    /// Runs the validator with the machine's Python (it needs jsonschema and PyYAML, which the
    /// gate's venv has; `PYTHON` may name that venv's interpreter).
    fn validate_text(render: &str) -> String {
        let dir = std::env::temp_dir().join(format!("crd-schemas-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("render.yaml");
        fs::write(&file, render).unwrap();
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let output = Command::new(python)
            .arg("-c")
            .arg(VALIDATOR)
            .arg(workspace_root().join(SCHEMA_DIR))
            .arg(&file)
            .output()
            .unwrap();
        combined(&output)
    }

    #[test]
    fn a_custom_resource_that_breaks_its_vendored_schema_is_reported() {
        let good = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: orders}\n\
                    spec:\n  scaleTargetRef: {name: orders}\n  minReplicaCount: 1\n  triggers:\n\
                    \x20   - type: cpu\n      metadata: {value: \"70\"}\n";
        let text = validate_text(good);
        assert!(
            text.contains("CHECKED keda.sh/v1alpha1 ScaledObject"),
            "{text}"
        );
        assert!(!text.contains("ERROR"), "{text}");

        // A misspelt field, a string where the schema wants an integer, a missing trigger type.
        let text = validate_text(&good.replace("minReplicaCount", "minReplicas"));
        assert!(
            text.contains("Additional properties are not allowed ('minReplicas'"),
            "{text}"
        );
        let text = validate_text(&good.replace("minReplicaCount: 1", "minReplicaCount: \"1\""));
        assert!(
            text.contains("spec.minReplicaCount: '1' is not of type 'integer'"),
            "{text}"
        );
        let text = validate_text(&good.replace("- type: cpu\n     ", "-"));
        assert!(text.contains("'type' is a required property"), "{text}");

        let cluster = "apiVersion: rabbitmq.com/v1beta1\nkind: RabbitmqCluster\nmetadata: {name: r}\n\
                       spec:\n  replicas: 3\n  rabbitmq:\n    additionalConfig: x\n    plugins: [a]\n";
        let text = validate_text(cluster);
        assert!(
            text.contains("RabbitmqCluster/r: spec.rabbitmq: Additional properties"),
            "{text}"
        );
    }

    #[test]
    fn the_vendored_schemas_match_the_real_pins() {
        let root = workspace_root();
        let files: Vec<(String, String)> = schema_files(&root)
            .unwrap()
            .into_iter()
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, fs::read_to_string(path).unwrap())
            })
            .collect();
        assert_eq!(files.len(), 5, "{files:?}");
        let configuration = Configuration::load(&root.join("terraform")).unwrap();
        assert_eq!(check_pins(&files, &configuration), Vec::<String>::new());
    }
}
