//! The ramp (the highest checkout rate whose p99 holds) and B3 (what twice that rate does).
//!
//! **Ramp.** Checkouts at a constant rate for one step, every accepted order followed to its
//! terminal status, then the next step at a higher rate. A step *holds* when at least 99 % of
//! its due orders were accepted, at least 99 % of those reached a terminal status, and the
//! accept p99 and the saga p99 are within their objectives (`--accept-p99-ms`,
//! `--saga-p99-ms`). The ramp stops at the first step that does not hold; the *saturation rate*
//! is the last one that did. Each step is metered ([`super::meter`]) so its CPU and the messages
//! each queue's consumer handled are known at every rate, the saturated one included: that is
//! the consumer throughput the autoscaling targets are derived from.
//!
//! **B3 overload.** Twice the saturation rate for `--overload-seconds`, orders placed but not
//! followed (following them would add the polling of thousands of orders to the overload).
//! Counted: accepted (201), shed (429 or 503, and how long a refusal took from its due
//! instant), anything else; the accept p99; and, from the orders database, how many orders were
//! still PENDING when the last request was answered and how long the system took to finish
//! them.

use std::{collections::HashMap, time::Duration};

use sqlx::{Connection as _, PgConnection};
use tokio::time::Instant;

use super::{Api, Plan, Tallies, checkouts, load, meter};
use crate::up::Stack;

/// How often B3 counts the PENDING orders while they drain.
const DRAIN_POLL: Duration = Duration::from_millis(250);

/// One step of the ramp.
pub struct Step {
    /// Offered orders per second.
    pub rate: f64,
    /// Due → 201.
    pub accept: load::Run,
    /// Due → terminal status.
    pub saga: load::Run,
    /// From the first due instant to the last saga's end, and at least the step's length: what
    /// the step's messages and CPU are divided by.
    pub elapsed: Duration,
    /// The step's length (its orders were due within it).
    pub window: Duration,
    /// CPU-ms by process over the step.
    pub cpu_ms: Vec<(String, f64)>,
    /// Messages published and consumed over the step.
    pub messages: Vec<(String, f64)>,
    pub held: bool,
}

/// The ramp's steps and what they say.
pub struct Ramp {
    pub steps: Vec<Step>,
    pub accept_objective_ms: f64,
    pub saga_objective_ms: f64,
}

impl Ramp {
    /// The last step that held, if any did.
    pub fn saturation(&self) -> Option<&Step> {
        self.steps.iter().take_while(|step| step.held).last()
    }
}

/// B3's counts.
pub struct Overload {
    /// Offered orders per second (twice the saturation rate).
    pub rate: f64,
    pub window: Duration,
    /// Due → 201, and the failures by kind.
    pub accept: load::Run,
    /// Due → 429 or 503.
    pub refused: hdrhistogram::Histogram<u64>,
    /// PENDING orders when the last request had been answered.
    pub pending_at_end: i64,
    /// How long after that none were PENDING; `None` if some still were at `drain_deadline`.
    pub drained_after: Option<Duration>,
    pub drain_deadline: Duration,
    /// Orders that became CONFIRMED and CANCELLED during B3 and its drain.
    pub confirmed: i64,
    pub cancelled: i64,
}

impl Overload {
    /// Answers with this status, e.g. `"429 Too Many Requests"`.
    pub fn count(&self, status: &str) -> u64 {
        self.accept
            .failures
            .iter()
            .filter(|(what, _)| what.contains(status))
            .map(|(_, count)| count)
            .sum()
    }
}

