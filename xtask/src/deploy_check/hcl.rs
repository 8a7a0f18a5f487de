//! Terraform configurations as data: every `*.tf` file of `terraform/modules/*` and
//! `terraform/envs/*`, parsed with hcl-edit (the HCL parser of the hcl-rs project) into the
//! blocks the deploy gate's Terraform rules reason about.
//!
//! A [`Configuration`] maps each module directory (relative to `terraform/`, e.g.
//! `modules/app`) to a [`Module`]: its variables, locals, outputs, managed resources, data
//! sources and module calls, each with the file it is declared in. Nothing is evaluated here:
//! `plan_known.rs` and `charts.rs` walk the expressions.

use std::{
    collections::BTreeMap,
    fs,
    path::{Component, Path, PathBuf},
};

use anyhow::Context as _;
use hcl_edit::{
    expr::Expression,
    structure::{Block, Body, Structure},
};

/// A block with the file that declares it (for messages).
#[derive(Debug, Clone)]
pub struct Declared {
    /// `terraform/`-relative path of the file, e.g. `modules/app/main.tf`.
    pub file: String,
    /// The block itself (`resource`, `data`, `module`, `variable`, `output`).
    pub block: Block,
}

impl Declared {
    /// The expression of a top-level attribute of the block (`for_each`, `source`, …).
    pub fn attribute(&self, name: &str) -> Option<&Expression> {
        self.block.body.get_attribute(name).map(|a| &a.value)
    }
}

/// One Terraform module: the `*.tf` files of one directory.
#[derive(Debug, Default)]
pub struct Module {
    /// Directory relative to `terraform/`, e.g. `envs/local`.
    pub dir: String,
    /// `variable "name"` blocks.
    pub variables: BTreeMap<String, Declared>,
    /// Every `locals { name = … }` entry, with the file declaring it.
    pub locals: BTreeMap<String, (String, Expression)>,
    /// `output "name"` blocks.
    pub outputs: BTreeMap<String, Declared>,
    /// `resource "type" "name"` blocks, keyed by (type, name).
    pub resources: BTreeMap<(String, String), Declared>,
    /// `data "type" "name"` blocks, keyed by (type, name).
    pub data: BTreeMap<(String, String), Declared>,
    /// `module "name"` blocks.
    pub calls: BTreeMap<String, Declared>,
}

/// Every module directory of a `terraform/` tree.
#[derive(Debug, Default)]
pub struct Configuration {
    pub modules: BTreeMap<String, Module>,
}

impl Configuration {
    /// Reads every directory under `terraform/modules/` and `terraform/envs/`.
    pub fn load(terraform_root: &Path) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        for dir in super::terraform::directories(terraform_root)? {
            let relative = relative_dir(terraform_root, &dir);
            for entry in
                fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
            {
                let path = entry?.path();
                if path.extension().is_some_and(|ext| ext == "tf") {
                    let text = fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let name = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_owned();
                    files.push((format!("{relative}/{name}"), text));
                }
            }
        }
        Self::from_files(&files)
    }

    /// Builds the configuration from `(terraform/-relative file path, text)` pairs: what
    /// [`Configuration::load`] reads, and what tests write inline.
    pub fn from_files(files: &[(String, String)]) -> anyhow::Result<Self> {
        let mut configuration = Self::default();
        for (file, text) in files {
            let dir = file.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned();
            let body: Body = hcl_edit::parser::parse_body(text)
                .map_err(|err| anyhow::anyhow!("terraform/{file}: {err}"))?;
            let module = configuration
                .modules
                .entry(dir.clone())
                .or_insert_with(|| Module {
                    dir,
                    ..Module::default()
                });
            module.add(file, &body);
        }
        Ok(configuration)
    }

    /// The module a `module` block of `caller` calls, when its `source` is a local path.
    pub fn called(&self, caller: &Module, call: &Declared) -> Option<&Module> {
        let Some(Expression::String(source)) = call.attribute("source") else {
            return None;
        };
        let source = source.as_str();
        if !(source.starts_with("./") || source.starts_with("../")) {
            return None; // a registry or remote module: not in this tree
        }
        self.modules
            .get(&normalize(&format!("{}/{source}", caller.dir)))
    }

    /// The root modules: `envs/*`.
    pub fn roots(&self) -> impl Iterator<Item = &Module> {
        self.modules
            .values()
            .filter(|module| module.dir.starts_with("envs/"))
    }
}

