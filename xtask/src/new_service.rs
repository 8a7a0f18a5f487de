//! `cargo xtask new-service NAME [--port N] [--consumes EVENT...] [--expose] [--force]`: a new
//! service with the shape every service has, and its entries in every file that lists services.
//!
//! What it writes (docs/adding-a-service.md walks through it):
//!
//! | where | what |
//! |---|---|
//! | `services/NAME/` | the crate: `config.rs`, `domain/`, `store.rs` and a migration, `service.rs`, `grpc.rs`, `events.rs`, `error.rs`, `lib.rs`, `main.rs`; `tests/` with a spawn helper, an integration test and a process test |
//! | `proto/shop/NAME/v1/NAME.proto`, `proto/shop/events/v1/NAME.proto` | the gRPC contract (`shop.NAME.v1`) and the `<Name>RecordCreated` event |
//! | `libs/contracts`, `libs/messaging` | the contract's module, the event's catalog row, with `--consumes` the consumer's queue |
//! | `libs/declarations/src/NAME.rs` | its declaration (name, ports, database, settings, callers), listed in `declarations::ALL`; `docs/configuration.md` regenerated with it |
//! | `Cargo.toml`, `xtask/src/services.rs`, `xtask/src/infra.rs` | workspace member, its entry for `cargo xtask up`, its local database |
//! | `k8s/` | the base (Deployment, Services, HPA, PDB, NetworkPolicy, ServiceAccount, the identity Certificate, config), its database cluster and policy, the overlays' images, the metrics scrape policy |
//! | `infra/`, `.github/workflows/images.yml` | the compose service and database, the Prometheus targets, the image matrix row |
//! | with `--expose` | the gateway's upstream, one REST route documented in its OpenAPI, and the network policies between them |
//!
//! **Nothing or everything.** Every check runs, and every file is rendered, before anything is
//! written: a refusal (a name or port that is taken, a name that is not a valid crate, protobuf
//! package and DNS label, an unknown event, a dirty tree without `--force`, a file that no longer
//! looks the way the generator expects) leaves the tree exactly as it was.
//!
//! The templates are plain files under `xtask/templates/new-service/`, embedded at compile time,
//! with `{{placeholder}}`s and `{{#if flag}} … {{else}} … {{/if}}` blocks ([`render`]).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::services::SERVICES;

#[derive(clap::Args, Debug, Clone)]
pub struct NewServiceArgs {
    /// The service's name: lowercase letters, digits and single dashes, starting with a letter
    /// (`shipping`, `gift-cards`). It names the crate, the directory, the Kubernetes objects and
    /// the `shop.<name>.v1` package (dashes become underscores there and in `<NAME>_*` settings).
    pub name: String,
    /// The gRPC port (default: the next free one after the existing services'); the admin port
    /// follows the same plan (50055 → 9105).
    #[arg(long)]
    pub port: Option<u16>,
    /// Events to consume, by message name (`OrderConfirmed`): one queue bound to their routing
    /// keys, and a consumer that creates a record for each.
    #[arg(long, num_args = 1..)]
    pub consumes: Vec<String>,
    /// Make the service reachable through the gateway: an upstream and one REST route.
    #[arg(long)]
    pub expose: bool,
    /// Generate even though the git tree has uncommitted changes.
    #[arg(long)]
    pub force: bool,
}

/// One file to write: a new one, or a new version of one that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Relative to the workspace root.
    pub path: PathBuf,
    pub contents: String,
    pub creates: bool,
}

pub fn run(args: &NewServiceArgs) -> anyhow::Result<()> {
    let root = crate::deploy_check::workspace_root();
    if !args.force {
        require_clean_tree(&root)?;
    }
    let changes = plan(&root, args)?;
    write(&root, &changes)?;
    // Only what was written is formatted: other files of a tree generated into with --force
    // stay as they were.
    let rust: Vec<PathBuf> = changes
        .iter()
        .filter(|change| change.path.extension().is_some_and(|ext| ext == "rs"))
        .map(|change| root.join(&change.path))
        .collect();
    let formatted = Command::new("rustfmt")
        .current_dir(&root)
        .args(["--edition", "2024"])
        .args(&rust)
        .status();
    if !formatted.is_ok_and(|status| status.success()) {
        eprintln!(
            "new-service: rustfmt failed on the generated files; run `cargo fmt` before committing"
        );
    }
    let created = changes.iter().filter(|change| change.creates).count();
    println!(
        "new-service: {} created ({created} new files, {} changed):",
        args.name,
        changes.len() - created
    );
    for change in &changes {
        let what = if change.creates { "new" } else { "changed" };
        println!("  {what:>7}  {}", change.path.display());
    }
    println!(
        "next: cargo build -p {name} && cargo nextest run -p {name} && cargo xtask grants \
         && cargo xtask deploy-check (docs/adding-a-service.md: what to edit now)",
        name = args.name
    );
    Ok(())
}

