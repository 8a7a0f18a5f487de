//! Consistency of the local stack (infra/compose.yaml, the Prometheus configuration) with the
//! services' code, and of the observability files that exist twice (infra/ for compose,
//! k8s/components/observability for Kubernetes).

use serde_json::Value;

use super::{
    manifests::{Context, check_variable_name, check_variable_value},
    service_config::ServiceConfig,
};

/// The compose file's services, checked against the services of the checkout and the
/// infrastructure `cargo xtask up` starts from it.
pub fn check_compose(compose: &Value, context: &Context<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(services) = compose.get("services").and_then(Value::as_object) else {
        return vec!["infra/compose.yaml has no `services`".to_owned()];
    };
    for dependency in crate::infra::DEPENDENCIES {
        let name = dependency.compose_service;
        match services.get(name) {
            None => problems.push(format!(
                "compose service {name:?} is gone, but `cargo xtask up` starts {} from it \
                 (xtask/src/infra.rs)",
                dependency.name
            )),
            Some(definition) => {
                if definition.get("profiles").is_some() {
                    problems.push(format!(
                        "compose service {name:?} must not be behind a profile: `cargo xtask up` \
                         starts it by name"
                    ));
                }
                if let Some(port) = default_port(dependency.default_url) {
                    let published = format!("127.0.0.1:{port}:{port}");
                    if !ports_of(definition).contains(&published) {
                        problems.push(format!(
                            "compose service {name:?} must publish {published} (the default \
                             {} of every service and test)",
                            dependency.variable
                        ));
                    }
                }
            }
        }
    }
    problems.extend(check_readiness(services, context));
    for service in context.services {
        let name = service.name.as_str();
        let Some(definition) = services.get(name) else {
            problems.push(format!(
                "infra/compose.yaml has no service {name:?} (profile `app`, built from the \
                 Dockerfile with SERVICE={name})"
            ));
            continue;
        };
        check_compose_service(name, definition, service, context, &mut problems);
    }
    problems
}

/// Restart policies that bring a crashed container back.
const RESTARTING: &[&str] = &["on-failure", "unless-stopped", "always"];

