//! A throwaway ACL user on the test Redis, for tests that show a component works with exactly
//! the grant it declares (`redis_guard::acl`) and is refused outside it.
//!
//! The user's name and password are unique per test; the user is deleted when the value is
//! dropped, so also when the test fails (a panic unwinds through the drop).

/// An ACL user that exists until dropped.
pub struct AclUser {
    /// Its name, `test-<uuid>`.
    name: String,
    /// The test Redis as its administrator reaches it (the default user).
    admin_url: String,
    /// The test Redis as this user: `redis://<name>:<password>@host:port`.
    url: String,
}

impl AclUser {
    /// Creates a user with `rules` (the part of `ACL SETUSER` after the name) and a fresh
    /// password.
    pub async fn create(rules: &[String]) -> anyhow::Result<Self> {
        let admin_url = crate::redis_url().await;
        let name = format!("test-{}", uuid::Uuid::now_v7().simple());
        let password = uuid::Uuid::now_v7().simple().to_string();
        let mut connection = redis::Client::open(admin_url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&name)
            .arg("on")
            .arg(format!(">{password}"))
            .arg(rules)
            .query_async::<()>(&mut connection)
            .await?;
        let Some(address) = admin_url.strip_prefix("redis://") else {
            anyhow::bail!("the test Redis URL {admin_url} is not redis://");
        };
        let url = format!("redis://{name}:{password}@{address}");
        Ok(Self {
            name,
            admin_url,
            url,
        })
    }

    /// The URL that connects as this user.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether Redis refuses this user a `GET` of `key` for want of permission (`NOPERM`).
    pub async fn may_not_read(&self, key: &str) -> anyhow::Result<bool> {
        let mut connection = redis::Client::open(self.url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        let read = redis::cmd("GET")
            .arg(key)
            .query_async::<Option<Vec<u8>>>(&mut connection)
            .await;
        Ok(read.is_err_and(|refused| refused.to_string().to_lowercase().contains("noperm")))
    }
}

impl Drop for AclUser {
    fn drop(&mut self) {
        let deleted = redis::Client::open(self.admin_url.as_str())
            .and_then(|client| client.get_connection())
            .and_then(|mut connection| {
                redis::cmd("ACL")
                    .arg("DELUSER")
                    .arg(&self.name)
                    .query::<i64>(&mut connection)
            });
        if let Err(error) = deleted {
            eprintln!("could not delete the Redis ACL user {}: {error}", self.name);
        }
    }
}