/// The ramp: steps from `plan.ramp_start`, `plan.ramp_step` apart, until one does not hold.
#[allow(clippy::too_many_arguments)]
pub async fn ramp(
    plan: &Plan,
    api: &Api,
    stack: &Stack,
    customers: &[String],
    skus: &[String],
    databases: &[String],
    queue_prefix: &str,
) -> anyhow::Result<Ramp> {
    let admin_url = crate::infra::DEPENDENCIES[0].url();
    let mut steps = Vec::new();
    for index in 0..plan.ramp_steps {
        let rate = plan.ramp_start + plan.ramp_step * index as f64;
        let tallies = Tallies::new()?;
        let meter = meter::Meter::start(stack, &admin_url, databases, queue_prefix).await?;
        let saga = load::open_loop(
            rate,
            plan.ramp_duration,
            checkouts(api, customers, skus, true, &tallies),
        )
        .await?;
        let costs = meter.finish().await?;
        let accept = tallies.accept_run(&saga);
        let held = accept.ok as f64 >= 0.99 * saga.sent as f64
            && saga.ok as f64 >= 0.99 * accept.ok as f64
            && accept.percentile_ms(99.0) <= plan.accept_objective_ms
            && saga.percentile_ms(99.0) <= plan.saga_objective_ms;
        println!(
            "bench: ramp {rate}/s: {} of {} accepted, accept p99 {:.1} ms, saga p99 {:.1} ms: {}",
            accept.ok,
            saga.sent,
            accept.percentile_ms(99.0),
            saga.percentile_ms(99.0),
            if held { "holds" } else { "does not hold" }
        );
        steps.push(Step {
            rate,
            elapsed: saga.elapsed.max(plan.ramp_duration),
            window: plan.ramp_duration,
            accept,
            saga,
            cpu_ms: costs.cpu_ms,
            messages: costs.messages,
            held,
        });
        if !held {
            break;
        }
    }
    Ok(Ramp {
        steps,
        accept_objective_ms: plan.accept_objective_ms,
        saga_objective_ms: plan.saga_objective_ms,
    })
}

/// Orders by status in the orders database.
async fn statuses(orders_url: &str) -> anyhow::Result<HashMap<String, i64>> {
    let mut conn = PgConnection::connect(orders_url).await?;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM orders GROUP BY status")
            .fetch_all(&mut conn)
            .await?;
    conn.close().await?;
    Ok(rows.into_iter().collect())
}

async fn pending(orders_url: &str) -> anyhow::Result<i64> {
    Ok(statuses(orders_url)
        .await?
        .get("PENDING")
        .copied()
        .unwrap_or(0))
}

/// Polls until no order is PENDING or `deadline` passes; how long it took, if it got there.
async fn drain(orders_url: &str, deadline: Duration) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    loop {
        if pending(orders_url).await? == 0 {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// B3: `rate` orders per second for `plan.overload`, placed and not followed.
pub async fn overload(
    plan: &Plan,
    api: &Api,
    customers: &[String],
    skus: &[String],
    orders_url: &str,
    rate: f64,
) -> anyhow::Result<Overload> {
    // Start from an empty backlog: the ramp's last step may have left sagas running.
    let _ = drain(orders_url, plan.drain_deadline).await?;
    let before = statuses(orders_url).await?;
    let tallies = Tallies::new()?;
    let run = load::open_loop(
        rate,
        plan.overload,
        checkouts(api, customers, skus, false, &tallies),
    )
    .await?;
    let pending_at_end = pending(orders_url).await?;
    let drained_after = drain(orders_url, plan.drain_deadline).await?;
    let after = statuses(orders_url).await?;
    let delta = |status: &str| {
        after.get(status).copied().unwrap_or(0) - before.get(status).copied().unwrap_or(0)
    };
    let overload = Overload {
        rate,
        window: plan.overload,
        accept: tallies.accept_run(&run),
        refused: tallies.refused()?,
        pending_at_end,
        drained_after,
        drain_deadline: plan.drain_deadline,
        confirmed: delta("CONFIRMED"),
        cancelled: delta("CANCELLED"),
    };
    println!(
        "bench: B3 {rate}/s: {} of {} accepted, {} PENDING when the load stopped, drained {}",
        overload.accept.ok,
        overload.accept.sent,
        overload.pending_at_end,
        overload
            .drained_after
            .map_or_else(|| "not yet".to_owned(), |d| format!("after {d:.1?}"))
    );
    Ok(overload)
}
