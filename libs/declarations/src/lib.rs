//! What each service is, declared once.
//!
//! A service's name, ports, settings (name, default, meaning, secret or not, whether a deployment
//! must set it), its dependencies (database, broker, cache, upstreams) and who may call it are
//! written here, in one [`Service`] constant per service ([`users::USERS`], …), and everything
//! else reads them:
//!
//! | reader | what it takes |
//! |---|---|
//! | the service's `config.rs` | its default ports and database (`platform::config::RuntimeDefaults::declared`); a unit test checks that parsing reads exactly the declared settings (`platform::config::Env::check_declared`) |
//! | `cargo xtask up` | the ports and settings of the services it starts |
//! | `cargo xtask config-docs` | `docs/configuration.md`, every setting of every service (checked in CI) |
//! | the deploy gate | what each service reads, to check its manifests against: no unknown variable, every required one set, ports, probes |
//! | `cargo xtask new-service` | a new file here, and the ports already taken |
//!
//! The crate has no dependencies, so every tool can read it without building the services.

pub mod gateway;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod users;

/// Every service, in the order they start.
pub const ALL: &[&Service] = &[
    &users::USERS,
    &inventory::INVENTORY,
    &orders::ORDERS,
    &payments::PAYMENTS,
    &gateway::GATEWAY,
];

/// One service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The crate and directory name under `services/`, e.g. `payments`.
    pub name: &'static str,
    /// What its callers speak to it.
    pub api: Api,
    /// The local default of the API port (gRPC or HTTP).
    pub api_port: u16,
    /// The local default of the admin port (`/healthz`, `/readyz`, `/metrics`).
    pub admin_port: u16,
    /// Its own database (database per service), if it has one.
    pub database: Option<&'static str>,
    /// Built on `platform::config::RuntimeConfig`, so it also reads every [`RUNTIME`] setting.
    pub runtime: bool,
    /// Its own settings, without the prefix (`CALL_TIMEOUT` is read as `ORDERS_CALL_TIMEOUT`).
    pub settings: &'static [Setting],
    /// Publishes or consumes integration events through RabbitMQ.
    pub broker: bool,
    /// Uses Redis.
    pub cache: bool,
    /// The services it calls.
    pub upstreams: &'static [&'static str],
    /// The services that call it.
    pub callers: &'static [&'static str],
}

/// The protocol of a service's API port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Grpc,
    Http,
}

impl Api {
    /// The port's name in manifests and in the gate: `grpc` or `http`.
    pub const fn port_name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Http => "http",
        }
    }

    /// The setting that moves the port: `GRPC_ADDR` or `HTTP_ADDR`.
    pub const fn address_setting(self) -> &'static str {
        match self {
            Self::Grpc => "GRPC_ADDR",
            Self::Http => "HTTP_ADDR",
        }
    }
}

/// One setting, read as `<PREFIX>_<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Without the prefix. A `<SERVICE>` placeholder declares a family, one per upstream:
    /// `<SERVICE>_URLS` is read as `GATEWAY_USERS_URLS`, `GATEWAY_ORDERS_URLS`, ….
    pub name: &'static str,
    /// The default, as the docs show it (Markdown).
    pub default: &'static str,
    /// What it means (Markdown).
    pub meaning: &'static str,
    /// Read with `Env::secret`: from the variable, or from the file named by `<NAME>_FILE`; never
    /// put in a ConfigMap.
    pub secret: bool,
    /// Whether a deployment must set it.
    pub deploy: Deploy,
}

/// Whether a deployment must set a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deploy {
    /// The default is right in a cluster too.
    Optional,
    /// The default only works on a developer's machine (a `127.0.0.1` URL, a generated key, a
    /// path in the source tree): every Deployment sets it, and the deploy gate checks that.
    Required,
}

impl Setting {
    /// An optional, non-secret setting.
    pub const fn new(name: &'static str, default: &'static str, meaning: &'static str) -> Self {
        Self {
            name,
            default,
            meaning,
            secret: false,
            deploy: Deploy::Optional,
        }
    }

