//! A private `redis-server` process that a test may kill, without touching the shared Redis
//! other tests use.

use std::{process::Stdio, time::Duration};

use tokio::process::{Child, Command};

pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts `redis-server` (Debian package `redis-server`) on a free port, without
    /// persistence, and waits until it answers PING.
    pub async fn start() -> Self {
        let port = testkit::free_port();
        let binary = ["/usr/bin/redis-server", "redis-server"]
            .into_iter()
            .find(|candidate| {
                !candidate.starts_with('/') || std::path::Path::new(candidate).exists()
            })
            .unwrap_or("redis-server");
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "this test needs the redis-server binary (apt-get install redis-server): {err}"
                )
            });
        let server = Self { port, child };
        let url = server.url();
        testkit::poll_until(
            "the private redis-server to answer PING",
            Duration::from_secs(10),
            || {
                let url = url.clone();
                async move {
                    let client = redis::Client::open(url).ok()?;
                    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                    redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .ok()
                }
            },
        )
        .await
        .unwrap();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait until the process is gone: its port refuses connections afterwards.
    pub async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }
}
