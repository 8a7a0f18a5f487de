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
                 (services/{name}/src/config.rs), found {:?}",
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
        }
    }

    fn infrastructure() -> Value {
        json!({
            "postgres": {"ports": ["127.0.0.1:5432:5432"]},
            "redis": {"ports": ["127.0.0.1:6379:6379"]},
            "rabbitmq": {"ports": ["127.0.0.1:5672:5672", "127.0.0.1:15672:15672"]},
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
        })
    }

    fn problems(compose: &Value) -> Vec<String> {
        let services = vec![users()];
        let platform = PlatformConfig {
            runtime_settings: BTreeSet::new(),
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
