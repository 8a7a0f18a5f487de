//! What each service reads, from its declaration in `libs/declarations` (name, ports, database,
//! settings), so the manifests can be checked against it. The services' own unit tests keep
//! those declarations equal to what their configuration code reads
//! (`reads_exactly_what_it_declares`), so nothing here looks at source text.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

use anyhow::{Context as _, bail};
use declarations::{Deploy, Service};

/// One service's configuration surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The crate directory name under `services/`, e.g. `users`.
    pub name: String,
    /// `USERS` for `users`.
    pub prefix: String,
    /// Named ports from `RuntimeDefaults`: `grpc_port: 50051` → `grpc` → 50051.
    pub ports: BTreeMap<String, u16>,
    /// `database: "users"` from `RuntimeDefaults`, when the service has a database.
    pub database: Option<String>,
    /// Every variable the service reads, full names (`USERS_GRPC_ADDR`, `USERS_JWT_TTL`, …).
    pub variables: BTreeSet<String>,
    /// Families of variables declared with a placeholder, as (prefix, suffix):
    /// `GATEWAY_<SERVICE>_LB_STRATEGY` → (`GATEWAY_`, `_LB_STRATEGY`).
    pub patterns: BTreeSet<(String, String)>,
    /// The settings every deployment must set ([`Deploy::Required`]).
    pub required: Vec<RequiredSetting>,
}

/// A setting a deployment must set: the variable (or, for a secret, its `_FILE` twin; for a
/// family, any member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredSetting {
    /// As declared, with the prefix: `ORDERS_INVENTORY_URL`, `GATEWAY_<SERVICE>_URLS`.
    pub variable: String,
    pub secret: bool,
}

impl RequiredSetting {
    /// Whether the container variable `name` sets it.
    pub fn set_by(&self, name: &str) -> bool {
        let name = match name.strip_suffix("_FILE") {
            Some(secret) if self.secret => secret,
            _ => name,
        };
        match family(&self.variable) {
            Some((prefix, suffix)) => matches_family(&prefix, &suffix, name),
            None => name == self.variable,
        }
    }
}

impl ServiceConfig {
    pub fn port(&self, name: &str) -> Option<u16> {
        self.ports.get(name).copied()
    }

    /// The name of the port clients call: `grpc` for the services, `http` for an HTTP edge.
    pub fn api_port_name(&self) -> Option<&str> {
        ["grpc", "http"]
            .into_iter()
            .find(|name| self.ports.contains_key(*name))
    }

    /// Whether `variable` is one this service reads.
    pub fn reads(&self, variable: &str) -> bool {
        self.variables.contains(variable)
            || self
                .patterns
                .iter()
                .any(|(prefix, suffix)| matches_family(prefix, suffix, variable))
    }
}

/// The unprefixed variables every service reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformConfig {
    /// Unprefixed variables every service reads: `LOG_FORMAT`, `RUST_LOG`, …
    pub global_variables: BTreeSet<String>,
}

/// [`declarations::GLOBAL`].
pub fn load_platform() -> PlatformConfig {
    PlatformConfig {
        global_variables: declarations::GLOBAL
            .iter()
            .map(|setting| setting.name.to_owned())
            .collect(),
    }
}

/// The declaration of the service in `services/<name>/`.
pub fn load_service(name: &str) -> anyhow::Result<ServiceConfig> {
    let Some(service) = declarations::find(name) else {
        bail!(
            "services/{name} has no declaration: add libs/declarations/src/{}.rs and list it in              declarations::ALL (what `cargo xtask new-service` does)",
            name.replace('-', "_")
        );
    };
    Ok(from_declaration(service))
}