/// Refuses to generate into a tree with uncommitted changes: the generated files should be
/// reviewable as one diff of their own.
fn require_clean_tree(root: &Path) -> anyhow::Result<()> {
    let output = Command::new("git")
        .current_dir(root)
        .args(["status", "--porcelain"])
        .output()
        .context("cannot run git status (pass --force to generate without a clean tree)")?;
    if !output.status.success() {
        bail!(
            "git status failed in {}: {} (pass --force to generate anyway)",
            root.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let dirty = String::from_utf8_lossy(&output.stdout);
    if !dirty.trim().is_empty() {
        let first: Vec<&str> = dirty.lines().take(5).collect();
        bail!(
            "refusing to generate into a tree with uncommitted changes (commit or stash them, or \
             pass --force):\n  {}",
            first.join("\n  ")
        );
    }
    Ok(())
}

fn write(root: &Path, changes: &[Change]) -> anyhow::Result<()> {
    for change in changes {
        let path = root.join(&change.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, &change.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The forms of a service's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `gift-cards`: crate, directory, binary, Kubernetes objects, routing keys.
    pub name: String,
    /// `gift_cards`: Rust module, protobuf package, database.
    pub snake: String,
    /// `GiftCards`: types (`GiftCardsService`).
    pub pascal: String,
    /// `GIFT_CARDS`: the settings' prefix.
    pub upper: String,
}

/// Words a name cannot be, although they are well-formed: Rust keywords (the crate would be
/// unusable) and the protobuf packages and modules that are not services.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "yield",
    "abstract",
    "become",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "typeof",
    "unsized",
    "virtual",
    "common",
    "events",
    "shop",
    "released",
    "test",
    "core",
    "std",
    "alloc",
    "proc_macro",
];

/// The longest name: the Kubernetes objects add suffixes (`-headless`, `-db-app`) and DNS
/// labels stop at 63 characters.
const MAX_NAME_LEN: usize = 30;

impl Names {
    /// Checks that `name` is a crate name, a DNS label and (with `_` for `-`) a protobuf package
    /// component and an identifier, and derives the other forms.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        let why = if name.len() < 2 || name.len() > MAX_NAME_LEN {
            Some(format!("must be 2 to {MAX_NAME_LEN} characters long"))
        } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            Some("must start with a lowercase letter (a-z)".to_owned())
        } else if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            Some(format!(
                "contains {bad:?}: only lowercase letters, digits and '-' are valid in a crate \
                 name, a DNS label and (as '_') a protobuf package"
            ))
        } else if name.ends_with('-') || name.contains("--") {
            Some("'-' must separate words: not at the end, not twice in a row".to_owned())
        } else if RESERVED.contains(&name.replace('-', "_").as_str()) {
            Some("is a reserved word (a Rust keyword or a non-service protobuf package)".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            bail!("{name:?} is not a valid service name: it {why}");
        }
        let snake = name.replace('-', "_");
        let pascal = name
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        Ok(Self {
            name: name.to_owned(),
            upper: snake.to_ascii_uppercase(),
            snake,
            pascal,
        })
    }
}

/// One row of `libs/messaging/src/catalog.rs`: `OrderConfirmed => "orders.order.confirmed",
/// "order", order_id;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEvent {
    pub message: String,
    pub routing_key: String,
    pub id_field: String,
}

/// The rows of the catalog's `integration_events! { … }` table.
pub fn catalog_events(catalog: &str) -> Vec<CatalogEvent> {
    let table = catalog
        .split_once("integration_events! {")
        .map_or("", |(_, rest)| rest.split('}').next().unwrap_or_default());
    table
        .lines()
        .filter_map(|line| {
            let (message, rest) = line.trim().split_once("=>")?;
            let fields: Vec<&str> = rest.trim().trim_end_matches(';').split(',').collect();
            let [key, _aggregate, id] = fields.as_slice() else {
                return None;
            };
            Some(CatalogEvent {
                message: message.trim().to_owned(),
                routing_key: key.trim().trim_matches('"').to_owned(),
                id_field: id.trim().to_owned(),
            })
        })
        .collect()
}

/// What a `--consumes` list means for the new service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Consumption {
    events: Vec<CatalogEvent>,
    /// `shipping.orders`: `<service>.<the producer>` (or `.events` for several producers).
    queue: String,
    /// `SHIPPING_ORDERS` in `messaging::topology`.
    queue_const: String,
    /// `ORDERS` in the service's `events.rs`.
    queue_alias: String,
    /// `OrderEvents`: the handler.
    consumer: String,
}

fn consumption(names: &Names, wanted: &[String], catalog: &str) -> anyhow::Result<Consumption> {
    let known = catalog_events(catalog);
    let mut events: Vec<CatalogEvent> = Vec::new();
    for message in wanted {
        let Some(event) = known.iter().find(|event| event.message == *message) else {
            let names: Vec<&str> = known.iter().map(|event| event.message.as_str()).collect();
            bail!(
                "--consumes {message}: no such event in libs/messaging/src/catalog.rs; known: {}",
                names.join(", ")
            );
        };
        if !events.contains(event) {
            events.push(event.clone());
        }
    }
    let producers: BTreeSet<&str> = events
        .iter()
        .filter_map(|event| event.routing_key.split('.').next())
        .collect();
    let (purpose, consumer) = match producers.iter().next() {
        Some(producer) if producers.len() == 1 => {
            let singular = producer.strip_suffix('s').unwrap_or(producer);
            (
                (*producer).to_owned(),
                format!("{}Events", Names::parse(singular)?.pascal),
            )
        }
        _ => ("events".to_owned(), "ConsumedEvents".to_owned()),
    };
    let purpose_upper = purpose.replace('-', "_").to_ascii_uppercase();
    Ok(Consumption {
        queue: format!("{}.{purpose}", names.name),
        queue_const: format!("{}_{purpose_upper}", names.upper),
        queue_alias: purpose_upper,
        consumer,
        events,
    })
}

/// Every port the repository already uses: the services' (`xtask/src/services.rs`, also each
/// replica's) and any number in the Kubernetes manifests after `port:`.
fn taken_ports(root: &Path) -> anyhow::Result<BTreeSet<u16>> {
    let mut ports = BTreeSet::new();
    for service in SERVICES {
        for index in 0..3 {
            let (api, admin) = service.ports(index);
            ports.extend([api, admin]);
        }
    }
    let mut files = Vec::new();
    yaml_files(&root.join("k8s"), &mut files)?;
    for file in files {
        let text =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        for line in text.lines() {
            let line = line.trim().trim_start_matches("- ");
            if let Some((key, value)) = line.split_once(':')
                && (key == "port" || key.ends_with("Port"))
                && let Ok(port) = value.trim().parse::<u16>()
            {
                ports.insert(port);
            }
        }
    }
    Ok(ports)
}

