//! The baselines each scenario is compared with, measured on the same machine in the same run.
//!
//! * [`pgbench`]: what this Postgres commits per second when nothing but a client talks to it,
//!   running a transaction of two single-row inserts (about what one step of a checkout writes).
//! * [`Nginx`]: the same response bytes served from a file by nginx with one worker: what the
//!   machine can deliver for the bytes of a catalog page when no application is involved.
//!
//! Both are Debian packages (`postgresql-client`, `nginx-light`); a missing one fails the bench
//! naming the package.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::{Context as _, bail};
use sqlx::{Connection as _, PgConnection};
use tokio::process::{Child, Command};

/// The pgbench transaction: two inserts, committed together.
const PGBENCH_SCRIPT: &str = "\\set v random(1, 1000000)
BEGIN;
INSERT INTO bench_orders (v) VALUES (:v);
INSERT INTO bench_outbox (v) VALUES (:v);
END;
";

/// Commits per second of `clients` pgbench clients for `duration`, in a database of its own on
/// the server of `admin_url` (created and dropped here).
pub async fn pgbench(
    admin_url: &str,
    database: &str,
    work_dir: &Path,
    clients: u32,
    duration: Duration,
) -> anyhow::Result<f64> {
    let url = super::replace_database(admin_url, database);
    let mut admin = PgConnection::connect(admin_url).await?;
    // The name is ours (a fixed prefix and a random suffix): safe to splice into DDL.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"CREATE DATABASE "{database}""#
    )))
    .execute(&mut admin)
    .await?;
    let outcome = async {
        let mut conn = PgConnection::connect(&url).await?;
        for table in ["bench_orders", "bench_outbox"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE {table} (id bigserial PRIMARY KEY, v bigint NOT NULL, \
                 at timestamptz NOT NULL DEFAULT now())"
            )))
            .execute(&mut conn)
            .await?;
        }
        conn.close().await?;
        std::fs::create_dir_all(work_dir)?;
        let script = work_dir.join("checkout-like.sql");
        std::fs::write(&script, PGBENCH_SCRIPT)?;
        let output = Command::new("pgbench")
            .args(["--no-vacuum", "--client"])
            .arg(clients.to_string())
            .args(["--jobs", "2", "--time"])
            .arg(duration.as_secs().max(1).to_string())
            .arg("--file")
            .arg(&script)
            .arg(&url)
            .stdin(Stdio::null())
            .output()
            .await
            .context("cannot run pgbench: apt-get install postgresql-client")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "pgbench failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        parse_tps(&stdout).with_context(|| format!("no tps in pgbench's output:\n{stdout}"))
    }
    .await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#
    )))
    .execute(&mut admin)
    .await;
    let _ = admin.close().await;
    outcome
}

/// `tps = 9612.3 (without initial connection time)` → 9612.3.
fn parse_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// nginx serving one file on a loopback port, in the foreground, stopped on drop.
pub struct Nginx {
    child: Child,
    pub url: String,
}

impl Nginx {
    /// Serves `body` as `application/json` at `http://127.0.0.1:<port>/page.json`, one worker,
    /// no access log; everything nginx writes stays in `dir`.
    pub async fn start(dir: &Path, port: u16, body: &[u8]) -> anyhow::Result<Self> {
        let www = dir.join("www");
        std::fs::create_dir_all(&www)?;
        std::fs::write(www.join("page.json"), body)?;
        let conf = dir.join("nginx.conf");
        let dir_text = dir.display();
        std::fs::write(
            &conf,
            format!(
                "worker_processes 1;\n\
                 daemon off;\n\
                 pid {dir_text}/nginx.pid;\n\
                 error_log {dir_text}/error.log warn;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n\
                 \x20 access_log off;\n\
                 \x20 client_body_temp_path {dir_text}/tmp;\n\
                 \x20 proxy_temp_path {dir_text}/tmp;\n\
                 \x20 fastcgi_temp_path {dir_text}/tmp;\n\
                 \x20 uwsgi_temp_path {dir_text}/tmp;\n\
                 \x20 scgi_temp_path {dir_text}/tmp;\n\
                 \x20 keepalive_requests 1000000;\n\
                 \x20 server {{\n\
                 \x20   listen 127.0.0.1:{port};\n\
                 \x20   location = /page.json {{ root {www}; default_type application/json; }}\n\
                 \x20 }}\n\
                 }}\n",
                www = www.display()
            ),
        )?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|path| Path::new(path).is_file())
            .context("nginx is not installed: apt-get install nginx-light")?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}/page.json"),
        })
    }

    /// SIGQUIT (graceful), then SIGKILL after 5 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rate_pgbench_prints() {
        let output = "number of failed transactions: 0 (0.000%)\n\
                      latency average = 1.663 ms\n\
                      initial connection time = 12.5 ms\n\
                      tps = 9612.345678 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(9612.345678));
        assert_eq!(parse_tps("nothing"), None);
    }
}
