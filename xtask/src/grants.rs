//! `cargo xtask grants`: the data plane's least-privilege grants, written from the code into the
//! two files the deployment reads them from.
//!
//! The grants are declared where the access happens, in Rust: the broker's in
//! `messaging::topology::permissions` (derived from the topology), Redis's in each component's
//! `REDIS_COMMANDS` and key prefix, turned into ACL rules by `redis_guard::acl::rules`. The
//! deployment cannot run Rust, so this command writes what they evaluate to:
//!
//! | file | what | read by |
//! |---|---|---|
//! | `k8s/base/broker-permissions.yaml` | configure / write / read of every broker user | a kustomize patch on every `Permission` (Messaging Topology Operator) of the base |
//! | `terraform/modules/platform/redis-acl.json` | each Redis ACL user's prefix and rules | the platform module, which adds the generated passwords and writes the ACL file |
//!
//! Nothing is parsed out of Rust source: the values come from the compiled declarations. Run it
//! after changing the topology (a new consumer queue widens every broker user's grant), a
//! component's commands or a prefix; `cargo xtask deploy-check` fails while either file differs
//! from what this command would write, and says to run it.

use std::{collections::HashMap, fs, path::Path};

use anyhow::Context as _;
use declarations::Service;
use messaging::topology::Permissions;
use platform::config::{Env, RuntimeConfig, RuntimeDefaults};
use serde_json::json;

/// The broker permissions' file, relative to the workspace root.
pub const BROKER_PERMISSIONS: &str = "k8s/base/broker-permissions.yaml";
/// The Redis ACL rules' file, relative to the workspace root.
pub const REDIS_ACL: &str = "terraform/modules/platform/redis-acl.json";
/// The settings the broker grant is derived under: the topology Job's (it declares the topology).
const TOPOLOGY_SETTINGS: &str = "k8s/base/orders/config.env";

/// One Redis ACL user: a component, the prefix of its keys and the commands it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisGrant {
    /// The ACL user's name: the component's (`inventory`, `gateway`).
    pub user: &'static str,
    /// Its keys' prefix, the declared default of `setting`.
    pub prefix: String,
    /// The setting that can change the prefix, with the service's prefix (`INVENTORY_CACHE_PREFIX`).
    pub setting: String,
    /// `redis_guard::acl::rules(prefix, commands)`.
    pub rules: Vec<String>,
}

/// The Redis users: inventory's catalog cache and the gateway's rate limiter.
pub fn redis_grants() -> anyhow::Result<Vec<RedisGrant>> {
    let grant = |service: &Service, setting: &str, commands: &[&str]| {
        let declared = service
            .setting(setting)
            .with_context(|| format!("{} declares no {setting}", service.name))?;
        let prefix = declared.default.trim_matches('`').to_owned();
        anyhow::Ok(RedisGrant {
            user: service.name,
            setting: format!("{}_{setting}", service.prefix()),
            rules: redis_guard::acl::rules(&prefix, commands),
            prefix,
        })
    };
    Ok(vec![
        grant(
            &declarations::gateway::GATEWAY,
            "REDIS_PREFIX",
            gateway::ratelimit::store::REDIS_COMMANDS,
        )?,
        grant(
            &declarations::inventory::INVENTORY,
            "CACHE_PREFIX",
            inventory::cache::REDIS_COMMANDS,
        )?,
    ])
}

/// The broker grant under the settings of `config_env` (an `env` file of `KEY=value` lines,
/// the topology Job's): only its events exchange and queue prefix matter.
pub fn broker_permissions(config_env: &str) -> anyhow::Result<Permissions> {
    let vars = config_env
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
        .collect();
    broker_permissions_of(&declarations::orders::ORDERS, &vars)
        .map_err(|err| anyhow::anyhow!("{TOPOLOGY_SETTINGS}: {err}"))
}