fn yaml_files(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            yaml_files(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(path);
        }
    }
    Ok(())
}

/// The gRPC and admin ports: `--port` or the first free one from 50051, and the admin port of
/// the same plan (`50050 + n` → `9100 + n`), or the first free one from 9101.
fn ports(requested: Option<u16>, taken: &BTreeSet<u16>) -> anyhow::Result<(u16, u16)> {
    let grpc = match requested {
        Some(port) if port < 1024 => {
            bail!("--port {port}: choose a port above 1023 (services run unprivileged)")
        }
        Some(port) if taken.contains(&port) => bail!(
            "--port {port} is taken (by a service in xtask/src/services.rs or a port in k8s/); \
             leave --port out to get the next free one"
        ),
        Some(port) => port,
        None => (50051..60000)
            .find(|port| !taken.contains(port))
            .context("no free gRPC port from 50051")?,
    };
    let planned = grpc
        .checked_sub(50050)
        .filter(|offset| (1..100).contains(offset))
        .map(|offset| 9100 + offset)
        .filter(|port| !taken.contains(port) && *port != grpc);
    let admin = match planned {
        Some(port) => port,
        None => (9101..10000)
            .find(|port| !taken.contains(port) && *port != grpc)
            .context("no free admin port from 9101")?,
    };
    Ok((grpc, admin))
}

/// The crates of the workspace and the dependencies it declares: a new crate may be neither.
fn taken_crate_names(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let manifest = read(root, "Cargo.toml")?;
    let mut names = BTreeSet::new();
    let members = manifest
        .split_once("members = [")
        .map_or("", |(_, rest)| rest.split(']').next().unwrap_or_default());
    for member in members.split(',') {
        let member = member.trim().trim_matches('"');
        if member.is_empty() {
            continue;
        }
        if let Ok(crate_manifest) = fs::read_to_string(root.join(member).join("Cargo.toml"))
            && let Some(name) = crate_manifest
                .lines()
                .find_map(|line| line.trim().strip_prefix("name = "))
        {
            names.insert(name.trim_matches('"').to_owned());
        }
    }
    if let Some((_, dependencies)) = manifest.split_once("[workspace.dependencies]") {
        let section = dependencies.split("\n[").next().unwrap_or_default();
        for line in section.lines() {
            if let Some((key, _)) = line.split_once('=')
                && !line.trim_start().starts_with('#')
            {
                names.insert(key.trim().to_owned());
            }
        }
    }
    Ok(names)
}

fn read(root: &Path, path: &str) -> anyhow::Result<String> {
    fs::read_to_string(root.join(path)).with_context(|| format!("cannot read {path}"))
}

/// Every refusal that needs only the name: a service, crate, package or module that exists.
fn refuse_taken_name(root: &Path, names: &Names) -> anyhow::Result<()> {
    let name = &names.name;
    let checks = [
        (
            root.join("services").join(name).exists(),
            format!("services/{name}/ exists"),
        ),
        (
            taken_crate_names(root)?.contains(name.as_str())
                || taken_crate_names(root)?.contains(names.snake.as_str()),
            format!("a crate or workspace dependency is called {name}"),
        ),
        (
            root.join("proto/shop").join(&names.snake).exists(),
            format!("the protobuf package shop.{}.v1 exists", names.snake),
        ),
        (
            root.join("proto/shop/events/v1")
                .join(format!("{}.proto", names.snake))
                .exists(),
            format!("proto/shop/events/v1/{}.proto exists", names.snake),
        ),
        (
            root.join("k8s/base").join(name).exists(),
            format!("k8s/base/{name}/ exists"),
        ),
        (
            read(root, "libs/contracts/src/lib.rs")?.contains(&format!("pub mod {} ", names.snake)),
            format!("libs/contracts already has a module {}", names.snake),
        ),
    ];
    let taken: Vec<&String> = checks
        .iter()
        .filter(|(taken, _)| *taken)
        .map(|(_, why)| why)
        .collect();
    if let Some(first) = taken.first() {
        bail!("the name {name:?} is taken: {first} (choose another name; nothing was written)");
    }
    Ok(())
}

/// Placeholder values and flags for [`render`].
#[derive(Debug, Default, Clone)]
pub struct Vars {
    pub values: BTreeMap<&'static str, String>,
    pub flags: BTreeSet<&'static str>,
}

/// Fills `{{key}}` placeholders and keeps or drops `{{#if flag}} … {{else}} … {{/if}}` and
/// `{{#unless flag}} … {{/unless}}` blocks (not nested). A tag alone on its line takes the line
/// with it. A placeholder without a value is an error, so a template cannot ship `{{typo}}`.
pub fn render(template: &str, vars: &Vars) -> anyhow::Result<String> {
    // Tags alone on a line: drop the line break with them.
    let mut text = String::with_capacity(template.len());
    for line in template.split_inclusive('\n') {
        let trimmed = line.trim();
        let is_tag =
            trimmed.starts_with("{{#") || trimmed.starts_with("{{/") || trimmed == "{{else}}";
        if is_tag && trimmed.ends_with("}}") && trimmed.matches("{{").count() == 1 {
            text.push_str(trimmed);
        } else {
            text.push_str(line);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("{{#") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let (kind, after) = if let Some(after) = after.strip_prefix("if ") {
            ("if", after)
        } else if let Some(after) = after.strip_prefix("unless ") {
            ("unless", after)
        } else {
            bail!(
                "unknown block tag at {:?}",
                &rest[start..start.saturating_add(20).min(rest.len())]
            );
        };
        let Some((flag, body)) = after.split_once("}}") else {
            bail!("unclosed block tag");
        };
        let close = format!("{{{{/{kind}}}}}");
        let Some((inner, tail)) = body.split_once(close.as_str()) else {
            bail!("{{{{#{kind} {flag}}}}} without {close}");
        };
        let (then, otherwise) = inner.split_once("{{else}}").unwrap_or((inner, ""));
        let on = vars.flags.contains(flag.trim());
        out.push_str(if on == (kind == "if") {
            then
        } else {
            otherwise
        });
        rest = tail;
    }
    out.push_str(rest);
    for (key, value) in &vars.values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(at) = out.find("{{") {
        let end = out[at..].find("}}").map_or(out.len(), |end| at + end + 2);
        let placeholder = &out[at..end];
        if placeholder.len() < 40 && !placeholder.contains(char::is_whitespace) {
            bail!("template placeholder {placeholder} has no value");
        }
    }
    Ok(out)
}

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("../templates/new-service/", $path))
    };
}

