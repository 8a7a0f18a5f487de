//! Running a service binary as a real process, the way production does.

use std::{
    collections::HashMap,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncRead, BufReader},
    process::{Child, Command},
};

/// The ports [`free_port`] picks from: below the kernel's ephemeral range (32768 and up on
/// Linux), so that no outgoing connection of this or another test can be handed the port
/// between the moment it is picked and the moment the service under test binds it. That race is
/// real: asking the kernel for port 0 returns an ephemeral port, and a busy test run opens
/// thousands of client connections, each of which takes one.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port that was free a moment ago, picked at random from [`TEST_PORTS`]. Two tests could
/// still pick the same one in the same instant (about one chance in twelve thousand per pair);
/// [`RunningService::start`] retries on other ports when its process cannot bind. Tests that
/// cannot tolerate even that bind port 0 in-process instead.
pub fn free_port() -> u16 {
    for _ in 0..1_000 {
        // The last bytes of a UUIDv7 are random.
        let bytes = uuid::Uuid::now_v7().into_bytes();
        let random = u16::from_le_bytes([bytes[14], bytes[15]]);
        let port = TEST_PORTS.start + random % (TEST_PORTS.end - TEST_PORTS.start);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {TEST_PORTS:?} after 1000 tries")
}

/// Polls `check` until it returns `Some`, or fails after `deadline`. This is how tests wait for
/// something to happen: never a fixed sleep.
pub async fn poll_until<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    let mut interval = Duration::from_millis(20);
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if started.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(250));
    }
}

/// A service binary running as a child process. Killed (SIGKILL) on drop if still running.
///
/// Its output is echoed to the test's stderr (shown when a test fails) and kept, so tests can
/// assert on log lines.
pub struct ServiceProcess {
    name: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// Starts `binary` with `env` added to a clean-ish environment (PATH and RUST_LOG kept).
    pub fn start(name: &str, binary: &Path, env: &HashMap<String, String>) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            collect_lines(name, stdout, Arc::clone(&logs));
        }
        if let Some(stderr) = child.stderr.take() {
            collect_lines(name, stderr, Arc::clone(&logs));
        }
        Ok(Self {
            name: name.to_owned(),
            child,
            logs,
        })
    }

    /// Every line the process has written so far (stdout and stderr).
    pub fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends SIGTERM, as Kubernetes does when it stops a pod.
    pub async fn terminate(&self) -> anyhow::Result<()> {
        self.signal("TERM").await
    }

    /// Sends SIGKILL: the process gets no chance to clean up (crash tests).
    pub async fn kill(&self) -> anyhow::Result<()> {
        self.signal("KILL").await
    }

    /// Sends SIGSTOP: the process is frozen (a long GC pause, a descheduled VM) but keeps its
    /// sockets and state; [`ServiceProcess::resume`] thaws it.
    pub async fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP").await
    }

    /// Sends SIGCONT to a process [`ServiceProcess::pause`] froze.
    pub async fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT").await
    }

    async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .with_context(|| format!("{} has already exited", self.name))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -{signal} {pid} failed: {status}");
        }
        Ok(())
    }

    /// Waits for the process to exit, at most `deadline`; returns its exit code.
    pub async fn wait_for_exit(&mut self, deadline: Duration) -> anyhow::Result<Option<i32>> {
        let status = tokio::time::timeout(deadline, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit within {deadline:?}", self.name))??;
        Ok(status.code())
    }

    /// Polls `url` until it answers 200 or the process exits or `deadline` passes.
    pub async fn wait_until_ready(&mut self, url: &str, deadline: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited during start-up: {status}", self.name);
            }
            if let Ok(response) = client.get(url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > deadline {
                bail!("{} was not ready at {url} within {deadline:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn collect_lines(
    name: &str,
    stream: impl AsyncRead + Send + Unpin + 'static,
    logs: Arc<Mutex<Vec<String>>>,
) {
    let prefix = format!("[{name}] ");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{prefix}{line}");
            if let Ok(mut logs) = logs.lock() {
                logs.push(line);
            }
        }
    });
}

/// A service binary started on free loopback ports and ready: the standard contract every
/// Ferroshop service keeps (gRPC API, admin port with `/healthz`, `/readyz`, `/metrics`,
/// `grpc.health.v1`, clean exit on SIGTERM), checked the same way for each.
pub struct RunningService {
    pub process: ServiceProcess,
    pub grpc_port: u16,
    pub admin_port: u16,
    /// What it was started with, so that it can be restarted on the same ports.
    name: String,
    binary: std::path::PathBuf,
    env: HashMap<String, String>,
}

impl RunningService {
    /// Starts `binary` with `<PREFIX>_GRPC_ADDR` / `<PREFIX>_ADMIN_ADDR` on free ports (PREFIX is
    /// `name` upper-cased) plus `env`, and waits until `/readyz` answers 200.
    pub async fn start(
        name: &str,
        binary: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let env: HashMap<String, String> = env.into_iter().collect();
        let prefix = name.to_ascii_uppercase();
        let mut attempt = 1;
        loop {
            let (grpc_port, admin_port) = (free_port(), free_port());
            let mut vars = env.clone();
            vars.insert(
                format!("{prefix}_GRPC_ADDR"),
                format!("127.0.0.1:{grpc_port}"),
            );
            vars.insert(
                format!("{prefix}_ADMIN_ADDR"),
                format!("127.0.0.1:{admin_port}"),
            );
            match Self::launch(name, binary, &vars, admin_port).await {
                Ok(process) => {
                    return Ok(Self {
                        process,
                        grpc_port,
                        admin_port,
                        name: name.to_owned(),
                        binary: binary.to_owned(),
                        env: vars,
                    });
                }
                // Another test took one of the ports in the instant after it was picked.
                Err(Launch::PortTaken(err)) if attempt < 3 => {
                    eprintln!("[{name}] {err:#}; trying other ports");
                    attempt += 1;
                }
                Err(other) => return Err(other.into_error()),
            }
        }
    }

