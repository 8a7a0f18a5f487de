//! Least-privilege credentials of the data plane and TLS at the edge, in every render. Each rule
//! is a mistake that would deploy and run, with nothing failing, and leave a door open:
//!
//! | rule | what |
//! |---|---|
//! | broker users | no workload or TriggerAuthentication reads the broker's default (administrator) user, `<cluster>-default-user`; no AMQP URL names `guest`; every `*_AMQP_URL` takes its credentials from a broker User's Secret (`<user>-user-credentials`) |
//! | broker permissions | every User has a Permission, and every Permission grants exactly what the code derives (`messaging::topology::permissions`) under each broker service's settings in the render |
//! | Redis users | every `*_REDIS_URL` names the component's ACL user and takes the password from a Secret; the component's key prefix in the render is the one its grant was written for (`grants::redis_grants`) |
//! | Postgres TLS (cloud) | every `*_DATABASE_URL` asks for `sslmode=verify-full` with `sslrootcert` under a volume of the database cluster's CA Secret (`<cluster>-ca`) |
//! | edge TLS (cloud) | every LoadBalancer Service terminates TLS (`aws-load-balancer-ssl-cert`) on every port it opens (`aws-load-balancer-ssl-ports`): no plain-HTTP public listener |
//! | generated grants | k8s/base/broker-permissions.yaml and terraform/modules/platform/redis-acl.json are what `cargo xtask grants` writes from the code now |
//!
//! All of it is read from the rendered manifests and the code's declarations; none of it proves
//! that the operators create what the manifests ask for (nothing is applied here).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::Write as _,
    fs,
    path::Path,
};

use messaging::topology::Permissions;
use serde_json::Value;

use super::{
    Outcome,
    data_plane::CLOUD_OVERLAY,
    kube::Rendered,
    manifests::{Render, at, describe, environment, list_at, str_at},
    tools::{self, Venv},
};
use crate::grants::{self, RedisGrant};

/// The annotations of the AWS load balancer controllers (in-tree and AWS Load Balancer
/// Controller) that put TLS on a listener.
const SSL_CERT: &str = "service.beta.kubernetes.io/aws-load-balancer-ssl-cert";
const SSL_PORTS: &str = "service.beta.kubernetes.io/aws-load-balancer-ssl-ports";

/// What the code declares, as far as these rules need it.
pub struct Grants {
    /// The Redis ACL users.
    pub redis: Vec<RedisGrant>,
}

/// Every problem of one render (`render_name` is `<overlay>[+<component>…]`).
pub fn check(render_name: &str, docs: &[Value], grants: &Grants) -> Vec<String> {
    let render = Render::new(docs);
    let overlay = render_name.split('+').next().unwrap_or_default();
    let mut problems = Vec::new();
    for workload in workloads(docs) {
        for container in containers(workload) {
            let (variables, _) = environment(&render, container);
            let what = format!("{} container {:?}", describe(workload), name(container));
            check_broker_user(&render, &what, container, &variables, &mut problems);
            check_redis_user(&what, container, &variables, grants, &mut problems);
            if overlay == CLOUD_OVERLAY {
                check_postgres_tls(workload, &what, &variables, &mut problems);
            }
        }
    }
    check_default_user_readers(&render, &mut problems);
    check_permissions(&render, &mut problems);
    if overlay == CLOUD_OVERLAY {
        check_edge_tls(&render, &mut problems);
    }
    problems
}

fn workloads(docs: &[Value]) -> impl Iterator<Item = &Value> {
    docs.iter().filter(|doc| {
        matches!(
            str_at(doc, &["kind"]),
            Some("Deployment" | "StatefulSet" | "Job")
        )
    })
}

fn containers(workload: &Value) -> impl Iterator<Item = &Value> {
    let pod = &["spec", "template", "spec"];
    let of = |field: &str| {
        let mut path = pod.to_vec();
        path.push(field);
        list_at(workload, &path)
    };
    of("containers").iter().chain(of("initContainers"))
}

fn name(doc: &Value) -> &str {
    str_at(doc, &["name"]).unwrap_or("?")
}

/// The Secret names of the broker's default users (`<cluster>-default-user`).
fn default_users(render: &Render<'_>) -> BTreeSet<String> {
    render
        .all("RabbitmqCluster")
        .filter_map(|cluster| str_at(cluster, &["metadata", "name"]))
        .map(|cluster| format!("{cluster}-default-user"))
        .collect()
}