/// The crate, as (path under `services/NAME/`, template).
const CRATE: &[(&str, &str)] = &[
    ("Cargo.toml", template!("service/Cargo.toml")),
    ("build.rs", template!("service/build.rs")),
    ("src/main.rs", template!("service/src/main.rs")),
    ("src/lib.rs", template!("service/src/lib.rs")),
    ("src/config.rs", template!("service/src/config.rs")),
    ("src/domain/mod.rs", template!("service/src/domain/mod.rs")),
    ("src/error.rs", template!("service/src/error.rs")),
    ("src/store.rs", template!("service/src/store.rs")),
    ("src/service.rs", template!("service/src/service.rs")),
    ("src/grpc.rs", template!("service/src/grpc.rs")),
    ("src/events.rs", template!("service/src/events.rs")),
    (
        "tests/support/mod.rs",
        template!("service/tests/support/mod.rs"),
    ),
    ("tests/records.rs", template!("service/tests/records.rs")),
    ("tests/process.rs", template!("service/tests/process.rs")),
];

const MIGRATION: &str = include_str!("../templates/new-service/service/migrations/records.sql");

/// Its declaration: `libs/declarations/src/NAME.rs`.
const DECLARATION: &str = template!("declaration.rs");

/// The Kubernetes base, as (file under `k8s/base/NAME/`, template).
const K8S_BASE: &[(&str, &str)] = &[
    ("kustomization.yaml", template!("k8s/kustomization.yaml")),
    ("config.env", template!("k8s/config.env")),
    ("serviceaccount.yaml", template!("k8s/serviceaccount.yaml")),
    ("certificate.yaml", template!("k8s/certificate.yaml")),
    ("broker-user.yaml", template!("k8s/broker-user.yaml")),
    ("deployment.yaml", template!("k8s/deployment.yaml")),
    ("service.yaml", template!("k8s/service.yaml")),
    ("pdb.yaml", template!("k8s/pdb.yaml")),
    ("hpa.yaml", template!("k8s/hpa.yaml")),
    ("networkpolicy.yaml", template!("k8s/networkpolicy.yaml")),
];

const DATABASE: &str = include_str!("../templates/new-service/k8s/database.yaml");
const DATABASE_POLICY: &str =
    include_str!("../templates/new-service/k8s/database-networkpolicy.yaml");
const SERVICE_PROTO: &str = include_str!("../templates/new-service/proto/service.proto");
const EVENTS_PROTO: &str = include_str!("../templates/new-service/proto/events.proto");

/// Log colours for `cargo xtask up`, after the ones the existing services use.
const COLOURS: &[&str] = &[
    "\\x1b[91m",
    "\\x1b[92m",
    "\\x1b[93m",
    "\\x1b[94m",
    "\\x1b[95m",
    "\\x1b[96m",
];

