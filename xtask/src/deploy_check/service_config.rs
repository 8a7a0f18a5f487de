//! What the services' own code says about their configuration, read from the source so the
//! manifests can be checked against it:
//!
//! * `services/<name>/src/config.rs`: the `RuntimeDefaults` constant (ports), the doc table of
//!   `<SERVICE>_*` variables at the top, the setting names passed to `Env` in the code, and the
//!   settings read with `Env::secret` (which also accept `<NAME>_FILE`);
//! * `libs/platform/src/config.rs`: the settings every service shares (`<PREFIX>_GRPC_ADDR` …);
//! * `libs/platform/src/telemetry.rs`: the unprefixed variables (`LOG_FORMAT` …).
//!
//! The parsing is line-based and deliberately forgiving about layout; what it cannot find is
//! reported as an error rather than guessed.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

use anyhow::{Context as _, bail};

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
    /// Families of variables documented with a placeholder or a range, as (prefix, suffix):
    /// `GATEWAY_<SERVICE>_LB_STRATEGY`, or `GATEWAY_USERS_URLS` … `GATEWAY_PAYMENTS_URLS`.
    pub patterns: BTreeSet<(String, String)>,
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
            || self.patterns.iter().any(|(prefix, suffix)| {
                variable.len() > prefix.len() + suffix.len()
                    && variable.starts_with(prefix.as_str())
                    && variable.ends_with(suffix.as_str())
                    && is_variable_name(&variable[prefix.len()..variable.len() - suffix.len()])
            })
    }
}

/// The settings shared by every service and the unprefixed variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformConfig {
    /// Setting names without prefix: `GRPC_ADDR`, `DATABASE_URL`, …
    pub runtime_settings: BTreeSet<String>,
    /// Unprefixed variables every service reads: `LOG_FORMAT`, `RUST_LOG`, …
    pub global_variables: BTreeSet<String>,
}

/// `RUST_LOG` is read by `tracing_subscriber::EnvFilter::try_from_default_env`, not by a literal
/// in our code, so it cannot be found by scanning.
const IMPLICIT_GLOBALS: &[&str] = &["RUST_LOG"];

pub fn load_platform(root: &Path) -> anyhow::Result<PlatformConfig> {
    let config = read(&root.join("libs/platform/src/config.rs"))?;
    let telemetry = read(&root.join("libs/platform/src/telemetry.rs"))?;
    let platform = PlatformConfig {
        runtime_settings: runtime_settings(&config),
        global_variables: global_variables(&telemetry),
    };
    if platform.runtime_settings.is_empty() {
        bail!(
            "found no `<PREFIX>_…` settings documented in libs/platform/src/config.rs; the parser \
             in xtask/src/deploy_check/service_config.rs needs updating"
        );
    }
    Ok(platform)
}