/// The Secrets of the broker Users (`<user>-user-credentials`).
fn user_secrets(render: &Render<'_>) -> BTreeSet<String> {
    render
        .all("User")
        .filter_map(|user| str_at(user, &["metadata", "name"]))
        .map(|user| format!("{user}-user-credentials"))
        .collect()
}

/// Names of the `$(VAR)` references in `value`.
fn references(value: &str) -> Vec<&str> {
    value
        .split("$(")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(name, _)| name))
        .collect()
}

/// The Secret a container variable is read from (`valueFrom.secretKeyRef.name`), if any.
fn secret_of<'c>(container: &'c Value, variable: &str) -> Option<&'c str> {
    list_at(container, &["env"])
        .iter()
        .find(|env| str_at(env, &["name"]) == Some(variable))
        .and_then(|env| str_at(env, &["valueFrom", "secretKeyRef", "name"]))
}

/// `user:password` of a `scheme://user:password@host…` URL.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    authority.rsplit_once('@').map(|(userinfo, _)| userinfo)
}

fn check_broker_user(
    render: &Render<'_>,
    what: &str,
    container: &Value,
    variables: &BTreeMap<String, Option<String>>,
    problems: &mut Vec<String>,
) {
    let defaults = default_users(render);
    for env in list_at(container, &["env"]) {
        if let Some(secret) = str_at(env, &["valueFrom", "secretKeyRef", "name"])
            && defaults.contains(secret)
        {
            problems.push(format!(
                "{what}: {} reads Secret {secret:?}, the broker's default (administrator) user; \
                 give it a User of its own (broker-user.yaml) and read `<user>-user-credentials`",
                name(env)
            ));
        }
    }
    let users = user_secrets(render);
    for (variable, value) in variables {
        let Some(value) = value.as_deref() else {
            continue;
        };
        if !variable.ends_with("_AMQP_URL") {
            continue;
        }
        let credentials = userinfo(value).unwrap_or_default();
        if credentials.split(':').next() == Some("guest") {
            problems.push(format!(
                "{what}: {variable} logs in as `guest`, the broker's default account"
            ));
            continue;
        }
        let from: BTreeSet<Option<&str>> = references(credentials)
            .into_iter()
            .map(|helper| secret_of(container, helper))
            .collect();
        let from_a_user = !from.is_empty()
            && from
                .iter()
                .all(|secret| secret.is_some_and(|secret| users.contains(secret)));
        if !from_a_user {
            let users = if users.is_empty() {
                "the render has no broker User".to_owned()
            } else {
                users.iter().cloned().collect::<Vec<_>>().join(", ")
            };
            problems.push(format!(
                "{what}: {variable} must take its user name and password from a broker User's \
                 Secret ({users}), as `amqp://$(USER):$(PASSWORD)@…` with both read from it"
            ));
        }
    }
}

fn check_default_user_readers(render: &Render<'_>, problems: &mut Vec<String>) {
    let defaults = default_users(render);
    for authentication in render.all("TriggerAuthentication") {
        for reference in list_at(authentication, &["spec", "secretTargetRef"]) {
            if let Some(secret) = str_at(reference, &["name"])
                && defaults.contains(secret)
            {
                problems.push(format!(
                    "{} reads Secret {secret:?}, the broker's default (administrator) user; \
                     give KEDA a User of its own",
                    describe(authentication)
                ));
            }
        }
    }
}