/// Every file the new service needs, rendered, with every refusal checked first.
pub fn plan(root: &Path, args: &NewServiceArgs) -> anyhow::Result<Vec<Change>> {
    let names = Names::parse(&args.name)?;
    refuse_taken_name(root, &names)?;
    let (grpc_port, admin_port) = ports(args.port, &taken_ports(root)?)?;
    let catalog = read(root, "libs/messaging/src/catalog.rs")?;
    let consumption = if args.consumes.is_empty() {
        None
    } else {
        Some(consumption(&names, &args.consumes, &catalog)?)
    };
    let vars = vars(
        &names,
        grpc_port,
        admin_port,
        consumption.as_ref(),
        args.expose,
    );

    let mut changes = Changes::new(root);
    let service_dir = PathBuf::from("services").join(&names.name);
    for (path, template) in CRATE {
        changes.create(service_dir.join(path), render(template, &vars)?)?;
    }
    changes.create(
        service_dir
            .join("migrations")
            .join(format!("{}000001_records.sql", today())),
        render(MIGRATION, &vars)?,
    )?;
    changes.create(
        PathBuf::from("proto/shop")
            .join(&names.snake)
            .join("v1")
            .join(format!("{}.proto", names.snake)),
        render(SERVICE_PROTO, &vars)?,
    )?;
    changes.create(
        PathBuf::from("proto/shop/events/v1").join(format!("{}.proto", names.snake)),
        render(EVENTS_PROTO, &vars)?,
    )?;
    let base = PathBuf::from("k8s/base").join(&names.name);
    for (path, template) in K8S_BASE {
        changes.create(base.join(path), render(template, &vars)?)?;
    }
    changes.create(
        PathBuf::from("k8s/base/data/postgres").join(format!("{}-db.yaml", names.name)),
        render(DATABASE, &vars)?,
    )?;

    let n = &names.name;
    changes.edit("Cargo.toml", |text| {
        insert_after_last_line(text, "    \"services/", &format!("    \"services/{n}\",\n"))
    })?;
    changes.edit("libs/contracts/src/lib.rs", |text| {
        insert_before(text, "pub mod events {", &contracts_module(&names))
    })?;
    changes.edit("libs/messaging/src/catalog.rs", |text| {
        catalog_entry(text, &names)
    })?;
    if let Some(consumption) = &consumption {
        changes.edit("libs/messaging/src/topology.rs", |text| {
            topology_queue(text, &names, consumption)
        })?;
    }
    changes.create(
        PathBuf::from("libs/declarations/src").join(format!("{}.rs", names.snake)),
        render(DECLARATION, &vars)?,
    )?;
    changes.edit("libs/declarations/src/lib.rs", |text| {
        declarations_entry(text, &names)
    })?;
    if args.expose {
        changes.edit("libs/declarations/src/gateway.rs", |text| {
            append_to_list(text, "upstreams: &[", &format!("\"{n}\""))
        })?;
    }
    changes.edit("docs/configuration.md", |_| {
        Ok(configuration_with(
            &names,
            grpc_port,
            admin_port,
            args.expose,
        ))
    })?;
    changes.edit("xtask/src/services.rs", |text| services_entry(text, &names))?;
    changes.edit("xtask/src/infra.rs", |text| {
        append_to_list(
            text,
            "pub const DATABASES: &[&str] = &[",
            &format!("\"{}\"", names.snake),
        )
    })?;
    changes.edit("infra/postgres/init.sql", |text| {
        Ok(format!("{text}CREATE DATABASE {};\n", names.snake))
    })?;
    changes.edit("infra/compose.yaml", |text| {
        compose_entry(text, &names, grpc_port, admin_port)
    })?;
    changes.edit("infra/prometheus/prometheus.yaml", |text| {
        prometheus_targets(text, &names, admin_port)
    })?;
    changes.edit("k8s/base/kustomization.yaml", |text| {
        insert_before(text, "  - gateway\n", &format!("  - {n}\n"))
    })?;
    changes.edit("k8s/base/data/postgres/kustomization.yaml", |text| {
        insert_before(
            text,
            "  - networkpolicy.yaml\n",
            &format!("  - {n}-db.yaml\n"),
        )
    })?;
    changes.edit("k8s/base/data/postgres/networkpolicy.yaml", |text| {
        Ok(format!("{text}{}", render(DATABASE_POLICY, &vars)?))
    })?;
    for overlay in [
        "k8s/overlays/local/kustomization.yaml",
        "k8s/overlays/cloud/kustomization.yaml",
    ] {
        changes.edit(overlay, |text| overlay_image(text, n))?;
    }
    changes.edit("k8s/components/observability/monitoring.yaml", |text| {
        insert_before(text, "gateway, rabbitmq]", &format!("{n}, "))
    })?;
    changes.edit(".github/workflows/images.yml", |text| {
        insert_before(
            text,
            "          - { service: gateway,",
            &format!(
                "          - {{ service: {n}, api_port: {grpc_port}, admin_port: {admin_port} }}\n"
            ),
        )
    })?;
    if args.expose {
        crate::new_service_gateway::expose(&mut changes, &names, grpc_port, &vars)?;
    }
    Ok(changes.into_list())
}

/// The placeholders of every template.
fn vars(
    names: &Names,
    grpc_port: u16,
    admin_port: u16,
    consumption: Option<&Consumption>,
    expose: bool,
) -> Vars {
    let mut vars = Vars::default();
    let values = &mut vars.values;
    values.insert("name", names.name.clone());
    values.insert("snake", names.snake.clone());
    values.insert("Pascal", names.pascal.clone());
    values.insert("PREFIX", names.upper.clone());
    values.insert("grpc_port", grpc_port.to_string());
    values.insert("admin_port", admin_port.to_string());
    if expose {
        vars.flags.insert("expose");
    }
    if let Some(consumption) = consumption {
        vars.flags.insert("consumes");
        let values = &mut vars.values;
        values.insert("queue", consumption.queue.clone());
        values.insert("QUEUE_CONST", consumption.queue_const.clone());
        values.insert("QUEUE_ALIAS", consumption.queue_alias.clone());
        values.insert("Consumer", consumption.consumer.clone());
        let quoted = |f: fn(&CatalogEvent) -> &str, open: &str, close: &str| {
            consumption
                .events
                .iter()
                .map(|event| format!("{open}{}{close}", f(event)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        values.insert("consumed_events", quoted(|e| &e.message, "`", "`"));
        values.insert("consumed_keys", quoted(|e| &e.routing_key, "`", "`"));
        values.insert("bindings", quoted(|e| &e.routing_key, "\"", "\""));
        let arms = consumption
            .events
            .iter()
            .map(|event| {
                format!(
                    "            Event::{}(message) => message.aggregate_id(),\n",
                    event.message
                )
            })
            .collect::<String>();
        values.insert("consume_arms", arms.trim_end().to_owned());
        let first = &consumption.events[0];
        let sample = |variable: &str| {
            format!(
                "contracts::events::{} {{ {}: {variable}.clone(), ..Default::default() }}",
                first.message, first.id_field
            )
        };
        values.insert("sample_event", sample("reference"));
        values.insert("sample_event_barrier", sample("barrier"));
    }
    vars
}

/// Today's date as `YYYYMMDD` (UTC), for the migration's version.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 86_400);
    // Howard Hinnant's civil-from-days, for days since 1970-01-01.
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}")
}

/// The staging list: new files and new versions of existing ones, nothing on disk yet.
pub struct Changes<'r> {
    root: &'r Path,
    changes: Vec<Change>,
}

impl<'r> Changes<'r> {
    pub fn new(root: &'r Path) -> Self {
        Self {
            root,
            changes: Vec::new(),
        }
    }

    /// Stages a new file; refuses when it exists.
    pub fn create(&mut self, path: PathBuf, contents: String) -> anyhow::Result<()> {
        if self.root.join(&path).exists() || self.changes.iter().any(|c| c.path == path) {
            bail!("{} exists already; nothing was written", path.display());
        }
        self.changes.push(Change {
            path,
            contents,
            creates: true,
        });
        Ok(())
    }