impl Module {
    fn add(&mut self, file: &str, body: &Body) {
        for structure in body.iter() {
            let Structure::Block(block) = structure else {
                continue;
            };
            let labels: Vec<&str> = block.labels.iter().map(|label| label.as_str()).collect();
            let declared = || Declared {
                file: file.to_owned(),
                block: block.clone(),
            };
            match (block.ident.as_str(), labels.as_slice()) {
                ("variable", [name]) => {
                    self.variables.insert((*name).to_owned(), declared());
                }
                ("output", [name]) => {
                    self.outputs.insert((*name).to_owned(), declared());
                }
                ("module", [name]) => {
                    self.calls.insert((*name).to_owned(), declared());
                }
                ("resource", [kind, name]) => {
                    self.resources
                        .insert(((*kind).to_owned(), (*name).to_owned()), declared());
                }
                ("data", [kind, name]) => {
                    self.data
                        .insert(((*kind).to_owned(), (*name).to_owned()), declared());
                }
                ("locals", []) => {
                    for attribute in block.body.attributes() {
                        self.locals.insert(
                            attribute.key.as_str().to_owned(),
                            (file.to_owned(), attribute.value.clone()),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

fn relative_dir(root: &Path, dir: &Path) -> String {
    dir.strip_prefix(root)
        .unwrap_or(dir)
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect::<Vec<_>>()
        .join("/")
}

/// `envs/local/../../modules/app` → `modules/app` (lexically, as Terraform resolves local
/// module sources).
fn normalize(path: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in PathBuf::from(path).components() {
        match component {
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

/// The string of a literal expression (`"0.26.1"`), if it is one.
pub fn literal(expression: &Expression) -> Option<&str> {
    match expression {
        Expression::String(text) => Some(text.as_str()),
        _ => None,
    }
}

/// `var.name` → `name`.
pub fn variable_reference(expression: &Expression) -> Option<&str> {
    let Expression::Traversal(traversal) = expression else {
        return None;
    };
    let Expression::Variable(root) = &traversal.expr else {
        return None;
    };
    match (root.as_str(), traversal.operators.as_slice()) {
        ("var", [operator]) => match operator.value() {
            hcl_edit::expr::TraversalOperator::GetAttr(name) => Some(name.as_str()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn files(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(file, text)| ((*file).to_owned(), (*text).to_owned()))
            .collect()
    }

    #[test]
    fn blocks_are_indexed_per_directory_and_module_sources_resolve() {
        let configuration = Configuration::from_files(&files(&[
            (
                "envs/local/main.tf",
                r#"
locals { services = ["a"] }
module "app" {
  source = "../../modules/app"
}
module "remote" {
  source = "terraform-aws-modules/eks/aws"
}
"#,
            ),
            (
                "modules/app/main.tf",
                r#"
variable "overlay" { default = "local" }
data "kustomization_overlay" "x" {}
resource "random_password" "p" { length = 1 }
output "n" { value = 1 }
"#,
            ),
        ]))
        .unwrap();
        let root = &configuration.modules["envs/local"];
        assert!(root.locals.contains_key("services"));
        let app = configuration.called(root, &root.calls["app"]).unwrap();
        assert_eq!(app.dir, "modules/app");
        assert!(configuration.called(root, &root.calls["remote"]).is_none());
        assert!(
            app.data
                .contains_key(&("kustomization_overlay".into(), "x".into()))
        );
        assert!(
            app.resources
                .contains_key(&("random_password".into(), "p".into()))
        );
        assert_eq!(app.variables["overlay"].file, "modules/app/main.tf");
        assert_eq!(
            configuration
                .roots()
                .map(|m| m.dir.as_str())
                .collect::<Vec<_>>(),
            ["envs/local"]
        );
    }

    #[test]
    fn literals_and_variable_references_are_recognised() {
        let literal_expr: Expression = "\"0.26.1\"".parse().unwrap();
        assert_eq!(literal(&literal_expr), Some("0.26.1"));
        let reference: Expression = "var.chart_version".parse().unwrap();
        assert_eq!(variable_reference(&reference), Some("chart_version"));
        let other: Expression = "local.chart_version".parse().unwrap();
        assert_eq!(variable_reference(&other), None);
    }
}