fn check_permissions(render: &Render<'_>, problems: &mut Vec<String>) {
    // What the code derives under each broker service's settings in this render.
    let mut expected: Vec<(String, Permissions)> = Vec::new();
    for service in declarations::ALL.iter().filter(|service| service.broker) {
        let Some(deployment) = render.find("Deployment", service.name) else {
            continue;
        };
        let Some(container) = containers(deployment).next() else {
            continue;
        };
        let (variables, _) = environment(render, container);
        let vars: HashMap<String, String> = variables
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| (key, value)))
            .collect();
        match grants::broker_permissions_of(service, &vars) {
            Ok(permissions) => expected.push((service.name.to_owned(), permissions)),
            Err(err) => problems.push(format!("Deployment/{}: {err}", service.name)),
        }
    }
    let granted: BTreeSet<&str> = render
        .all("Permission")
        .filter_map(|permission| str_at(permission, &["spec", "userReference", "name"]))
        .collect();
    for user in render.all("User") {
        let name = str_at(user, &["metadata", "name"]).unwrap_or_default();
        if !granted.contains(name) {
            problems.push(format!(
                "{} has no Permission (spec.userReference.name: {name}): it could log in and do nothing",
                describe(user)
            ));
        }
    }
    for permission in render.all("Permission") {
        let found = |field: &str| str_at(permission, &["spec", "permissions", field]);
        for (service, permissions) in &expected {
            for (field, wanted) in [
                ("configure", &permissions.configure),
                ("write", &permissions.write),
                ("read", &permissions.read),
            ] {
                if found(field) != Some(wanted.as_str()) {
                    problems.push(format!(
                        "{}: spec.permissions.{field} is {:?}, but the code derives {wanted:?} \
                         under {service}'s settings (messaging::topology::permissions; \
                         `cargo xtask grants` rewrites k8s/base/broker-permissions.yaml)",
                        describe(permission),
                        found(field)
                    ));
                }
            }
        }
    }
}

fn check_redis_user(
    what: &str,
    container: &Value,
    variables: &BTreeMap<String, Option<String>>,
    grants: &Grants,
    problems: &mut Vec<String>,
) {
    for (variable, value) in variables {
        let Some(value) = value.as_deref() else {
            continue;
        };
        let Some(service_prefix) = variable.strip_suffix("_REDIS_URL") else {
            continue;
        };
        let grant = grants
            .redis
            .iter()
            .find(|grant| grant.setting.starts_with(&format!("{service_prefix}_")));
        let Some((user, password)) = userinfo(value).and_then(|info| info.split_once(':')) else {
            problems.push(format!(
                "{what}: {variable}={value} connects without a user: Redis's default user \
                 reaches every key; write `redis://<user>:$(PASSWORD)@host:port` with the \
                 component's ACL user (redis_guard::acl)"
            ));
            continue;
        };
        let password_from_secret = !references(password).is_empty()
            && references(password)
                .into_iter()
                .all(|helper| secret_of(container, helper).is_some());
        if !password_from_secret {
            problems.push(format!(
                "{what}: {variable} must take its password from a Secret ($(VAR) of a \
                 secretKeyRef), not from the manifest"
            ));
        }
        match grant {
            None => problems.push(format!(
                "{what}: {variable} names Redis user {user:?}, but no Redis grant of \
                 `cargo xtask grants` belongs to this component"
            )),
            Some(grant) => {
                if user != grant.user {
                    problems.push(format!(
                        "{what}: {variable} logs in as {user:?}, but this component's ACL user \
                         is {:?}",
                        grant.user
                    ));
                }
                let prefix = variables
                    .get(&grant.setting)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| grant.prefix.clone());
                if prefix != grant.prefix {
                    problems.push(format!(
                        "{what}: {}={prefix}, but the ACL user {:?} may only reach keys under \
                         {:?} (terraform/modules/platform/redis-acl.json)",
                        grant.setting, grant.user, grant.prefix
                    ));
                }
            }
        }
    }
}

