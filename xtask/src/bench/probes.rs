//! What a run costs, read from outside the services: Postgres transactions, CPU time, memory
//! and broker messages.
//!
//! * **Commits** come from `pg_stat_database.xact_commit` (and `xact_rollback`) of each of the
//!   run's own databases. Postgres backends publish their counters at most once a second, so a
//!   count is taken over a steady window (after a warm-up, until the load stops): the lag at
//!   both ends is about the same and cancels out.
//! * **CPU** is `utime + stime` of `/proc/<pid>/stat` (fields 14 and 15, in clock ticks of
//!   `getconf CLK_TCK`), for each service process and for the Postgres backends serving the
//!   run's databases (found in `pg_stat_activity`). A backend that appears during the window is
//!   counted from zero.
//! * **Memory** is `VmRSS` (resident now) and `VmHWM` (the most it was ever resident, the
//!   "high-water mark") of `/proc/<pid>/status`, in KiB: what a container's memory limit has to
//!   hold.
//! * **Messages** are the services' own counters, scraped from each admin `/metrics` page:
//!   `outbox_published_total` (events a service's outbox relay published and the broker
//!   confirmed) and `messaging_consumed_total` by `queue` (deliveries a consumer handled and
//!   acknowledged). The broker's management API, which would count them in RabbitMQ, is not
//!   assumed to be enabled.

use std::collections::HashMap;

use anyhow::Context as _;
use sqlx::{Connection as _, PgConnection};

/// Transaction counters of each database, by name.
#[derive(Clone, Debug, Default)]
pub struct Commits {
    pub by_database: HashMap<String, (i64, i64)>,
}

impl Commits {
    /// `(xact_commit, xact_rollback)` of each of `databases` now.
    pub async fn read(admin_url: &str, databases: &[String]) -> anyhow::Result<Self> {
        let mut conn = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("cannot connect to {admin_url}"))?;
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT datname::text, xact_commit, xact_rollback FROM pg_stat_database \
             WHERE datname = ANY($1)",
        )
        .bind(databases)
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        Ok(Self {
            by_database: rows
                .into_iter()
                .map(|(name, commits, rollbacks)| (name, (commits, rollbacks)))
                .collect(),
        })
    }

    /// Commits and rollbacks of each database since `before`.
    pub fn since(&self, before: &Self) -> HashMap<String, (i64, i64)> {
        self.by_database
            .iter()
            .map(|(name, (commits, rollbacks))| {
                let (c0, r0) = before.by_database.get(name).copied().unwrap_or_default();
                (name.clone(), (commits - c0, rollbacks - r0))
            })
            .collect()
    }
}

/// The process ids of the Postgres backends connected to `databases`.
pub async fn postgres_backends(admin_url: &str, databases: &[String]) -> anyhow::Result<Vec<u32>> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let pids: Vec<(i32,)> =
        sqlx::query_as("SELECT pid FROM pg_stat_activity WHERE datname = ANY($1)")
            .bind(databases)
            .fetch_all(&mut conn)
            .await?;
    conn.close().await?;
    Ok(pids
        .into_iter()
        .filter_map(|(pid,)| u32::try_from(pid).ok())
        .collect())
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU ticks (user + system) a process has used, or `None` once it is gone.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Field 3 (state) is fields[0], so utime (14) and stime (15) are fields[11] and fields[12].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU ticks of labelled groups of processes at one instant.
#[derive(Clone, Debug, Default)]
pub struct Cpu {
    pub ticks: HashMap<u32, u64>,
}

impl Cpu {
    pub fn read(pids: impl IntoIterator<Item = u32>) -> Self {
        Self {
            ticks: pids
                .into_iter()
                .filter_map(|pid| Some((pid, cpu_ticks(pid)?)))
                .collect(),
        }
    }

