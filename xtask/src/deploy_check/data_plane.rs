//! The data plane and the autoscalers of every render, against what `terraform/modules/platform`
//! installs. A manifest can promise what the cluster will not do: a ScaledObject nobody acts on
//! because KEDA is not installed, an HPA on CPU without metrics-server (it never scales), a
//! RabbitmqCluster without its operator (nothing runs), a "highly available" broker with one
//! node. The rules:
//!
//! | rule | what |
//! |---|---|
//! | metric sources | a ScaledObject needs KEDA (chart `keda`) in the platform; an HPA metric or a KEDA trigger on `cpu`/`memory` needs `metrics-server`; a RabbitmqCluster needs the RabbitMQ Cluster Operator's manifest, a broker User or Permission the Messaging Topology Operator's |
//! | scaled objects | each targets a Deployment of the render that no HPA also scales; each `rabbitmq` trigger names a queue of the declared topology (`messaging::topology::QUEUES`) and a TriggerAuthentication of the render |
//! | broker replicas | every RabbitmqCluster states `quorum_queue.initial_cluster_size`, at most its replicas; in the cloud overlay both are at least 3 |
//! | cache failover | in the cloud overlay every service with `<P>_REDIS_URL` also sets `<P>_REDIS_SENTINELS` and `<P>_REDIS_MASTER` to the platform's redis-ha release, and terraform/envs/aws switches that release on |
//! | disruption budgets | every RabbitmqCluster and StatefulSet has a PodDisruptionBudget selecting its pods; the redis-ha release sets one |

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::Path,
};

use hcl_edit::{
    expr::{Expression, Object, ObjectKey},
    structure::Block,
    visit::Visit,
};
use serde_json::Value;

use super::{
    Outcome,
    hcl::{self, Configuration},
    kube::Rendered,
    manifests::{Render, at, describe, environment, list_at, str_at},
    tools::{self, Venv},
};

/// The overlay terraform/envs/aws applies: the one whose data plane must survive a node.
pub const CLOUD_OVERLAY: &str = "cloud";

/// Replicas (and quorum queue replicas) of the broker in the cloud overlay: a majority of three
/// survives the loss of one node.
const CLOUD_BROKER_REPLICAS: u64 = 3;

/// The label every workload carries with its name.
const NAME_LABEL: &str = "app.kubernetes.io/name";

/// What terraform/modules/platform installs, as far as these rules need it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The `chart` of every `helm_release` (`keda`, `metrics-server`, …).
    pub charts: BTreeSet<String>,
    /// Whether a kustomization data source applies the RabbitMQ Cluster Operator's release
    /// manifest.
    pub rabbitmq_operator: bool,
    /// Whether one applies the Messaging Topology Operator's (broker `User`s, `Permission`s).
    pub topology_operator: bool,
    /// The `redis-ha` release, when the module has one.
    pub redis_ha: Option<RedisHa>,
    /// Whether terraform/envs/aws calls the platform with `redis_ha = true`.
    pub cloud_enables_redis_ha: bool,
}

/// The platform's Redis-with-Sentinel release.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RedisHa {
    /// `<release>.<namespace>.svc:26379`: the chart's headless Service, one record per Sentinel.
    pub sentinels: String,
    /// `redis.masterGroupName` of its values.
    pub master: Option<String>,
    /// Whether its values set a `podDisruptionBudget`.
    pub disruption_budget: bool,
}

/// Every `key = value` with an identifier key inside a block, first occurrence wins.
fn object_entries(block: &Block) -> BTreeMap<String, Expression> {
    #[derive(Default)]
    struct Entries(BTreeMap<String, Expression>);

    impl Visit for Entries {
        fn visit_object(&mut self, object: &Object) {
            for (key, value) in object.iter() {
                if let ObjectKey::Ident(ident) = key {
                    self.0
                        .entry(ident.as_str().to_owned())
                        .or_insert_with(|| value.expr().clone());
                }
            }
            hcl_edit::visit::visit_object(self, object);
        }
    }

    let mut entries = Entries::default();
    entries.visit_body(&block.body);
    entries.0
}

