//! What a run costs, read from outside the services: Postgres transactions and CPU time.
//!
//! * **Commits** come from `pg_stat_database.xact_commit` (and `xact_rollback`) of each of the
//!   run's own databases. Postgres backends publish their counters at most once a second, so a
//!   count is taken over a steady window (after a warm-up, until the load stops): the lag at
//!   both ends is about the same and cancels out.
//! * **CPU** is `utime + stime` of `/proc/<pid>/stat` (fields 14 and 15, in clock ticks of
//!   `getconf CLK_TCK`), for each service process and for the Postgres backends serving the
//!   run's databases (found in `pg_stat_activity`). A backend that appears during the window is
//!   counted from zero.

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
    }
}