    /// CPU milliseconds that `pids` used since `before`.
    pub fn ms_since(&self, before: &Self, pids: &[u32], ticks_per_second: f64) -> f64 {
        let ticks: u64 = pids
            .iter()
            .filter_map(|pid| {
                let now = self.ticks.get(pid)?;
                Some(now.saturating_sub(before.ticks.get(pid).copied().unwrap_or(0)))
            })
            .sum();
        ticks as f64 * 1000.0 / ticks_per_second
    }
}

/// `(VmRSS, VmHWM)` of a process in KiB, or `None` once it is gone.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Counters scraped from Prometheus text pages, summed by series.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// `(page label, metric name, value of the label given to [`Counters::scrape`])` → value.
    pub values: HashMap<(String, String, String), f64>,
}

impl Counters {
    /// Scrapes every `(label, url)` page and keeps the series of `metrics`, keyed by the value
    /// of their `by` label (empty when a series has none). A page that cannot be read counts as
    /// empty: a restarted process starts its counters from zero anyway.
    pub async fn scrape(
        client: &reqwest::Client,
        pages: &[(String, String)],
        metrics: &[&str],
        by: &str,
    ) -> Self {
        let mut values = HashMap::new();
        for (label, url) in pages {
            let Ok(response) = client.get(url).send().await else {
                continue;
            };
            let Ok(text) = response.text().await else {
                continue;
            };
            for (name, key, value) in parse_series(&text, metrics, by) {
                *values.entry((label.clone(), name, key)).or_insert(0.0) += value;
            }
        }
        Self { values }
    }

    /// Every series' increase since `before` (a counter that went backwards restarted: its
    /// value now is its increase).
    pub fn since(&self, before: &Self) -> Vec<((String, String, String), f64)> {
        let mut out: Vec<_> = self
            .values
            .iter()
            .map(|(key, now)| {
                let then = before.values.get(key).copied().unwrap_or(0.0);
                let delta = if *now >= then { now - then } else { *now };
                (key.clone(), delta)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// (metric, value of the `by` label, value) of each sample of `metrics` in a Prometheus text page.
fn parse_series(text: &str, metrics: &[&str], by: &str) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        if !metrics.contains(&name) {
            continue;
        }
        let key = labels
            .split(',')
            .find_map(|pair| {
                let (label, value) = pair.split_once('=')?;
                (label.trim() == by).then(|| value.trim_matches('"').to_owned())
            })
            .unwrap_or_default();
        out.push((name.to_owned(), key, value));
    }
    out
}

/// The machine: logical CPUs, memory, CPU model, kernel, from `/proc`.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches(" kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} logical CPUs ({model}), {memory_gib:.1} GiB RAM, Linux {}",
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_cpu_time_and_the_machine() {
        let pid = std::process::id();
        // Burn a little CPU so the count is not zero on a coarse clock.
        let mut x = 0_u64;
        for i in 0..50_000_000_u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu_ticks(pid).is_some());
        assert!(machine().contains("logical CPUs"), "{}", machine());
        let (rss, hwm) = memory_kib(pid).unwrap();
        assert!(rss > 0 && hwm >= rss, "{rss} {hwm}");
    }

    #[test]
    fn reads_counters_by_label_from_a_prometheus_page() {
        let page = "# TYPE messaging_consumed_total counter\n\
            messaging_consumed_total{queue=\"orders.fulfilment\",outcome=\"handled\"} 7\n\
            messaging_consumed_total{outcome=\"retried\",queue=\"orders.fulfilment\"} 2\n\
            outbox_published_total 12\n\
            outbox_published_totally 99\n";
        let series = parse_series(
            page,
            &["messaging_consumed_total", "outbox_published_total"],
            "queue",
        );
        assert_eq!(
            series,
            vec![
                (
                    "messaging_consumed_total".to_owned(),
                    "orders.fulfilment".to_owned(),
                    7.0
                ),
                (
                    "messaging_consumed_total".to_owned(),
                    "orders.fulfilment".to_owned(),
                    2.0
                ),
                ("outbox_published_total".to_owned(), String::new(), 12.0),
            ]
        );
    }
}
