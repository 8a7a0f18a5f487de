//! Redis servers of the test's own: one to kill, or a primary, a replica and a sentinel to fail
//! over.
//!
//! The shared Redis (`REDIS_URL`, 127.0.0.1:6379) is used by every test at once, so a test that
//! kills Redis or fails it over starts servers of its own from the installed binary
//! (`/usr/bin/redis-server`, Debian's `redis-server` package), on free loopback ports, without
//! persistence, each with its configuration and log in a temporary directory. Every process is
//! killed (SIGKILL) and the directory removed when the value is dropped, also when the test
//! panics.
//!
//! [`RedisFailover`] is the smallest Sentinel deployment that can fail over: a primary, one
//! replica of it, and one sentinel with quorum 1 that considers the primary down after
//! [`DOWN_AFTER`]. [`RedisFailover::failover`] is an operator's `SENTINEL FAILOVER` (the old
//! primary survives and is demoted to a replica: it answers writes with `READONLY`);
//! [`RedisFailover::kill_primary`] is a crash (the sentinel notices and promotes the replica).
//! Both return once the replica has been promoted, waiting by polling, never by sleeping.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::Context as _;
use redis::aio::MultiplexedConnection;
use tokio::process::{Child, Command};

use crate::{free_port, poll_until};

/// Where Debian's package puts the server; `redis-server` on PATH otherwise.
const BINARY: &str = "/usr/bin/redis-server";

/// How long the sentinel waits without an answer before it considers the primary down.
pub const DOWN_AFTER: Duration = Duration::from_millis(500);

/// How long starting the servers, or a failover, may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// One `redis-server` process of this test's own, in `redis-server` or Sentinel mode.
pub struct PrivateRedis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    /// Holds its configuration file and log; removed on drop.
    dir: PathBuf,
}

impl PrivateRedis {
    /// A standalone server on a free port, answering PING.
    ///
    /// # Panics
    /// When `redis-server` is not installed or does not start, with what to do.
    pub async fn start() -> Self {
        Self::server(&[])
            .await
            .unwrap_or_else(|err| needs_redis(&err))
    }

    /// A server with `extra` configuration lines, answering PING.
    async fn server(extra: &[String]) -> anyhow::Result<Self> {
        let port = free_port();
        let mut lines = vec![
            format!("port {port}"),
            "bind 127.0.0.1".to_owned(),
            "save \"\"".to_owned(),
            "appendonly no".to_owned(),
        ];
        lines.extend_from_slice(extra);
        let server = Self::launch("redis", port, &lines, false)?;
        server.await_ping().await?;
        Ok(server)
    }

    /// Writes the configuration (the server and Sentinel rewrite it on a failover, so it must
    /// be a file of its own) and starts the process.
    fn launch(kind: &str, port: u16, lines: &[String], sentinel: bool) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(crate::unique_name(&format!("{kind}-{port}")));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = dir.join(format!("{kind}.conf"));
        let mut text = format!(
            "dir {}\nlogfile {}\n",
            dir.display(),
            dir.join(format!("{kind}.log")).display()
        );
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
        let binary = if Path::new(BINARY).exists() {
            BINARY
        } else {
            "redis-server"
        };
        let mut command = Command::new(binary);
        command.arg(&config);
        if sentinel {
            command.arg("--sentinel");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
        Ok(Self { port, child, dir })
    }

    async fn await_ping(&self) -> anyhow::Result<()> {
        poll_until(
            &format!("redis-server on port {} to answer PING", self.port),
            DEADLINE,
            || async {
                let mut connection = self.try_connection().await.ok()?;
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .ok()
            },
        )
        .await
        .with_context(|| format!("see {}", self.dir.display()))?;
        Ok(())
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection of the test's own, for setting up and checking.
    ///
    /// # Panics
    /// When the server does not accept it.
    pub async fn connection(&self) -> MultiplexedConnection {
        self.try_connection()
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {}: {err}", self.url()))
    }

    async fn try_connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// What `ROLE` says this server is (`master`, `slave`, `sentinel`), `None` when it does not
    /// answer.
    pub async fn role(&self) -> Option<String> {
        let mut connection = self.try_connection().await.ok()?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut connection).await.ok()?;
        match role.first() {
            Some(redis::Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into()),
            Some(redis::Value::SimpleString(text)) => Some(text.clone()),
            _ => None,
        }
    }