pub fn load_service(
    root: &Path,
    name: &str,
    platform: &PlatformConfig,
) -> anyhow::Result<ServiceConfig> {
    let path = root.join("services").join(name).join("src/config.rs");
    let source = read(&path)?;
    parse_service(name, &source, platform).with_context(|| format!("in {}", path.display()))
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

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn parse_service(
    name: &str,
    source: &str,
    platform: &PlatformConfig,
) -> anyhow::Result<ServiceConfig> {
    let prefix = name.to_ascii_uppercase().replace('-', "_");
    let rows = doc_table(source);
    let (ports, database) = if source.contains("RuntimeDefaults {") {
        runtime_defaults(source)?
    } else {
        (documented_ports(&rows, &prefix)?, None)
    };
    let code = non_test_code(source);
    let (mut variables, patterns) = doc_table_variables(&rows, &prefix);
    for setting in setting_literals(code) {
        variables.insert(format!("{prefix}_{setting}"));
    }
    // The shared settings apply to services built on platform's RuntimeConfig only.
    if code.contains("RuntimeConfig::from_env") {
        for setting in &platform.runtime_settings {
            variables.insert(format!("{prefix}_{setting}"));
        }
    }
    for setting in secret_settings(code) {
        variables.insert(format!("{prefix}_{setting}_FILE"));
    }
    Ok(ServiceConfig {
        name: name.to_owned(),
        prefix,
        ports,
        database,
        variables,
        patterns,
    })
}

/// `grpc_port: 50051, admin_port: 9101, database: "users"` inside `RuntimeDefaults { … }`.
fn runtime_defaults(source: &str) -> anyhow::Result<(BTreeMap<String, u16>, Option<String>)> {
    let Some(start) = source.find("RuntimeDefaults {") else {
        bail!("no `RuntimeDefaults {{ … }}` constant (the service's default ports)");
    };
    let body = &source[start + "RuntimeDefaults {".len()..];
    let body = body.split('}').next().unwrap_or_default();
    let mut ports = BTreeMap::new();
    let mut database = None;
    for field in body.split([',', '\n']) {
        let Some((key, value)) = field.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key == "database" {
            database = Some(value.trim().trim_matches('"').to_owned());
        } else if let Some(port_name) = key.strip_suffix("_port") {
            let value = value.trim().replace('_', "");
            let port: u16 = value
                .parse()
                .with_context(|| format!("`{key}: {value}` is not a port number"))?;
            ports.insert(port_name.to_owned(), port);
        }
    }
    if ports.is_empty() {
        bail!("`RuntimeDefaults` names no `…_port` field");
    }
    Ok((ports, database))
}

/// The source before the unit tests, so test fixtures do not count as settings.
fn non_test_code(source: &str) -> &str {
    source
        .find("#[cfg(test)]")
        .map_or(source, |index| &source[..index])
}

/// The cells of each `//! | … |` row of the doc table (header and separator rows included;
/// they contain no variables).
fn doc_table(source: &str) -> Vec<Vec<String>> {
    source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("//!"))
        .filter_map(|doc| doc.trim().strip_prefix('|'))
        .map(|row| row.split('|').map(|cell| cell.trim().to_owned()).collect())
        .collect()
}

/// The variables named in the first cell of each row that carry the service's prefix:
/// "`ORDERS_GRPC_ADDR` / `ORDERS_ADMIN_ADDR`" gives both. "`A_USERS_URLS` … `A_PAYMENTS_URLS`"
/// and "`A_<SERVICE>_LB_STRATEGY`" give families (prefix, suffix).
fn doc_table_variables(
    rows: &[Vec<String>],
    prefix: &str,
) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let own = format!("{prefix}_");
    let mut variables = BTreeSet::new();
    let mut patterns = BTreeSet::new();
    for row in rows {
        let Some(first_cell) = row.first() else {
            continue;
        };
        let tokens: Vec<&str> = backticked(first_cell)
            .filter(|token| token.starts_with(&own))
            .collect();
        for token in &tokens {
            if is_variable_name(token) {
                variables.insert((*token).to_owned());
            } else if let Some((before, rest)) = token.split_once('<')
                && let Some((_, after)) = rest.split_once('>')
            {
                patterns.insert((before.to_owned(), after.to_owned()));
            }
        }
        if (first_cell.contains('…') || first_cell.contains("...")) && tokens.len() == 2 {
            let (first, last) = (tokens[0], tokens[1]);
            let common_prefix: String = first
                .chars()
                .zip(last.chars())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect();
            let common_suffix: String = first
                .chars()
                .rev()
                .zip(last.chars().rev())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            // Cut at underscores, so the family is `A_` + word(s) + `_URLS`.
            let cut_prefix = common_prefix
                .rfind('_')
                .map_or(String::new(), |i| common_prefix[..=i].to_owned());
            let cut_suffix = common_suffix
                .find('_')
                .map_or(String::new(), |i| common_suffix[i..].to_owned());
            if cut_prefix.len() >= own.len() && !cut_suffix.is_empty() {
                patterns.insert((cut_prefix, cut_suffix));
            }
        }
    }
    (variables, patterns)
}