fn check_postgres_tls(
    workload: &Value,
    what: &str,
    variables: &BTreeMap<String, Option<String>>,
    problems: &mut Vec<String>,
) {
    // Mount path → Secret of every Secret volume of the pod.
    let volumes: BTreeMap<&str, &str> = list_at(workload, &["spec", "template", "spec", "volumes"])
        .iter()
        .filter_map(|volume| {
            Some((
                str_at(volume, &["name"])?,
                str_at(volume, &["secret", "secretName"])?,
            ))
        })
        .collect();
    let containers: Vec<&Value> = containers(workload).collect();
    let mounted = |path: &str| -> Option<&str> {
        containers.iter().find_map(|container| {
            list_at(container, &["volumeMounts"])
                .iter()
                .find_map(|mount| {
                    let at_path = str_at(mount, &["mountPath"])?;
                    let inside = path
                        .strip_prefix(at_path)
                        .is_some_and(|rest| rest.starts_with('/'));
                    inside
                        .then(|| volumes.get(str_at(mount, &["name"])?).copied())
                        .flatten()
                })
        })
    };
    for (variable, value) in variables {
        if !variable.ends_with("_DATABASE_URL") {
            continue;
        }
        let Some(value) = value.as_deref() else {
            problems.push(format!(
                "{what}: {variable} is read whole from a Secret, so nothing asks for \
                 `sslmode=verify-full` in the {CLOUD_OVERLAY} overlay: compose it, \
                 `$(DATABASE_URI)?sslmode=verify-full&sslrootcert=<the cluster's CA>`"
            ));
            continue;
        };
        let query: HashMap<&str, &str> = value
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .collect();
        if query.get("sslmode") != Some(&"verify-full") {
            problems.push(format!(
                "{what}: {variable} must ask for `sslmode=verify-full` in the {CLOUD_OVERLAY} \
                 overlay (found {:?}): without it the connection may be plaintext or reach an \
                 impostor",
                query.get("sslmode")
            ));
            continue;
        }
        match query.get("sslrootcert") {
            None => problems.push(format!(
                "{what}: {variable} must name the database cluster's CA (`sslrootcert=…`): \
                 verify-full against the system roots fails on CloudNativePG's own CA"
            )),
            Some(path) => match mounted(path) {
                Some(secret) if secret.ends_with("-ca") => {}
                found => problems.push(format!(
                    "{what}: {variable} reads its CA from {path}, which is not in a volume of a \
                     CloudNativePG `<cluster>-ca` Secret (found {found:?})"
                )),
            },
        }
    }
}