    /// SIGKILL, and wait until the process is gone: its port refuses connections afterwards.
    ///
    /// # Panics
    /// When the process cannot be killed.
    pub async fn kill(&mut self) {
        self.child
            .kill()
            .await
            .unwrap_or_else(|err| panic!("cannot kill redis-server: {err}"));
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // `kill_on_drop` kills the process; the directory goes with it.
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn needs_redis(err: &anyhow::Error) -> ! {
    panic!(
        "this test runs redis-server processes of its own and needs the redis-server binary \
         (apt-get install redis-server): {err:#}"
    )
}

/// A primary, its replica and a sentinel watching them (see the module docs).
pub struct RedisFailover {
    /// The name the sentinel monitors the primary under.
    master: String,
    /// Whichever of the two data servers is which changes with a failover: ask [`Self::primary`].
    servers: [PrivateRedis; 2],
    sentinel: PrivateRedis,
}

impl RedisFailover {
    /// Starts the three processes and waits until the replica is in sync and the sentinel knows
    /// it (so that a failover has somewhere to go).
    ///
    /// # Panics
    /// When `redis-server` is not installed or the deployment does not come up.
    pub async fn start() -> Self {
        Self::try_start()
            .await
            .unwrap_or_else(|err| needs_redis(&err))
    }

    async fn try_start() -> anyhow::Result<Self> {
        let master = crate::unique_name("test").replace('.', "-");
        let primary = PrivateRedis::server(&[]).await?;
        let replica =
            PrivateRedis::server(&[format!("replicaof 127.0.0.1 {}", primary.port)]).await?;
        let port = free_port();
        let sentinel = PrivateRedis::launch(
            "sentinel",
            port,
            &[
                format!("port {port}"),
                "bind 127.0.0.1".to_owned(),
                format!("sentinel monitor {master} 127.0.0.1 {} 1", primary.port),
                format!(
                    "sentinel down-after-milliseconds {master} {}",
                    DOWN_AFTER.as_millis()
                ),
                format!("sentinel failover-timeout {master} 10000"),
                // Known from the start: otherwise the sentinel learns of the replica from the
                // primary's INFO, which it asks for every 10 s.
                format!("sentinel known-replica {master} 127.0.0.1 {}", replica.port),
            ],
            true,
        )?;
        sentinel.await_ping().await?;
        let failover = Self {
            master,
            servers: [primary, replica],
            sentinel,
        };
        let replica_port = failover.servers[1].port;
        poll_until(
            "the replica to be in sync and known to the sentinel",
            DEADLINE,
            || async {
                let replicas = failover.sentinel_replicas().await?;
                let ready = replicas.iter().any(|fields| {
                    fields.get("port") == Some(&replica_port.to_string())
                        && fields.get("master-link-status").map(String::as_str) == Some("ok")
                        && fields.get("flags").is_some_and(|flags| flags == "slave")
                });
                ready.then_some(())
            },
        )
        .await?;
        Ok(failover)
    }

    /// The sentinel's address, as `<SVC>_REDIS_SENTINELS` takes it: `127.0.0.1:<port>`.
    pub fn sentinels(&self) -> String {
        format!("127.0.0.1:{}", self.sentinel.port)
    }

    /// The master name, as `<SVC>_REDIS_MASTER` takes it.
    pub fn master(&self) -> &str {
        &self.master
    }

    /// The port the sentinel names as the primary's now.
    ///
    /// # Panics
    /// When the sentinel does not answer.
    pub async fn primary_port(&self) -> u16 {
        self.try_primary_port()
            .await
            .unwrap_or_else(|| panic!("the sentinel on {} does not answer", self.sentinels()))
    }

    async fn try_primary_port(&self) -> Option<u16> {
        let mut connection = self.sentinel.try_connection().await.ok()?;
        let (_, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.master)
            .query_async(&mut connection)
            .await
            .ok()?;
        Some(port)
    }

    /// The data server on `port`.
    ///
    /// # Panics
    /// When neither data server is on `port`.
    pub fn server(&self, port: u16) -> &PrivateRedis {
        self.servers
            .iter()
            .find(|server| server.port == port)
            .unwrap_or_else(|| panic!("no data server on port {port}"))
    }

    /// The data server the sentinel names as the primary now.
    pub async fn primary(&self) -> &PrivateRedis {
        self.server(self.primary_port().await)
    }

    /// The data server the sentinel does not name as the primary now.
    pub async fn replica(&self) -> &PrivateRedis {
        self.server(self.other(self.primary_port().await))
    }

    /// `SENTINEL FAILOVER`, as an operator runs it: the replica is promoted and the old primary,
    /// still running, is turned into its replica. Returns once the sentinel names the new
    /// primary, it says it is one, and the old one says it is a replica; returns the new
    /// primary's port.
    ///
    /// # Panics
    /// When that does not happen within 30 s.
    pub async fn failover(&self) -> u16 {
        let old = self.primary_port().await;
        let new = self.other(old);
        poll_until(
            "the sentinel to accept SENTINEL FAILOVER",
            DEADLINE,
            || async {
                let mut connection = self.sentinel.try_connection().await.ok()?;
                // NOGOODSLAVE until the sentinel has fresh news of the replica; INPROG while one runs.
                redis::cmd("SENTINEL")
                    .arg("FAILOVER")
                    .arg(&self.master)
                    .query_async::<()>(&mut connection)
                    .await
                    .ok()
            },
        )
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
        self.await_promotion(new).await;
        poll_until("the old primary to be demoted", DEADLINE, || async {
            (self.server(old).role().await.as_deref() == Some("slave")).then_some(())
        })
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
        new
    }

    /// SIGKILLs the primary (a crash): after [`DOWN_AFTER`] the sentinel fails over to the
    /// replica. Returns once the sentinel names the replica and it says it is the primary;
    /// returns its port.
    ///
    /// # Panics
    /// When that does not happen within 30 s.
    pub async fn kill_primary(&mut self) -> u16 {
        let old = self.primary_port().await;
        let new = self.other(old);
        if let Some(server) = self.servers.iter_mut().find(|server| server.port == old) {
            server.kill().await;
        }
        self.await_promotion(new).await;
        new
    }

    async fn await_promotion(&self, new: u16) {
        poll_until("the replica to be promoted", DEADLINE, || async {
            let named = self.try_primary_port().await == Some(new);
            (named && self.server(new).role().await.as_deref() == Some("master")).then_some(())
        })
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    }

    /// The port of the data server that is not on `port`.
    fn other(&self, port: u16) -> u16 {
        self.servers
            .iter()
            .map(|server| server.port)
            .find(|other| *other != port)
            .unwrap_or(port)
    }

    async fn sentinel_replicas(&self) -> Option<Vec<std::collections::HashMap<String, String>>> {
        let mut connection = self.sentinel.try_connection().await.ok()?;
        redis::cmd("SENTINEL")
            .arg("REPLICAS")
            .arg(&self.master)
            .query_async(&mut connection)
            .await
            .ok()
    }
}