    /// Stages a new version of `path` (of its staged version, if it has one), computed by `edit`.
    pub fn edit(
        &mut self,
        path: &str,
        edit: impl FnOnce(&str) -> anyhow::Result<String>,
    ) -> anyhow::Result<()> {
        let path = PathBuf::from(path);
        if let Some(staged) = self.changes.iter_mut().find(|c| c.path == path) {
            staged.contents = edit(&staged.contents)
                .with_context(|| format!("cannot add the service to {}", path.display()))?;
            return Ok(());
        }
        let current = fs::read_to_string(self.root.join(&path))
            .with_context(|| format!("cannot read {}", path.display()))?;
        let contents = edit(&current)
            .with_context(|| format!("cannot add the service to {}", path.display()))?;
        self.changes.push(Change {
            path,
            contents,
            creates: false,
        });
        Ok(())
    }

    pub fn into_list(self) -> Vec<Change> {
        self.changes
    }
}

/// `text` with `insertion` before the first `anchor`.
pub fn insert_before(text: &str, anchor: &str, insertion: &str) -> anyhow::Result<String> {
    let Some(at) = text.find(anchor) else {
        bail!("expected {anchor:?} in it, to add the new service before; add it by hand");
    };
    Ok(format!("{}{insertion}{}", &text[..at], &text[at..]))
}

/// `text` with `insertion` after the last line starting with `prefix`.
pub fn insert_after_last_line(text: &str, prefix: &str, insertion: &str) -> anyhow::Result<String> {
    let mut end = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        if line.starts_with(prefix) {
            end = Some(offset);
        }
    }
    let Some(end) = end else {
        bail!("expected a line starting with {prefix:?} in it; add the new service by hand");
    };
    Ok(format!("{}{insertion}{}", &text[..end], &text[end..]))
}

/// `text` with `item` added to the end of the `[ … ]` list opened by `opening`, on one line or
/// one item per line.
pub fn append_to_list(text: &str, opening: &str, item: &str) -> anyhow::Result<String> {
    let Some(start) = text.find(opening) else {
        bail!("expected {opening:?} in it; add the new service by hand");
    };
    let list_start = start + opening.len();
    let Some(close) = text[list_start..].find(']').map(|at| list_start + at) else {
        bail!("the list after {opening:?} is not closed");
    };
    let before = text[..close].trim_end();
    if before.ends_with(',') {
        // One item per line: copy the previous item's indentation.
        let indent: String = before
            .rsplit('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .take_while(|c| c.is_whitespace())
            .collect();
        Ok(format!(
            "{before}\n{indent}{item},{}",
            &text[before.len()..]
        ))
    } else {
        let separator = if before.ends_with('[') { "" } else { ", " };
        Ok(format!(
            "{before}{separator}{item}{}",
            &text[before.len()..]
        ))
    }
}

fn contracts_module(names: &Names) -> String {
    let Names { snake, pascal, .. } = names;
    format!(
        "pub mod {snake} {{\n    \
             pub use crate::shop::{snake}::v1::{snake}_service_client::{pascal}ServiceClient;\n    \
             pub use crate::shop::{snake}::v1::{snake}_service_server::{{\n        \
                 {pascal}Service, {pascal}ServiceServer,\n    \
             }};\n    \
             pub use crate::shop::{snake}::v1::*;\n\
         }}\n\n"
    )
}

/// The event's row at the end of the catalog's table, and its service among the known
/// producers of the naming test.
fn catalog_entry(text: &str, names: &Names) -> anyhow::Result<String> {
    let Some(table) = text.find("integration_events! {") else {
        bail!("expected the `integration_events! {{ … }}` table");
    };
    let Some(end) = text[table..].find("\n}").map(|at| table + at + 1) else {
        bail!("the `integration_events!` table is not closed");
    };
    // Aligned with the row above it, as the table is written by hand.
    let last = text[..end]
        .trim_end()
        .rsplit('\n')
        .next()
        .unwrap_or_default();
    let columns = column_starts(last);
    let cells = [
        format!("    {}RecordCreated", names.pascal),
        format!("=> \"{}.record.created\",", names.name),
        "\"record\",".to_owned(),
        "record_id;".to_owned(),
    ];
    let mut row = String::new();
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            let column = columns.get(index - 1).copied().unwrap_or(0);
            let width = column.saturating_sub(row.len()).max(1);
            row.push_str(&" ".repeat(width));
        }
        row.push_str(cell);
    }
    row.push('\n');
    let with_row = format!("{}{row}{}", &text[..end], &text[end..]);
    let Some(check) = with_row.find("].contains(&parts[0])") else {
        bail!("expected the routing-key test's list of services (`[…].contains(&parts[0])`)");
    };
    let Some(open) = with_row[..check].rfind('[') else {
        bail!("the routing-key test's list of services has no `[`");
    };
    let list_end = with_row[..check].trim_end().len();
    let before = &with_row[..list_end];
    let item = format!("\"{}\"", names.name);
    let insertion = if before.ends_with(',') {
        format!(" {item},")
    } else if list_end == open + 1 {
        item
    } else {
        format!(", {item}")
    };
    Ok(format!("{before}{insertion}{}", &with_row[list_end..]))
}

/// Where the 2nd, 3rd and 4th cells of a catalog row start: `=>`, the aggregate, the id field.
fn column_starts(row: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    if let Some(arrow) = row.find("=>") {
        starts.push(arrow);
        let mut at = arrow;
        for _ in 0..2 {
            let Some(comma) = row[at..].find("\",").map(|i| at + i + 2) else {
                break;
            };
            let next = row[comma..]
                .find(|c: char| !c.is_whitespace())
                .map_or(comma, |i| comma + i);
            starts.push(next);
            at = next;
        }
    }
    starts
}

