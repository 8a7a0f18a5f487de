//! Terraform: formatting, pinned versions, and `init -backend=false` + `validate` + `test` for
//! every directory whose providers can be installed here.
//!
//! Providers come only from a local filesystem mirror (this machine reaches no provider
//! registry): the gate writes its own CLI configuration that installs the mirrored providers
//! from the mirror and nothing else. A configuration needing any other provider cannot be
//! initialised, so it is reported as skipped, naming the providers, and the other checks
//! (fmt, pins, checkov) still cover it.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

/// `registry.terraform.io/hashicorp/aws` → the versions present in the mirror.
pub type Mirror = BTreeMap<String, Vec<String>>;

/// The provider requirements of one Terraform directory: source → version constraint.
pub type Requirements = BTreeMap<String, String>;

/// Reads `<mirror>/<host>/<namespace>/<type>/<version>/` directories.
pub fn read_mirror(path: &Path) -> Mirror {
    let mut mirror = Mirror::new();
    let subdirs = |dir: &Path| -> Vec<(String, PathBuf)> {
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|entry| entry.path().is_dir())
                    .filter_map(|entry| {
                        Some((entry.file_name().to_str()?.to_owned(), entry.path()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    for (host, host_dir) in subdirs(path) {
        for (namespace, namespace_dir) in subdirs(&host_dir) {
            for (kind, kind_dir) in subdirs(&namespace_dir) {
                let mut versions: Vec<String> =
                    subdirs(&kind_dir).into_iter().map(|(v, _)| v).collect();
                versions.sort();
                mirror.insert(format!("{host}/{namespace}/{kind}"), versions);
            }
        }
    }
    mirror
}

/// `hashicorp/aws` → `registry.terraform.io/hashicorp/aws`.
pub fn full_source(source: &str) -> String {
    if source.split('/').count() == 2 {
        format!("registry.terraform.io/{source}")
    } else {
        source.to_owned()
    }
}

/// The `required_providers` entries of every `*.tf` file in `dir` (not recursive).
pub fn requirements(dir: &Path) -> anyhow::Result<Requirements> {
    let mut all = Requirements::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("tf") {
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            all.extend(parse_required_providers(&text));
        }
    }
    Ok(all)
}

/// `source = "…"` / `version = "…"` pairs inside `required_providers { … }` blocks, written
/// over several lines or inline (`kind = { source = "tehcyx/kind", version = "0.11.0" }`).
/// Entries without a version map to an empty constraint.
pub fn parse_required_providers(text: &str) -> Requirements {
    let mut found = Requirements::new();
    let mut depth: Option<i32> = None;
    let mut source: Option<String> = None;
    let mut version: Option<String> = None;
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or_default().trim();
        let Some(current) = depth.as_mut() else {
            if code.starts_with("required_providers") && code.ends_with('{') {
                depth = Some(1);
            }
            continue;
        };
        if let Some(value) = assignment(code, "source") {
            source = Some(value);
        }
        if let Some(value) = assignment(code, "version") {
            version = Some(value);
        }
        *current += code.matches('{').count() as i32 - code.matches('}').count() as i32;
        if *current <= 1
            && let Some(provider) = source.take()
        {
            found.insert(provider, version.take().unwrap_or_default());
        }
        if *current <= 0 {
            depth = None;
            version = None;
        }
    }
    found
}

/// The string value of `key = "value"` anywhere in `code`, with `key` a whole word.
fn assignment(code: &str, key: &str) -> Option<String> {
    let mut search = code;
    while let Some(index) = search.find(key) {
        let before = search[..index].chars().next_back();
        let rest = &search[index + key.len()..];
        search = rest;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let Some(quoted) = value.trim_start().strip_prefix('"') else {
            continue;
        };
        return quoted.split('"').next().map(str::to_owned);
    }
    None
}

/// `1.2.3`: an exact pin, not a range.
pub fn is_exact_version(constraint: &str) -> bool {
    let constraint = constraint.trim().trim_start_matches('=').trim();
    let parts: Vec<&str> = constraint.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
}

/// Why a directory cannot be initialised here, or `None` when every provider is mirrored at
/// the pinned version.
pub fn uninstallable(requirements: &Requirements, mirror: &Mirror) -> Option<String> {
    let missing: Vec<String> = requirements
        .iter()
        .filter(|(source, version)| {
            let versions = mirror.get(&full_source(source));
            !versions.is_some_and(|versions| versions.iter().any(|v| v == *version))
        })
        .map(|(source, version)| format!("{source} {version}"))
        .collect();
    (!missing.is_empty()).then(|| {
        let available: Vec<String> = mirror
            .iter()
            .map(|(source, versions)| format!("{source} {}", versions.join("/")))
            .collect();
        format!(
            "needs {} (not downloadable here; mirror has {})",
            missing.join(", "),
            if available.is_empty() {
                "nothing".to_owned()
            } else {
                available.join(", ")
            }
        )
    })
}

/// The CLI configuration the gate's terraform runs use: mirrored providers from the mirror,
/// everything else from the registry (which fails offline, and is reported as skipped before
/// it is tried).
pub fn cli_config(mirror_path: &Path, mirror: &Mirror) -> String {
    let sources: Vec<String> = mirror
        .keys()
        .map(|source| format!("\"{source}\""))
        .collect();
    let list = sources.join(", ");
    format!(
        "# Generated by `cargo xtask deploy-check`; do not edit.\n\
         provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [{list}]\n  }}\n  direct {{\n    exclude = [{list}]\n  }}\n}}\n",
        mirror_path.display()
    )
}

/// The Terraform directories to check: every `modules/*` and `envs/*`.
pub fn directories(terraform_root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for group in ["modules", "envs"] {
        let parent = terraform_root.join(group);
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSIONS: &str = r#"
terraform {
  required_version = ">= 1.7.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
    kind = { source = "tehcyx/kind", version = "0.11.0" }
    helm = {
      # the chart installer
      source = "hashicorp/helm"
    }
  }
}

provider "kind" {}
resource "x" "y" { source = "not/a-provider" }
"#;

    #[test]
    fn required_providers_are_parsed_in_both_layouts() {
        let found = parse_required_providers(VERSIONS);
        assert_eq!(
            found,
            [
                ("hashicorp/aws".to_owned(), "5.100.0".to_owned()),
                ("hashicorp/helm".to_owned(), String::new()),
                ("tehcyx/kind".to_owned(), "0.11.0".to_owned()),
            ]
            .into()
        );
    }

    #[test]
    fn exact_versions_only() {
        assert!(is_exact_version("5.100.0"));
        assert!(is_exact_version("= 0.9.6"));
        for loose in ["~> 5.0", ">= 1.2.3", "5.100", "", "1.2.x"] {
            assert!(!is_exact_version(loose), "{loose}");
        }
    }

    #[test]
    fn only_fully_mirrored_directories_are_installable() {
        let mirror: Mirror = [(
            "registry.terraform.io/hashicorp/aws".to_owned(),
            vec!["5.100.0".to_owned()],
        )]
        .into();
        let aws_only: Requirements = [("hashicorp/aws".to_owned(), "5.100.0".to_owned())].into();
        assert_eq!(uninstallable(&aws_only, &mirror), None);
        let other_version: Requirements =
            [("hashicorp/aws".to_owned(), "5.99.0".to_owned())].into();
        assert!(uninstallable(&other_version, &mirror).is_some());
        let reason = uninstallable(&parse_required_providers(VERSIONS), &mirror).unwrap();
        assert!(reason.contains("tehcyx/kind 0.11.0"), "{reason}");
        assert!(reason.contains("hashicorp/helm"), "{reason}");
        assert!(!reason.contains("hashicorp/aws 5.100.0,"), "{reason}");
        assert!(
            reason.contains("mirror has registry.terraform.io/hashicorp/aws 5.100.0"),
            "{reason}"
        );
    }

    #[test]
    fn the_cli_configuration_installs_only_mirrored_providers_from_the_mirror() {
        let mirror: Mirror = [(
            "registry.terraform.io/hashicorp/aws".to_owned(),
            vec!["5.100.0".to_owned()],
        )]
        .into();
        let config = cli_config(Path::new("/opt/tf-plugins"), &mirror);
        assert!(config.contains("path    = \"/opt/tf-plugins\""));
        assert!(config.contains("include = [\"registry.terraform.io/hashicorp/aws\"]"));
        assert!(config.contains("exclude = [\"registry.terraform.io/hashicorp/aws\"]"));
    }
}