impl Platform {
    /// Reads the facts from the parsed `terraform/` tree.
    pub fn from_configuration(configuration: &Configuration) -> Self {
        let mut platform = Self::default();
        if let Some(module) = configuration.modules.get("modules/platform") {
            for ((kind, _), release) in &module.resources {
                if kind != "helm_release" {
                    continue;
                }
                let Some(chart) = release.attribute("chart").and_then(hcl::literal) else {
                    continue;
                };
                platform.charts.insert(chart.to_owned());
                if chart == "redis-ha" {
                    let name = release.attribute("name").and_then(hcl::literal);
                    let namespace = release.attribute("namespace").and_then(hcl::literal);
                    let values = object_entries(&release.block);
                    platform.redis_ha = Some(RedisHa {
                        sentinels: format!(
                            "{}.{}.svc:26379",
                            name.unwrap_or("redis-ha"),
                            namespace.unwrap_or("default")
                        ),
                        master: values
                            .get("masterGroupName")
                            .and_then(hcl::literal)
                            .map(str::to_owned),
                        disruption_budget: values.contains_key("podDisruptionBudget"),
                    });
                }
            }
            let applies = |manifest: &str| {
                module.data.iter().any(|((kind, _), data)| {
                    kind == "kustomization_overlay"
                        && data
                            .attribute("resources")
                            .is_some_and(|r| r.to_string().contains(manifest))
                })
            };
            platform.rabbitmq_operator = applies("rabbitmq/cluster-operator");
            platform.topology_operator = applies("rabbitmq/messaging-topology-operator");
        }
        if let Some(aws) = configuration.modules.get("envs/aws") {
            platform.cloud_enables_redis_ha = aws.calls.get("platform").is_some_and(|call| {
                matches!(call.attribute("redis_ha"), Some(Expression::Bool(on)) if *on.value())
            });
        }
        platform
    }
}

/// `quorum_queue.initial_cluster_size = N` of a RabbitmqCluster's additionalConfig.
fn initial_cluster_size(cluster: &Value) -> Option<u64> {
    str_at(cluster, &["spec", "rabbitmq", "additionalConfig"])?
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == "quorum_queue.initial_cluster_size")
        .and_then(|(_, value)| value.trim().parse().ok())
}

/// Whether a PodDisruptionBudget of the render selects pods labelled `NAME_LABEL=name`.
fn has_disruption_budget(render: &Render<'_>, name: &str) -> bool {
    render
        .all("PodDisruptionBudget")
        .any(|pdb| str_at(pdb, &["spec", "selector", "matchLabels", NAME_LABEL]) == Some(name))
}

/// Every problem of one render (`render_name` is `<overlay>[+<component>…]`).
pub fn check(
    render_name: &str,
    docs: &[Value],
    platform: &Platform,
    queues: &BTreeSet<&str>,
) -> Vec<String> {
    let render = Render::new(docs);
    let overlay = render_name.split('+').next().unwrap_or_default();
    let mut problems = Vec::new();
    check_metric_sources(&render, platform, &mut problems);
    check_scaled_objects(&render, queues, &mut problems);
    check_broker(&render, overlay, &mut problems);
    if overlay == CLOUD_OVERLAY {
        check_cache_failover(&render, platform, &mut problems);
    }
    check_disruption_budgets(&render, &mut problems);
    problems
}