fn topology_queue(text: &str, names: &Names, consumption: &Consumption) -> anyhow::Result<String> {
    let bindings = consumption
        .events
        .iter()
        .map(|event| format!("\"{}\"", event.routing_key))
        .collect::<Vec<_>>()
        .join(", ");
    let named: Vec<String> = consumption
        .events
        .iter()
        .map(|event| format!("`{}`", event.message))
        .collect();
    let messages = match named.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => named.join(""),
    };
    let constant = format!(
        "/// {}: a record for each {messages}.\npub const {}: Queue = Queue {{\n    name: \"{}\",\n    \
         bindings: &[{bindings}],\n}};\n\n",
        names.name, consumption.queue_const, consumption.queue
    );
    let with_constant = insert_before(text, "/// Every consumer queue of the system", &constant)?;
    append_to_list(
        &with_constant,
        "pub const QUEUES: &[Queue] = &[",
        &consumption.queue_const,
    )
}

/// `pub mod NAME;` and its entry in `declarations::ALL`, before the gateway's.
fn declarations_entry(text: &str, names: &Names) -> anyhow::Result<String> {
    let text = insert_after_last_line(text, "pub mod ", &format!("pub mod {};\n", names.snake))?;
    insert_before(
        &text,
        "    &gateway::GATEWAY,\n",
        &format!("    &{}::{},\n", names.snake, names.upper),
    )
}

/// docs/configuration.md as `cargo xtask config-docs` will write it once the new declaration
/// is compiled in: the declarations of today, the new service before the gateway, and with
/// `--expose` the gateway calling it.
fn configuration_with(names: &Names, grpc_port: u16, admin_port: u16, expose: bool) -> String {
    fn leak(text: &str) -> &'static str {
        Box::leak(text.to_owned().into_boxed_str())
    }
    let name = leak(&names.name);
    let new = declarations::Service {
        name,
        api: declarations::Api::Grpc,
        api_port: grpc_port,
        admin_port,
        database: Some(leak(&names.snake)),
        runtime: true,
        settings: &[],
        broker: true,
        cache: false,
        upstreams: &[],
        callers: if expose { &["gateway"] } else { &[] },
    };
    let mut gateway = declarations::gateway::GATEWAY;
    if expose {
        let mut upstreams = gateway.upstreams.to_vec();
        upstreams.push(name);
        gateway.upstreams = Box::leak(upstreams.into_boxed_slice());
    }
    let mut all: Vec<&declarations::Service> = declarations::ALL
        .iter()
        .copied()
        .filter(|service| service.name != "gateway")
        .collect();
    all.push(&new);
    all.push(&gateway);
    declarations::configuration_markdown(&all)
}

fn services_entry(text: &str, names: &Names) -> anyhow::Result<String> {
    let used: BTreeSet<&str> = COLOURS
        .iter()
        .copied()
        .filter(|colour| text.contains(*colour))
        .collect();
    let colour = COLOURS
        .iter()
        .find(|colour| !used.contains(**colour))
        .unwrap_or(&COLOURS[0]);
    let entry = format!(
        "    Service::local(&declarations::{}::{}, \"{colour}\", &[]),\n",
        names.snake, names.upper
    );
    let anchor = "    Service::local(&declarations::gateway::GATEWAY,";
    if text.contains(anchor) {
        insert_before(text, anchor, &entry)
    } else {
        insert_before(text, "\n];", &format!("\n{}", entry.trim_end()))
    }
}

fn compose_entry(
    text: &str,
    names: &Names,
    grpc_port: u16,
    admin_port: u16,
) -> anyhow::Result<String> {
    let Names {
        name, snake, upper, ..
    } = names;
    let entry = format!(
        "  {name}:\n    <<: *service\n    image: ferroshop/{name}:dev\n    build:\n      \
         context: ..\n      args:\n        SERVICE: {name}\n        API_PORT: \"{grpc_port}\"\n        \
         ADMIN_PORT: \"{admin_port}\"\n    environment:\n      \
         {upper}_DATABASE_URL: postgres://postgres@postgres:5432/{snake}\n      \
         {upper}_AMQP_URL: amqp://guest:guest@rabbitmq:5672/%2f\n      LOG_FORMAT: json\n      \
         OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector:4317\n    \
         ports: [\"127.0.0.1:{grpc_port}:{grpc_port}\", \"127.0.0.1:{admin_port}:{admin_port}\"]\n\n"
    );
    let with_service = insert_before(text, "  gateway:\n", &entry)?;
    // The postgres healthcheck waits for every database.
    let Some(loop_at) = with_service.find("for db in ") else {
        bail!("expected the postgres healthcheck's `for db in …;` loop");
    };
    let Some(end) = with_service[loop_at..].find(';').map(|at| loop_at + at) else {
        bail!("the postgres healthcheck's loop has no `;`");
    };
    Ok(format!(
        "{} {snake}{}",
        &with_service[..end],
        &with_service[end..]
    ))
}

/// A target for each job that lists the gateway: before the gateway's, with the same host.
fn prometheus_targets(text: &str, names: &Names, admin_port: u16) -> anyhow::Result<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len() + 200);
    let mut added = 0;
    for (index, line) in lines.iter().enumerate() {
        let is_gateway_target = line.trim_start().starts_with("- targets: [\"")
            && lines
                .get(index + 2)
                .is_some_and(|label| label.trim() == "app: gateway");
        if is_gateway_target
            && let Some((indent, rest)) = line.split_once("- targets: [\"")
            && let Some((host, _)) = rest.split_once(':')
        {
            let host = if host == "gateway" {
                names.name.as_str()
            } else {
                host
            };
            out.push_str(&format!(
                "{indent}- targets: [\"{host}:{admin_port}\"]\n{indent}  labels:\n{indent}    app: {}\n",
                names.name
            ));
            added += 1;
        }
        out.push_str(line);
    }
    if added == 0 {
        bail!("expected the gateway's scrape targets (`- targets: [\"…\"]` with `app: gateway`)");
    }
    Ok(out)
}

