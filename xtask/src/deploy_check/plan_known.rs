//! `for_each` keys and `count` values known at plan time.
//!
//! Terraform must know every resource's instance keys while planning; when a `for_each` map or
//! set (or a `count`) depends on something only known after apply, `terraform plan` stops with
//! "Invalid for_each argument" and the configuration cannot be applied in one go. Two ways to
//! get there, both seen in this repository:
//!
//! * **A data source read at apply time.** Terraform defers reading a data source to the apply
//!   when its arguments are not known yet (e.g. a `secret_generator` fed by `random_password`),
//!   when it has a `depends_on`, or when the module containing it is called with a module-level
//!   `depends_on` (every data source inside then waits for every change of the dependency).
//! * **Attributes of managed resources**, which are unknown until the resource is created.
//!
//! The rule walks each root module (`envs/*`) and every module it calls, and follows each
//! `for_each`/`count` expression through locals, variables (to the caller's argument), module
//! outputs and data sources until it finds only literals, functions of them, input variables
//! of the root, `path.*`, or `for_each` keys of other resources. Anything else is reported with
//! the chain that led to it.
//!
//! It is a static approximation: an attribute of a managed resource always counts as unknown
//! (even one copied from its configuration), only map *keys* matter for `for_each` (values may
//! be unknown), and modules from a registry are not followed.

use std::collections::BTreeSet;

use hcl_edit::{
    expr::{Expression, ObjectKey, TraversalOperator},
    structure::{Body, Structure},
    template::{HeredocTemplate, StringTemplate},
    visit::Visit,
};

use super::hcl::{Configuration, Declared, Module};

/// Functions whose result is only known at apply time.
const IMPURE_FUNCTIONS: &[&str] = &["timestamp", "uuid", "bcrypt"];

/// Functions that turn a collection's values into keys or elements: in key position their
/// arguments must be known entirely.
const KEYS_FROM_MAP_KEYS: &[&str] = &["merge", "tomap"];

/// Deep enough for any real chain of locals and modules; guards against reference cycles.
const MAX_DEPTH: usize = 64;

/// What part of a value must be known.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Only the keys (a map's keys; a set's or list's elements are all of it).
    Keys,
    /// The whole value.
    Value,
}

/// One module instance being analysed: the module, its address, and who called it how.
struct Scope<'a> {
    configuration: &'a Configuration,
    module: &'a Module,
    /// `module.app.` (empty for the root).
    address: String,
    /// The caller's scope and the `module` block that created this instance.
    caller: Option<(&'a Scope<'a>, &'a Declared)>,
    /// Why every data source of this instance is read at apply time, if it is.
    deferred: Option<String>,
}

/// Every `for_each` and `count` of every module instance reachable from `envs/*` whose value
/// is not known at plan, as sentences naming the chain.
pub fn check(configuration: &Configuration) -> Vec<String> {
    let mut problems = BTreeSet::new();
    for root in configuration.roots() {
        let scope = Scope {
            configuration,
            module: root,
            address: String::new(),
            caller: None,
            deferred: None,
        };
        scope.check_instance(&mut problems);
    }
    problems.into_iter().collect()
}

impl<'a> Scope<'a> {
    fn check_instance(&self, problems: &mut BTreeSet<String>) {
        let declared = self
            .module
            .resources
            .iter()
            .map(|((kind, name), d)| (format!("{kind}.{name}"), d))
            .chain(
                self.module
                    .data
                    .iter()
                    .map(|((kind, name), d)| (format!("data.{kind}.{name}"), d)),
            )
            .chain(
                self.module
                    .calls
                    .iter()
                    .map(|(name, d)| (format!("module.{name}"), d)),
            );
        for (name, block) in declared {
            for (argument, need) in [("for_each", Need::Keys), ("count", Need::Value)] {
                if let Some(expression) = block.attribute(argument)
                    && let Some(reason) = self.unknown(expression, need, &[], 0)
                {
                    problems.insert(format!(
                        "terraform/{}: {}{name}: {argument} is not known at plan ({reason}); {}",
                        block.file,
                        self.address,
                        advice(&reason)
                    ));
                }
            }
        }
        for (name, call) in &self.module.calls {
            if let Some(child) = self.child(name, call) {
                child.check_instance(problems);
            }
        }
    }

