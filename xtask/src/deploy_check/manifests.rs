//! Consistency of the rendered Kubernetes manifests with the services' declarations
//! (`libs/declarations`) and with the project's rules: every service has its objects in every
//! render; image names, ports, probes and environment variable names match the declarations;
//! every setting declared as required is set; secrets exist or are known to be provided; only
//! the gateway is reachable from outside the namespace; each service reaches only its own
//! database; and every mounted Secret file is readable by its container (`secret_files.rs`).
//!
//! Pod hardening (non-root, read-only root filesystem, no privilege escalation, capabilities
//! dropped, seccomp, resource requests and limits) is not checked here: checkov's CKV_K8S_*
//! checks do it on the same renders, in the gate's checkov step.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::service_config::{PlatformConfig, ServiceConfig};

/// The namespace every namespaced object must land in.
pub const NAMESPACE: &str = "ferroshop";

/// Namespaces whose pods may reach into ours: Prometheus (scrapes), the CloudNativePG operator,
/// KEDA's operator (reads queue lengths from the broker), and the cluster DNS.
const INFRASTRUCTURE_NAMESPACES: &[&str] = &["monitoring", "cnpg-system", "keda", "kube-system"];

/// The label every workload carries with its name.
const NAME_LABEL: &str = "app.kubernetes.io/name";

/// What the checks know besides the render itself.
pub struct Context<'a> {
    pub services: &'a [ServiceConfig],
    pub platform: &'a PlatformConfig,
    /// Secrets the manifests reference but that are created outside them (by
    /// terraform/modules/app or by hand, see k8s/README.md).
    pub external_secrets: &'a BTreeSet<String>,
}

/// The objects of one `kubectl kustomize` output.
pub struct Render<'a> {
    docs: &'a [Value],
}

impl<'a> Render<'a> {
    pub fn new(docs: &'a [Value]) -> Self {
        Self { docs }
    }

    pub(super) fn all(&self, kind: &str) -> impl Iterator<Item = &'a Value> + '_ {
        let kind = kind.to_owned();
        self.docs
            .iter()
            .filter(move |doc| str_at(doc, &["kind"]) == Some(&kind))
    }

    pub(super) fn find(&self, kind: &str, name: &str) -> Option<&'a Value> {
        self.all(kind)
            .find(|doc| str_at(doc, &["metadata", "name"]) == Some(name))
    }

    /// Generated ConfigMaps carry a hash suffix (`users-config-824fb5kht6`), but references to
    /// them are rewritten to the same full name, so an exact match is right.
    fn config_map_data(&self, name: &str) -> Option<&'a serde_json::Map<String, Value>> {
        self.find("ConfigMap", name)
            .and_then(|map| map.get("data"))
            .and_then(Value::as_object)
    }
}

pub(super) fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |value, key| value.get(*key))
}

pub(super) fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(value, path).and_then(Value::as_str)
}

pub(super) fn list_at<'v>(value: &'v Value, path: &[&str]) -> &'v [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(super) fn describe(doc: &Value) -> String {
    format!(
        "{}/{}",
        str_at(doc, &["kind"]).unwrap_or("?"),
        str_at(doc, &["metadata", "name"]).unwrap_or("?")
    )
}

/// Every problem found in one render, as readable sentences.
pub fn check(render: &Render<'_>, context: &Context<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    check_namespaces(render, &mut problems);
    for service in context.services {
        check_service(render, service, context, &mut problems);
    }
    check_secret_references(render, context, &mut problems);
    check_no_committed_secrets(render, &mut problems);
    problems.extend(super::secret_files::check(render.docs));
    check_network_policies(render, context, &mut problems);
    problems
}

fn check_namespaces(render: &Render<'_>, problems: &mut Vec<String>) {
    const CLUSTER_SCOPED: &[&str] = &[
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
    ];
    for doc in render.docs {
        let kind = str_at(doc, &["kind"]).unwrap_or_default();
        if CLUSTER_SCOPED.contains(&kind) {
            continue;
        }
        match str_at(doc, &["metadata", "namespace"]) {
            Some(NAMESPACE) => {}
            other => problems.push(format!(
                "{} is in namespace {other:?}, not {NAMESPACE:?} (components must set it on their \
                 objects: they are applied outside the base)",
                describe(doc)
            )),
        }
    }
}

fn check_service(
    render: &Render<'_>,
    service: &ServiceConfig,
    context: &Context<'_>,
    problems: &mut Vec<String>,
) {
    let name = service.name.as_str();
    let Some(deployment) = render.find("Deployment", name) else {
        problems.push(format!(
            "no Deployment {name:?}: every service under services/ needs a base in \
             k8s/base/{name}/ listed in k8s/base/kustomization.yaml (copy k8s/base/payments and \
             adapt ports, variables and policies)"
        ));
        return;
    };
    check_deployment(render, deployment, service, context, problems);
    check_services(render, service, problems);
    check_companions(render, service, problems);
    if let Some(database) = &service.database {
        let cluster = format!("{name}-db");
        match render.find("Cluster", &cluster) {
            None => problems.push(format!(
                "{name} has a database ({database:?}) but there is no CloudNativePG Cluster \
                 {cluster:?}"
            )),
            Some(doc) => {
                let initdb = str_at(doc, &["spec", "bootstrap", "initdb", "database"]);
                if initdb != Some(database) {
                    problems.push(format!(
                        "Cluster {cluster} creates database {initdb:?}, the service expects \
                         {database:?} (libs/declarations)"
                    ));
                }
            }
        }
    }
}

