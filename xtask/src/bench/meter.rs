//! One measured window: what the system spent between [`Meter::start`] and [`Meter::finish`].
//!
//! Every scenario that puts a price on its load (B1 per checkout, each step of the ramp) reads
//! the same four things at both ends of its window and keeps the differences: Postgres commits
//! of the run's databases, CPU time of each service process and of the Postgres backends serving
//! them, the services' message counters (published by each outbox relay, consumed from each
//! queue) and, at the end only, the memory each service process holds. The probes themselves are
//! in [`super::probes`].

use std::collections::HashMap;

use super::probes::{self, Commits, Counters, Cpu};
use crate::up::Stack;

/// The series the message counts are made of, and the label they are split by.
const MESSAGE_METRICS: [&str; 2] = ["outbox_published_total", "messaging_consumed_total"];
const MESSAGE_LABEL: &str = "queue";
/// The label of the group of Postgres backends in the CPU figures.
pub const POSTGRES: &str = "postgres (backends)";

/// The readings at the start of a window.
pub struct Meter {
    admin_url: String,
    /// The run's database names.
    databases: Vec<String>,
    /// `(process label, admin /metrics URL)` of every service process.
    pages: Vec<(String, String)>,
    /// The start of every queue name in this run (stripped from the report).
    queue_prefix: String,
    /// Process ids by label; the last group is the Postgres backends, which grows at the end.
    pids: Vec<(String, Vec<u32>)>,
    client: reqwest::Client,
    ticks: f64,
    commits: Commits,
    cpu: Cpu,
    counters: Counters,
}

/// What a window cost.
pub struct Costs {
    /// `(xact_commit, xact_rollback)` increases by database name.
    pub commits: HashMap<String, (i64, i64)>,
    /// CPU milliseconds by process label, the Postgres backends last.
    pub cpu_ms: Vec<(String, f64)>,
    /// Messages: (`"published by <service>"` or `"consumed from <queue>"`, count).
    pub messages: Vec<(String, f64)>,
    /// `(process label, VmRSS KiB, VmHWM KiB)` of each service process at the end.
    pub memory: Vec<(String, u64, u64)>,
}

impl Meter {
    /// Reads everything now: the start of a window.
    pub async fn start(
        stack: &Stack,
        admin_url: &str,
        databases: &[String],
        queue_prefix: &str,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?;
        let mut pids: Vec<(String, Vec<u32>)> = stack
            .pids()
            .into_iter()
            .map(|(label, pid)| (label, vec![pid]))
            .collect();
        let pages = stack.metrics_urls();
        pids.push((
            POSTGRES.to_owned(),
            probes::postgres_backends(admin_url, databases).await?,
        ));
        let commits = Commits::read(admin_url, databases).await?;
        let cpu = Cpu::read(pids.iter().flat_map(|(_, p)| p.iter().copied()));
        let counters = Counters::scrape(&client, &pages, &MESSAGE_METRICS, MESSAGE_LABEL).await;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            databases: databases.to_vec(),
            pages,
            queue_prefix: queue_prefix.to_owned(),
            pids,
            client,
            ticks: probes::clock_ticks(),
            commits,
            cpu,
            counters,
        })
    }

    /// Reads everything again: the end of the window, and what it cost. A Postgres backend that
    /// appeared during the window is counted from zero.
    pub async fn finish(mut self) -> anyhow::Result<Costs> {
        let commits = Commits::read(&self.admin_url, &self.databases).await?;
        let backends = probes::postgres_backends(&self.admin_url, &self.databases).await?;
        if let Some((_, known)) = self.pids.last_mut() {
            for pid in backends {
                if !known.contains(&pid) {
                    known.push(pid);
                }
            }
        }
        let cpu = Cpu::read(self.pids.iter().flat_map(|(_, p)| p.iter().copied()));
        let counters =
            Counters::scrape(&self.client, &self.pages, &MESSAGE_METRICS, MESSAGE_LABEL).await;
        let cpu_ms = self
            .pids
            .iter()
            .map(|(label, pids)| (label.clone(), cpu.ms_since(&self.cpu, pids, self.ticks)))
            .collect();
        let mut messages: Vec<(String, f64)> = Vec::new();
        for ((process, metric, queue), count) in counters.since(&self.counters) {
            let what = if metric == MESSAGE_METRICS[0] {
                format!("published by {process}")
            } else {
                let queue = queue.strip_prefix(&self.queue_prefix).unwrap_or(&queue);
                format!("consumed from {queue}")
            };
            match messages.iter_mut().find(|(seen, _)| *seen == what) {
                Some(entry) => entry.1 += count,
                None => messages.push((what, count)),
            }
        }
        let memory = self
            .pids
            .iter()
            .filter(|(label, _)| label != POSTGRES)
            .filter_map(|(label, pids)| {
                let (rss, hwm) = probes::memory_kib(*pids.first()?)?;
                Some((label.clone(), rss, hwm))
            })
            .collect();
        Ok(Costs {
            commits: commits.since(&self.commits),
            cpu_ms,
            messages,
            memory,
        })
    }
}

/// `(process label, VmRSS KiB, VmHWM KiB)` of each service process of `stack` now.
pub fn memory(stack: &Stack) -> Vec<(String, u64, u64)> {
    stack
        .pids()
        .into_iter()
        .filter_map(|(label, pid)| {
            let (rss, hwm) = probes::memory_kib(pid)?;
            Some((label, rss, hwm))
        })
        .collect()
}