/// The broker grant under `service`'s settings `vars` (full variable names): its events
/// exchange and queue prefix, the only settings the topology's names depend on.
pub fn broker_permissions_of(
    service: &Service,
    vars: &HashMap<String, String>,
) -> anyhow::Result<Permissions> {
    let prefix = service.prefix();
    let wanted = [
        format!("{prefix}_EVENTS_EXCHANGE"),
        format!("{prefix}_QUEUE_PREFIX"),
    ];
    let vars: HashMap<String, String> = vars
        .iter()
        .filter(|(key, _)| wanted.contains(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let env = Env::from_map(service.name, vars);
    let runtime = RuntimeConfig::from_env(&env, RuntimeDefaults::declared(service))
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    Ok(messaging::topology::permissions(&runtime))
}

/// The text of [`BROKER_PERMISSIONS`] for `permissions`.
pub fn broker_patch(permissions: &Permissions) -> String {
    format!(
        "# Generated by `cargo xtask grants` from messaging::topology::permissions (the topology of\n\
         # libs/messaging/src/topology.rs under {TOPOLOGY_SETTINGS}'s exchange and queue prefix);\n\
         # do not edit. `cargo xtask deploy-check` fails when it differs from the code.\n\
         # Applied to every Permission (rabbitmq.com/v1beta1) of the base: each broker-user.yaml.\n\
         - op: add\n  path: /spec/permissions\n  value:\n\
         \x20   # One line each: a regular expression cannot be folded.\n\
         \x20   # yamllint disable-line rule:line-length\n\
         \x20   configure: '{}'\n\
         \x20   # yamllint disable-line rule:line-length\n\
         \x20   write: '{}'\n\
         \x20   # yamllint disable-line rule:line-length\n\
         \x20   read: '{}'\n",
        permissions.configure, permissions.write, permissions.read
    )
}

/// The text of [`REDIS_ACL`] for `grants`.
pub fn redis_acl(grants: &[RedisGrant]) -> String {
    let users: serde_json::Map<String, serde_json::Value> = grants
        .iter()
        .map(|grant| {
            (
                grant.user.to_owned(),
                json!({ "prefix": grant.prefix, "rules": grant.rules }),
            )
        })
        .collect();
    let document = json!({
        "about": "Generated by `cargo xtask grants` from redis_guard::acl::rules and each component's REDIS_COMMANDS and declared key prefix; do not edit. terraform/modules/platform adds a generated password to each user and writes the ACL file.",
        "users": users,
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// Both files as the code says they must be: `(path, contents)`.
pub fn expected(root: &Path) -> anyhow::Result<Vec<(&'static str, String)>> {
    let settings = fs::read_to_string(root.join(TOPOLOGY_SETTINGS))
        .with_context(|| format!("cannot read {TOPOLOGY_SETTINGS}"))?;
    Ok(vec![
        (
            BROKER_PERMISSIONS,
            broker_patch(&broker_permissions(&settings)?),
        ),
        (REDIS_ACL, redis_acl(&redis_grants()?)),
    ])
}

pub fn run() -> anyhow::Result<()> {
    let root = crate::deploy_check::workspace_root();
    for (path, contents) in expected(&root)? {
        let unchanged = fs::read_to_string(root.join(path)).is_ok_and(|now| now == contents);
        if !unchanged {
            fs::write(root.join(path), &contents)
                .with_context(|| format!("cannot write {path}"))?;
        }
        println!(
            "grants: {path} {}",
            if unchanged { "unchanged" } else { "written" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_grant_follows_the_exchange_of_the_settings() {
        let permissions =
            broker_permissions("ORDERS_EVENTS_EXCHANGE=test.events\nOTHER=x\n").unwrap();
        assert!(
            permissions
                .configure
                .starts_with("^(test\\.events|test\\.events\\.dlx|")
        );
        assert!(permissions.write.contains("|amq\\.default)$"));
        let patch = broker_patch(&permissions);
        assert!(patch.contains(&format!("    read: '{}'\n", permissions.read)));
    }

    #[test]
    fn each_redis_user_gets_its_declared_prefix_and_its_commands() {
        let grants = redis_grants().unwrap();
        let inventory = grants
            .iter()
            .find(|grant| grant.user == "inventory")
            .unwrap();
        assert_eq!(inventory.prefix, "inventory:v1");
        assert_eq!(inventory.setting, "INVENTORY_CACHE_PREFIX");
        assert!(inventory.rules.contains(&"~inventory:v1:*".to_owned()));
        assert!(inventory.rules.contains(&"+scan".to_owned()));
        let json: serde_json::Value = serde_json::from_str(&redis_acl(&grants)).unwrap();
        assert_eq!(json["users"]["gateway"]["prefix"], "gateway:v1");
    }
}