/// Services that need a data store or another Ferroshop service wait until it is *ready*
/// (`condition: service_healthy`, and the dependency has a healthcheck that means it), and
/// come back when they exit anyway (a restart policy): a started container is not a ready one,
/// and every service exits on its first failed connection at start-up.
///
/// PostgreSQL's official image is a trap of its own: while it runs the init scripts (which
/// create the databases) a temporary server listens on the Unix socket only, so a healthcheck
/// over the socket (`pg_isready` without `-h`) passes before the databases exist. Its
/// healthcheck must connect over TCP and reach every database a service uses.
fn check_readiness(
    services: &serde_json::Map<String, Value>,
    context: &Context<'_>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let needed = |name: &str| {
        crate::infra::DEPENDENCIES
            .iter()
            .any(|d| d.compose_service == name)
            || context.services.iter().any(|s| s.name == name)
    };
    for (name, definition) in services {
        let dependencies: Vec<(String, String)> = match definition.get("depends_on") {
            Some(Value::Array(names)) => names
                .iter()
                .filter_map(Value::as_str)
                .map(|d| (d.to_owned(), "service_started".to_owned()))
                .collect(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(d, spec)| {
                    let condition = spec
                        .get("condition")
                        .and_then(Value::as_str)
                        .unwrap_or("service_started");
                    (d.clone(), condition.to_owned())
                })
                .collect(),
            _ => Vec::new(),
        };
        let needs: Vec<&(String, String)> =
            dependencies.iter().filter(|(d, _)| needed(d)).collect();
        if needs.is_empty() {
            continue;
        }
        let restart = definition
            .get("restart")
            .and_then(Value::as_str)
            .unwrap_or("no");
        if !RESTARTING
            .iter()
            .any(|policy| restart == *policy || restart.starts_with("on-failure:"))
        {
            problems.push(format!(
                "compose service {name:?} depends on {} but has restart policy {restart:?}: it \
                 exits on its first failed connection and stays down (use restart: on-failure)",
                needs
                    .iter()
                    .map(|(d, _)| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (dependency, condition) in needs {
            if condition != "service_healthy" {
                problems.push(format!(
                    "compose service {name:?} waits for {dependency:?} with condition \
                 {condition}: a started container is not a ready one (use condition: \
                 service_healthy)"
                ));
            }
            let Some(target) = services.get(dependency) else {
                continue;
            };
            let healthcheck = target.get("healthcheck");
            let disabled = healthcheck
                .and_then(|h| h.get("disable"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            // The services' images carry the Dockerfile's HEALTHCHECK (/healthz).
            let has_check = healthcheck.and_then(|h| h.get("test")).is_some()
                || (target.get("build").is_some() && healthcheck.is_none());
            if disabled || !has_check {
                problems.push(format!(
                    "compose service {dependency:?} has no healthcheck, so {name:?} cannot wait \
                 until it is ready"
                ));
            }
        }
    }
    if let Some((name, postgres)) = services.iter().find(|(_, d)| {
        d.get("image")
            .and_then(Value::as_str)
            .is_some_and(|image| image.starts_with("postgres:"))
    }) {
        let test = match postgres.pointer("/healthcheck/test") {
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            Some(Value::String(text)) => text.clone(),
            _ => String::new(),
        };
        let over_tcp = [
            "-h 127.0.0.1",
            "-h localhost",
            "--host=127.0.0.1",
            "--host=localhost",
        ]
        .iter()
        .any(|flag| test.contains(flag));
        if !over_tcp {
            problems.push(format!(
                "compose service {name:?}: the healthcheck {test:?} does not connect over TCP \
                 (-h 127.0.0.1): the image's init server listens on the Unix socket only, so it \
                 passes before init.sql has created the databases"
            ));
        }
        let mut databases: Vec<String> = services
            .values()
            .filter_map(|d| d.get("environment").and_then(Value::as_object))
            .flat_map(|env| env.values().filter_map(Value::as_str))
            .filter_map(|url| url.strip_prefix("postgres://"))
            .filter_map(|rest| rest.split_once('/').map(|(_, db)| db))
            .map(|db| db.split('?').next().unwrap_or(db).to_owned())
            .collect();
        databases.sort();
        databases.dedup();
        let missing: Vec<&str> = databases
            .iter()
            .map(String::as_str)
            .filter(|db| {
                !test
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .any(|word| word == *db)
            })
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "compose service {name:?}: the healthcheck does not check the databases {} that \
                 services connect to; it must fail until they exist",
                missing.join(", ")
            ));
        }
    }
    problems
}

fn default_port(url: &str) -> Option<u16> {
    let authority = url.split_once("://")?.1.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    host_port.rsplit_once(':')?.1.parse().ok()
}

fn ports_of(definition: &Value) -> Vec<String> {
    definition
        .get("ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|port| match port {
                    Value::String(text) => Some(text.clone()),
                    Value::Number(number) => Some(number.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn arg(definition: &Value, name: &str) -> Option<String> {
    match definition.get("build")?.get("args")?.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn check_compose_service(
    name: &str,
    definition: &Value,
    service: &ServiceConfig,
    context: &Context<'_>,
    problems: &mut Vec<String>,
) {
    let in_app_profile = definition
        .get("profiles")
        .and_then(Value::as_array)
        .is_some_and(|profiles| profiles.iter().any(|p| p.as_str() == Some("app")));
    if !in_app_profile {
        problems.push(format!(
            "compose service {name:?} must be in profile `app` (so infrastructure starts alone)"
        ));
    }
    let image = definition
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !image.starts_with(&format!("ferroshop/{name}:")) {
        problems.push(format!(
            "compose service {name:?} must tag its image ferroshop/{name}:<tag>, found {image:?}"
        ));
    }
    if arg(definition, "SERVICE").as_deref() != Some(name) {
        problems.push(format!(
            "compose service {name:?} must build with SERVICE={name}"
        ));
    }
    let expected_args = [
        (
            "API_PORT",
            service.api_port_name().and_then(|port| service.port(port)),
        ),
        ("ADMIN_PORT", service.port("admin")),
    ];
    for (build_arg, port) in expected_args {
        let Some(port) = port else { continue };
        if arg(definition, build_arg) != Some(port.to_string()) {
            problems.push(format!(
                "compose service {name:?}: build arg {build_arg} must be {port} \
                 (libs/declarations), found {:?}",
                arg(definition, build_arg)
            ));
        }
        let published = format!("127.0.0.1:{port}:{port}");
        if !ports_of(definition).contains(&published) {
            problems.push(format!("compose service {name:?} must publish {published}"));
        }
    }
    let environment: Vec<(String, Option<String>)> = match definition.get("environment") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::String(text) => Some(text.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                };
                (key.clone(), value)
            })
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|entry| match entry.split_once('=') {
                Some((key, value)) => (key.to_owned(), Some(value.to_owned())),
                None => (entry.to_owned(), None),
            })
            .collect(),
        _ => Vec::new(),
    };
    let values: Vec<&str> = environment
        .iter()
        .filter_map(|(_, v)| v.as_deref())
        .collect();
    for (variable, value) in &environment {
        if let Some(problem) = check_variable_name(variable, service, context, &values) {
            problems.push(format!("compose service {name:?}: {problem}"));
        }
        if let Some(value) = value
            && let Some(problem) = check_variable_value(variable, value, service, context.services)
        {
            problems.push(format!("compose service {name:?}: {problem}"));
        }
    }
}

/// Every service's admin port is a scrape target labelled with its name.
pub fn check_prometheus(config: &Value, services: &[ServiceConfig]) -> Vec<String> {
    let mut targets: Vec<(String, Option<String>)> = Vec::new();
    for job in config
        .get("scrape_configs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for group in job
            .get("static_configs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let app = group
                .get("labels")
                .and_then(|labels| labels.get("app"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            for target in group
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(target) = target.as_str() {
                    targets.push((target.to_owned(), app.clone()));
                }
            }
        }
    }
    let mut problems = Vec::new();
    for service in services {
        let Some(admin) = service.port("admin") else {
            continue;
        };
        let wanted = format!("{}:{admin}", service.name);
        let found = targets.iter().any(|(target, app)| {
            *target == wanted && app.as_deref() == Some(service.name.as_str())
        });
        if !found {
            problems.push(format!(
                "infra/prometheus/prometheus.yaml does not scrape {wanted} with label app={}",
                service.name
            ));
        }
    }
    for (target, app) in &targets {
        let Some((host, port)) = target.rsplit_once(':') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        let named = services
            .iter()
            .find(|service| service.name == host)
            .or_else(|| {
                services
                    .iter()
                    .find(|service| Some(service.name.as_str()) == app.as_deref())
            });
        if let Some(service) = named
            && service.port("admin") != Some(port)
        {
            problems.push(format!(
                "infra/prometheus/prometheus.yaml scrapes {target} for {}, whose admin port is {:?}",
                service.name,
                service.port("admin")
            ));
        }
    }
    problems
}

/// The Prometheus rule file and the PrometheusRule of the observability component must hold
/// the same groups.
pub fn check_alert_rules(rule_file: &Value, prometheus_rule: &Value) -> Vec<String> {
    let groups = rule_file.get("groups");
    let custom = prometheus_rule
        .get("spec")
        .and_then(|spec| spec.get("groups"));
    match (groups, custom) {
        (Some(a), Some(b)) if a == b => Vec::new(),
        (None, _) => vec!["infra/prometheus/alerts.yaml has no `groups`".to_owned()],
        _ => vec![
            "k8s/components/observability/prometheus-rule.yaml does not hold the same groups as \
             infra/prometheus/alerts.yaml: copy the groups over (indented under spec)"
                .to_owned(),
        ],
    }
}

/// Every metric the dashboard and the alerts query must be one the code records.
pub fn check_metric_names(queries: &str, recorded: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for name in metric_names(queries) {
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        if !recorded
            .iter()
            .any(|metric| metric == &name || metric == base)
        {
            problems.push(format!(
                "metric {name} is queried but nothing in libs/ or services/ records it"
            ));
        }
    }
    problems
}

/// Identifiers followed by `{` or `[` in PromQL-ish text that look like our metric names
/// (lower snake case with a known suffix); `up` and functions are ignored.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    const SUFFIXES: &[&str] = &[
        "_total",
        "_seconds",
        "_bucket",
        "_count",
        "_sum",
        "_state",
        "_pending",
        "_messages",
    ];
    let mut names = std::collections::BTreeSet::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index].is_ascii_lowercase()
            && (index == 0
                || !(bytes[index - 1].is_ascii_alphanumeric()
                    || bytes[index - 1] == '_'
                    || bytes[index - 1] == '$'))
        {
            let start = index;
            while index < bytes.len()
                && (bytes[index].is_ascii_lowercase()
                    || bytes[index].is_ascii_digit()
                    || bytes[index] == '_')
            {
                index += 1;
            }
            let word: String = bytes[start..index].iter().collect();
            let next = bytes.get(index).copied();
            if matches!(next, Some('{' | '[' | ')' | ' ' | '\n' | '"'))
                && word.contains('_')
                && SUFFIXES.iter().any(|s| word.ends_with(s))
            {
                names.insert(word);
            }
        } else {
            index += 1;
        }
    }
    names
}