    async fn launch(
        name: &str,
        binary: &Path,
        vars: &HashMap<String, String>,
        admin_port: u16,
    ) -> Result<ServiceProcess, Launch> {
        let mut process = ServiceProcess::start(name, binary, vars).map_err(Launch::Failed)?;
        match process
            .wait_until_ready(
                &format!("http://127.0.0.1:{admin_port}/readyz"),
                Duration::from_secs(30),
            )
            .await
        {
            Ok(()) => Ok(process),
            Err(err) => {
                // The exit can be seen before its last log line is read: give the line a moment.
                let port_taken = poll_until("the bind error", Duration::from_secs(1), || {
                    let taken = process
                        .logs()
                        .iter()
                        .any(|line| line.contains("Address already in use"));
                    async move { taken.then_some(()) }
                })
                .await
                .is_ok();
                Err(if port_taken {
                    Launch::PortTaken(err)
                } else {
                    Launch::Failed(err)
                })
            }
        }
    }

    /// Stops the process (SIGTERM, as a rolling update does) and starts it again on the same
    /// ports, with `changes` applied to its environment; waits until it is ready.
    pub async fn restart_with(&mut self, changes: &[(&str, String)]) -> anyhow::Result<()> {
        self.stop(Duration::from_secs(15)).await?;
        for (name, value) in changes {
            self.env.insert((*name).to_owned(), value.clone());
        }
        self.process = Self::launch(&self.name, &self.binary, &self.env, self.admin_port)
            .await
            .map_err(Launch::into_error)?;
        Ok(())
    }

    /// SIGKILLs the process (no clean-up, as a crash or an OOM kill) and starts it again on the
    /// same ports with the same settings; waits until it is ready.
    pub async fn kill_and_restart(&mut self) -> anyhow::Result<()> {
        self.process.kill().await?;
        self.process.wait_for_exit(Duration::from_secs(15)).await?;
        self.process = Self::launch(&self.name, &self.binary, &self.env, self.admin_port)
            .await
            .map_err(Launch::into_error)?;
        Ok(())
    }

    /// The service's name (`users`), as it was started.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// `/healthz` 200, `/readyz` 200 with Postgres ok, and `grpc.health.v1` SERVING for the
    /// server as a whole and for `grpc_service` (e.g. `shop.users.v1.UsersService`).
    ///
    /// # Panics
    /// When any of them is not as it should be.
    pub async fn assert_healthy(&self, grpc_service: &str) {
        let http = reqwest::Client::new();
        for (path, expected) in [("/healthz", 200), ("/readyz", 200)] {
            let response = http
                .get(format!("{}{path}", self.admin_url()))
                .send()
                .await
                .unwrap_or_else(|err| panic!("GET {path}: {err}"));
            assert_eq!(response.status().as_u16(), expected, "GET {path}");
            if path == "/readyz" {
                let body: serde_json::Value = response
                    .json()
                    .await
                    .unwrap_or_else(|err| panic!("/readyz body: {err}"));
                assert_eq!(body["checks"]["postgres"], "ok", "{body}");
            }
        }
        let channel = tonic::transport::Endpoint::from_shared(self.grpc_endpoint())
            .unwrap_or_else(|err| panic!("endpoint: {err}"))
            .connect()
            .await
            .unwrap_or_else(|err| panic!("cannot connect to the gRPC port: {err}"));
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        for service in ["", grpc_service] {
            let status = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .unwrap_or_else(|err| panic!("health check of {service:?}: {err}"))
                .into_inner()
                .status();
            assert_eq!(
                status,
                tonic_health::pb::health_check_response::ServingStatus::Serving,
                "health of {service:?}"
            );
        }
    }

    /// The Prometheus text at `/metrics`.
    ///
    /// # Panics
    /// When the admin port does not answer.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin_url()))
            .await
            .unwrap_or_else(|err| panic!("GET /metrics: {err}"))
            .text()
            .await
            .unwrap_or_else(|err| panic!("/metrics body: {err}"))
    }

    /// `/metrics`, parsed: ask it for one series by name and labels.
    ///
    /// # Panics
    /// When the admin port does not answer or the text is not Prometheus exposition format.
    pub async fn scrape(&self) -> crate::Scrape {
        crate::Scrape::parse(&self.metrics().await)
    }

    /// SIGTERM, then the exit code, which must come within `deadline`.
    pub async fn stop(&mut self, deadline: Duration) -> anyhow::Result<Option<i32>> {
        self.process.terminate().await?;
        self.process.wait_for_exit(deadline).await
    }
}

/// Why [`RunningService::launch`] failed: a port taken by someone else (worth another try on
/// other ports) or anything else.
enum Launch {
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
}

impl Launch {
    fn into_error(self) -> anyhow::Error {
        match self {
            Self::PortTaken(err) | Self::Failed(err) => err,
        }
    }
}