fn check_deployment(
    render: &Render<'_>,
    deployment: &Value,
    service: &ServiceConfig,
    context: &Context<'_>,
    problems: &mut Vec<String>,
) {
    let name = service.name.as_str();
    let pod = at(deployment, &["spec", "template", "spec"]).unwrap_or(&Value::Null);
    if at(deployment, &["spec", "replicas"]).is_some() && autoscaler(render, name).is_some() {
        problems.push(format!(
            "Deployment {name} sets spec.replicas although an autoscaler owns the count: every \
             apply would reset it"
        ));
    }
    let Some(container) = list_at(pod, &["containers"])
        .iter()
        .find(|container| str_at(container, &["name"]) == Some(name))
    else {
        problems.push(format!("Deployment {name} has no container named {name:?}"));
        return;
    };

    let image = str_at(container, &["image"]).unwrap_or_default();
    let repository = image_repository(image);
    if !(repository == format!("ferroshop/{name}")
        || repository.ends_with(&format!("/ferroshop/{name}")))
    {
        problems.push(format!(
            "Deployment {name} runs image {image:?}; expected <registry>/ferroshop/{name} (the \
             image the Dockerfile builds with SERVICE={name})"
        ));
    }

    for (port_name, port) in &service.ports {
        let declared = list_at(container, &["ports"])
            .iter()
            .find(|declared| str_at(declared, &["name"]) == Some(port_name));
        match declared
            .and_then(|declared| at(declared, &["containerPort"]))
            .and_then(Value::as_u64)
        {
            Some(number) if number == u64::from(*port) => {}
            found => problems.push(format!(
                "Deployment {name}: container port {port_name:?} is {found:?}, the service \
                 listens on {port} by default (libs/declarations)"
            )),
        }
    }

    if let Some(admin) = service.port("admin") {
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = at(container, &[probe, "httpGet"]);
            let probe_path = get.and_then(|get| str_at(get, &["path"]));
            let probe_port = get.and_then(|get| get.get("port"));
            let port_ok = match probe_port {
                Some(Value::String(named)) => named == "admin",
                Some(Value::Number(number)) => number.as_u64() == Some(u64::from(admin)),
                _ => false,
            };
            if probe_path != Some(path) || !port_ok {
                problems.push(format!(
                    "Deployment {name}: {probe} must GET {path} on the admin port ({admin}), \
                     found path {probe_path:?} port {probe_port:?}"
                ));
            }
        }
    }

    let variables = check_environment(render, name, container, service, context, problems);
    check_identity(render, pod, container, &variables, service, problems);
}

/// Where a service's mutual-TLS files come from: the Secret `<name>-identity` that its
/// cert-manager Certificate fills, mounted in the pod, with `<PREFIX>_TLS_CA|CERT|KEY` naming
/// its `ca.crt`, `tls.crt` and `tls.key`; never `<PREFIX>_TLS=off`.
fn check_identity(
    render: &Render<'_>,
    pod: &Value,
    container: &Value,
    variables: &BTreeMap<String, Option<String>>,
    service: &ServiceConfig,
    problems: &mut Vec<String>,
) {
    let name = service.name.as_str();
    let secret = format!("{name}-identity");
    match render.find("Certificate", &secret) {
        None => problems.push(format!(
            "no Certificate {secret:?}: every service's identity is issued by cert-manager \
             (k8s/base/{name}/certificate.yaml)"
        )),
        Some(certificate) => {
            let identity = format!("spiffe://ferroshop.local/ns/ferroshop/sa/{name}");
            let uris: Vec<&str> = list_at(certificate, &["spec", "uris"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if str_at(certificate, &["spec", "secretName"]) != Some(secret.as_str())
                || uris != [identity.as_str()]
            {
                problems.push(format!(
                    "Certificate {secret} must fill Secret {secret:?} with the one URI {identity} \
                     (found secretName {:?}, uris {uris:?})",
                    str_at(certificate, &["spec", "secretName"])
                ));
            }
        }
    }
    let volume = list_at(pod, &["volumes"])
        .iter()
        .find(|volume| str_at(volume, &["secret", "secretName"]) == Some(secret.as_str()))
        .and_then(|volume| str_at(volume, &["name"]));
    let mount = volume.and_then(|volume| {
        list_at(container, &["volumeMounts"])
            .iter()
            .find(|mount| str_at(mount, &["name"]) == Some(volume))
            .and_then(|mount| str_at(mount, &["mountPath"]))
    });
    let Some(mount) = mount else {
        problems.push(format!(
            "Deployment {name} does not mount its identity Secret {secret:?}: without it the \
             service talks plaintext gRPC and authorizes nobody"
        ));
        return;
    };
    let prefix = &service.prefix;
    for (setting, file) in [
        ("TLS_CA", "ca.crt"),
        ("TLS_CERT", "tls.crt"),
        ("TLS_KEY", "tls.key"),
    ] {
        let variable = format!("{prefix}_{setting}");
        let expected = format!("{}/{file}", mount.trim_end_matches('/'));
        match variables.get(&variable) {
            Some(Some(value)) if *value == expected => {}
            found => problems.push(format!(
                "Deployment {name}: {variable} must be {expected:?} (the mounted identity), \
                 found {:?}",
                found.cloned().flatten()
            )),
        }
    }
    if let Some(Some(value)) = variables.get(&format!("{prefix}_TLS"))
        && value.trim().eq_ignore_ascii_case("off")
    {
        problems.push(format!(
            "Deployment {name} sets {prefix}_TLS=off: no service runs plaintext in a cluster"
        ));
    }
}

/// Secrets are made by Terraform (terraform/modules/app), CloudNativePG or cert-manager; one
/// written into the manifests would put its value in the repository.
fn check_no_committed_secrets(render: &Render<'_>, problems: &mut Vec<String>) {
    for secret in render.all("Secret") {
        problems.push(format!(
            "{} is in the manifests: a Secret's value would be committed; let Terraform or an \
             operator create it",
            describe(secret)
        ));
    }
}

/// `registry:5000/ferroshop/users:0.1.0@sha256:…` → `registry:5000/ferroshop/users`.
fn image_repository(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or_default();
    match without_digest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository.to_owned(),
        _ => without_digest.to_owned(),
    }
}

/// Every variable the container gets, with its value when it is a literal.
pub(super) fn environment(
    render: &Render<'_>,
    container: &Value,
) -> (BTreeMap<String, Option<String>>, Vec<String>) {
    let mut variables = BTreeMap::new();
    let mut problems = Vec::new();
    for source in list_at(container, &["envFrom"]) {
        if let Some(map_name) = str_at(source, &["configMapRef", "name"]) {
            match render.config_map_data(map_name) {
                Some(data) => {
                    for (key, value) in data {
                        variables.insert(key.clone(), value.as_str().map(str::to_owned));
                    }
                }
                None => problems.push(format!(
                    "envFrom names ConfigMap {map_name:?}, which is not in the render"
                )),
            }
        }
        if let Some(secret) = str_at(source, &["secretRef", "name"]) {
            problems.push(format!(
                "envFrom takes every key of Secret {secret:?}; name the variables one by one so \
                 they can be checked"
            ));
        }
    }
    for variable in list_at(container, &["env"]) {
        if let Some(name) = str_at(variable, &["name"]) {
            variables.insert(
                name.to_owned(),
                str_at(variable, &["value"]).map(str::to_owned),
            );
        }
    }
    (variables, problems)
}

/// Checks the container's variables, and returns them (name → literal value, if any).
fn check_environment(
    render: &Render<'_>,
    name: &str,
    container: &Value,
    service: &ServiceConfig,
    context: &Context<'_>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Option<String>> {
    let (variables, mut found) = environment(render, container);
    problems.extend(
        found
            .drain(..)
            .map(|problem| format!("Deployment {name}: {problem}")),
    );
    let values: Vec<&str> = variables.values().flatten().map(String::as_str).collect();
    for (variable, value) in &variables {
        if let Some(problem) = check_variable_name(variable, service, context, &values) {
            problems.push(format!("Deployment {name}: {problem}"));
        }
        if let Some(value) = value
            && let Some(problem) = check_variable_value(variable, value, service, context.services)
        {
            problems.push(format!("Deployment {name}: {problem}"));
        }
    }
    for required in &service.required {
        if !variables.keys().any(|variable| required.set_by(variable)) {
            problems.push(format!(
                "Deployment {name}: {}: declared as set by every deployment \
                 (libs/declarations/src/{}.rs: its default only works on a developer's machine), \
                 but neither its config.env nor the Deployment sets it",
                required.variable,
                name.replace('-', "_")
            ));
        }
    }
    if service.database.is_some() {
        let variable = format!("{}_DATABASE_URL", service.prefix);
        let reference = secret_behind(container, &variable);
        let expected = format!("{name}-db-app");
        if reference.and_then(|r| str_at(r, &["name"])) != Some(&expected)
            || reference.and_then(|r| str_at(r, &["key"])) != Some("uri")
        {
            problems.push(format!(
                "Deployment {name}: {variable} must come from key `uri` of Secret {expected:?} \
                 (generated by CloudNativePG for Cluster {name}-db)"
            ));
        }
    }
    variables
}

/// The `secretKeyRef` a container variable comes from: its own, or, for a value that starts
/// with `$(HELPER)` (a URL composed from a Secret's value, e.g. CloudNativePG's URI with TLS
/// options appended), the helper variable's.
pub(super) fn secret_behind<'c>(container: &'c Value, variable: &str) -> Option<&'c Value> {
    let env = list_at(container, &["env"]);
    let named = |name: &str| env.iter().find(|env| str_at(env, &["name"]) == Some(name));
    let entry = named(variable)?;
    if let Some(reference) = at(entry, &["valueFrom", "secretKeyRef"]) {
        return Some(reference);
    }
    let helper = str_at(entry, &["value"])?
        .strip_prefix("$(")?
        .split_once(')')?
        .0;
    named(helper).and_then(|env| at(env, &["valueFrom", "secretKeyRef"]))
}