/// Metric names recorded by `metrics::counter!("name"` / `gauge!` / `histogram!` in the code.
pub fn recorded_metrics(sources: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    for source in sources {
        for macro_name in ["counter!(", "gauge!(", "histogram!("] {
            for (index, _) in source.match_indices(macro_name) {
                let rest = source[index + macro_name.len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"')
                    && let Some(end) = literal.find('"')
                {
                    names.push(literal[..end].to_owned());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::deploy_check::service_config::PlatformConfig;

    fn users() -> ServiceConfig {
        ServiceConfig {
            name: "users".to_owned(),
            prefix: "USERS".to_owned(),
            ports: [("grpc".to_owned(), 50051), ("admin".to_owned(), 9101)].into(),
            database: Some("users".to_owned()),
            variables: ["USERS_DATABASE_URL", "USERS_AMQP_URL"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            patterns: BTreeSet::new(),
            required: Vec::new(),
        }
    }

    fn infrastructure() -> Value {
        json!({
            "postgres": {"image": "postgres:17-alpine", "ports": ["127.0.0.1:5432:5432"],
                "healthcheck": {"test": ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U postgres && for db in users; do psql -h 127.0.0.1 -d \"$$db\" -c 'select 1'; done"]}},
            "redis": {"ports": ["127.0.0.1:6379:6379"], "healthcheck": {"test": ["CMD", "redis-cli", "ping"]}},
            "rabbitmq": {"ports": ["127.0.0.1:5672:5672", "127.0.0.1:15672:15672"], "healthcheck": {"test": ["CMD", "rabbitmq-diagnostics", "-q", "ping"]}},
        })
    }

    fn compose(users_definition: Value) -> Value {
        let mut services = infrastructure();
        services["users"] = users_definition;
        json!({ "services": services })
    }

    fn good_users() -> Value {
        json!({
            "profiles": ["app"],
            "image": "ferroshop/users:dev",
            "build": {"context": "..", "args": {"SERVICE": "users", "API_PORT": "50051", "ADMIN_PORT": 9101}},
            "environment": {"USERS_DATABASE_URL": "postgres://postgres@postgres:5432/users", "LOG_FORMAT": "json"},
            "ports": ["127.0.0.1:50051:50051", "127.0.0.1:9101:9101"],
            "restart": "on-failure",
            "depends_on": {"postgres": {"condition": "service_healthy"}, "otel-collector": {"condition": "service_started"}},
        })
    }

    fn problems(compose: &Value) -> Vec<String> {
        let services = vec![users()];
        let platform = PlatformConfig {
            global_variables: ["LOG_FORMAT".to_owned()].into(),
        };
        let external = BTreeSet::new();
        check_compose(
            compose,
            &Context {
                services: &services,
                platform: &platform,
                external_secrets: &external,
            },
        )
    }

    #[test]
    fn a_consistent_compose_file_passes() {
        assert_eq!(problems(&compose(good_users())), Vec::<String>::new());
    }

    #[test]
    fn drift_in_compose_is_reported() {
        let mut users = good_users();
        users["build"]["args"]["ADMIN_PORT"] = json!("9102");
        users["environment"]["USERS_GRPC_ADRESS"] = json!("x");
        users.as_object_mut().unwrap().remove("profiles");
        let found = problems(&compose(users));
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found.iter().any(|p| p.contains("profile `app`")));
        assert!(found.iter().any(|p| p.contains("ADMIN_PORT must be 9101")));
        assert!(found.iter().any(|p| p.contains("USERS_GRPC_ADRESS")));
    }

    #[test]
    fn missing_services_and_infrastructure_are_reported() {
        let found = problems(&json!({"services": {"redis": {"ports": ["127.0.0.1:6379:6379"]}}}));
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found.iter().any(|p| p.contains("\"postgres\" is gone")));
        assert!(found.iter().any(|p| p.contains("no service \"users\"")));
    }

    /// The compose file as it was: `pg_isready` over the socket, no restart policy, and a
    /// dependency that is only started.
    #[test]
    fn racy_start_up_is_reported() {
        let mut compose = compose(good_users());
        compose["services"]["postgres"]["healthcheck"]["test"] =
            json!(["CMD", "pg_isready", "-U", "postgres"]);
        let users = &mut compose["services"]["users"];
        users.as_object_mut().unwrap().remove("restart");
        users["depends_on"]["rabbitmq"] = json!({"condition": "service_started"});
        let found = problems(&compose);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found.iter().any(|p| p
                .contains("\"users\" depends on postgres, rabbitmq but has restart policy \"no\"")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("waits for \"rabbitmq\" with condition service_started")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("does not connect over TCP")),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("does not check the databases users")),
            "{found:#?}"
        );
    }

    #[test]
    fn a_dependency_without_a_healthcheck_cannot_be_waited_for() {
        let mut compose = compose(good_users());
        compose["services"]["postgres"]
            .as_object_mut()
            .unwrap()
            .remove("healthcheck");
        let found = problems(&compose);
        assert!(
            found
                .iter()
                .any(|p| p.contains("\"postgres\" has no healthcheck")),
            "{found:#?}"
        );
    }

    #[test]
    fn prometheus_must_scrape_every_admin_port() {
        let config = json!({"scrape_configs": [{"static_configs": [{"targets": ["users:9101"], "labels": {"app": "users"}}]}]});
        assert_eq!(check_prometheus(&config, &[users()]), Vec::<String>::new());
        let config = json!({"scrape_configs": [{"static_configs": [{"targets": ["users:9102"], "labels": {"app": "users"}}]}]});
        assert_eq!(check_prometheus(&config, &[users()]).len(), 2);
    }

    #[test]
    fn alert_rules_must_match_between_the_two_copies() {
        let groups = json!([{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]);
        assert!(
            check_alert_rules(
                &json!({"groups": groups}),
                &json!({"spec": {"groups": groups}})
            )
            .is_empty()
        );
        assert_eq!(
            check_alert_rules(&json!({"groups": groups}), &json!({"spec": {"groups": []}})).len(),
            1
        );
    }

    #[test]
    fn queried_metrics_must_be_recorded() {
        let recorded = recorded_metrics(&[r#"
            metrics::counter!("grpc_server_requests_total", "code" => c).increment(1);
            metrics::histogram!(
                "saga_step_duration_seconds",
            )
            metrics::gauge!("outbox_pending").set(1.0);
        "#
        .to_owned()]);
        assert_eq!(
            recorded,
            [
                "grpc_server_requests_total",
                "outbox_pending",
                "saga_step_duration_seconds"
            ]
        );
        let queries = r#"sum(rate(grpc_server_requests_total{app=~"$app"}[5m])) histogram_quantile(0.9, rate(saga_step_duration_seconds_bucket[5m])) max(outbox_pending) rate(saga_outcome_total[5m]) max by (app) (up{app!=""})"#;
        assert_eq!(
            check_metric_names(queries, &recorded),
            ["metric saga_outcome_total is queried but nothing in libs/ or services/ records it"]
        );
    }
}
