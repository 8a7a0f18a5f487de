//! Every Secret file a container reads must be readable by the user the container runs as.
//!
//! A `secret` (or `projected`) volume's files are owned by root; their group is the pod's
//! `fsGroup` when it has one, root's otherwise; their mode is the item's `mode`, else the
//! volume's `defaultMode`, else 0644. A process reads a file as owner (uid 0 only), through its
//! group (its primary group `runAsGroup`, `fsGroup` and `supplementalGroups`) or as "other".
//! A non-root container mounting a 0400 Secret without help from the group bits cannot read
//! it: the service crash-loops on "Permission denied", which no schema or linter notices.
//!
//! The kubelet may widen modes when fsGroup is set; the rule does not count on that (it is not
//! part of the API's contract) and wants the mode written down. A container whose user is not
//! set in the manifest (the image decides) is treated as an unknown non-root user.

use serde_json::Value;

/// Mode of a Secret file when neither the item nor the volume sets one.
const DEFAULT_MODE: u64 = 0o644;

/// Pod templates of the workload kinds that have one.
fn pod_template(doc: &Value) -> Option<&Value> {
    let spec = doc.get("spec")?;
    match doc.get("kind")?.as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            spec.get("template")?.get("spec")
        }
        "CronJob" => spec
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("spec"),
        "Pod" => Some(spec),
        _ => None,
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    value.and_then(Value::as_u64)
}

/// The files a volume holds from Secrets, with their modes: `(secret/key, mode)`; a volume
/// without `items` is represented by one entry `(secret/*, defaultMode)`.
fn secret_files(volume: &Value) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    let mut add = |source: &Value, default_mode: u64| {
        let Some(secret) = source
            .get("secretName")
            .or_else(|| source.get("name"))
            .and_then(Value::as_str)
        else {
            return;
        };
        match source.get("items").and_then(Value::as_array) {
            Some(items) => {
                for item in items {
                    let key = item.get("key").and_then(Value::as_str).unwrap_or("?");
                    let mode = number(item.get("mode")).unwrap_or(default_mode);
                    files.push((format!("{secret}/{key}"), mode));
                }
            }
            None => files.push((format!("{secret}/*"), default_mode)),
        }
    };
    if let Some(secret) = volume.get("secret") {
        add(
            secret,
            number(secret.get("defaultMode")).unwrap_or(DEFAULT_MODE),
        );
    }
    if let Some(projected) = volume.get("projected") {
        let default_mode = number(projected.get("defaultMode")).unwrap_or(DEFAULT_MODE);
        for source in projected
            .get("sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(secret) = source.get("secret") {
                add(secret, default_mode);
            }
        }
    }
    files
}

/// Who a container runs as, from its own securityContext or the pod's.
struct Identity {
    /// `None`: not in the manifest (the image's USER decides).
    uid: Option<u64>,
    /// Groups the process is in, besides "other".
    groups: Vec<u64>,
}