/// Whether a variable name in a service's manifest is one the service reads.
pub fn check_variable_name(
    variable: &str,
    service: &ServiceConfig,
    context: &Context<'_>,
    values: &[&str],
) -> Option<String> {
    if variable.starts_with(&format!("{}_", service.prefix)) {
        return (!service.reads(variable)).then(|| {
            format!(
                "{variable} is not a setting of {} (libs/declarations/src/{}.rs declares {})",
                service.name,
                service.name.replace('-', "_"),
                service
                    .variables
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }
    if let Some(other) = context.services.iter().find(|other| {
        other.name != service.name && variable.starts_with(&format!("{}_", other.prefix))
    }) {
        return Some(format!(
            "{variable} has the prefix of {}, but this is {}'s container",
            other.name, service.name
        ));
    }
    if context.platform.global_variables.contains(variable) {
        return None;
    }
    let reference = format!("$({variable})");
    if values.iter().any(|value| value.contains(&reference)) {
        // A helper composed into another value, e.g. a password inside an amqp:// URL.
        return None;
    }
    Some(format!(
        "{variable} is read by nothing: neither a {}_* setting, nor one of {:?}, nor used as \
         $({variable}) in another variable",
        service.prefix, context.platform.global_variables
    ))
}

/// Checks the ports in a variable's value against the services' code: listen addresses use the
/// service's own ports, URLs of other services use theirs.
pub fn check_variable_value(
    variable: &str,
    value: &str,
    service: &ServiceConfig,
    services: &[ServiceConfig],
) -> Option<String> {
    for (port_name, port) in &service.ports {
        let address_variable =
            format!("{}_{}_ADDR", service.prefix, port_name.to_ascii_uppercase());
        if variable == address_variable && !value.ends_with(&format!(":{port}")) {
            return Some(format!(
                "{variable}={value} does not listen on port {port}, the {port_name} port that \
                 the manifests and probes use"
            ));
        }
    }
    for (host, port) in url_hosts(value) {
        let label = host.split('.').next().unwrap_or_default();
        let target = label.strip_suffix("-headless").unwrap_or(label);
        if let Some(other) = services.iter().find(|other| other.name == target)
            && !other.ports.values().any(|known| *known == port)
        {
            return Some(format!(
                "{variable}={value} calls {target} on port {port}, but {target} listens on {:?}",
                other.ports
            ));
        }
    }
    None
}

/// `(host, port)` of every `scheme://[user@]host:port` in a value.
fn url_hosts(value: &str) -> Vec<(String, u16)> {
    value
        .split("://")
        .skip(1)
        .filter_map(|rest| {
            let authority = rest.split(['/', '?', ' ', ',']).next()?;
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
            let (host, port) = host_port.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

fn check_services(render: &Render<'_>, service: &ServiceConfig, problems: &mut Vec<String>) {
    let name = service.name.as_str();
    let Some(port_name) = service.api_port_name() else {
        return;
    };
    let Some(port) = service.port(port_name) else {
        return;
    };
    let mut wanted = vec![(name.to_owned(), false)];
    if port_name == "grpc" {
        // gRPC clients balance across pods themselves (HTTP/2 keeps one connection).
        wanted.push((format!("{name}-headless"), true));
    }
    for (service_name, headless) in wanted {
        let Some(doc) = render.find("Service", &service_name) else {
            problems.push(format!(
                "no Service {service_name:?} ({})",
                if headless {
                    "headless: one DNS record per pod, for client-side load balancing"
                } else {
                    "ClusterIP"
                }
            ));
            continue;
        };
        let is_headless = str_at(doc, &["spec", "clusterIP"]) == Some("None");
        if is_headless != headless {
            problems.push(format!(
                "Service {service_name} must {}be headless (clusterIP: None)",
                if headless { "" } else { "not " }
            ));
        }
        if str_at(doc, &["spec", "selector", NAME_LABEL]) != Some(name) {
            problems.push(format!(
                "Service {service_name} must select {NAME_LABEL}={name}"
            ));
        }
        // A load balancer is the public edge: its port is the public one (443 with TLS in the
        // cloud overlay), whatever the service listens on.
        let public = str_at(doc, &["spec", "type"]) == Some("LoadBalancer");
        let exposes = list_at(doc, &["spec", "ports"]).iter().any(|declared| {
            (public || at(declared, &["port"]).and_then(Value::as_u64) == Some(u64::from(port)))
                && match declared.get("targetPort") {
                    Some(Value::String(target)) => target == port_name,
                    Some(Value::Number(target)) => target.as_u64() == Some(u64::from(port)),
                    _ => false,
                }
        });
        if !exposes {
            problems.push(format!(
                "Service {service_name} must expose port {port} to the container's {port_name:?} \
                 port (libs/declarations)"
            ));
        }
    }
}

/// The autoscaler that owns a service's replica count: its HorizontalPodAutoscaler, or the
/// KEDA ScaledObject of the same name (KEDA then makes the HorizontalPodAutoscaler itself).
fn autoscaler<'a>(render: &Render<'a>, name: &str) -> Option<&'a Value> {
    render
        .find("HorizontalPodAutoscaler", name)
        .or_else(|| render.find("ScaledObject", name))
}

fn check_companions(render: &Render<'_>, service: &ServiceConfig, problems: &mut Vec<String>) {
    let name = service.name.as_str();
    match autoscaler(render, name) {
        None => problems.push(format!(
            "no HorizontalPodAutoscaler or ScaledObject {name:?}"
        )),
        Some(scaler) => {
            let kind = str_at(scaler, &["kind"]).unwrap_or_default();
            // A ScaledObject's target kind defaults to Deployment.
            let target_kind = str_at(scaler, &["spec", "scaleTargetRef", "kind"])
                .or((kind == "ScaledObject").then_some("Deployment"));
            let target_name = str_at(scaler, &["spec", "scaleTargetRef", "name"]);
            if target_kind != Some("Deployment") || target_name != Some(name) {
                problems.push(format!("{kind} {name} must scale Deployment {name}"));
            }
            let (min_field, max_field) = if kind == "ScaledObject" {
                ("minReplicaCount", "maxReplicaCount")
            } else {
                ("minReplicas", "maxReplicas")
            };
            let min = at(scaler, &["spec", min_field])
                .and_then(Value::as_u64)
                .unwrap_or(1);
            let max = at(scaler, &["spec", max_field])
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if min == 0 || min > max {
                problems.push(format!(
                    "{kind} {name}: {min_field} {min} / {max_field} {max}"
                ));
            }
        }
    }
    let selects_service =
        |doc: &&Value| str_at(doc, &["spec", "selector", "matchLabels", NAME_LABEL]) == Some(name);
    if !render
        .all("PodDisruptionBudget")
        .any(|doc| selects_service(&doc))
    {
        problems.push(format!(
            "no PodDisruptionBudget selecting {NAME_LABEL}={name}"
        ));
    }
    match render.find("ServiceAccount", name) {
        None => problems.push(format!("no ServiceAccount {name:?}")),
        Some(account) => {
            if at(account, &["automountServiceAccountToken"]) != Some(&Value::Bool(false)) {
                problems.push(format!(
                    "ServiceAccount {name} mounts an API token; the service calls no Kubernetes API"
                ));
            }
        }
    }
    let has_policy = render
        .all("NetworkPolicy")
        .any(|doc| str_at(doc, &["spec", "podSelector", "matchLabels", NAME_LABEL]) == Some(name));
    if !has_policy {
        problems.push(format!("no NetworkPolicy selecting {NAME_LABEL}={name}"));
    }
}

/// Secrets named by pods must be in the render, generated by CloudNativePG for a Cluster in the
/// render, or among the externally provided ones.
fn check_secret_references(render: &Render<'_>, context: &Context<'_>, problems: &mut Vec<String>) {
    let present: BTreeSet<&str> = render
        .all("Secret")
        .filter_map(|doc| str_at(doc, &["metadata", "name"]))
        .collect();
    let generated: BTreeSet<String> = render
        .all("Cluster")
        .filter_map(|doc| str_at(doc, &["metadata", "name"]))
        // CloudNativePG makes `<cluster>-app` (the application's credentials) and `<cluster>-ca`
        // (the CA that signs the server's certificate).
        .flat_map(|cluster| [format!("{cluster}-app"), format!("{cluster}-ca")])
        .chain(
            // The Messaging Topology Operator makes `<user>-user-credentials`.
            render
                .all("User")
                .filter_map(|doc| str_at(doc, &["metadata", "name"]))
                .map(|user| format!("{user}-user-credentials")),
        )
        .chain(
            // The RabbitMQ Cluster Operator makes `<cluster>-default-user`.
            render
                .all("RabbitmqCluster")
                .filter_map(|doc| str_at(doc, &["metadata", "name"]))
                .map(|cluster| format!("{cluster}-default-user")),
        )
        .chain(
            // cert-manager fills the Secret each Certificate names.
            render
                .all("Certificate")
                .filter_map(|doc| str_at(doc, &["spec", "secretName"]))
                .map(str::to_owned),
        )
        .collect();
    let known = |name: &str| {
        present.contains(name)
            || generated.contains(name)
            || context.external_secrets.contains(name)
    };
    for authentication in render.all("TriggerAuthentication") {
        for reference in list_at(authentication, &["spec", "secretTargetRef"]) {
            if let Some(name) = str_at(reference, &["name"])
                && !known(name)
            {
                problems.push(format!(
                    "{} reads Secret {name:?}, which nothing creates",
                    describe(authentication)
                ));
            }
        }
    }
    for workload in render.docs.iter().filter(|doc| {
        matches!(
            str_at(doc, &["kind"]),
            Some("Deployment" | "StatefulSet" | "Job")
        )
    }) {
        let pod = at(workload, &["spec", "template", "spec"]).unwrap_or(&Value::Null);
        let mut names = BTreeSet::new();
        for container in list_at(pod, &["containers"])
            .iter()
            .chain(list_at(pod, &["initContainers"]))
        {
            for env in list_at(container, &["env"]) {
                names.extend(str_at(env, &["valueFrom", "secretKeyRef", "name"]));
            }
            for source in list_at(container, &["envFrom"]) {
                names.extend(str_at(source, &["secretRef", "name"]));
            }
        }
        for volume in list_at(pod, &["volumes"]) {
            names.extend(str_at(volume, &["secret", "secretName"]));
        }
        for name in names {
            if !known(name) {
                problems.push(format!(
                    "{} uses Secret {name:?}, which nothing creates: not in the manifests, not a \
                     CloudNativePG `<cluster>-app`/`-ca` Secret, not a broker User's \
                     `<user>-user-credentials`, not a cert-manager Certificate's, not generated \
                     by terraform/modules/app",
                    describe(workload)
                ));
            }
        }
    }
}

/// Whether a NetworkPolicy peer lies outside the namespace (beyond the infrastructure ones).
fn is_external_peer(peer: &Value) -> bool {
    if peer.get("ipBlock").is_some() {
        return true;
    }
    let Some(namespaces) = peer.get("namespaceSelector") else {
        return false; // a podSelector alone stays inside the namespace
    };
    let named = str_at(namespaces, &["matchLabels", "kubernetes.io/metadata.name"]);
    !named.is_some_and(|name| INFRASTRUCTURE_NAMESPACES.contains(&name))
}

fn check_network_policies(render: &Render<'_>, context: &Context<'_>, problems: &mut Vec<String>) {
    let policies: Vec<&Value> = render.all("NetworkPolicy").collect();
    let default_deny = policies.iter().any(|policy| {
        at(policy, &["spec", "podSelector"])
            .and_then(Value::as_object)
            .is_some_and(|s| s.is_empty())
            && list_at(policy, &["spec", "ingress"]).is_empty()
            && list_at(policy, &["spec", "egress"]).is_empty()
            && ["Ingress", "Egress"].iter().all(|kind| {
                list_at(policy, &["spec", "policyTypes"])
                    .iter()
                    .any(|t| t.as_str() == Some(kind))
            })
    });
    if !default_deny {
        problems.push(
            "no default-deny NetworkPolicy (empty podSelector, policyTypes Ingress and Egress, no \
             rules)"
                .to_owned(),
        );
    }
    let owners: BTreeMap<String, &str> = context
        .services
        .iter()
        .filter(|service| service.database.is_some())
        .map(|service| (format!("{}-db", service.name), service.name.as_str()))
        .collect();
    for policy in policies {
        let selected_app = str_at(policy, &["spec", "podSelector", "matchLabels", NAME_LABEL]);
        let selected_cluster = str_at(
            policy,
            &["spec", "podSelector", "matchLabels", "cnpg.io/cluster"],
        );
        for rule in list_at(policy, &["spec", "ingress"]) {
            let peers = list_at(rule, &["from"]);
            let external = peers.is_empty() || peers.iter().any(is_external_peer);
            if external && selected_app != Some("gateway") {
                problems.push(format!(
                    "{} admits traffic from outside the namespace; only the gateway may be \
                     reachable from outside",
                    describe(policy)
                ));
            }
            if let Some(owner) = selected_cluster.and_then(|cluster| owners.get(cluster)) {
                for peer in peers {
                    if let Some(app) = str_at(peer, &["podSelector", "matchLabels", NAME_LABEL])
                        && app != *owner
                    {
                        problems.push(format!(
                            "{} lets {app} into {owner}'s database; each database is reached by \
                             its owner only",
                            describe(policy)
                        ));
                    }
                }
            }
        }
        if let Some(app) = selected_app {
            for rule in list_at(policy, &["spec", "egress"]) {
                for peer in list_at(rule, &["to"]) {
                    if let Some(cluster) =
                        str_at(peer, &["podSelector", "matchLabels", "cnpg.io/cluster"])
                        && cluster != format!("{app}-db")
                    {
                        problems.push(format!(
                            "{} lets {app} reach database cluster {cluster}; a service reaches \
                             only its own ({app}-db)",
                            describe(policy)
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::deploy_check::service_config::RequiredSetting;

    fn service(name: &str, grpc: u16, admin: u16, variables: &[&str]) -> ServiceConfig {
        let prefix = name.to_ascii_uppercase();
        ServiceConfig {
            name: name.to_owned(),
            prefix: prefix.clone(),
            ports: [("grpc".to_owned(), grpc), ("admin".to_owned(), admin)].into(),
            database: Some(name.to_owned()),
            variables: variables.iter().map(|v| format!("{prefix}_{v}")).collect(),
            patterns: BTreeSet::new(),
            required: Vec::new(),
        }
    }

    fn platform() -> PlatformConfig {
        PlatformConfig {
            global_variables: ["LOG_FORMAT", "RUST_LOG"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    struct Fixture {
        services: Vec<ServiceConfig>,
        platform: PlatformConfig,
        external: BTreeSet<String>,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                services: vec![
                    service(
                        "orders",
                        50053,
                        9103,
                        &[
                            "GRPC_ADDR",
                            "ADMIN_ADDR",
                            "DATABASE_URL",
                            "AMQP_URL",
                            "INVENTORY_URL",
                            "TLS",
                            "TLS_CA",
                            "TLS_CERT",
                            "TLS_KEY",
                        ],
                    ),
                    service(
                        "inventory",
                        50052,
                        9102,
                        &[
                            "GRPC_ADDR",
                            "ADMIN_ADDR",
                            "DATABASE_URL",
                            "TLS_CA",
                            "TLS_CERT",
                            "TLS_KEY",
                        ],
                    ),
                ],
                platform: platform(),
                external: ["rabbitmq-credentials".to_owned()].into(),
            }
            .requiring("orders", "ORDERS_INVENTORY_URL")
        }

        /// `service` declares `variable` as one every deployment sets.
        fn requiring(mut self, service: &str, variable: &str) -> Self {
            if let Some(config) = self.services.iter_mut().find(|s| s.name == service) {
                config.required.push(RequiredSetting {
                    variable: variable.to_owned(),
                    secret: false,
                });
            }
            self
        }

        fn context(&self) -> Context<'_> {
            Context {
                services: &self.services,
                platform: &self.platform,
                external_secrets: &self.external,
            }
        }
    }

    fn objects(name: &str, grpc: u16, admin: u16, env: Value) -> Vec<Value> {
        let labels = json!({ NAME_LABEL: name });
        vec![
            json!({"kind": "Deployment", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {"template": {"spec": {
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "identity", "secret": {"secretName": format!("{name}-identity"), "defaultMode": 0o440}}],
            "containers": [{
                "name": name, "image": format!("registry.example:5000/ferroshop/{name}:1.0"),
                "ports": [{"name": "grpc", "containerPort": grpc}, {"name": "admin", "containerPort": admin}],
                "env": with_identity(name, env),
                "volumeMounts": [{"name": "identity", "mountPath": "/var/run/ferroshop/identity", "readOnly": true}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "admin"}},
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": admin}},
                "resources": {"requests": {"cpu": "1", "memory": "1"}, "limits": {"cpu": "1", "memory": "1"}},
                "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]}}}}),
            json!({"kind": "Service", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {"selector": labels, "ports": [{"port": grpc, "targetPort": "grpc"}]}}),
            json!({"kind": "Service", "metadata": {"name": format!("{name}-headless"), "namespace": NAMESPACE}, "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": grpc, "targetPort": grpc}]}}),
            json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": name}, "minReplicas": 2, "maxReplicas": 4}}),
            json!({"kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {"selector": {"matchLabels": labels}}}),
            json!({"kind": "ServiceAccount", "metadata": {"name": name, "namespace": NAMESPACE}, "automountServiceAccountToken": false}),
            json!({"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {"podSelector": {"matchLabels": labels},
                "egress": [{"to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": format!("{name}-db")}}}]}]}}),
            json!({"kind": "Cluster", "metadata": {"name": format!("{name}-db"), "namespace": NAMESPACE}, "spec": {"bootstrap": {"initdb": {"database": name}}}}),
            json!({"kind": "Certificate", "metadata": {"name": format!("{name}-identity"), "namespace": NAMESPACE},
                "spec": {"secretName": format!("{name}-identity"), "uris": [format!("spiffe://ferroshop.local/ns/ferroshop/sa/{name}")]}}),
        ]
    }

    /// `env` and the three mutual-TLS settings pointing into the mounted identity.
    fn with_identity(name: &str, env: Value) -> Value {
        let prefix = name.to_ascii_uppercase();
        let mut env = env.as_array().cloned().unwrap_or_default();
        for (setting, file) in [
            ("TLS_CA", "ca.crt"),
            ("TLS_CERT", "tls.crt"),
            ("TLS_KEY", "tls.key"),
        ] {
            env.push(json!({"name": format!("{prefix}_{setting}"), "value": format!("/var/run/ferroshop/identity/{file}")}));
        }
        Value::Array(env)
    }

    fn database_env(name: &str) -> Value {
        json!({"name": format!("{}_DATABASE_URL", name.to_ascii_uppercase()), "valueFrom": {"secretKeyRef": {"name": format!("{name}-db-app"), "key": "uri"}}})
    }

    fn good_render() -> Vec<Value> {
        let mut docs = vec![
            json!({"kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": NAMESPACE},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        ];
        docs.extend(objects("orders", 50053, 9103, json!([
            database_env("orders"),
            {"name": "ORDERS_GRPC_ADDR", "value": "0.0.0.0:50053"},
            {"name": "ORDERS_INVENTORY_URL", "value": "http://inventory-headless.ferroshop.svc:50052"},
            {"name": "RABBITMQ_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "rabbitmq-credentials", "key": "password"}}},
            {"name": "ORDERS_AMQP_URL", "value": "amqp://u:$(RABBITMQ_PASSWORD)@rabbitmq:5672/%2f"},
            {"name": "LOG_FORMAT", "value": "json"},
        ])));
        docs.extend(objects(
            "inventory",
            50052,
            9102,
            json!([database_env("inventory")]),
        ));
        docs
    }

    fn problems_of(docs: &[Value]) -> Vec<String> {
        let fixture = Fixture::new();
        check(&Render::new(docs), &fixture.context())
    }

    fn assert_one_problem_mentioning(docs: &[Value], needle: &str) {
        let problems = problems_of(docs);
        assert!(
            problems.len() == 1 && problems[0].contains(needle),
            "expected one problem about {needle:?}, got {problems:#?}"
        );
    }

    fn container_env<'d>(docs: &'d mut [Value], service: &str) -> &'d mut Vec<Value> {
        docs.iter_mut()
            .find(|doc| doc["kind"] == "Deployment" && doc["metadata"]["name"] == service)
            .and_then(|doc| doc["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut())
            .unwrap()
    }

    #[test]
    fn a_consistent_render_has_no_problems() {
        assert_eq!(problems_of(&good_render()), Vec::<String>::new());
    }

    #[test]
    fn a_service_without_a_base_is_reported_with_what_to_do() {
        let docs: Vec<Value> = good_render()
            .into_iter()
            .filter(|doc| doc["metadata"]["name"] != "inventory")
            .collect();
        assert_one_problem_mentioning(&docs, "k8s/base/inventory/");
    }

    #[test]
    fn a_setting_declared_required_but_missing_from_the_manifests_is_reported() {
        let mut docs = good_render();
        container_env(&mut docs, "orders").retain(|env| env["name"] != "ORDERS_INVENTORY_URL");
        assert_one_problem_mentioning(
            &docs,
            "ORDERS_INVENTORY_URL: declared as set by every deployment",
        );
    }

    #[test]
    fn a_service_without_its_mounted_identity_is_reported() {
        let mut docs = good_render();
        for doc in docs
            .iter_mut()
            .filter(|doc| doc["kind"] == "Deployment" && doc["metadata"]["name"] == "orders")
        {
            doc["spec"]["template"]["spec"]["volumes"] = json!([]);
        }
        assert_one_problem_mentioning(
            &docs,
            "does not mount its identity Secret \"orders-identity\"",
        );

        let mut docs = good_render();
        docs.retain(|doc| {
            !(doc["kind"] == "Certificate" && doc["metadata"]["name"] == "inventory-identity")
        });
        // Also reported: nothing creates the Secret the Deployment mounts.
        let problems = problems_of(&docs);
        assert!(
            problems.len() == 2
                && problems[0].contains("no Certificate \"inventory-identity\"")
                && problems[1]
                    .contains("uses Secret \"inventory-identity\", which nothing creates"),
            "{problems:#?}"
        );

        let mut docs = good_render();
        let env = container_env(&mut docs, "orders");
        env.retain(|env| env["name"] != "ORDERS_TLS_KEY");
        env.push(json!({"name": "ORDERS_TLS_KEY", "value": "/tmp/key.pem"}));
        assert_one_problem_mentioning(
            &docs,
            "ORDERS_TLS_KEY must be \"/var/run/ferroshop/identity/tls.key\"",
        );
    }

    #[test]
    fn plaintext_in_a_cluster_is_reported() {
        let mut docs = good_render();
        container_env(&mut docs, "orders").push(json!({"name": "ORDERS_TLS", "value": "off"}));
        assert_one_problem_mentioning(&docs, "sets ORDERS_TLS=off");
    }

    #[test]
    fn a_secret_in_the_manifests_is_reported() {
        let mut docs = good_render();
        docs.push(json!({"kind": "Secret", "metadata": {"name": "leaked", "namespace": NAMESPACE}, "data": {"key": "c2VjcmV0"}}));
        assert_one_problem_mentioning(&docs, "a Secret's value would be committed");
    }

    #[test]
    fn an_unknown_prefixed_variable_is_reported() {
        let mut docs = good_render();
        container_env(&mut docs, "orders")
            .push(json!({"name": "ORDERS_GRPC_ADRESS", "value": "x"}));
        assert_one_problem_mentioning(&docs, "ORDERS_GRPC_ADRESS is not a setting of orders");
    }

    #[test]
    fn another_services_variable_is_reported() {
        let mut docs = good_render();
        container_env(&mut docs, "orders")
            .push(json!({"name": "INVENTORY_GRPC_ADDR", "value": "0.0.0.0:1"}));
        assert_one_problem_mentioning(&docs, "prefix of inventory");
    }

    #[test]
    fn an_unused_unprefixed_variable_is_reported() {
        let mut docs = good_render();
        container_env(&mut docs, "orders").push(json!({"name": "DATABASE_URL", "value": "x"}));
        assert_one_problem_mentioning(&docs, "DATABASE_URL is read by nothing");
    }

    #[test]
    fn a_listen_address_on_the_wrong_port_is_reported() {
        let mut docs = good_render();
        container_env(&mut docs, "orders")[1] =
            json!({"name": "ORDERS_GRPC_ADDR", "value": "0.0.0.0:50052"});
        assert_one_problem_mentioning(&docs, "does not listen on port 50053");
    }

    #[test]
    fn a_url_to_another_service_on_the_wrong_port_is_reported() {
        let mut docs = good_render();
        container_env(&mut docs, "orders")[2] =
            json!({"name": "ORDERS_INVENTORY_URL", "value": "http://inventory:50053"});
        assert_one_problem_mentioning(&docs, "calls inventory on port 50053");
    }

    #[test]
    fn a_wrong_container_port_or_image_is_reported() {
        let mut docs = good_render();
        docs[1]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
            json!(50054);
        assert_one_problem_mentioning(&docs, "container port \"grpc\"");
        let mut docs = good_render();
        docs[1]["spec"]["template"]["spec"]["containers"][0]["image"] =
            json!("ferroshop/inventory:1");
        assert_one_problem_mentioning(&docs, "expected <registry>/ferroshop/orders");
    }

    #[test]
    fn probes_must_use_the_admin_endpoints() {
        let mut docs = good_render();
        docs[1]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] =
            json!("/healthz");
        assert_one_problem_mentioning(&docs, "readinessProbe must GET /readyz");
    }

    #[test]
    fn a_missing_headless_service_is_reported() {
        let docs: Vec<Value> = good_render()
            .into_iter()
            .filter(|doc| doc["metadata"]["name"] != "orders-headless")
            .collect();
        assert_one_problem_mentioning(&docs, "orders-headless");
    }

    #[test]
    fn an_unknown_secret_is_reported_and_operator_secrets_are_known() {
        let mut docs = good_render();
        container_env(&mut docs, "orders").push(json!({"name": "LOG_FORMAT", "valueFrom": {"secretKeyRef": {"name": "mystery", "key": "k"}}}));
        assert_one_problem_mentioning(&docs, "Secret \"mystery\"");
    }

    #[test]
    fn a_scaled_object_is_an_autoscaler_and_the_operators_secrets_are_known() {
        let mut docs = good_render();
        let hpa = docs
            .iter()
            .position(|doc| {
                doc["kind"] == "HorizontalPodAutoscaler" && doc["metadata"]["name"] == "orders"
            })
            .unwrap();
        docs[hpa] = json!({"kind": "ScaledObject", "metadata": {"name": "orders", "namespace": NAMESPACE},
            "spec": {"scaleTargetRef": {"name": "orders"}, "minReplicaCount": 2, "maxReplicaCount": 4}});
        docs.push(json!({"kind": "RabbitmqCluster", "metadata": {"name": "rabbitmq", "namespace": NAMESPACE}}));
        docs.push(json!({"kind": "TriggerAuthentication", "metadata": {"name": "rabbitmq", "namespace": NAMESPACE},
            "spec": {"secretTargetRef": [{"parameter": "password", "name": "rabbitmq-default-user", "key": "password"}]}}));
        container_env(&mut docs, "orders").push(json!({"name": "LOG_FORMAT", "valueFrom": {"secretKeyRef": {"name": "rabbitmq-default-user", "key": "username"}}}));
        assert_eq!(problems_of(&docs), Vec::<String>::new());

        docs[hpa]["spec"]["minReplicaCount"] = json!(5);
        assert_one_problem_mentioning(
            &docs,
            "ScaledObject orders: minReplicaCount 5 / maxReplicaCount 4",
        );
        docs[hpa]["spec"]["minReplicaCount"] = json!(2);
        docs[1]["spec"]["replicas"] = json!(3);
        assert_one_problem_mentioning(&docs, "sets spec.replicas");
        docs[1]["spec"].as_object_mut().unwrap().remove("replicas");

        // Without the RabbitmqCluster nothing makes its Secret.
        docs.retain(|doc| doc["kind"] != "RabbitmqCluster");
        let problems = problems_of(&docs);
        assert!(
            problems.len() == 2
                && problems[0].contains(
                    "TriggerAuthentication/rabbitmq reads Secret \"rabbitmq-default-user\""
                )
                && problems[1]
                    .contains("uses Secret \"rabbitmq-default-user\", which nothing creates"),
            "{problems:#?}"
        );
    }

    #[test]
    fn only_the_gateway_may_admit_outside_traffic() {
        let mut docs = good_render();
        docs.push(json!({"kind": "NetworkPolicy", "metadata": {"name": "open", "namespace": NAMESPACE},
            "spec": {"podSelector": {"matchLabels": {NAME_LABEL: "orders"}}, "ingress": [{"ports": [{"port": 50053}]}]}}));
        assert_one_problem_mentioning(&docs, "only the gateway");

        let mut docs = good_render();
        docs.push(json!({"kind": "NetworkPolicy", "metadata": {"name": "gateway", "namespace": NAMESPACE},
            "spec": {"podSelector": {"matchLabels": {NAME_LABEL: "gateway"}}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}));
        docs.push(json!({"kind": "NetworkPolicy", "metadata": {"name": "scrapes", "namespace": NAMESPACE},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}]}}));
        assert_eq!(problems_of(&docs), Vec::<String>::new());
    }

    #[test]
    fn a_service_reaches_only_its_own_database() {
        let mut docs = good_render();
        docs.push(json!({"kind": "NetworkPolicy", "metadata": {"name": "sneaky", "namespace": NAMESPACE},
            "spec": {"podSelector": {"matchLabels": {NAME_LABEL: "orders"}},
                     "egress": [{"to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "inventory-db"}}}]}]}}));
        docs.push(json!({"kind": "NetworkPolicy", "metadata": {"name": "inventory-db", "namespace": NAMESPACE},
            "spec": {"podSelector": {"matchLabels": {"cnpg.io/cluster": "inventory-db"}},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {NAME_LABEL: "orders"}}}]}]}}));
        let problems = problems_of(&docs);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems.iter().all(|p| p.contains("database")),
            "{problems:#?}"
        );
    }

    #[test]
    fn objects_outside_the_namespace_are_reported() {
        let mut docs = good_render();
        docs.push(json!({"kind": "ConfigMap", "metadata": {"name": "stray"}}));
        assert_one_problem_mentioning(&docs, "ConfigMap/stray is in namespace None");
    }

    #[test]
    fn replicas_beside_an_autoscaler_are_reported() {
        let mut docs = good_render();
        docs[1]["spec"]["replicas"] = json!(3);
        assert_one_problem_mentioning(&docs, "sets spec.replicas");
    }

    #[test]
    fn image_repositories_ignore_tags_digests_and_registry_ports() {
        assert_eq!(image_repository("ferroshop/users:dev"), "ferroshop/users");
        assert_eq!(
            image_repository("r:5000/ferroshop/users"),
            "r:5000/ferroshop/users"
        );
        assert_eq!(
            image_repository("r:5000/ferroshop/users:1.2@sha256:abc"),
            "r:5000/ferroshop/users"
        );
    }
}