fn check_metric_sources(render: &Render<'_>, platform: &Platform, problems: &mut Vec<String>) {
    let needs_chart = |chart: &str, what: String, problems: &mut Vec<String>| {
        if !platform.charts.contains(chart) {
            problems.push(format!(
                "{what}, but terraform/modules/platform installs no `{chart}` chart: nothing \
                 would act on it"
            ));
        }
    };
    for scaled in render.all("ScaledObject") {
        needs_chart(
            "keda",
            format!("{} is a KEDA resource", describe(scaled)),
            problems,
        );
        for trigger in list_at(scaled, &["spec", "triggers"]) {
            if let Some(resource @ ("cpu" | "memory")) = str_at(trigger, &["type"]) {
                needs_chart(
                    "metrics-server",
                    format!("{} scales on {resource}", describe(scaled)),
                    problems,
                );
            }
        }
    }
    for hpa in render.all("HorizontalPodAutoscaler") {
        for metric in list_at(hpa, &["spec", "metrics"]) {
            if str_at(metric, &["type"]) == Some("Resource")
                && let Some(resource) = str_at(metric, &["resource", "name"])
            {
                needs_chart(
                    "metrics-server",
                    format!("{} scales on {resource}", describe(hpa)),
                    problems,
                );
            }
        }
    }
    for cluster in render.all("RabbitmqCluster") {
        if !platform.rabbitmq_operator {
            problems.push(format!(
                "{} needs the RabbitMQ Cluster Operator, which terraform/modules/platform does \
                 not apply",
                describe(cluster)
            ));
        }
    }
    for object in render.all("User").chain(render.all("Permission")) {
        if !platform.topology_operator {
            problems.push(format!(
                "{} needs the RabbitMQ Messaging Topology Operator, which \
                 terraform/modules/platform does not apply: no broker user would exist",
                describe(object)
            ));
        }
    }
}