    /// The instance a `module` block creates, if its source is in this tree.
    fn child<'b>(&'b self, name: &str, call: &'b Declared) -> Option<Scope<'b>> {
        let module = self.configuration.called(self.module, call)?;
        let address = format!("{}module.{name}.", self.address);
        let deferred = self.deferred.clone().or_else(|| {
            call.attribute("depends_on").map(|_| {
                format!(
                    "{}module.{name} is called with a module-level depends_on (terraform/{}), \
                     which defers every data source inside it to apply time",
                    self.address, call.file
                )
            })
        });
        Some(Scope {
            configuration: self.configuration,
            module,
            address,
            caller: Some((self, call)),
            deferred,
        })
    }

    /// Why `expression` (the part `need` says) is not known at plan, or `None` if it is.
    /// `bound` are names of iteration variables in scope (`for` expressions, dynamic blocks).
    fn unknown(
        &self,
        expression: &Expression,
        need: Need,
        bound: &[String],
        depth: usize,
    ) -> Option<String> {
        if depth > MAX_DEPTH {
            return None;
        }
        let next = depth + 1;
        let all = |mut items: Box<dyn Iterator<Item = &Expression> + '_>, need: Need| {
            items.find_map(|item| self.unknown(item, need, bound, next))
        };
        match expression {
            Expression::Null(_)
            | Expression::Bool(_)
            | Expression::Number(_)
            | Expression::String(_) => None,
            Expression::Array(array) => all(Box::new(array.iter()), Need::Value),
            Expression::Object(object) => object.iter().find_map(|(key, value)| {
                let key_reason = match key {
                    ObjectKey::Ident(_) => None,
                    ObjectKey::Expression(key) => self.unknown(key, Need::Value, bound, next),
                };
                key_reason.or_else(|| {
                    (need == Need::Value)
                        .then(|| self.unknown(value.expr(), Need::Value, bound, next))
                        .flatten()
                })
            }),
            Expression::StringTemplate(template) => self.template_unknown(template, bound, next),
            Expression::HeredocTemplate(heredoc) => self.heredoc_unknown(heredoc, bound, next),
            Expression::Parenthesis(inner) => self.unknown(inner.inner(), need, bound, next),
            Expression::Variable(_) => None, // an iteration variable or `each`/`count`
            Expression::Conditional(conditional) => self
                .unknown(&conditional.cond_expr, Need::Value, bound, next)
                .or_else(|| self.unknown(&conditional.true_expr, need, bound, next))
                .or_else(|| self.unknown(&conditional.false_expr, need, bound, next)),
            Expression::UnaryOp(operation) => {
                self.unknown(&operation.expr, Need::Value, bound, next)
            }
            Expression::BinaryOp(operation) => self
                .unknown(&operation.lhs_expr, Need::Value, bound, next)
                .or_else(|| self.unknown(&operation.rhs_expr, Need::Value, bound, next)),
            Expression::FuncCall(call) => {
                let name = call.name.name.as_str();
                if IMPURE_FUNCTIONS.contains(&name) {
                    return Some(format!("{name}() is only known at apply"));
                }
                let arguments: Vec<&Expression> = call.args.iter().collect();
                match name {
                    // keys(m): only m's keys; zipmap(keys, values): the values may be unknown.
                    "keys" => all(Box::new(arguments.into_iter()), Need::Keys),
                    "zipmap" if need == Need::Keys => {
                        all(Box::new(arguments.into_iter().take(1)), Need::Value)
                    }
                    _ if KEYS_FROM_MAP_KEYS.contains(&name) => {
                        all(Box::new(arguments.into_iter()), need)
                    }
                    _ => all(Box::new(arguments.into_iter()), Need::Value),
                }
            }
            Expression::ForExpr(for_expr) => {
                let mut inner_bound = bound.to_vec();
                inner_bound.extend(for_expr.intro.key_var.iter().map(|k| k.as_str().to_owned()));
                inner_bound.push(for_expr.intro.value_var.as_str().to_owned());
                let key_var = for_expr
                    .intro
                    .key_var
                    .as_ref()
                    .map(|k| k.as_str().to_owned());
                // `{ for k, v in m : k => … }` keeps m's keys: only those must be known.
                let keys_only = need == Need::Keys
                    && for_expr.cond.is_none()
                    && key_var.is_some()
                    && for_expr.key_expr.as_ref().is_some_and(|key| {
                        matches!(key, Expression::Variable(v) if Some(v.as_str().to_owned()) == key_var)
                    });
                let collection_need = if keys_only { Need::Keys } else { Need::Value };
                self.unknown(
                    &for_expr.intro.collection_expr,
                    collection_need,
                    bound,
                    next,
                )
                .or_else(|| {
                    for_expr
                        .key_expr
                        .as_ref()
                        .and_then(|key| self.unknown(key, Need::Value, &inner_bound, next))
                })
                .or_else(|| {
                    for_expr
                        .cond
                        .as_ref()
                        .and_then(|cond| self.unknown(&cond.expr, Need::Value, &inner_bound, next))
                })
                .or_else(|| {
                    // An object's values do not matter for its keys; a tuple's do.
                    (need == Need::Value || for_expr.key_expr.is_none())
                        .then(|| {
                            self.unknown(&for_expr.value_expr, Need::Value, &inner_bound, next)
                        })
                        .flatten()
                })
            }
            Expression::Traversal(traversal) => {
                let indexes =
                    traversal
                        .operators
                        .iter()
                        .find_map(|operator| match operator.value() {
                            TraversalOperator::Index(index) => {
                                self.unknown(index, Need::Value, bound, next)
                            }
                            _ => None,
                        });
                let Expression::Variable(root) = &traversal.expr else {
                    return self
                        .unknown(&traversal.expr, Need::Value, bound, next)
                        .or(indexes);
                };
                let attributes: Vec<&str> = traversal
                    .operators
                    .iter()
                    .map_while(|operator| match operator.value() {
                        TraversalOperator::GetAttr(name) => Some(name.as_str()),
                        _ => None,
                    })
                    .collect();
                let whole_object = traversal.operators.len() == 1;
                self.reference(root.as_str(), &attributes, whole_object, need, bound, next)
                    .or(indexes)
            }
        }
    }

    /// Resolves `root.attributes…` (`var.x`, `local.x`, `data.t.n`, `module.m.o`, `t.n`).
    fn reference(
        &self,
        root: &str,
        attributes: &[&str],
        whole_object: bool,
        need: Need,
        bound: &[String],
        depth: usize,
    ) -> Option<String> {
        if bound.iter().any(|name| name == root) {
            return None;
        }
        match (root, attributes) {
            ("each" | "count" | "self" | "path" | "terraform", _) => None,
            ("var", [name, ..]) => {
                let (caller, call) = self.caller?;
                let argument = call.attribute(name)?;
                caller
                    .unknown(argument, need, &[], depth)
                    .map(|reason| format!("var.{name} of {}is {reason}", self.address_or_root()))
            }
            ("local", [name, ..]) => {
                let (_, expression) = self.module.locals.get(*name)?;
                self.unknown(expression, need, &[], depth)
                    .map(|reason| format!("local.{name} ← {reason}"))
            }
            ("data", [kind, name, ..]) => self.data_unknown(kind, name, depth),
            ("module", [name, rest @ ..]) => {
                let call = self.module.calls.get(*name)?;
                let child = self.child(name, call)?;
                let outputs: Vec<&Declared> = match rest.first() {
                    Some(output) => child.module.outputs.get(*output).into_iter().collect(),
                    None => child.module.outputs.values().collect(),
                };
                outputs.into_iter().find_map(|output| {
                    let value = output.attribute("value")?;
                    child
                        .unknown(value, need, &[], depth)
                        .map(|reason| format!("{}module.{name} output ← {reason}", self.address))
                })
            }
            (kind, [name, ..]) => {
                let resource = self
                    .module
                    .resources
                    .get(&(kind.to_owned(), (*name).to_owned()))?;
                if need == Need::Keys && whole_object {
                    // The instances of a resource with for_each are keyed like its for_each.
                    return match (resource.attribute("for_each"), resource.attribute("count")) {
                        (Some(keys), _) => self.unknown(keys, Need::Keys, &[], depth),
                        (None, Some(count)) => self.unknown(count, Need::Value, &[], depth),
                        (None, None) => None,
                    };
                }
                Some(format!(
                    "{}{kind}.{name}{} is known only after apply",
                    self.address,
                    attributes
                        .get(1)
                        .map(|attribute| format!(".{attribute}"))
                        .unwrap_or_default()
                ))
            }
            _ => None,
        }
    }

    fn address_or_root(&self) -> String {
        if self.address.is_empty() {
            "the root ".to_owned()
        } else {
            self.address.clone()
        }
    }

    /// Why a data source is read at apply time rather than during the plan.
    fn data_unknown(&self, kind: &str, name: &str, depth: usize) -> Option<String> {
        let data = self.module.data.get(&(kind.to_owned(), name.to_owned()))?;
        let this = format!("{}data.{kind}.{name}", self.address);
        if let Some(deferred) = &self.deferred {
            return Some(format!("{this} is read only at apply: {deferred}"));
        }
        if data.attribute("depends_on").is_some() {
            return Some(format!(
                "{this} has a depends_on, which defers it to apply while the dependency changes"
            ));
        }
        self.body_unknown(&data.block.body, &[], depth)
            .map(|reason| {
                format!(
                    "{this} is read only at apply, its arguments are not known at plan: {reason}"
                )
            })
    }

    /// Whether every argument of a block body (nested and dynamic blocks included) is known.
    fn body_unknown(&self, body: &Body, bound: &[String], depth: usize) -> Option<String> {
        body.iter().find_map(|structure| match structure {
            Structure::Attribute(attribute) => {
                if matches!(attribute.key.as_str(), "depends_on" | "provider") {
                    return None;
                }
                self.unknown(&attribute.value, Need::Value, bound, depth + 1)
            }
            Structure::Block(block) => {
                if block.ident.as_str() == "lifecycle" {
                    return None;
                }
                let mut inner = bound.to_vec();
                if block.ident.as_str() == "dynamic" {
                    // Its iterator is named by the label, or by `iterator = name`.
                    inner.extend(block.labels.iter().map(|label| label.as_str().to_owned()));
                    if let Some(Expression::Variable(iterator)) =
                        block.body.get_attribute("iterator").map(|a| &a.value)
                    {
                        inner.push(iterator.as_str().to_owned());
                    }
                }
                self.body_unknown(&block.body, &inner, depth + 1)
            }
        })
    }

    fn template_unknown(
        &self,
        template: &StringTemplate,
        bound: &[String],
        depth: usize,
    ) -> Option<String> {
        let mut visitor = Interpolations {
            scope: self,
            bound,
            depth,
            found: None,
        };
        hcl_edit::visit::visit_string_template(&mut visitor, template);
        visitor.found
    }

    fn heredoc_unknown(
        &self,
        heredoc: &HeredocTemplate,
        bound: &[String],
        depth: usize,
    ) -> Option<String> {
        let mut visitor = Interpolations {
            scope: self,
            bound,
            depth,
            found: None,
        };
        hcl_edit::visit::visit_heredoc_template(&mut visitor, heredoc);
        visitor.found
    }
}