    /// The same setting, read as a secret.
    pub const fn secret(self) -> Self {
        Self {
            secret: true,
            ..self
        }
    }

    /// The same setting, which every deployment must set.
    pub const fn required(self) -> Self {
        Self {
            deploy: Deploy::Required,
            ..self
        }
    }

    /// Whether this is a family (`<SERVICE>_URLS`).
    pub fn is_family(&self) -> bool {
        self.name.contains('<')
    }

    /// Whether the setting name `read` (without prefix) is this setting, or one of its family.
    pub fn matches(&self, read: &str) -> bool {
        match self.name.split_once('<').zip(self.name.split_once('>')) {
            Some(((before, _), (_, after))) => {
                read.len() > before.len() + after.len()
                    && read.starts_with(before)
                    && read.ends_with(after)
                    && is_word(&read[before.len()..read.len() - after.len()])
            }
            None => read == self.name,
        }
    }
}

fn is_word(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The settings every service built on `platform::config::RuntimeConfig` reads. `{api}`,
/// `{admin}` and `{database}` in a default stand for the service's own.
pub const RUNTIME: &[Setting] = &[
    Setting::new("GRPC_ADDR", "`0.0.0.0:{api}`", "gRPC API"),
    Setting::new(
        "ADMIN_ADDR",
        "`0.0.0.0:{admin}`",
        "`/healthz`, `/readyz`, `/metrics`",
    ),
    Setting::new(
        "DATABASE_URL",
        "`postgres://postgres@127.0.0.1:5432/{database}`",
        "this service's own database; no other service reaches it. TLS through the URL: \
         `?sslmode=verify-full&sslrootcert=<CA file>` verifies the server against that CA \
         (Kubernetes: the CloudNativePG cluster's)",
    )
    .required(),
    Setting::new("DB_MAX_CONNECTIONS", "`10`", "pool size per replica"),
    Setting::new(
        "SHUTDOWN_GRACE",
        "`10s`",
        "how long in-flight work may take after SIGTERM",
    ),
    Setting::new(
        "AMQP_URL",
        "`amqp://guest:guest@127.0.0.1:5672/%2f`",
        "RabbitMQ: the outbox relay publishes here, consumers read here",
    )
    .required(),
    Setting::new(
        "EVENTS_EXCHANGE",
        "`shop.events`",
        "the topic exchange of integration events",
    ),
    Setting::new(
        "QUEUE_PREFIX",
        "*(empty)*",
        "prepended to this service's queue names; tests set a unique one",
    ),
    Setting::new(
        "QUEUE_EXPIRY",
        "*(unset: never)*",
        "delete this service's queues after this long without a consumer (`x-expires`, e.g. \
         `60s`); for tests' uniquely named queues, never set in production",
    ),
    Setting::new(
        "INBOX_RETENTION",
        "`14d`",
        "how long a consumed event's inbox row is kept, from the time in the event's id, before \
         its partition is dropped; at least `1h` (`messaging::inbox`)",
    ),
    Setting::new(
        "OUTBOX_RETENTION",
        "`7d`",
        "how long a published event stays in the outbox before its partition is dropped; a \
         partition holding an unpublished event stays (`messaging::outbox`)",
    ),
    Setting::new(
        "PARTITION_SPAN",
        "`1d`",
        "the span of one partition of the time-partitioned tables, at least `1h` (`partitions`)",
    ),
    Setting::new(
        "PARTITION_LOOKAHEAD",
        "`7d`",
        "how far ahead partitions are created, at least one span; past it, rows land in the \
         default partition (`partitions`)",
    ),
];

/// The mutual-TLS settings every service reads (`platform::tls`): the services for their gRPC
/// port and their clients, the gateway for its clients.
pub const TLS: &[Setting] = &[
    Setting::new(
        "TLS_CA",
        "*(unset: plaintext, with a warning)*",
        "PEM file: the CA bundle peers' certificates must chain to (mutual TLS, `platform::tls`)",
    ),
    Setting::new(
        "TLS_CERT",
        "*(unset)*",
        "PEM file: this service's certificate chain, its identity \
         `spiffe://ferroshop.local/ns/ferroshop/sa/<service>` as URI SAN",
    ),
    Setting::new(
        "TLS_KEY",
        "*(unset)*",
        "PEM file: the certificate's private key",
    ),
    Setting::new(
        "TLS",
        "*(unset)*",
        "`off`: plaintext gRPC on purpose, and no per-method authorization",
    ),
];

/// Unprefixed variables every service reads (`libs/platform/src/telemetry.rs`).
pub const GLOBAL: &[Setting] = &[
    Setting::new("LOG_FORMAT", "`pretty`", "`json` or `pretty` log lines"),
    Setting::new(
        "RUST_LOG",
        "`info`",
        "log filter (`tracing_subscriber::EnvFilter` syntax)",
    ),
    Setting::new(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "*(unset: no traces exported)*",
        "OTLP/gRPC endpoint traces are exported to",
    ),
];

impl Service {
    /// `SHIPPING` for `shipping`, `GIFT_CARDS` for `gift-cards`: the prefix of its settings.
    pub fn prefix(&self) -> String {
        self.name.to_ascii_uppercase().replace('-', "_")
    }

    /// Every setting it reads, without prefix: [`RUNTIME`] first when it is built on it, then
    /// [`TLS`], which every service reads, then its own.
    pub fn all_settings(&self) -> impl Iterator<Item = &'static Setting> + use<> {
        let runtime: &'static [Setting] = if self.runtime { RUNTIME } else { &[] };
        runtime.iter().chain(TLS).chain(self.settings.iter())
    }

    /// The declared setting the name `read` (without prefix) is, if any.
    pub fn setting(&self, read: &str) -> Option<&'static Setting> {
        self.all_settings().find(|setting| setting.matches(read))
    }

    /// Whether the full variable name `variable` is one this service reads, including the
    /// `<NAME>_FILE` twin of a secret.
    pub fn reads(&self, variable: &str) -> bool {
        let Some(setting) = variable
            .strip_prefix(&self.prefix())
            .and_then(|rest| rest.strip_prefix('_'))
        else {
            return false;
        };
        self.setting(setting).is_some()
            || setting
                .strip_suffix("_FILE")
                .and_then(|secret| self.setting(secret))
                .is_some_and(|declared| declared.secret)
    }

    /// A default with `{api}`, `{admin}` and `{database}` filled in.
    pub fn default_of(&self, setting: &Setting) -> String {
        setting
            .default
            .replace("{api}", &self.api_port.to_string())
            .replace("{admin}", &self.admin_port.to_string())
            .replace("{database}", self.database.unwrap_or(self.name))
    }

    /// The Markdown table of its settings: variable, default, meaning.
    pub fn settings_table(&self) -> String {
        let prefix = self.prefix();
        let mut table = String::from("| variable | default | meaning |\n|---|---|---|\n");
        for setting in self.all_settings() {
            let mut variable = format!("`{prefix}_{}`", setting.name);
            if setting.secret {
                variable.push_str(&format!(" / `{prefix}_{}_FILE`", setting.name));
            }
            let mut meaning = setting.meaning.to_owned();
            if setting.deploy == Deploy::Required {
                meaning.push_str(" (every deployment sets it)");
            }
            table.push_str(&format!(
                "| {variable} | {} | {meaning} |\n",
                self.default_of(setting)
            ));
        }
        table
    }
}