/// Ports from rows such as "| `GATEWAY_HTTP_ADDR` | `0.0.0.0:8080` |" (for a service without
/// `RuntimeDefaults`): the n-th `<PREFIX>_<NAME>_ADDR` of the first cell pairs with the n-th
/// address of the second.
fn documented_ports(rows: &[Vec<String>], prefix: &str) -> anyhow::Result<BTreeMap<String, u16>> {
    let own = format!("{prefix}_");
    let mut ports = BTreeMap::new();
    for row in rows {
        let (Some(names), Some(defaults)) = (row.first(), row.get(1)) else {
            continue;
        };
        let variables: Vec<&str> = backticked(names)
            .filter(|token| token.starts_with(&own) && token.ends_with("_ADDR"))
            .collect();
        let addresses: Vec<&str> = backticked(defaults).collect();
        for (variable, address) in variables.iter().zip(addresses) {
            let port_name =
                variable[own.len()..variable.len() - "_ADDR".len()].to_ascii_lowercase();
            let Some((_, port)) = address.rsplit_once(':') else {
                continue;
            };
            let port: u16 = port
                .parse()
                .with_context(|| format!("`{variable}` documents {address:?}, not host:port"))?;
            ports.insert(port_name, port);
        }
    }
    if ports.is_empty() {
        bail!(
            "no `RuntimeDefaults {{ … }}` constant and no `{prefix}_…_ADDR` row with a default \
             address in the doc table: the service's ports are unknown"
        );
    }
    Ok(ports)
}

fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// `SCREAMING_SNAKE` with at least two characters.
fn is_variable_name(token: &str) -> bool {
    token.len() >= 2
        && token.starts_with(|c: char| c.is_ascii_uppercase())
        && token
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// String literals that look like setting names: `env.string_or("REDIS_URL", …)`,
/// `bounded(env, "CACHE_TTL", …)`, `url("INVENTORY_URL", …)`.
fn setting_literals(code: &str) -> BTreeSet<String> {
    string_literals(code)
        .filter(|literal| is_variable_name(literal))
        .map(str::to_owned)
        .collect()
}

/// Settings read through `Env::secret("NAME")`, which also accepts `<NAME>_FILE`.
fn secret_settings(code: &str) -> BTreeSet<String> {
    let mut settings = BTreeSet::new();
    for (index, _) in code.match_indices(".secret(\"") {
        let rest = &code[index + ".secret(\"".len()..];
        if let Some(end) = rest.find('"') {
            let name = &rest[..end];
            if is_variable_name(name) {
                settings.insert(name.to_owned());
            }
        }
    }
    settings
}

/// The contents of `"…"` literals on each line (no escapes needed for setting names).
fn string_literals(code: &str) -> impl Iterator<Item = &str> {
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| line.split('"').skip(1).step_by(2))
}

/// "`<PREFIX>_GRPC_ADDR`" in the doc comments of `RuntimeConfig` → `GRPC_ADDR`.
fn runtime_settings(platform_config: &str) -> BTreeSet<String> {
    let mut settings = BTreeSet::new();
    for line in platform_config.lines() {
        if !line.trim_start().starts_with("///") {
            continue;
        }
        for token in backticked(line) {
            if let Some(setting) = token.strip_prefix("<PREFIX>_")
                && is_variable_name(setting)
            {
                settings.insert(setting.to_owned());
            }
        }
    }
    settings
}