fn check_edge_tls(render: &Render<'_>, problems: &mut Vec<String>) {
    for service in render.all("Service") {
        if str_at(service, &["spec", "type"]) != Some("LoadBalancer") {
            continue;
        }
        let annotation = |key: &str| {
            at(service, &["metadata", "annotations"])
                .and_then(|annotations| annotations.get(key))
                .and_then(Value::as_str)
                .filter(|value| !value.trim().is_empty())
        };
        if annotation(SSL_CERT).is_none() {
            problems.push(format!(
                "{}: a public load balancer without TLS: set {SSL_CERT} (the ACM certificate, \
                 terraform/modules/app's edge_certificate_arn)",
                describe(service)
            ));
            continue;
        }
        let tls_ports: BTreeSet<&str> = annotation(SSL_PORTS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        for port in list_at(service, &["spec", "ports"]) {
            let number = at(port, &["port"])
                .and_then(Value::as_u64)
                .map(|n| n.to_string());
            let covered = tls_ports.contains("*")
                || str_at(port, &["name"]).is_some_and(|name| tls_ports.contains(name))
                || number
                    .as_deref()
                    .is_some_and(|number| tls_ports.contains(number));
            if !covered {
                problems.push(format!(
                    "{}: port {} ({:?}) is a plain-HTTP public listener: list it in {SSL_PORTS} \
                     or remove it",
                    describe(service),
                    number.unwrap_or_default(),
                    str_at(port, &["name"])
                ));
            }
        }
    }
}

/// The generated files against what `cargo xtask grants` would write now.
fn check_generated(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for (path, expected) in grants::expected(root)? {
        let found = fs::read_to_string(root.join(path)).unwrap_or_default();
        if found != expected {
            problems.push(format!(
                "{path} is not what the code declares now: run `cargo xtask grants` (it writes \
                 this file from messaging::topology::permissions and redis_guard::acl)"
            ));
        }
    }
    Ok(problems)
}

/// The gate step.
pub fn run(root: &Path, venv: &Venv, renders: &[Rendered]) -> anyhow::Result<Outcome> {
    if renders.is_empty() {
        return Ok(Outcome::Fail("nothing rendered to check".to_owned()));
    }
    let grants = Grants {
        redis: grants::redis_grants()?,
    };
    let mut problems = String::new();
    for problem in check_generated(root)? {
        let _ = writeln!(problems, "{problem}");
    }
    for render in renders {
        let docs = tools::yaml_documents(venv, &render.yaml)?;
        for problem in check(&render.name, &docs, &grants) {
            let _ = writeln!(problems, "[{}] {problem}", render.name);
        }
    }
    Ok(if problems.is_empty() {
        Outcome::Pass(format!(
            "{} renders; Redis users {}",
            renders.len(),
            grants
                .redis
                .iter()
                .map(|grant| grant.user)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        Outcome::Fail(problems)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn grants() -> Grants {
        Grants {
            redis: grants::redis_grants().unwrap(),
        }
    }

    fn orders_permissions() -> Permissions {
        let vars = HashMap::from([(
            "ORDERS_EVENTS_EXCHANGE".to_owned(),
            "shop.events".to_owned(),
        )]);
        grants::broker_permissions_of(&declarations::orders::ORDERS, &vars).unwrap()
    }

    fn secret_env(name: &str, secret: &str, key: &str) -> Value {
        json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    }

    fn broker_user(name: &str, permissions: &Permissions) -> Vec<Value> {
        vec![
            json!({"kind": "User", "metadata": {"name": name}, "spec": {"rabbitmqClusterReference": {"name": "rabbitmq"}}}),
            json!({"kind": "Permission", "metadata": {"name": name}, "spec": {
                "vhost": "/", "userReference": {"name": name},
                "permissions": {"configure": permissions.configure, "write": permissions.write, "read": permissions.read}}}),
        ]
    }

    /// A render where every rule holds: orders on its own broker user and Postgres with
    /// verify-full, the gateway on its Redis user behind a TLS load balancer, KEDA on its user.
    fn good_render() -> Vec<Value> {
        let permissions = orders_permissions();
        let mut docs = vec![
            json!({"kind": "RabbitmqCluster", "metadata": {"name": "rabbitmq"}}),
            json!({"kind": "Deployment", "metadata": {"name": "orders"}, "spec": {"template": {"spec": {
                "containers": [{"name": "orders",
                    "env": [
                        secret_env("DATABASE_URI", "orders-db-app", "uri"),
                        {"name": "ORDERS_DATABASE_URL", "value": "$(DATABASE_URI)?sslmode=verify-full&sslrootcert=/var/run/ferroshop/postgres-ca/ca.crt"},
                        secret_env("RABBITMQ_USERNAME", "orders-user-credentials", "username"),
                        secret_env("RABBITMQ_PASSWORD", "orders-user-credentials", "password"),
                        {"name": "ORDERS_AMQP_URL", "value": "amqp://$(RABBITMQ_USERNAME):$(RABBITMQ_PASSWORD)@rabbitmq:5672/%2f"},
                        {"name": "ORDERS_EVENTS_EXCHANGE", "value": "shop.events"}],
                    "volumeMounts": [{"name": "postgres-ca", "mountPath": "/var/run/ferroshop/postgres-ca"}]}],
                "volumes": [{"name": "postgres-ca", "secret": {"secretName": "orders-db-ca"}}]}}}}),
            json!({"kind": "Deployment", "metadata": {"name": "gateway"}, "spec": {"template": {"spec": {
                "containers": [{"name": "gateway", "env": [
                    secret_env("REDIS_PASSWORD", "gateway-redis", "password"),
                    {"name": "GATEWAY_REDIS_URL", "value": "redis://gateway:$(REDIS_PASSWORD)@redis:6379"}]}]}}}}),
            json!({"kind": "Service", "metadata": {"name": "gateway", "annotations": {
                    SSL_CERT: "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
                    SSL_PORTS: "https"}},
                "spec": {"type": "LoadBalancer", "ports": [{"name": "https", "port": 443, "targetPort": "http"}]}}),
            json!({"kind": "TriggerAuthentication", "metadata": {"name": "rabbitmq"}, "spec": {"secretTargetRef": [
                {"parameter": "username", "name": "keda-user-credentials", "key": "username"}]}}),
        ];
        docs.extend(broker_user("orders", &permissions));
        docs.extend(broker_user("keda", &permissions));
        docs
    }

    fn problems(docs: &[Value]) -> Vec<String> {
        check("cloud+observability", docs, &grants())
    }

    /// Exactly the problems that mention `needle`, and at least one.
    fn assert_refused(docs: &[Value], needle: &str) {
        let found = problems(docs);
        assert!(
            !found.is_empty() && found.iter().all(|problem| problem.contains(needle)),
            "expected only problems about {needle:?}, got {found:#?}"
        );
    }

    fn env_of<'d>(docs: &'d mut [Value], deployment: &str) -> &'d mut Vec<Value> {
        docs.iter_mut()
            .find(|doc| doc["kind"] == "Deployment" && doc["metadata"]["name"] == deployment)
            .and_then(|doc| doc["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut())
            .unwrap()
    }

    fn set_env(docs: &mut [Value], deployment: &str, name: &str, value: Value) {
        let env = env_of(docs, deployment);
        let entry = env.iter_mut().find(|env| env["name"] == name).unwrap();
        *entry = value;
    }

    fn doc<'d>(docs: &'d mut [Value], kind: &str, name: &str) -> &'d mut Value {
        docs.iter_mut()
            .find(|doc| doc["kind"] == kind && doc["metadata"]["name"] == name)
            .unwrap()
    }

    #[test]
    fn a_consistent_render_has_no_problems() {
        assert_eq!(problems(&good_render()), Vec::<String>::new());
        assert_eq!(
            check("local", &good_render(), &grants()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_brokers_default_user_and_guest_are_refused() {
        let mut docs = good_render();
        for variable in ["RABBITMQ_USERNAME", "RABBITMQ_PASSWORD"] {
            let key = variable
                .trim_start_matches("RABBITMQ_")
                .to_ascii_lowercase();
            set_env(
                &mut docs,
                "orders",
                variable,
                secret_env(variable, "rabbitmq-default-user", &key),
            );
        }
        let found = problems(&docs);
        assert!(
            found.iter().any(|p| p.contains("RABBITMQ_USERNAME reads Secret \"rabbitmq-default-user\", the broker's default (administrator) user")),
            "{found:#?}"
        );
        assert!(
            found.iter().any(|p| p.contains(
                "ORDERS_AMQP_URL must take its user name and password from a broker User's Secret"
            )),
            "{found:#?}"
        );

        let mut docs = good_render();
        set_env(
            &mut docs,
            "orders",
            "ORDERS_AMQP_URL",
            json!({"name": "ORDERS_AMQP_URL", "value": "amqp://guest:guest@rabbitmq:5672/%2f"}),
        );
        assert_refused(&docs, "ORDERS_AMQP_URL logs in as `guest`");

        let mut docs = good_render();
        doc(&mut docs, "TriggerAuthentication", "rabbitmq")["spec"]["secretTargetRef"][0]["name"] =
            json!("rabbitmq-default-user");
        assert_refused(
            &docs,
            "TriggerAuthentication/rabbitmq reads Secret \"rabbitmq-default-user\"",
        );
    }

    #[test]
    fn broker_permissions_that_differ_from_the_code_are_refused() {
        let mut docs = good_render();
        doc(&mut docs, "Permission", "keda")["spec"]["permissions"]["read"] = json!(".*");
        assert_refused(
            &docs,
            "Permission/keda: spec.permissions.read is Some(\".*\"), but the code derives",
        );

        // The settings change the names: a render whose exchange differs from its grant.
        let mut docs = good_render();
        set_env(
            &mut docs,
            "orders",
            "ORDERS_EVENTS_EXCHANGE",
            json!({"name": "ORDERS_EVENTS_EXCHANGE", "value": "other.events"}),
        );
        assert_refused(&docs, "but the code derives");

        let mut docs = good_render();
        docs.retain(|doc| !(doc["kind"] == "Permission" && doc["metadata"]["name"] == "keda"));
        assert_refused(&docs, "User/keda has no Permission");
    }

    #[test]
    fn a_redis_url_without_the_components_user_is_refused() {
        let url = |value: &str| json!({"name": "GATEWAY_REDIS_URL", "value": value});
        let mut docs = good_render();
        set_env(
            &mut docs,
            "gateway",
            "GATEWAY_REDIS_URL",
            url("redis://redis:6379"),
        );
        assert_refused(
            &docs,
            "GATEWAY_REDIS_URL=redis://redis:6379 connects without a user",
        );

        let mut docs = good_render();
        set_env(
            &mut docs,
            "gateway",
            "GATEWAY_REDIS_URL",
            url("redis://gateway:hunter2@redis:6379"),
        );
        assert_refused(
            &docs,
            "GATEWAY_REDIS_URL must take its password from a Secret",
        );

        let mut docs = good_render();
        set_env(
            &mut docs,
            "gateway",
            "GATEWAY_REDIS_URL",
            url("redis://inventory:$(REDIS_PASSWORD)@redis:6379"),
        );
        assert_refused(
            &docs,
            "logs in as \"inventory\", but this component's ACL user is \"gateway\"",
        );

        let mut docs = good_render();
        env_of(&mut docs, "gateway")
            .push(json!({"name": "GATEWAY_REDIS_PREFIX", "value": "gateway:v2"}));
        assert_refused(
            &docs,
            "GATEWAY_REDIS_PREFIX=gateway:v2, but the ACL user \"gateway\" may only reach keys under \"gateway:v1\"",
        );
    }

    #[test]
    fn postgres_without_verify_full_against_the_clusters_ca_is_refused_in_the_cloud() {
        let url = |value: &str| json!({"name": "ORDERS_DATABASE_URL", "value": value});
        let mut docs = good_render();
        set_env(
            &mut docs,
            "orders",
            "ORDERS_DATABASE_URL",
            url("$(DATABASE_URI)"),
        );
        assert_refused(
            &docs,
            "ORDERS_DATABASE_URL must ask for `sslmode=verify-full` in the cloud overlay (found None)",
        );
        // Locally the rule does not apply.
        assert_eq!(check("local", &docs, &grants()), Vec::<String>::new());

        let mut docs = good_render();
        set_env(
            &mut docs,
            "orders",
            "ORDERS_DATABASE_URL",
            secret_env("ORDERS_DATABASE_URL", "orders-db-app", "uri"),
        );
        assert_refused(&docs, "ORDERS_DATABASE_URL is read whole from a Secret");

        let mut docs = good_render();
        set_env(
            &mut docs,
            "orders",
            "ORDERS_DATABASE_URL",
            url("$(DATABASE_URI)?sslmode=require"),
        );
        assert_refused(&docs, "(found Some(\"require\"))");

        let mut docs = good_render();
        set_env(
            &mut docs,
            "orders",
            "ORDERS_DATABASE_URL",
            url("$(DATABASE_URI)?sslmode=verify-full"),
        );
        assert_refused(&docs, "must name the database cluster's CA");

        let mut docs = good_render();
        set_env(
            &mut docs,
            "orders",
            "ORDERS_DATABASE_URL",
            url("$(DATABASE_URI)?sslmode=verify-full&sslrootcert=/etc/ssl/ca.crt"),
        );
        assert_refused(
            &docs,
            "reads its CA from /etc/ssl/ca.crt, which is not in a volume of a CloudNativePG `<cluster>-ca` Secret",
        );
    }

    #[test]
    fn a_plain_http_public_listener_in_the_cloud_is_refused() {
        let mut docs = good_render();
        doc(&mut docs, "Service", "gateway")["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(SSL_CERT);
        assert_refused(&docs, "Service/gateway: a public load balancer without TLS");
        assert_eq!(check("local", &docs, &grants()), Vec::<String>::new());

        let mut docs = good_render();
        doc(&mut docs, "Service", "gateway")["spec"]["ports"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "http", "port": 80, "targetPort": "http"}));
        assert_refused(
            &docs,
            "Service/gateway: port 80 (Some(\"http\")) is a plain-HTTP public listener",
        );
    }

    #[test]
    fn stale_generated_grants_are_refused() {
        let root = crate::deploy_check::workspace_root();
        assert_eq!(check_generated(&root).unwrap(), Vec::<String>::new());

        let copy = std::env::temp_dir().join(format!("grants-{}", std::process::id()));
        for (path, contents) in grants::expected(&root).unwrap() {
            fs::create_dir_all(copy.join(path).parent().unwrap()).unwrap();
            fs::write(copy.join(path), contents).unwrap();
        }
        let settings = "k8s/base/orders/config.env";
        fs::create_dir_all(copy.join("k8s/base/orders")).unwrap();
        fs::write(
            copy.join(settings),
            "ORDERS_EVENTS_EXCHANGE=renamed.events\n",
        )
        .unwrap();
        let found = check_generated(&copy).unwrap();
        fs::remove_dir_all(&copy).unwrap();
        assert!(
            found.len() == 1 && found[0].starts_with("k8s/base/broker-permissions.yaml is not what the code declares now: run `cargo xtask grants`"),
            "{found:#?}"
        );
    }
}
