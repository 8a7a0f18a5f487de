//! A RabbitMQ node of the test's own, so that a test can restart a real broker.
//!
//! A proxy cut ([`crate::TcpProxy`]) drops connections, but the broker behind it never stops:
//! its queues, its consumers' unacknowledged deliveries and its publisher confirms live on. A
//! restart is different, and the shared broker cannot be restarted without breaking every other
//! test that is using it. So a test that restarts RabbitMQ starts a node of its own from the
//! installed package (`rabbitmq-server`, as root on Debian: `/usr/lib/rabbitmq/bin`), on free
//! ports, with its data in a temporary directory, and stops it when dropped.
//!
//! [`PrivateBroker::stop_app`] and [`PrivateBroker::start_app`] are what an operator runs
//! (`rabbitmqctl stop_app` / `start_app`): every connection is closed and the listener goes
//! away; on start the node reloads its durable exchanges, queues and persistent messages.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};

use crate::free_port;

/// Where Debian's package keeps the scripts that run the node as the calling user (the ones on
/// PATH switch to the `rabbitmq` user, who cannot write the test's directory).
const PACKAGE_BIN: &str = "/usr/lib/rabbitmq/bin";

/// How long the node may take to boot.
const BOOT: Duration = Duration::from_secs(60);

/// A RabbitMQ node of this test's own: shut down (and its directory removed) on drop.
pub struct PrivateBroker {
    node: String,
    port: u16,
    /// The Erlang distribution port (rabbitmqctl talks to the node there).
    dist_port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivateBroker {
    /// Starts a node on free loopback ports and waits until it accepts AMQP connections.
    ///
    /// # Panics
    /// When RabbitMQ is not installed or the node does not boot, with what to do.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(broker) => broker,
            Err(err) => panic!(
                "this test restarts a RabbitMQ node of its own and needs the rabbitmq-server \
                 package (`apt-get install rabbitmq-server`, run as root): {err:#}"
            ),
        }
    }

    async fn try_start() -> anyhow::Result<Self> {
        let bin = PathBuf::from(PACKAGE_BIN);
        if !bin.join("rabbitmq-server").exists() {
            bail!("{PACKAGE_BIN}/rabbitmq-server is missing");
        }
        let name = crate::unique_name("test").replace('.', "-");
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = free_port();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        let broker = Self {
            node: format!("{name}@localhost"),
            port,
            dist_port: free_port(),
            dir,
            bin,
        };
        let status = broker
            .command("rabbitmq-server")
            .arg("-detached")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("cannot run rabbitmq-server")?;
        if !status.success() {
            bail!("rabbitmq-server -detached: {status}");
        }
        broker.await_startup().await?;
        Ok(broker)
    }

    /// The node's AMQP URL (guest/guest, the default virtual host).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `rabbitmqctl stop_app`: the broker closes every connection and stops listening.
    ///
    /// # Panics
    /// When the command fails.
    pub async fn stop_app(&self) {
        self.ctl(&["stop_app"]).await;
    }

    /// `rabbitmqctl start_app`, then waits until AMQP connections are accepted again.
    ///
    /// # Panics
    /// When the command fails or the broker does not come back.
    pub async fn start_app(&self) {
        self.ctl(&["start_app"]).await;
        if let Err(err) = self.await_startup().await {
            panic!("the broker did not come back: {err:#}");
        }
    }

    async fn await_startup(&self) -> anyhow::Result<()> {
        let address = format!("127.0.0.1:{}", self.port);
        crate::poll_until("the private broker to accept connections", BOOT, || async {
            tokio::net::TcpStream::connect(&address).await.ok()
        })
        .await?;
        Ok(())
    }

    async fn ctl(&self, args: &[&str]) {
        let mut command = tokio::process::Command::from(self.command("rabbitmqctl"));
        command.args(["-n", &self.node]).args(args);
        let output = tokio::time::timeout(BOOT, command.output())
            .await
            .unwrap_or_else(|_| panic!("rabbitmqctl {args:?} did not finish within {BOOT:?}"))
            .unwrap_or_else(|err| panic!("cannot run rabbitmqctl: {err}"));
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// One of the package's scripts, set up for this node and its directory.
    fn command(&self, script: &str) -> Command {
        let dir = |sub: &str| self.dir.join(sub);
        let mut command = Command::new(self.bin.join(script));
        command
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_BASE", &self.dir)
            .env("RABBITMQ_MNESIA_BASE", dir("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir("log"))
            .env("RABBITMQ_PID_FILE", dir("pid"))
            .env("RABBITMQ_CONFIG_FILE", dir("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir("enabled_plugins"));
        command
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self
            .command("rabbitmqctl")
            .args(["-n", &self.node, "shutdown"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