/// `std::env::var("LOG_FORMAT")` in telemetry.rs, plus the ones read by libraries.
fn global_variables(telemetry: &str) -> BTreeSet<String> {
    let mut variables: BTreeSet<String> = IMPLICIT_GLOBALS
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    for (index, _) in telemetry.match_indices("env::var(\"") {
        let rest = &telemetry[index + "env::var(\"".len()..];
        if let Some(end) = rest.find('"') {
            let name = &rest[..end];
            if is_variable_name(name) {
                variables.insert(name.to_owned());
            }
        }
    }
    variables
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLATFORM_CONFIG: &str = r#"
pub struct RuntimeConfig {
    /// `<PREFIX>_GRPC_ADDR`: where the gRPC API listens.
    pub grpc_addr: SocketAddr,
    /// `<PREFIX>_ADMIN_ADDR`: where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    /// `<PREFIX>_QUEUE_PREFIX`: prepended to this service's queue names (empty by default).
    pub queue_prefix: String,
}
"#;

    const TELEMETRY: &str = r#"
        let log_format = match std::env::var("LOG_FORMAT").as_deref() {
            otlp_endpoint: std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
"#;

    const ORDERS: &str = r#"//! The orders service's configuration, from `ORDERS_*` environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ORDERS_GRPC_ADDR` / `ORDERS_ADMIN_ADDR` | `0.0.0.0:50053` / `0.0.0.0:9103` | ports |
//! | `ORDERS_INVENTORY_URL` | `http://127.0.0.1:50052` | the inventory participant, not `INVENTORY_URL` |
//! | `ORDERS_SAGA_RETRY_BASE` / `ORDERS_SAGA_RETRY_CAP` | `200ms` / `10s` | step retry backoff |

use platform::config::{ConfigError, Env, RuntimeConfig, RuntimeDefaults};

pub const DEFAULTS: RuntimeDefaults = RuntimeDefaults {
    grpc_port: 50053,
    admin_port: 9_103,
    database: "orders",
};

impl Config {
    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        // "COMMENTED_OUT" is not a setting
        let key = env.secret("SIGNING_KEY")?;
        Ok(Self {
            runtime: RuntimeConfig::from_env(env, DEFAULTS)?,
            inventory_url: url("INVENTORY_URL", "http://127.0.0.1:50052")?,
            call_timeout: positive("CALL_TIMEOUT", Duration::from_secs(2))?,
            reason: "expected a saga step such as reserve_stock".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    fn cases() { let _ = [("ORDERS_ONLY_IN_TESTS", "x")]; }
}
"#;

    fn platform() -> PlatformConfig {
        PlatformConfig {
            runtime_settings: runtime_settings(PLATFORM_CONFIG),
            global_variables: global_variables(TELEMETRY),
        }
    }

    fn orders() -> ServiceConfig {
        parse_service("orders", ORDERS, &platform()).unwrap()
    }

    #[test]
    fn ports_come_from_the_runtime_defaults() {
        let config = orders();
        assert_eq!(config.port("grpc"), Some(50053));
        assert_eq!(
            config.port("admin"),
            Some(9103),
            "digit separators are read"
        );
        assert_eq!(config.ports.len(), 2);
        assert_eq!(config.database.as_deref(), Some("orders"));
        assert_eq!(config.api_port_name(), Some("grpc"));
    }

    #[test]
    fn doc_table_rows_with_two_variables_give_both() {
        let config = orders();
        for variable in [
            "ORDERS_GRPC_ADDR",
            "ORDERS_ADMIN_ADDR",
            "ORDERS_SAGA_RETRY_BASE",
            "ORDERS_SAGA_RETRY_CAP",
        ] {
            assert!(config.reads(variable), "{variable}");
        }
        assert!(
            !config.reads("INVENTORY_URL"),
            "unprefixed names in the meaning column are not variables"
        );
    }

    #[test]
    fn settings_named_in_code_count_even_when_undocumented() {
        let config = orders();
        assert!(config.reads("ORDERS_CALL_TIMEOUT"));
        assert!(config.reads("ORDERS_INVENTORY_URL"));
    }

    #[test]
    fn shared_runtime_settings_apply_with_the_service_prefix() {
        let config = orders();
        assert!(config.reads("ORDERS_QUEUE_PREFIX"));
        assert!(!config.reads("USERS_QUEUE_PREFIX"));
    }

    #[test]
    fn secrets_also_accept_a_file_variant() {
        let config = orders();
        assert!(config.reads("ORDERS_SIGNING_KEY"));
        assert!(config.reads("ORDERS_SIGNING_KEY_FILE"));
        assert!(!config.reads("ORDERS_CALL_TIMEOUT_FILE"));
    }

    #[test]
    fn comments_tests_and_prose_are_not_settings() {
        let config = orders();
        assert!(!config.reads("ORDERS_COMMENTED_OUT"));
        assert!(!config.reads("ORDERS_ONLY_IN_TESTS"));
        assert!(!config.reads("ORDERS_ORDERS"));
        assert!(
            config
                .variables
                .iter()
                .all(|variable| variable.starts_with("ORDERS_")),
            "{:?}",
            config.variables
        );
    }

    #[test]
    fn globals_come_from_telemetry_and_the_log_filter() {
        let platform = platform();
        assert_eq!(
            platform.global_variables,
            ["LOG_FORMAT", "OTEL_EXPORTER_OTLP_ENDPOINT", "RUST_LOG"]
                .into_iter()
                .map(str::to_owned)
                .collect()
        );
        assert_eq!(
            platform.runtime_settings,
            ["ADMIN_ADDR", "GRPC_ADDR", "QUEUE_PREFIX"]
                .into_iter()
                .map(str::to_owned)
                .collect()
        );
    }

    #[test]
    fn a_service_without_defaults_is_an_error() {
        let err = parse_service("gateway", "//! nothing here\n", &platform()).unwrap_err();
        assert!(err.to_string().contains("RuntimeDefaults"), "{err}");
    }

    const GATEWAY: &str = r#"//! The gateway's configuration, from `GATEWAY_*` environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `GATEWAY_HTTP_ADDR` | `0.0.0.0:8080` | the public REST API |
//! | `GATEWAY_ADMIN_ADDR` | `0.0.0.0:9100` | `/healthz`, `/readyz`, `/metrics` |
//! | `GATEWAY_USERS_URLS` … `GATEWAY_PAYMENTS_URLS` | `http://127.0.0.1:50051` … `:50054` | endpoints |
//! | `GATEWAY_<SERVICE>_LB_STRATEGY` | `GATEWAY_LB_STRATEGY` | per-upstream override |

use platform::config::{ConfigError, Env};

impl Config {
    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let strategy = env.parse_or("LB_STRATEGY", Strategy::RoundRobin)?;
        let redis_url = env.string_or("REDIS_URL", "redis://127.0.0.1:6379");
    }
}
"#;

    #[test]
    fn a_service_without_runtime_defaults_documents_its_ports_in_the_table() {
        let config = parse_service("gateway", GATEWAY, &platform()).unwrap();
        assert_eq!(config.port("http"), Some(8080));
        assert_eq!(config.port("admin"), Some(9100));
        assert_eq!(config.database, None);
        assert!(
            !config.reads("GATEWAY_QUEUE_PREFIX"),
            "shared settings only for services built on RuntimeConfig"
        );
        assert!(config.reads("GATEWAY_REDIS_URL"));
        assert!(config.reads("GATEWAY_LB_STRATEGY"));
    }

    #[test]
    fn documented_families_match_every_member_and_nothing_else() {
        let config = parse_service("gateway", GATEWAY, &platform()).unwrap();
        for variable in [
            "GATEWAY_USERS_URLS",
            "GATEWAY_INVENTORY_URLS",
            "GATEWAY_PAYMENTS_URLS",
            "GATEWAY_ORDERS_LB_STRATEGY",
        ] {
            assert!(config.reads(variable), "{variable}");
        }
        for variable in [
            "GATEWAY_URLS",
            "GATEWAY__URLS",
            "GATEWAY_USERS_URL",
            "GATEWAY_lower_URLS",
        ] {
            assert!(!config.reads(variable), "{variable}");
        }
    }

    #[test]
    fn other_port_names_are_kept_for_services_that_have_them() {
        let source = "const D: RuntimeDefaults = RuntimeDefaults { http_port: 8080, admin_port: 9100, database: \"gateway\" };";
        let config = parse_service("gateway", source, &platform()).unwrap();
        assert_eq!(config.port("http"), Some(8080));
        assert_eq!(config.port("admin"), Some(9100));
        assert_eq!(config.port("grpc"), None);
        assert_eq!(config.api_port_name(), Some("http"));
    }

    #[test]
    fn the_real_services_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let platform = load_platform(&root).unwrap();
        for name in service_names(&root).unwrap() {
            let config = load_service(&root, &name, &platform).unwrap();
            assert!(config.port("admin").is_some(), "{name}: {config:?}");
            assert!(config.api_port_name().is_some(), "{name}: {config:?}");
            if config.database.is_some() {
                assert!(
                    config.reads(&format!("{}_DATABASE_URL", config.prefix)),
                    "{name}"
                );
            }
        }
    }
}