fn check_scaled_objects(render: &Render<'_>, queues: &BTreeSet<&str>, problems: &mut Vec<String>) {
    for scaled in render.all("ScaledObject") {
        let what = describe(scaled);
        let kind = str_at(scaled, &["spec", "scaleTargetRef", "kind"]).unwrap_or("Deployment");
        let target = str_at(scaled, &["spec", "scaleTargetRef", "name"]).unwrap_or_default();
        if kind != "Deployment" || render.find("Deployment", target).is_none() {
            problems.push(format!(
                "{what} scales {kind} {target:?}, which is not a Deployment of the render"
            ));
        }
        for hpa in render.all("HorizontalPodAutoscaler") {
            if str_at(hpa, &["spec", "scaleTargetRef", "name"]) == Some(target) {
                problems.push(format!(
                    "{what} and {} both scale Deployment {target}: KEDA makes its own \
                     HorizontalPodAutoscaler, remove the other",
                    describe(hpa)
                ));
            }
        }
        for trigger in list_at(scaled, &["spec", "triggers"]) {
            if str_at(trigger, &["type"]) != Some("rabbitmq") {
                continue;
            }
            let queue = str_at(trigger, &["metadata", "queueName"]).unwrap_or_default();
            if !queues.contains(queue) {
                problems.push(format!(
                    "{what}: rabbitmq trigger on queue {queue:?}, which is not in the declared \
                     topology (libs/messaging/src/topology.rs: {})",
                    queues.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
            let authentication = str_at(trigger, &["authenticationRef", "name"]);
            if authentication
                .is_none_or(|name| render.find("TriggerAuthentication", name).is_none())
            {
                problems.push(format!(
                    "{what}: rabbitmq trigger on {queue:?} names TriggerAuthentication \
                     {authentication:?}, which is not in the render (the broker's credentials \
                     come from it)"
                ));
            }
        }
    }
}

fn check_broker(render: &Render<'_>, overlay: &str, problems: &mut Vec<String>) {
    for cluster in render.all("RabbitmqCluster") {
        let what = describe(cluster);
        let replicas = at(cluster, &["spec", "replicas"])
            .and_then(Value::as_u64)
            .unwrap_or(1);
        match initial_cluster_size(cluster) {
            None => problems.push(format!(
                "{what}: spec.rabbitmq.additionalConfig does not state \
                 quorum_queue.initial_cluster_size (the quorum queues' replication factor)"
            )),
            Some(size) if size == 0 || size > replicas => problems.push(format!(
                "{what}: quorum_queue.initial_cluster_size {size} with {replicas} replicas"
            )),
            Some(size) if overlay == CLOUD_OVERLAY && size < CLOUD_BROKER_REPLICAS => {
                problems.push(format!(
                    "{what}: quorum queues replicated on {size} node(s) in the {CLOUD_OVERLAY} \
                     overlay; at least {CLOUD_BROKER_REPLICAS}"
                ));
            }
            Some(_) => {}
        }
        if overlay == CLOUD_OVERLAY && replicas < CLOUD_BROKER_REPLICAS {
            problems.push(format!(
                "{what} has {replicas} replica(s) in the {CLOUD_OVERLAY} overlay; at least \
                 {CLOUD_BROKER_REPLICAS}, so the broker survives the loss of a node"
            ));
        }
    }
}

fn check_cache_failover(render: &Render<'_>, platform: &Platform, problems: &mut Vec<String>) {
    let Some(redis) = &platform.redis_ha else {
        problems.push(format!(
            "the {CLOUD_OVERLAY} overlay needs Redis with failover, but \
             terraform/modules/platform has no `redis-ha` helm_release"
        ));
        return;
    };
    if !platform.cloud_enables_redis_ha {
        problems.push(
            "terraform/envs/aws calls the platform without `redis_ha = true`: the Sentinels the \
             cloud overlay's services ask would not exist"
                .to_owned(),
        );
    }
    if !redis.disruption_budget {
        problems.push(
            "the redis-ha release of terraform/modules/platform sets no podDisruptionBudget"
                .to_owned(),
        );
    }
    for deployment in render.all("Deployment") {
        let Some(container) =
            list_at(deployment, &["spec", "template", "spec", "containers"]).first()
        else {
            continue;
        };
        let (variables, _) = environment(render, container);
        for url in variables.keys().filter(|name| name.ends_with("_REDIS_URL")) {
            let prefix = url.trim_end_matches("_REDIS_URL");
            for (suffix, expected) in [
                ("_REDIS_SENTINELS", Some(redis.sentinels.as_str())),
                ("_REDIS_MASTER", redis.master.as_deref()),
            ] {
                let variable = format!("{prefix}{suffix}");
                let found = variables.get(&variable).cloned().flatten();
                if expected.is_none() || found.as_deref() != expected {
                    problems.push(format!(
                        "{}: {variable} is {found:?}; in the {CLOUD_OVERLAY} overlay it must name \
                         the redis-ha release of terraform/modules/platform ({expected:?})",
                        describe(deployment)
                    ));
                }
            }
        }
    }
}

fn check_disruption_budgets(render: &Render<'_>, problems: &mut Vec<String>) {
    for cluster in render.all("RabbitmqCluster") {
        // The operator labels the broker pods with the cluster's name.
        let name = str_at(cluster, &["metadata", "name"]).unwrap_or_default();
        if !has_disruption_budget(render, name) {
            problems.push(format!(
                "{} has no PodDisruptionBudget selecting {NAME_LABEL}={name} (the operator \
                 makes none)",
                describe(cluster)
            ));
        }
    }
    for set in render.all("StatefulSet") {
        let name = str_at(set, &["spec", "template", "metadata", "labels", NAME_LABEL])
            .unwrap_or_default();
        if !has_disruption_budget(render, name) {
            problems.push(format!(
                "{} has no PodDisruptionBudget selecting {NAME_LABEL}={name}",
                describe(set)
            ));
        }
    }
}

/// The gate step: every render against the platform module.
pub fn run(root: &Path, venv: &Venv, renders: &[Rendered]) -> anyhow::Result<Outcome> {
    if renders.is_empty() {
        return Ok(Outcome::Fail("nothing rendered to check".to_owned()));
    }
    let configuration = Configuration::load(&root.join("terraform"))?;
    let platform = Platform::from_configuration(&configuration);
    let queues: BTreeSet<&str> = messaging::topology::QUEUES
        .iter()
        .map(|queue| queue.name)
        .collect();
    let mut problems = String::new();
    for render in renders {
        let docs = tools::yaml_documents(venv, &render.yaml)?;
        for problem in check(&render.name, &docs, &platform, &queues) {
            let _ = writeln!(problems, "[{}] {problem}", render.name);
        }
    }
    Ok(if problems.is_empty() {
        Outcome::Pass(format!(
            "{} renders; platform charts: {}",
            renders.len(),
            platform
                .charts
                .iter()
                .cloned()
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

    const PLATFORM: &str = r#"
data "kustomization_overlay" "rabbitmq_cluster_operator" {
  resources = ["https://github.com/rabbitmq/cluster-operator/releases/download/v${var.v}/cluster-operator.yml"]
}
data "kustomization_overlay" "rabbitmq_topology_operator" {
  resources = ["https://github.com/rabbitmq/messaging-topology-operator/releases/download/v${var.t}/operator.yaml"]
}
resource "helm_release" "keda" {
  chart = "keda"
}
resource "helm_release" "metrics_server" {
  chart = "metrics-server"
}
resource "helm_release" "redis_ha" {
  count     = var.redis_ha ? 1 : 0
  name      = "redis-ha"
  chart     = "redis-ha"
  namespace = "redis"
  values = [yamlencode({
    redis               = { masterGroupName = "ferroshop" }
    podDisruptionBudget = { maxUnavailable = 1 }
  })]
}
"#;

    const AWS: &str = r#"
module "platform" {
  source   = "../../modules/platform"
  redis_ha = true
}
"#;

    fn platform_of(module: &str, aws: &str) -> Platform {
        let files = vec![
            ("modules/platform/main.tf".to_owned(), module.to_owned()),
            ("envs/aws/main.tf".to_owned(), aws.to_owned()),
        ];
        Platform::from_configuration(&Configuration::from_files(&files).unwrap())
    }

    fn queues() -> BTreeSet<&'static str> {
        messaging::topology::QUEUES.iter().map(|q| q.name).collect()
    }

    fn good_cloud_render() -> Vec<Value> {
        vec![
            json!({"kind": "Deployment", "metadata": {"name": "orders"}, "spec": {"template": {"spec": {"containers": [{"name": "orders"}]}}}}),
            json!({"kind": "Deployment", "metadata": {"name": "gateway"}, "spec": {"template": {"spec": {"containers": [{"name": "gateway",
                "envFrom": [{"configMapRef": {"name": "gateway-config"}}]}]}}}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "gateway-config"}, "data": {
                "GATEWAY_REDIS_URL": "redis://redis-ha-haproxy.redis.svc:6379",
                "GATEWAY_REDIS_SENTINELS": "redis-ha.redis.svc:26379",
                "GATEWAY_REDIS_MASTER": "ferroshop"}}),
            json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "gateway"}, "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "gateway"},
                "metrics": [{"type": "Resource", "resource": {"name": "cpu"}}]}}),
            json!({"kind": "TriggerAuthentication", "metadata": {"name": "rabbitmq"}}),
            json!({"kind": "ScaledObject", "metadata": {"name": "orders"}, "spec": {
                "scaleTargetRef": {"name": "orders"},
                "triggers": [
                    {"type": "rabbitmq", "metadata": {"queueName": "orders.fulfilment"}, "authenticationRef": {"name": "rabbitmq"}},
                    {"type": "cpu", "metadata": {"value": "70"}}]}}),
            json!({"kind": "RabbitmqCluster", "metadata": {"name": "rabbitmq"}, "spec": {"replicas": 3,
                "rabbitmq": {"additionalConfig": "default_queue_type = quorum\nquorum_queue.initial_cluster_size = 3\n"}}}),
            json!({"kind": "PodDisruptionBudget", "metadata": {"name": "rabbitmq"}, "spec": {"selector": {"matchLabels": {NAME_LABEL: "rabbitmq"}}}}),
            json!({"kind": "User", "metadata": {"name": "orders"}}),
        ]
    }

    fn problems(render_name: &str, docs: &[Value], platform: &Platform) -> Vec<String> {
        check(render_name, docs, platform, &queues())
    }

    fn assert_one_problem(docs: &[Value], platform: &Platform, needle: &str) {
        let found = problems("cloud+observability", docs, platform);
        assert!(
            found.len() == 1 && found[0].contains(needle),
            "expected one problem about {needle:?}, got {found:#?}"
        );
    }

    fn doc<'d>(docs: &'d mut [Value], kind: &str) -> &'d mut Value {
        docs.iter_mut().find(|doc| doc["kind"] == kind).unwrap()
    }

    #[test]
    fn the_platform_facts_are_read_from_terraform() {
        let platform = platform_of(PLATFORM, AWS);
        assert!(
            platform.rabbitmq_operator
                && platform.topology_operator
                && platform.cloud_enables_redis_ha
        );
        assert_eq!(
            platform.charts,
            ["keda", "metrics-server", "redis-ha"]
                .map(str::to_owned)
                .into()
        );
        assert_eq!(
            platform.redis_ha,
            Some(RedisHa {
                sentinels: "redis-ha.redis.svc:26379".to_owned(),
                master: Some("ferroshop".to_owned()),
                disruption_budget: true,
            })
        );
    }

    #[test]
    fn a_consistent_render_has_no_problems() {
        let platform = platform_of(PLATFORM, AWS);
        assert_eq!(
            problems("cloud", &good_cloud_render(), &platform),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_autoscaler_without_its_metric_source_is_reported() {
        let without_keda = PLATFORM.replace("chart = \"keda\"", "chart = \"other\"");
        assert_one_problem(
            &good_cloud_render(),
            &platform_of(&without_keda, AWS),
            "ScaledObject/orders is a KEDA resource, but terraform/modules/platform installs no \
             `keda` chart",
        );
        let without_metrics = PLATFORM.replace("chart = \"metrics-server\"", "chart = \"x\"");
        let found = problems(
            "cloud",
            &good_cloud_render(),
            &platform_of(&without_metrics, AWS),
        );
        assert!(
            found.len() == 2
                && found
                    .iter()
                    .all(|p| p.contains("no `metrics-server` chart")),
            "{found:#?}"
        );
        let without_operator = PLATFORM.replace("rabbitmq/cluster-operator", "someone/else");
        assert_one_problem(
            &good_cloud_render(),
            &platform_of(&without_operator, AWS),
            "needs the RabbitMQ Cluster Operator",
        );
        let without_topology =
            PLATFORM.replace("rabbitmq/messaging-topology-operator", "someone/else");
        assert_one_problem(
            &good_cloud_render(),
            &platform_of(&without_topology, AWS),
            "User/orders needs the RabbitMQ Messaging Topology Operator",
        );
    }

    #[test]
    fn a_scaled_object_must_target_a_deployment_and_a_declared_queue() {
        let platform = platform_of(PLATFORM, AWS);
        let mut docs = good_cloud_render();
        doc(&mut docs, "ScaledObject")["spec"]["scaleTargetRef"]["name"] = json!("order");
        assert_one_problem(
            &docs,
            &platform,
            "scales Deployment \"order\", which is not",
        );

        let mut docs = good_cloud_render();
        doc(&mut docs, "ScaledObject")["spec"]["triggers"][0]["metadata"]["queueName"] =
            json!("orders.fulfillment");
        assert_one_problem(&docs, &platform, "not in the declared topology");

        let mut docs = good_cloud_render();
        docs.retain(|doc| doc["kind"] != "TriggerAuthentication");
        assert_one_problem(
            &docs,
            &platform,
            "names TriggerAuthentication Some(\"rabbitmq\")",
        );

        let mut docs = good_cloud_render();
        docs.push(
            json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "orders-cpu"}, "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "orders"}}}),
        );
        assert_one_problem(&docs, &platform, "both scale Deployment orders");
    }

    #[test]
    fn the_cloud_broker_must_replicate_over_three_nodes() {
        let platform = platform_of(PLATFORM, AWS);
        let mut docs = good_cloud_render();
        doc(&mut docs, "RabbitmqCluster")["spec"]["replicas"] = json!(1);
        let found = problems("cloud", &docs, &platform);
        assert!(
            found.len() == 2
                && found[0].contains("initial_cluster_size 3 with 1 replicas")
                && found[1].contains("has 1 replica(s) in the cloud overlay"),
            "{found:#?}"
        );
        // One node is fine locally, as long as the queues are not asked for more.
        let mut docs = good_cloud_render();
        doc(&mut docs, "RabbitmqCluster")["spec"] = json!({"replicas": 1,
            "rabbitmq": {"additionalConfig": "quorum_queue.initial_cluster_size = 1"}});
        assert!(
            problems("local", &docs, &platform)
                .iter()
                .all(|p| !p.contains("RabbitmqCluster"))
        );
        let found = problems("cloud", &docs, &platform);
        assert!(
            found.len() == 2 && found.iter().all(|p| p.contains("at least 3")),
            "{found:#?}"
        );

        let mut docs = good_cloud_render();
        doc(&mut docs, "RabbitmqCluster")["spec"]["rabbitmq"] = json!({});
        assert_one_problem(
            &docs,
            &platform,
            "does not state quorum_queue.initial_cluster_size",
        );
    }

    #[test]
    fn the_cloud_cache_must_fail_over_through_the_platforms_sentinels() {
        let platform = platform_of(PLATFORM, AWS);
        let mut docs = good_cloud_render();
        doc(&mut docs, "ConfigMap")["data"]
            .as_object_mut()
            .unwrap()
            .remove("GATEWAY_REDIS_SENTINELS");
        assert_one_problem(&docs, &platform, "GATEWAY_REDIS_SENTINELS is None");
        // Locally the single Redis is expected.
        assert_eq!(problems("local", &docs, &platform), Vec::<String>::new());

        let mut docs = good_cloud_render();
        doc(&mut docs, "ConfigMap")["data"]["GATEWAY_REDIS_MASTER"] = json!("mymaster");
        assert_one_problem(
            &docs,
            &platform,
            "GATEWAY_REDIS_MASTER is Some(\"mymaster\")",
        );

        let off = AWS.replace("redis_ha = true", "redis_ha = false");
        assert_one_problem(
            &good_cloud_render(),
            &platform_of(PLATFORM, &off),
            "without `redis_ha = true`",
        );
        let no_pdb = PLATFORM.replace("podDisruptionBudget", "podDisruption");
        assert_one_problem(
            &good_cloud_render(),
            &platform_of(&no_pdb, AWS),
            "sets no podDisruptionBudget",
        );
    }

    #[test]
    fn the_data_plane_needs_disruption_budgets() {
        let platform = platform_of(PLATFORM, AWS);
        let mut docs = good_cloud_render();
        docs.retain(|doc| doc["kind"] != "PodDisruptionBudget");
        assert_one_problem(
            &docs,
            &platform,
            "RabbitmqCluster/rabbitmq has no PodDisruptionBudget",
        );

        let mut docs = good_cloud_render();
        docs.push(json!({"kind": "StatefulSet", "metadata": {"name": "redis"}, "spec": {"template": {"metadata": {"labels": {NAME_LABEL: "redis"}}}}}));
        assert_one_problem(
            &docs,
            &platform,
            "StatefulSet/redis has no PodDisruptionBudget",
        );
    }

    #[test]
    fn the_real_platform_module_installs_what_the_manifests_need() {
        let configuration =
            Configuration::load(&super::super::workspace_root().join("terraform")).unwrap();
        let platform = Platform::from_configuration(&configuration);
        assert!(platform.rabbitmq_operator, "{platform:?}");
        assert!(platform.topology_operator, "{platform:?}");
        assert!(platform.cloud_enables_redis_ha, "{platform:?}");
        for chart in ["keda", "metrics-server", "redis-ha", "loki"] {
            assert!(platform.charts.contains(chart), "{chart}: {platform:?}");
        }
    }
}
