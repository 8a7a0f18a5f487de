//! Least privilege in Redis: each component gets an ACL user of its own, limited to its key
//! prefix and to the commands it sends.
//!
//! Inventory's catalog cache and the gateway's rate limiter share a Redis, but neither has any
//! business with the other's keys: a compromised gateway must not be able to poison the price
//! cache, and a compromised inventory must not be able to lift every client's rate limit. So
//! each declares, next to the scripts it runs, the commands it needs (`REDIS_COMMANDS`, in
//! Redis's lower-case names, including those its Lua scripts call: Redis checks those too), and
//! [`rules`] turns them and the component's key prefix into the ACL rules of its user:
//!
//! ```text
//! resetkeys ~inventory:v1:* resetchannels -@all +ping +get +evalsha +eval +script|load ...
//! ```
//!
//! The same rules serve `ACL SETUSER <user> <rules…> ><password>` (tests, operators) and a line
//! of an ACL file, `user <user> on #<sha256> <rules…>` ([`acl_file_line`]), which Kubernetes
//! mounts from a Secret. The client side needs nothing special: the component's Redis URL names
//! the user, `redis://<user>:<password>@host:6379`. A command outside the grant is refused with
//! `NOPERM`, which the guard counts as a failure like any other (the component takes its
//! fallback), so a wrong grant shows as a degraded component, never as a wrong answer.

/// What every client sends besides its own commands: `PING` (the guard's probe). (The client
/// library also sends `CLIENT SETINFO` on connect, where the server knows it, and ignores a
/// refusal; it is not granted, so the rules also load on Redis before 7.2.)
pub const CONNECTION_COMMANDS: &[&str] = &["ping"];

/// The ACL rules of a user that may send `commands` (plus [`CONNECTION_COMMANDS`]) on keys
/// under `prefix:`, and nothing else: no other key, no Pub/Sub channel, no other command.
pub fn rules(prefix: &str, commands: &[&str]) -> Vec<String> {
    let mut rules = vec![
        "resetkeys".to_owned(),
        format!("~{prefix}:*"),
        "resetchannels".to_owned(),
        "-@all".to_owned(),
    ];
    rules.extend(
        CONNECTION_COMMANDS
            .iter()
            .chain(commands)
            .map(|command| format!("+{command}")),
    );
    rules
}

/// One line of a Redis ACL file for `user` with the password whose SHA-256 is `password_sha256`
/// (hex), limited as [`rules`] says: `user <user> on #<sha256> <rules…>`.
pub fn acl_file_line(user: &str, password_sha256: &str, prefix: &str, commands: &[&str]) -> String {
    let mut line = vec![
        "user".to_owned(),
        user.to_owned(),
        "on".to_owned(),
        format!("#{password_sha256}"),
    ];
    line.extend(rules(prefix, commands));
    line.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_its_prefix_and_its_commands_only() {
        assert_eq!(
            rules("inventory:v1", &["get"]).join(" "),
            "resetkeys ~inventory:v1:* resetchannels -@all +ping +get"
        );
        assert_eq!(
            acl_file_line("gateway", "ab12", "gateway", &["evalsha"]),
            "user gateway on #ab12 resetkeys ~gateway:* resetchannels -@all +ping +evalsha"
        );
    }
}