fn identity(pod: &Value, container: &Value) -> Identity {
    let pod_security = pod.get("securityContext");
    let security = container.get("securityContext");
    let field = |name: &str| {
        number(security.and_then(|s| s.get(name)))
            .or_else(|| number(pod_security.and_then(|s| s.get(name))))
    };
    let mut groups: Vec<u64> = field("runAsGroup").into_iter().collect();
    groups.extend(number(pod_security.and_then(|s| s.get("fsGroup"))));
    groups.extend(
        pod_security
            .and_then(|s| s.get("supplementalGroups"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64),
    );
    Identity {
        uid: field("runAsUser"),
        groups,
    }
}

/// Whether a root-owned file of `mode` and group `file_group` is readable by `who`.
fn readable(mode: u64, file_group: u64, who: &Identity) -> bool {
    match who.uid {
        Some(0) => true, // root reads anything
        _ if who.groups.contains(&file_group) => mode & 0o040 != 0 || mode & 0o004 != 0,
        _ => mode & 0o004 != 0,
    }
}

/// Every mounted Secret file that its container cannot read, in one render.
pub fn check(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for doc in docs {
        let Some(pod) = pod_template(doc) else {
            continue;
        };
        let workload = format!(
            "{}/{}",
            doc.get("kind").and_then(Value::as_str).unwrap_or("?"),
            doc.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
        );
        let file_group = number(pod.pointer("/securityContext/fsGroup")).unwrap_or(0);
        let volumes: Vec<&Value> = pod
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let containers = ["initContainers", "containers"]
            .into_iter()
            .filter_map(|list| pod.get(list).and_then(Value::as_array))
            .flatten();
        for container in containers {
            let who = identity(pod, container);
            let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
            for mount in container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mounted = mount.get("name").and_then(Value::as_str);
                let Some(volume) = volumes
                    .iter()
                    .find(|v| v.get("name").and_then(Value::as_str) == mounted)
                else {
                    continue;
                };
                for (file, mode) in secret_files(volume) {
                    if readable(mode, file_group, &who) {
                        continue;
                    }
                    let user = who.uid.map_or_else(
                        || "an unset (image-defined) user".to_owned(),
                        |uid| format!("uid {uid}"),
                    );
                    problems.push(format!(
                        "{workload}: container {name} runs as {user} and cannot read Secret file \
                         {file} (mode {mode:#o}, owner root, group {file_group}): set the pod's \
                         fsGroup to a group of the container and make the mode group-readable \
                         (e.g. fsGroup: {} with defaultMode: 0440)",
                        who.uid.filter(|uid| *uid != 0).unwrap_or(65532)
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The users Deployment as it was: uid 65532, no fsGroup, the key mounted 0400.
    fn users(pod_security: Value, default_mode: u64) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "users"}, "spec": {"template": {"spec": {
            "securityContext": pod_security,
            "containers": [{
                "name": "users",
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "jwt-key", "mountPath": "/var/run/secrets/ferroshop/jwt", "readOnly": true},
                ],
            }],
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                {"name": "jwt-key", "secret": {"secretName": "users-jwt", "defaultMode": default_mode}},
            ],
        }}}})
    }

    #[test]
    fn a_0400_secret_without_fs_group_is_unreadable_by_a_non_root_user() {
        let found = check(&[users(
            json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532}),
            0o400,
        )]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("Deployment/users: container users runs as uid 65532 and cannot read Secret file users-jwt/* (mode 0o400, owner root, group 0)"),
            "{found:#?}"
        );
    }

    #[test]
    fn fs_group_with_a_group_readable_mode_passes() {
        let security = json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532});
        assert_eq!(
            check(&[users(security.clone(), 0o440)]),
            Vec::<String>::new()
        );
        // fsGroup alone is not enough when the mode keeps the group out.
        assert_eq!(check(&[users(security, 0o400)]).len(), 1);
        // Root reads anything; world-readable is readable by anyone.
        assert_eq!(
            check(&[users(json!({"runAsUser": 0}), 0o400)]),
            Vec::<String>::new()
        );
        assert_eq!(check(&[users(json!({}), 0o644)]), Vec::<String>::new());
    }

    #[test]
    fn item_modes_and_projected_volumes_count() {
        let doc = json!({"kind": "StatefulSet", "metadata": {"name": "broker"}, "spec": {"template": {"spec": {
            "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
            "containers": [{"name": "broker", "volumeMounts": [{"name": "creds"}, {"name": "both"}]}],
            "volumes": [
                {"name": "creds", "secret": {"secretName": "c", "defaultMode": 0o440,
                    "items": [{"key": "ok", "path": "ok"}, {"key": "private", "path": "p", "mode": 0o400}]}},
                {"name": "both", "projected": {"defaultMode": 0o400, "sources": [{"secret": {"name": "s"}}]}},
            ],
        }}}});
        let found = check(&[doc]);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].contains("Secret file c/private (mode 0o400"),
            "{found:#?}"
        );
        assert!(
            found[1].contains("Secret file s/* (mode 0o400"),
            "{found:#?}"
        );
    }
}