fn overlay_image(text: &str, name: &str) -> anyhow::Result<String> {
    let anchor = "  - name: ferroshop/gateway\n";
    let Some(at) = text.find(anchor) else {
        bail!("expected the gateway's image entry ({anchor:?})");
    };
    let tag_line = text[at + anchor.len()..]
        .lines()
        .next()
        .unwrap_or("    newTag: dev");
    insert_before(
        text,
        anchor,
        &format!("  - name: ferroshop/{name}\n{tag_line}\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_every_form_a_person_would_write() {
        let names = Names::parse("gift-cards").unwrap();
        assert_eq!(names.snake, "gift_cards");
        assert_eq!(names.pascal, "GiftCards");
        assert_eq!(names.upper, "GIFT_CARDS");
        let names = Names::parse("shipping").unwrap();
        assert_eq!(
            (names.pascal.as_str(), names.upper.as_str()),
            ("Shipping", "SHIPPING")
        );
    }

    #[test]
    fn invalid_names_are_refused_with_the_reason() {
        for (name, reason) in [
            ("Shipping", "lowercase letter"),
            ("2fast", "lowercase letter"),
            ("ship_ping", "contains '_'"),
            ("ship.ping", "contains '.'"),
            ("ship-", "'-' must separate words"),
            ("ship--ping", "'-' must separate words"),
            ("s", "2 to 30"),
            ("type", "reserved"),
            ("events", "reserved"),
        ] {
            let err = Names::parse(name).unwrap_err().to_string();
            assert!(err.contains(reason), "{name}: {err}");
        }
    }

    #[test]
    fn ports_follow_the_plan_and_refuse_what_is_taken() {
        let taken: BTreeSet<u16> = [50051, 50052, 50053, 50054, 9101, 9102, 9103, 9104, 8080]
            .into_iter()
            .collect();
        assert_eq!(ports(None, &taken).unwrap(), (50055, 9105));
        assert_eq!(ports(Some(50070), &taken).unwrap(), (50070, 9120));
        assert_eq!(ports(Some(7000), &taken).unwrap(), (7000, 9105));
        let err = ports(Some(50053), &taken).unwrap_err().to_string();
        assert!(err.contains("--port 50053 is taken"), "{err}");
        assert!(ports(Some(80), &taken).is_err());
    }

    #[test]
    fn templates_render_blocks_and_refuse_unknown_placeholders() {
        let mut vars = Vars::default();
        vars.values.insert("name", "shipping".to_owned());
        vars.flags.insert("on");
        let template = "a {{name}}\n{{#if on}}\nyes\n{{else}}\nno\n{{/if}}\n{{#unless on}}\nhidden\n{{/unless}}\nx{{#if off}} inline{{/if}}.\n";
        assert_eq!(render(template, &vars).unwrap(), "a shipping\nyes\nx.\n");
        let err = render("{{nmae}}", &vars).unwrap_err().to_string();
        assert!(err.contains("{{nmae}}"), "{err}");
    }

    #[test]
    fn lists_grow_on_one_line_or_one_item_per_line() {
        assert_eq!(
            append_to_list("const A: &[&str] = &[\"a\", \"b\"];", "= &[", "\"c\"").unwrap(),
            "const A: &[&str] = &[\"a\", \"b\", \"c\"];"
        );
        assert_eq!(
            append_to_list("const Q: &[Q] = &[\n    A,\n    B,\n];\n", "= &[", "C").unwrap(),
            "const Q: &[Q] = &[\n    A,\n    B,\n    C,\n];\n"
        );
    }

    #[test]
    fn every_template_renders_for_a_consuming_exposed_service() {
        let names = Names::parse("gift-cards").unwrap();
        let consumption = Consumption {
            events: vec![CatalogEvent {
                message: "OrderConfirmed".into(),
                routing_key: "orders.order.confirmed".into(),
                id_field: "order_id".into(),
            }],
            queue: "gift-cards.orders".into(),
            queue_const: "GIFT_CARDS_ORDERS".into(),
            queue_alias: "ORDERS".into(),
            consumer: "OrderEvents".into(),
        };
        for consumes in [None, Some(&consumption)] {
            let vars = vars(&names, 50055, 9105, consumes, true);
            for (path, template) in CRATE.iter().chain(K8S_BASE) {
                let text = render(template, &vars).unwrap_or_else(|err| panic!("{path}: {err}"));
                assert!(!text.contains("payments"), "{path}");
            }
        }
    }

    #[test]
    fn the_catalog_of_this_checkout_is_read() {
        let root = crate::deploy_check::workspace_root();
        let events = catalog_events(&read(&root, "libs/messaging/src/catalog.rs").unwrap());
        let confirmed = events
            .iter()
            .find(|event| event.message == "OrderConfirmed")
            .unwrap();
        assert_eq!(confirmed.routing_key, "orders.order.confirmed");
        assert_eq!(confirmed.id_field, "order_id");
        let names = Names::parse("shipping").unwrap();
        let consumption = consumption(
            &names,
            &["OrderConfirmed".to_owned()],
            &read(&root, "libs/messaging/src/catalog.rs").unwrap(),
        )
        .unwrap();
        assert_eq!(consumption.queue, "shipping.orders");
        assert_eq!(consumption.queue_const, "SHIPPING_ORDERS");
        assert_eq!(consumption.consumer, "OrderEvents");
        let err = super::consumption(&names, &["OrderShipped".to_owned()], "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such event"), "{err}");
    }

    #[test]
    fn the_date_is_a_calendar_date() {
        let today = today();
        assert_eq!(today.len(), 8, "{today}");
        assert!(today.starts_with("20"), "{today}");
    }
}