/// `docs/configuration.md`: every setting of every service, generated from the declarations
/// (`cargo xtask config-docs` writes it; a test of this crate checks it is current).
pub fn configuration_markdown(services: &[&Service]) -> String {
    let mut doc = String::from(
        "# Configuration\n\n\
         <!-- Generated from libs/declarations by `cargo xtask config-docs`; edit the \
         declarations, not this file. -->\n\n\
         Every service reads its settings from environment variables prefixed with its name. \
         Each has a default that works on a developer's machine, so `cargo xtask up` needs no \
         setup; a value that is present but invalid stops the service at start with an error \
         naming the variable. A secret can also be given as a file (`<NAME>_FILE`, the \
         Kubernetes mounted-secret convention). Settings marked \"every deployment sets it\" \
         have defaults that only work locally; the deploy gate checks that the manifests set \
         them.\n\n## Every service\n\n| variable | default | meaning |\n|---|---|---|\n",
    );
    for setting in GLOBAL {
        doc.push_str(&format!(
            "| `{}` | {} | {} |\n",
            setting.name, setting.default, setting.meaning
        ));
    }
    for service in services {
        doc.push_str(&format!("\n## {}\n\n", service.name));
        doc.push_str(&format!(
            "{} API on port {}, admin port {}",
            match service.api {
                Api::Grpc => "gRPC",
                Api::Http => "HTTP",
            },
            service.api_port,
            service.admin_port
        ));
        if let Some(database) = service.database {
            doc.push_str(&format!(", database `{database}`"));
        }
        if !service.upstreams.is_empty() {
            doc.push_str(&format!("; calls {}", service.upstreams.join(", ")));
        }
        if !service.callers.is_empty() {
            doc.push_str(&format!("; called by {}", service.callers.join(", ")));
        }
        doc.push_str(".\n\n");
        doc.push_str(&service.settings_table());
    }
    doc
}

