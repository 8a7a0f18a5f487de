//! Whether the cluster is ready, from what kubectl and helm print as JSON:
//!
//! * `kubectl get deployments,statefulsets,daemonsets,jobs -A -o json`: a Deployment is ready
//!   when its controller has seen the latest spec (`observedGeneration`) and every desired
//!   replica is updated and available; a StatefulSet when every replica is ready on the current
//!   revision; a DaemonSet when every scheduled pod is ready and up to date; a Job (the broker
//!   topology's) when its pods completed;
//! * `kubectl get clusters.postgresql.cnpg.io -A -o json`: a CloudNativePG Cluster when all
//!   its instances are ready;
//! * `helm list -A --all -o json`: a release when its status is `deployed`.

use anyhow::Context as _;
use serde_json::Value;

/// What is ready and what is not.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// `kind namespace/name: why`, one per object not ready yet.
    pub pending: Vec<String>,
    /// How many objects were checked and are ready.
    pub ready: usize,
}

fn int(value: &Value, pointer: &str) -> i64 {
    value.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn items(json: &str, what: &str) -> anyhow::Result<Vec<Value>> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let list: Value =
        serde_json::from_str(json).with_context(|| format!("cannot parse the {what} as JSON"))?;
    Ok(match list {
        Value::Array(items) => items, // helm list prints a bare array
        other => other
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    })
}

/// Why a workload is not ready, or `None` if it is.
fn workload_pending(item: &Value) -> Option<String> {
    let kind = item.get("kind").and_then(Value::as_str).unwrap_or("?");
    if kind == "Job" {
        // A Job has no observedGeneration: it is done when enough pods succeeded.
        let wanted = item
            .pointer("/spec/completions")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let succeeded = int(item, "/status/succeeded");
        let failed = int(item, "/status/failed");
        return (succeeded < wanted)
            .then(|| format!("{succeeded}/{wanted} completions, {failed} failed pods"));
    }
    let generation = int(item, "/metadata/generation");
    let observed = int(item, "/status/observedGeneration");
    if observed < generation {
        return Some(format!(
            "spec generation {generation} not observed yet ({observed})"
        ));
    }
    match kind {
        "Deployment" | "StatefulSet" => {
            // An unset spec.replicas means 1.
            let desired = item
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = int(
                item,
                if kind == "Deployment" {
                    "/status/availableReplicas"
                } else {
                    "/status/readyReplicas"
                },
            );
            let updated = int(item, "/status/updatedReplicas");
            (ready < desired || updated < desired).then(|| {
                format!("{ready}/{desired} replicas ready, {updated} on the latest revision")
            })
        }
        "DaemonSet" => {
            let desired = int(item, "/status/desiredNumberScheduled");
            let ready = int(item, "/status/numberReady");
            let updated = int(item, "/status/updatedNumberScheduled");
            (ready < desired || updated < desired)
                .then(|| format!("{ready}/{desired} pods ready, {updated} up to date"))
        }
        _ => None,
    }
}

fn name(item: &Value) -> String {
    format!(
        "{} {}/{}",
        item.get("kind").and_then(Value::as_str).unwrap_or("?"),
        item.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("-"),
        item.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
    )
}