/// What the gate needs to know of a declared service.
pub fn from_declaration(service: &Service) -> ServiceConfig {
    let prefix = service.prefix();
    let mut variables = BTreeSet::new();
    let mut patterns = BTreeSet::new();
    let mut required = Vec::new();
    for setting in service.all_settings() {
        let variable = format!("{prefix}_{}", setting.name);
        match family(&variable) {
            Some(pattern) => {
                patterns.insert(pattern);
            }
            None => {
                if setting.secret {
                    variables.insert(format!("{variable}_FILE"));
                }
                variables.insert(variable.clone());
            }
        }
        if setting.deploy == Deploy::Required {
            required.push(RequiredSetting {
                variable,
                secret: setting.secret,
            });
        }
    }
    let ports = BTreeMap::from([
        (service.api.port_name().to_owned(), service.api_port),
        ("admin".to_owned(), service.admin_port),
    ]);
    ServiceConfig {
        name: service.name.to_owned(),
        prefix,
        ports,
        database: service.database.map(str::to_owned),
        variables,
        patterns,
        required,
    }
}

/// The services of the checkout: every `services/<name>/Cargo.toml`, sorted.
pub fn service_names(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let dir = root.join("services");
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file()
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// `GATEWAY_<SERVICE>_URLS` → (`GATEWAY_`, `_URLS`); `None` for a plain name.
fn family(variable: &str) -> Option<(String, String)> {
    let (before, rest) = variable.split_once('<')?;
    let (_, after) = rest.split_once('>')?;
    Some((before.to_owned(), after.to_owned()))
}

/// Whether `variable` is `prefix` + one word + `suffix`.
fn matches_family(prefix: &str, suffix: &str, variable: &str) -> bool {
    variable.len() > prefix.len() + suffix.len()
        && variable.starts_with(prefix)
        && variable.ends_with(suffix)
        && is_variable_name(&variable[prefix.len()..variable.len() - suffix.len()])
}

/// `SCREAMING_SNAKE` with at least two characters.
fn is_variable_name(token: &str) -> bool {
    token.len() >= 2
        && token.starts_with(|c: char| c.is_ascii_uppercase())
        && token
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_gives_ports_variables_families_and_required_settings() {
        let gateway = load_service("gateway").unwrap();
        assert_eq!(gateway.port("http"), Some(8080));
        assert_eq!(gateway.port("admin"), Some(9100));
        assert_eq!(gateway.api_port_name(), Some("http"));
        assert_eq!(gateway.database, None);
        assert!(gateway.reads("GATEWAY_CALL_TIMEOUT"));
        assert!(gateway.reads("GATEWAY_STREAM_TICKET_KEY_FILE"));
        assert!(gateway.reads("GATEWAY_ORDERS_URLS"));
        assert!(!gateway.reads("GATEWAY_DATABASE_URL"), "no RuntimeConfig");
        let urls = gateway
            .required
            .iter()
            .find(|required| required.variable == "GATEWAY_<SERVICE>_URLS")
            .unwrap();
        assert!(urls.set_by("GATEWAY_USERS_URLS"));
        assert!(!urls.set_by("GATEWAY_URLS"));
        let ticket = gateway
            .required
            .iter()
            .find(|required| required.variable == "GATEWAY_STREAM_TICKET_KEY")
            .unwrap();
        assert!(ticket.set_by("GATEWAY_STREAM_TICKET_KEY_FILE"));

        let orders = load_service("orders").unwrap();
        assert_eq!(orders.port("grpc"), Some(50053));
        assert_eq!(orders.database.as_deref(), Some("orders"));
        assert!(
            orders.reads("ORDERS_QUEUE_PREFIX"),
            "a RuntimeConfig setting"
        );
        assert!(
            orders
                .required
                .iter()
                .any(|required| required.variable == "ORDERS_DATABASE_URL")
        );
    }

    #[test]
    fn a_service_without_a_declaration_is_reported_with_what_to_do() {
        let err = load_service("gift-cards").unwrap_err().to_string();
        assert!(err.contains("libs/declarations/src/gift_cards.rs"), "{err}");
    }

    #[test]
    fn the_platform_settings_come_from_the_declarations() {
        let platform = load_platform();
        assert!(platform.global_variables.contains("RUST_LOG"));
    }
}