/// The service called `name`, if declared.
pub fn find(name: &str) -> Option<&'static Service> {
    ALL.iter().copied().find(|service| service.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_ports_and_settings_are_unique() {
        let mut names = HashSet::new();
        let mut ports = HashSet::new();
        for service in ALL {
            assert!(names.insert(service.name), "{} twice", service.name);
            for port in [service.api_port, service.admin_port] {
                assert!(ports.insert(port), "{}: port {port} is taken", service.name);
            }
            let mut settings = HashSet::new();
            for setting in service.all_settings() {
                assert!(
                    settings.insert(setting.name),
                    "{}: {} declared twice",
                    service.name,
                    setting.name
                );
            }
        }
    }

    #[test]
    fn callers_and_upstreams_agree() {
        for service in ALL {
            for upstream in service.upstreams {
                let callee = find(upstream).unwrap_or_else(|| panic!("{upstream} is unknown"));
                assert!(
                    callee.callers.contains(&service.name),
                    "{} calls {upstream}, which does not list it as a caller",
                    service.name
                );
            }
            for caller in service.callers {
                let caller = find(caller).unwrap_or_else(|| panic!("{caller} is unknown"));
                assert!(caller.upstreams.contains(&service.name));
            }
        }
    }

    #[test]
    fn the_configuration_reference_is_generated_from_the_declarations() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == configuration_markdown(ALL),
            "docs/configuration.md is out of date: run `cargo xtask config-docs`"
        );
    }

    #[test]
    fn families_match_one_word_in_place_of_the_placeholder() {
        let family = Setting::new("<SERVICE>_URLS", "", "");
        assert!(family.matches("USERS_URLS"));
        assert!(family.matches("GIFT_CARDS_URLS"));
        assert!(!family.matches("_URLS"));
        assert!(!family.matches("USERS_URL"));
        assert!(Setting::new("CALL_TIMEOUT", "", "").matches("CALL_TIMEOUT"));
        assert!(gateway::GATEWAY.reads("GATEWAY_ORDERS_LB_STRATEGY"));
        assert!(gateway::GATEWAY.reads("GATEWAY_STREAM_TICKET_KEY_FILE"));
        assert!(!gateway::GATEWAY.reads("GATEWAY_CALL_TIMEOUT_FILE"));
        assert!(users::USERS.reads("USERS_DATABASE_URL"));
        assert!(!users::USERS.reads("ORDERS_DATABASE_URL"));
    }
}