impl Status {
    /// Reads the three listings (see the module documentation).
    pub fn parse(workloads: &str, clusters: &str, releases: &str) -> anyhow::Result<Self> {
        let mut status = Self::default();
        for item in items(workloads, "workload list")? {
            match workload_pending(&item) {
                Some(why) => status.pending.push(format!("{}: {why}", name(&item))),
                None => status.ready += 1,
            }
        }
        for item in items(clusters, "CloudNativePG cluster list")? {
            let instances = item
                .pointer("/spec/instances")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = int(&item, "/status/readyInstances");
            if ready < instances {
                let phase = item
                    .pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("no status yet");
                status.pending.push(format!(
                    "{}: {ready}/{instances} instances ready ({phase})",
                    name(&item)
                ));
            } else {
                status.ready += 1;
            }
        }
        for release in items(releases, "helm release list")? {
            let state = release
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            if state == "deployed" {
                status.ready += 1;
            } else {
                status.pending.push(format!(
                    "helm release {}/{} ({}): {state}",
                    release
                        .get("namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("-"),
                    release.get("name").and_then(Value::as_str).unwrap_or("?"),
                    release.get("chart").and_then(Value::as_str).unwrap_or("?"),
                ));
            }
        }
        Ok(status)
    }

    /// The step's detail once everything is ready.
    pub fn describe_ready(&self) -> String {
        format!(
            "{} workloads, database clusters and releases ready",
            self.ready
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn list(items: Value) -> String {
        json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
    }

    #[test]
    fn ready_objects_count_and_unready_ones_say_why() {
        let workloads = list(json!([
            {"kind": "Deployment", "metadata": {"name": "users", "namespace": "ferroshop", "generation": 2},
             "spec": {}, "status": {"observedGeneration": 2, "availableReplicas": 1, "updatedReplicas": 1, "replicas": 1}},
            {"kind": "Deployment", "metadata": {"name": "gateway", "namespace": "ferroshop", "generation": 1},
             "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "availableReplicas": 1, "updatedReplicas": 2}},
            {"kind": "StatefulSet", "metadata": {"name": "rabbitmq", "namespace": "ferroshop", "generation": 3},
             "spec": {"replicas": 1}, "status": {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 1}},
            {"kind": "DaemonSet", "metadata": {"name": "kindnet", "namespace": "kube-system", "generation": 1},
             "status": {"observedGeneration": 1, "desiredNumberScheduled": 3, "numberReady": 3, "updatedNumberScheduled": 3}},
            {"kind": "Job", "metadata": {"name": "rabbitmq-topology", "namespace": "ferroshop", "generation": 1},
             "spec": {"completions": 1}, "status": {"succeeded": 1}},
            {"kind": "Job", "metadata": {"name": "rabbitmq-topology", "namespace": "staging", "generation": 1},
             "spec": {}, "status": {"failed": 2}},
        ]));
        let clusters = list(json!([
            {"kind": "Cluster", "metadata": {"name": "users-db", "namespace": "ferroshop"},
             "spec": {"instances": 1}, "status": {"readyInstances": 1, "phase": "Cluster in healthy state"}},
            {"kind": "Cluster", "metadata": {"name": "orders-db", "namespace": "ferroshop"},
             "spec": {"instances": 1}, "status": {"phase": "Setting up primary"}},
        ]));
        let releases = json!([
            {"name": "cnpg", "namespace": "cnpg-system", "status": "deployed", "chart": "cloudnative-pg-0.26.1"},
            {"name": "otel-gateway", "namespace": "monitoring", "status": "pending-install", "chart": "opentelemetry-collector-0.158.2"},
        ])
        .to_string();
        let status = Status::parse(&workloads, &clusters, &releases).unwrap();
        assert_eq!(status.ready, 5);
        assert_eq!(
            status.pending,
            [
                "Deployment ferroshop/gateway: 1/2 replicas ready, 2 on the latest revision",
                "StatefulSet ferroshop/rabbitmq: spec generation 3 not observed yet (2)",
                "Job staging/rabbitmq-topology: 0/1 completions, 2 failed pods",
                "Cluster ferroshop/orders-db: 0/1 instances ready (Setting up primary)",
                "helm release monitoring/otel-gateway (opentelemetry-collector-0.158.2): pending-install",
            ]
        );
    }

    #[test]
    fn nothing_listed_is_nothing_pending_and_garbage_is_an_error() {
        let status = Status::parse(&list(json!([])), "", "[]").unwrap();
        assert_eq!(status, Status::default());
        assert!(Status::parse("not json", "", "").is_err());
    }
}
