//! A throwaway RabbitMQ user on the test broker, for tests that show a service works with
//! exactly the permissions its topology grants it (`messaging::topology::permissions`) and is
//! refused outside them.
//!
//! Users are managed with `rabbitmqctl`, so the broker must be local (as it is on a developer
//! machine and in CI). The user is deleted when the value is dropped, so also when the test
//! fails.

use std::process::Command;

/// A broker user that exists until dropped.
pub struct BrokerUser {
    /// Its name, `test-<uuid>`.
    name: String,
    /// The test broker as this user: `amqp://<name>:<password>@host:port/vhost`.
    url: String,
}

/// Runs `rabbitmqctl args…`, failing with its output when it fails.
fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("rabbitmqctl").args(args).output()?;
    if !output.status.success() {
        anyhow::bail!(
            "rabbitmqctl {}: {}{}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

impl BrokerUser {
    /// Creates a user with a fresh password and the permissions `configure`, `write`, `read`
    /// (regular expressions) in the default virtual host.
    pub async fn create(configure: &str, write: &str, read: &str) -> anyhow::Result<Self> {
        let admin_url = crate::amqp_url().await;
        let Some((_, address)) = admin_url.split_once('@') else {
            anyhow::bail!("the test broker URL {admin_url} names no user");
        };
        let name = format!("test-{}", uuid::Uuid::now_v7().simple());
        let password = uuid::Uuid::now_v7().simple().to_string();
        rabbitmqctl(&["add_user", &name, &password])?;
        let user = Self {
            url: format!("amqp://{name}:{password}@{address}"),
            name,
        };
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            "/",
            &user.name,
            configure,
            write,
            read,
        ])?;
        Ok(user)
    }

    /// The URL that connects as this user.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for BrokerUser {
    fn drop(&mut self) {
        if let Err(error) = rabbitmqctl(&["delete_user", &self.name]) {
            eprintln!("could not delete the broker user {}: {error}", self.name);
        }
    }
}