/// Checks the expressions interpolated in a template (`"${…}"`), each as a whole value.
struct Interpolations<'s, 'a> {
    scope: &'s Scope<'a>,
    bound: &'s [String],
    depth: usize,
    found: Option<String>,
}

impl Visit for Interpolations<'_, '_> {
    fn visit_expr(&mut self, expression: &Expression) {
        if self.found.is_none() {
            self.found = self
                .scope
                .unknown(expression, Need::Value, self.bound, self.depth + 1);
        }
    }
}

/// What to do about it, by cause.
fn advice(reason: &str) -> &'static str {
    if reason.contains("module-level depends_on") {
        "order the module by value instead (pass what it must wait for as a variable and depend \
         on that inside), see terraform/modules/app/main.tf"
    } else if reason.contains("has a depends_on") {
        "drop the data source's depends_on; depend on values it reads instead"
    } else {
        "derive the keys from values known at plan (literals, files, input variables) and keep \
         apply-time values (generated passwords, keys, ids) in the map values or in resources \
         of their own"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy_check::workspace_root;

    fn configuration(pairs: &[(&str, &str)]) -> Configuration {
        let files: Vec<(String, String)> = pairs
            .iter()
            .map(|(file, text)| ((*file).to_owned(), (*text).to_owned()))
            .collect();
        Configuration::from_files(&files).unwrap()
    }

    /// The app module as it was: a secret_generator fed by generated values, and for_each over
    /// the kustomization's ids.
    const APP_WITH_GENERATED_LITERALS: &str = r#"
resource "random_password" "rabbitmq" { length = 32 }
variable "images" { default = {} }
data "kustomization_overlay" "ferroshop" {
  resources = ["${path.module}/../../../k8s/overlays/local"]
  dynamic "images" {
    for_each = var.images
    content {
      name    = "ferroshop/${images.key}"
      new_tag = images.value.tag
    }
  }
  secret_generator {
    name     = "rabbitmq-credentials"
    literals = ["password=${random_password.rabbitmq.result}"]
  }
}
resource "kustomization_resource" "p0" {
  for_each = data.kustomization_overlay.ferroshop.ids_prio[0]
  manifest = data.kustomization_overlay.ferroshop.manifests[each.value]
}
"#;

    /// The same module once fixed: the data source reads only known values.
    const APP_FIXED: &str = r#"
resource "random_password" "rabbitmq" { length = 32 }
variable "images" { default = {} }
variable "prerequisites" { default = [] }
resource "terraform_data" "prerequisites" { input = var.prerequisites }
data "kustomization_overlay" "ferroshop" {
  resources = ["${path.module}/../../../k8s/overlays/local"]
  dynamic "images" {
    for_each = var.images
    content {
      name = "ferroshop/${images.key}"
    }
  }
}
resource "kustomization_resource" "p0" {
  for_each   = data.kustomization_overlay.ferroshop.ids_prio[0]
  manifest   = data.kustomization_overlay.ferroshop.manifests[each.value]
  depends_on = [terraform_data.prerequisites]
}
resource "kustomization_resource" "secret" {
  manifest = jsonencode({ data = { password = base64encode(random_password.rabbitmq.result) } })
}
"#;

    const PLATFORM: &str = r#"
resource "helm_release" "cnpg" { name = "cnpg" }
output "ready" { value = [helm_release.cnpg.id] }
"#;

    fn root(app_call: &str) -> String {
        format!(
            r#"
locals {{
  services = sort([for manifest in fileset("${{path.root}}/../../../services", "*/Cargo.toml") : dirname(manifest)])
}}
module "platform" {{
  source = "../../modules/platform"
}}
module "app" {{
  source = "../../modules/app"
  images = {{ for service in local.services : service => {{ name = "ferroshop/${{service}}", tag = "dev" }} }}
{app_call}
}}
"#
        )
    }

    #[test]
    fn a_module_level_depends_on_that_defers_the_for_each_data_source_is_reported() {
        let found = check(&configuration(&[
            (
                "envs/local/main.tf",
                &root("  depends_on = [module.platform]"),
            ),
            ("modules/platform/main.tf", PLATFORM),
            ("modules/app/main.tf", APP_FIXED),
        ]));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("terraform/modules/app/main.tf: module.app.kustomization_resource.p0: for_each is not known at plan"),
            "{found:#?}"
        );
        assert!(
            found[0].contains(
                "module.app is called with a module-level depends_on (terraform/envs/local/main.tf)"
            ),
            "{found:#?}"
        );
        assert!(found[0].contains("order the module by value"), "{found:#?}");
    }

    #[test]
    fn for_each_keys_from_a_data_source_fed_by_generated_values_are_reported() {
        let found = check(&configuration(&[
            ("envs/local/main.tf", &root("")),
            ("modules/platform/main.tf", PLATFORM),
            ("modules/app/main.tf", APP_WITH_GENERATED_LITERALS),
        ]));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].contains("module.app.data.kustomization_overlay.ferroshop is read only at apply, its arguments are not known at plan: module.app.random_password.rabbitmq.result is known only after apply"),
            "{found:#?}"
        );
    }

    #[test]
    fn keys_known_at_plan_pass_and_values_may_be_unknown() {
        let found = check(&configuration(&[
            (
                "envs/local/main.tf",
                &root("  prerequisites = module.platform.ready"),
            ),
            ("modules/platform/main.tf", PLATFORM),
            ("modules/app/main.tf", APP_FIXED),
            (
                "modules/app/more.tf",
                r#"
variable "services" { default = ["a"] }
resource "aws_ecr_repository" "service" { for_each = toset(var.services) }
resource "aws_ecr_lifecycle_policy" "service" {
  for_each   = aws_ecr_repository.service
  repository = each.value.name
}
resource "x" "static_keys_unknown_values" {
  for_each = { password = random_password.rabbitmq.result }
}
resource "x" "counted" { count = length(var.services) > 0 ? 1 : 0 }
"#,
            ),
        ]));
        assert_eq!(found, Vec::<String>::new());
    }

    #[test]
    fn resource_attributes_and_impure_functions_in_keys_are_reported() {
        let found = check(&configuration(&[(
            "envs/x/main.tf",
            r#"
resource "random_id" "suffix" { byte_length = 2 }
resource "a" "by_id" { for_each = toset([random_id.suffix.hex]) }
resource "b" "by_time" { for_each = toset([timestamp()]) }
"#,
        )]));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found
                .iter()
                .any(|p| p.contains("random_id.suffix.hex is known only after apply"))
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("timestamp() is only known at apply"))
        );
    }

    #[test]
    fn the_repository_configuration_is_known_at_plan() {
        let configuration = Configuration::load(&workspace_root().join("terraform")).unwrap();
        assert!(configuration.modules.contains_key("modules/app"));
        assert_eq!(check(&configuration), Vec::<String>::new());
    }
}
