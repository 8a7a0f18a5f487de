//! The results as Markdown tables, `docs/benchmarks.md`, and SVG plots drawn here.
//!
//! The plots are plain SVG text (a few rectangles, lines and labels), so the bench needs no
//! plotting library and the files diff like source: `benchmarks/latency.svg` (latency
//! percentiles of every scenario, log scale), `benchmarks/commits.svg` (Postgres commits per
//! checkout, per database) and `benchmarks/ramp.svg` (p99 against offered load).
//!
//! [`derive`] turns the measurements into Kubernetes settings, each by a rule stated next to
//! it in the page (the manifests cite the section):
//!
//! * memory request: the process's RSS at the end of B1, plus a quarter, rounded up to 16 MiB;
//! * memory limit: twice its high-water mark after B3's overload, rounded up to 32 MiB (and at
//!   least twice the request);
//! * CPU request: the CPU it used at B1's rate, in millicores, rounded up to 10 m;
//! * KEDA queue-length target of each consumer queue: two seconds of what that queue's one
//!   consumer handled per second at the saturation rate (a backlog a replica clears in two
//!   seconds is not worth another replica; more is);
//! * the gateway's HPA CPU target: the utilisation (of its CPU request) at which one replica
//!   carries 80 % of the saturation rate, so it scales out before the consumers behind it are
//!   past what they were measured to sustain.

use std::{fmt::Write as _, path::Path};

use super::{Results, load::Run, overload::Step};

/// The percentiles the tables and the latency plot show.
const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 100.0];

fn ms(run: &Run, percentile: f64) -> String {
    if run.ok == 0 {
        return "–".to_owned();
    }
    format!("{:.1}", run.percentile_ms(percentile))
}

/// The processes B5 and the derived settings are about, in the manifests' order.
const SERVICES: [&str; 5] = ["gateway", "users", "inventory", "orders", "payments"];

/// One service's derived Kubernetes resources.
pub struct Resources {
    pub service: &'static str,
    pub memory_request_mib: u64,
    pub memory_limit_mib: u64,
    pub cpu_request_millis: u64,
}

/// Everything [`derive`] computes.
pub struct Derived {
    pub resources: Vec<Resources>,
    /// (queue, messages/s its consumer handled at the saturation rate, queue-length target).
    pub queues: Vec<(String, f64, u64)>,
    /// The gateway's millicores at the saturation rate, and the HPA utilisation target.
    pub gateway_saturation_millis: f64,
    pub gateway_hpa_target: u64,
}

fn round_up(value: f64, step: u64) -> u64 {
    ((value / step as f64).ceil() as u64).max(1) * step
}

fn kib(memory: &[(String, u64, u64)], service: &str) -> Option<(u64, u64)> {
    memory
        .iter()
        .find(|(label, _, _)| label == service)
        .map(|(_, rss, hwm)| (*rss, *hwm))
}

/// The millicores `process` used over a window of `seconds`.
fn millis(cpu_ms: &[(String, f64)], process: &str, seconds: f64) -> f64 {
    cpu_ms
        .iter()
        .find(|(label, _)| label == process)
        .map_or(0.0, |(_, ms)| ms / seconds.max(1e-9))
}

/// The Kubernetes settings the measurements give, by the rules in the module docs.
pub fn derive(results: &Results) -> Derived {
    let b1 = &results.checkout;
    let window = b1.window.as_secs_f64();
    let resources = SERVICES
        .iter()
        .map(|service| {
            let (rss, hwm_b1) = kib(&b1.memory, service).unwrap_or_default();
            let hwm =
                kib(&results.memory_overload, service).map_or(hwm_b1, |(_, hwm)| hwm.max(hwm_b1));
            let memory_request_mib = round_up(rss as f64 / 1024.0 * 1.25, 16);
            let memory_limit_mib =
                round_up(hwm as f64 / 1024.0 * 2.0, 32).max(2 * memory_request_mib);
            Resources {
                service,
                memory_request_mib,
                memory_limit_mib,
                cpu_request_millis: round_up(millis(&b1.cpu_ms, service, window), 10),
            }
        })
        .collect::<Vec<_>>();
    let (queues, gateway_saturation_millis) = match results.ramp.saturation() {
        Some(step) => {
            let seconds = step.elapsed.as_secs_f64().max(1e-9);
            let queues = step
                .messages
                .iter()
                .filter_map(|(what, count)| {
                    let queue = what.strip_prefix("consumed from ")?;
                    let rate = count / seconds;
                    Some((queue.to_owned(), rate, round_up(rate * 2.0, 1)))
                })
                .collect();
            (queues, millis(&step.cpu_ms, "gateway", seconds))
        }
        None => (Vec::new(), 0.0),
    };
    let gateway_request = resources
        .iter()
        .find(|r| r.service == "gateway")
        .map_or(1, |r| r.cpu_request_millis.max(1));
    let gateway_hpa_target =
        (0.8 * gateway_saturation_millis / gateway_request as f64 * 100.0).round() as u64;
    Derived {
        resources,
        queues,
        gateway_saturation_millis,
        gateway_hpa_target,
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The results as Markdown: B1, its baseline, B2 and its baseline, the ramp, B3, B4, B5 and the
/// settings derived from them.
pub fn table(results: &Results) -> String {
    let mut out = String::new();
    let b1 = &results.checkout;
    let plan = &results.plan;
    let accepted = b1.accepted.max(1) as f64;
    let total_commits: i64 = b1.commits.iter().map(|(_, c, _)| c).sum();
    let total_rollbacks: i64 = b1.commits.iter().map(|(_, _, r)| r).sum();
    let per_checkout = total_commits as f64 / accepted;
    let window = b1.window.as_secs_f64();
    let _ = writeln!(out, "### B1 checkout\n");
    let _ = writeln!(
        out,
        "Offered: {} orders/s for {:.0} s, open loop ({} due), {} customers, Zipf SKUs \
         (s = 1), one or two lines per order.\n",
        plan.checkout_rate, window, b1.due, plan.customers
    );
    let _ = writeln!(out, "| measure | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| accepted (201) | {} = **{:.1} orders/s** |",
        b1.accepted,
        b1.accepted as f64 / window
    );
    let _ = writeln!(
        out,
        "| accept latency p50 / p99 / max (due → 201) | {} / **{}** / {} ms |",
        ms(&b1.accept, 50.0),
        ms(&b1.accept, 99.0),
        ms(&b1.accept, 100.0)
    );
    let _ = writeln!(
        out,
        "| saga complete p50 / p99 / max (due → terminal, polled every 50 ms) | {} / **{}** / {} ms |",
        ms(&b1.saga, 50.0),
        ms(&b1.saga, 99.0),
        ms(&b1.saga, 100.0)
    );
    let _ = writeln!(
        out,
        "| terminal status | {} CONFIRMED, {} CANCELLED; failures: {} |",
        b1.confirmed,
        b1.cancelled,
        b1.saga.failure_summary()
    );
    let _ = writeln!(
        out,
        "| Postgres commits per checkout, all databases | **{per_checkout:.1}** ({total_commits} \
         commits, {total_rollbacks} rollbacks in the window) |"
    );
    for (service, commits, rollbacks) in &b1.commits {
        let _ = writeln!(
            out,
            "| … {service} database | {:.1} commits, {:.2} rollbacks |",
            *commits as f64 / accepted,
            *rollbacks as f64 / accepted
        );
    }
    let total_cpu: f64 = b1.cpu_ms.iter().map(|(_, ms)| ms).sum();
    let _ = writeln!(
        out,
        "| CPU-ms per checkout, all processes below | **{:.1}** |",
        total_cpu / accepted
    );
    for (process, cpu) in &b1.cpu_ms {
        let _ = writeln!(
            out,
            "| … {process} | {:.2} ms ({:.0} % of one core) |",
            cpu / accepted,
            cpu / window / 10.0
        );
    }
    let ceiling = results.pgbench_tps / per_checkout.max(1e-9);
    let _ = writeln!(
        out,
        "| baseline: pgbench, 2 inserts per transaction, {} clients | **{:.0} commits/s** |",
        plan.pgbench_clients, results.pgbench_tps
    );
    let _ = writeln!(
        out,
        "| checkouts/s if commits were the only cost (pgbench ÷ commits per checkout) | {ceiling:.0}; \
         the accepted rate is **{:.3}** of it |",
        (b1.accepted as f64 / window) / ceiling.max(1e-9)
    );
    let _ = writeln!(
        out,
        "\nBroker messages per checkout (the services' own counters over the same window; a \
         delivery that was retried counts once per attempt):\n"
    );
    let _ = writeln!(out, "| messages | per checkout |\n|---|---|");
    let total_published: f64 = b1
        .messages
        .iter()
        .filter(|(what, _)| what.starts_with("published"))
        .map(|(_, count)| count)
        .sum();
    let _ = writeln!(
        out,
        "| published, all outbox relays | **{:.2}** |",
        total_published / accepted
    );
    for (what, count) in &b1.messages {
        let _ = writeln!(out, "| … {what} | {:.2} |", count / accepted);
    }
    let _ = writeln!(out, "\n### B2 catalog page\n");
    let bytes = results.catalog.first().map_or(0, |c| c.body_bytes);
    let _ = writeln!(
        out,
        "`GET /api/v1/products?page_size=20` ({bytes} bytes). Throughput: {} connections, closed \
         loop, {:.0} s. Latency: open loop at {}/s, {:.0} s.\n",
        plan.connections,
        plan.catalog.as_secs_f64(),
        plan.catalog_rate,
        plan.catalog.as_secs_f64()
    );
    let nginx_rps = results
        .catalog
        .iter()
        .find(|c| c.name.starts_with("nginx"))
        .map_or(0.0, |c| c.saturated.ok_per_second());
    let _ = writeln!(
        out,
        "| target | rps (saturated) | ratio to nginx | p50 / p99 at {}/s (ms) | p99 saturated (ms) | failures |\n|---|---|---|---|---|---|",
        plan.catalog_rate
    );
    for catalog in &results.catalog {
        let rps = catalog.saturated.ok_per_second();
        let _ = writeln!(
            out,
            "| {} | {rps:.0} | **{:.2}** | {} / {} | {} | {} |",
            catalog.name,
            rps / nginx_rps.max(1e-9),
            ms(&catalog.fixed, 50.0),
            ms(&catalog.fixed, 99.0),
            ms(&catalog.saturated, 99.0),
            catalog.fixed.failure_summary()
        );
    }
    ramp_table(&mut out, results);
    overload_table(&mut out, results);
    limiter_table(&mut out, results);
    memory_table(&mut out, results);
    out
}

fn ramp_table(out: &mut String, results: &Results) {
    let ramp = &results.ramp;
    let _ = writeln!(out, "\n### Ramp: where checkout saturates\n");
    let _ = writeln!(
        out,
        "B1's checkouts, {:.0} s per step. A step holds when ≥ 99 % of its orders are accepted and \
         followed to a terminal status, accept p99 ≤ {} ms and saga p99 ≤ {} ms; the ramp stops at \
         the first step that does not.\n",
        results.plan.ramp_duration.as_secs_f64(),
        ramp.accept_objective_ms,
        ramp.saga_objective_ms
    );
    let _ = writeln!(
        out,
        "| offered orders/s | accepted/s | accept p50 / p99 (ms) | saga p50 / p99 (ms) | CPU-ms per checkout | failures | holds |\n|---|---|---|---|---|---|---|"
    );
    for step in &ramp.steps {
        let cpu: f64 = step.cpu_ms.iter().map(|(_, ms)| ms).sum();
        let _ = writeln!(
            out,
            "| {} | {:.1} | {} / {} | {} / {} | {:.1} | {} | {} |",
            step.rate,
            step.accept.ok as f64 / step.window.as_secs_f64().max(1e-9),
            ms(&step.accept, 50.0),
            ms(&step.accept, 99.0),
            ms(&step.saga, 50.0),
            ms(&step.saga, 99.0),
            cpu / step.accept.ok.max(1) as f64,
            step.saga.failure_summary(),
            if step.held { "yes" } else { "**no**" }
        );
    }
    match (ramp.saturation(), ramp.steps.first()) {
        (Some(step), Some(first)) => {
            let _ = writeln!(
                out,
                "\n**Saturation: {} orders/s** (the last step that held); accept p99 there is \
                 {:.2}× the first step's.",
                step.rate,
                step.accept.percentile_ms(99.0) / first.accept.percentile_ms(99.0).max(1e-9)
            );
            if ramp.steps.last().is_some_and(|last| last.held) {
                let _ = writeln!(
                    out,
                    "Every step held: the saturation rate is at least this (raise `--ramp-steps`)."
                );
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "\n**No step held**: the first rate is already past saturation."
            );
        }
    }
}

fn overload_table(out: &mut String, results: &Results) {
    let b3 = &results.overload;
    let due = b3.accept.sent.max(1) as f64;
    let shed_429 = b3.count("429");
    let shed_503 = b3.count("503");
    let other: u64 = b3
        .accept
        .failures
        .iter()
        .filter(|(what, _)| !what.contains("429") && !what.contains("503"))
        .map(|(_, count)| count)
        .sum();
    let _ = writeln!(out, "\n### B3 overload: twice the saturation rate\n");
    let _ = writeln!(
        out,
        "{} orders/s for {:.0} s ({} due), placed and not followed.\n",
        b3.rate,
        b3.window.as_secs_f64(),
        b3.accept.sent
    );
    let _ = writeln!(out, "| measure | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| accepted (201) | {} = {:.1} % |",
        b3.accept.ok,
        100.0 * b3.accept.ok as f64 / due
    );
    let _ = writeln!(
        out,
        "| shed: 429 / 503 | {shed_429} / {shed_503} = **{:.1} %** |",
        100.0 * (shed_429 + shed_503) as f64 / due
    );
    let refusal = |q: f64| b3.refused.value_at_quantile(q) as f64 / 1000.0;
    let _ = writeln!(
        out,
        "| refusal latency p50 / p99 (due → 429/503) | {} |",
        if b3.refused.is_empty() {
            "– (nothing was refused)".to_owned()
        } else {
            format!("{:.1} / {:.1} ms", refusal(0.5), refusal(0.99))
        }
    );
    let _ = writeln!(
        out,
        "| other answers | {other} ({}) |",
        b3.accept.failure_summary()
    );
    let _ = writeln!(
        out,
        "| accept p50 / p99 / max (due → 201) | {} / **{}** / {} ms |",
        ms(&b3.accept, 50.0),
        ms(&b3.accept, 99.0),
        ms(&b3.accept, 100.0)
    );
    if let Some(step) = results.ramp.saturation() {
        let _ = writeln!(
            out,
            "| accept p99 ÷ accept p99 at saturation ({} orders/s) | **{:.1}** |",
            step.rate,
            b3.accept.percentile_ms(99.0) / step.accept.percentile_ms(99.0).max(1e-9)
        );
    }
    let _ = writeln!(
        out,
        "| PENDING orders when the last request was answered | **{}** |",
        b3.pending_at_end
    );
    let _ = writeln!(
        out,
        "| time until none was PENDING | {} |",
        b3.drained_after.map_or_else(
            || format!("still some after {:.0} s", b3.drain_deadline.as_secs_f64()),
            |d| format!("{:.1} s", d.as_secs_f64())
        )
    );
    let _ = writeln!(
        out,
        "| outcome of B3's orders | {} CONFIRMED, {} CANCELLED |",
        b3.confirmed, b3.cancelled
    );
    if shed_429 + shed_503 == 0 {
        let _ = writeln!(
            out,
            "\nNothing was shed: PlaceOrder has no admission control yet, so every order beyond \
             what the sagas sustain is accepted and waits in the backlog."
        );
    }
}

fn limiter_table(out: &mut String, results: &Results) {
    let b4 = &results.limiter;
    let configured = b4.configured_per_second();
    let _ = writeln!(out, "\n### B4 rate-limiter accuracy under load\n");
    let _ = writeln!(
        out,
        "The gateway restarted with {} requests/minute and a burst of {} per user; one customer \
         sends `GET /api/v1/me` at {:.1}/s (3× the limit), counted from {:.0} s after the start \
         for {:.0} s, while the other customers run checkouts at {}/s ({} of {} accepted).\n",
        b4.per_minute,
        b4.burst,
        b4.offered,
        b4.settle.as_secs_f64(),
        b4.window.as_secs_f64(),
        b4.background_rate,
        b4.background_accepted,
        b4.background_due
    );
    let _ = writeln!(out, "| measure | value |\n|---|---|");
    let _ = writeln!(out, "| configured | {configured:.2} requests/s |");
    let _ = writeln!(
        out,
        "| allowed (200) | {} = **{:.2} requests/s** |",
        b4.allowed,
        b4.allowed_per_second()
    );
    let ratio = b4.allowed_per_second() / configured.max(1e-9);
    let _ = writeln!(
        out,
        "| allowed ÷ configured | **{ratio:.3}** ({}) |",
        if (0.9..=1.1).contains(&ratio) {
            "within ±10 %"
        } else {
            "outside ±10 %"
        }
    );
    let _ = writeln!(
        out,
        "| limited (429) / other answers | {} / {} |",
        b4.limited, b4.other
    );
}

fn memory_table(out: &mut String, results: &Results) {
    let b1 = &results.checkout;
    let _ = writeln!(out, "\n### B5 memory\n");
    let _ = writeln!(
        out,
        "`VmRSS` (resident) and `VmHWM` (its high-water mark) of each service process, MiB: idle \
         once the system is up, at the end of B1's window ({}/s), and after B3's overload has \
         drained. The users service's memory follows password hashing (the customers sign up \
         and sign in before B1), not checkouts.\n",
        results.plan.checkout_rate
    );
    let _ = writeln!(
        out,
        "| process | idle RSS | B1 RSS | B1 HWM | after B3 RSS / HWM | B1 RSS ÷ idle |\n|---|---|---|---|---|---|"
    );
    for service in SERVICES {
        let idle = kib(&results.memory_idle, service).unwrap_or_default();
        let under = kib(&b1.memory, service).unwrap_or_default();
        let after = kib(&results.memory_overload, service).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {service} | {} | {} | {} | {} / {} | {:.2} |",
            mib(idle.0),
            mib(under.0),
            mib(under.1),
            mib(after.0),
            mib(after.1),
            under.0 as f64 / idle.0.max(1) as f64
        );
    }
    let derived = derive(results);
    let _ = writeln!(out, "\n### Derived Kubernetes settings\n");
    let _ = writeln!(
        out,
        "The rules (`xtask/src/bench/report.rs`): memory request = B1 RSS × 1.25, rounded up to \
         16 MiB; memory limit = 2 × the high-water mark after B3, rounded up to 32 MiB and at least \
         twice the request; CPU request = millicores used at B1's rate, rounded up to 10 m. The \
         manifests in `k8s/base/*/deployment.yaml` carry these values.\n"
    );
    let _ = writeln!(
        out,
        "| service | memory request | memory limit | CPU request |\n|---|---|---|---|"
    );
    for r in &derived.resources {
        let _ = writeln!(
            out,
            "| {} | {}Mi | {}Mi | {}m |",
            r.service, r.memory_request_mib, r.memory_limit_mib, r.cpu_request_millis
        );
    }
    let _ = writeln!(
        out,
        "\nAutoscaling: the KEDA queue-length target of a queue is two seconds of what its one \
         consumer handled at the saturation rate (`k8s/base/*/scaledobject.yaml`); the gateway's \
         HPA target is the CPU utilisation at which one replica carries 80 % of the saturation \
         rate ({:.0} m measured there; `k8s/base/gateway/hpa.yaml`).\n",
        derived.gateway_saturation_millis
    );
    let _ = writeln!(
        out,
        "| queue | consumed/s at saturation | queue-length target |\n|---|---|---|"
    );
    for (queue, rate, target) in &derived.queues {
        let _ = writeln!(out, "| {queue} | {rate:.1} | {target} |");
    }
    let _ = writeln!(
        out,
        "| gateway HPA | CPU utilisation target | **{} %** |",
        derived.gateway_hpa_target
    );
}

/// Writes `docs/benchmarks.md` and `docs/benchmarks/*.svg`.
pub fn write(docs: &Path, results: &Results, command: &str) -> anyhow::Result<()> {
    let plots = docs.join("benchmarks");
    std::fs::create_dir_all(&plots)?;
    std::fs::write(plots.join("latency.svg"), latency_svg(results))?;
    std::fs::write(plots.join("commits.svg"), commits_svg(results))?;
    std::fs::write(plots.join("ramp.svg"), ramp_svg(results))?;
    let mut page = String::new();
    let _ = writeln!(page, "# Benchmarks\n");
    let _ = writeln!(
        page,
        "What a checkout and a catalog page cost on one machine, measured by `cargo xtask bench` \
         (`xtask/src/bench.rs`), each next to a baseline measured in the same run. Everything runs on \
         the same box: release binaries, Postgres, Redis, RabbitMQ and the load client. Absolute \
         figures move from run to run; the ratios within one run are what to compare.\n"
    );
    if results.smoke {
        let _ = writeln!(
            page,
            "**This page came from a smoke run** (seconds per scenario, tiny rates): its numbers \
             only show the harness works.\n"
        );
    }
    let _ = writeln!(page, "- Machine: {}", super::probes::machine());
    let _ = writeln!(
        page,
        "- Load average when the run started: {} (anything well above 0 means the machine was \
         shared with other work during the run, which moves absolute figures but much less the \
         ratios)",
        results.load_average
    );
    let _ = writeln!(page, "- Command: `{command}`");
    let _ = writeln!(
        page,
        "- Method: open-loop load (constant arrival rate; every latency is measured from the \
         instant the request was due, so a stall cannot hide the queue behind it), HDR histograms, \
         commits from `pg_stat_database` of the run's own four databases over the measured window, \
         CPU from `/proc/<pid>/stat` of each service and of the Postgres backends serving those \
         databases (RabbitMQ and Redis are shared servers and are not counted).\n"
    );
    let _ = writeln!(page, "## Results\n");
    page.push_str(&table(results));
    let _ = writeln!(page, "\n## Plots\n");
    let _ = writeln!(
        page,
        "![Latency percentiles of each scenario](benchmarks/latency.svg)\n"
    );
    let _ = writeln!(
        page,
        "![Postgres commits per checkout, by database](benchmarks/commits.svg)\n"
    );
    let _ = writeln!(
        page,
        "![Checkout p99 against offered load (the ramp)](benchmarks/ramp.svg)\n"
    );
    let _ = writeln!(page, "## Reading it\n");
    let _ = writeln!(
        page,
        "- A checkout's commits are every transaction its four databases commit per accepted \
         order, background work included (the saga runner's polling, the outbox relays, the \
         reservation sweeper): that is what the order costs the database.\n\
         - The pgbench line is what this Postgres commits per second with nothing else in the way; \
         divided by the commits per checkout it bounds the checkout rate a single primary could \
         take if commits were the only cost.\n\
         - The catalog rows show what the Redis cache buys (on vs off) and how far the edge is \
         from serving the same bytes from a file (nginx, one worker). The load client is in-process \
         reqwest on the same cores, so the nginx figure is a floor of what nginx can do.\n\
         - The ramp's saturation rate is where the checkout's p99 objectives stop holding on this \
         box; B3 offers twice that. The derived Kubernetes settings and `docs/capacity.md` are \
         built on these figures.\n\
         - Not measured: RabbitMQ's and Redis's own CPU and memory (shared servers on this \
         machine), network bytes.\n\
         - What changed these numbers, each change measured before and after in runs of this \
         bench on one machine: [benchmarks/changes.md](benchmarks/changes.md) (kept by hand; \
         this page is regenerated)."
    );
    std::fs::write(docs.join("benchmarks.md"), page)?;
    Ok(())
}

/// The opening of a plot: the `<svg>` element, a white background and the title at `title_x`.
fn svg_start(width: f64, height: f64, title_x: f64, title: &str) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{width}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{title_x}" y="22" font-size="14" font-weight="bold">{title}</text>"#
    );
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLOURS: [&str; 5] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];

/// Latency percentiles per scenario: one line each, percentiles along x, log-scaled ms up y.
pub fn latency_svg(results: &Results) -> String {
    let mut series: Vec<(String, &Run)> = vec![
        ("B1 accept (due → 201)".to_owned(), &results.checkout.accept),
        ("B1 saga complete".to_owned(), &results.checkout.saga),
    ];
    for catalog in &results.catalog {
        series.push((
            format!("B2 {} at {}/s", catalog.name, results.plan.catalog_rate),
            &catalog.fixed,
        ));
    }
    let series: Vec<_> = series.into_iter().filter(|(_, run)| run.ok > 0).collect();
    let (width, height, left, right, top, bottom) = (840.0, 420.0, 70.0, 370.0, 40.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, run)| PERCENTILES.iter().map(|p| run.percentile_ms(*p).max(0.01)))
        .collect();
    let low = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(0.01)
        .log10()
        .floor();
    let high = values
        .iter()
        .copied()
        .fold(0.01_f64, f64::max)
        .log10()
        .ceil()
        .max(low + 1.0);
    let y = |ms: f64| top + plot_h * (1.0 - (ms.max(0.01).log10() - low) / (high - low));
    let x = |i: usize| left + plot_w * i as f64 / (PERCENTILES.len() - 1) as f64;
    let mut svg = svg_start(width, height, left, "Latency percentiles (ms, log scale)");
    let mut decade = low;
    while decade <= high {
        let ms = 10_f64.powf(decade);
        let yy = y(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            if ms < 1.0 {
                format!("{ms}")
            } else {
                format!("{ms:.0}")
            }
        );
        decade += 1.0;
    }
    for (i, p) in PERCENTILES.iter().enumerate() {
        let label = if *p >= 100.0 {
            "max".to_owned()
        } else {
            format!("p{p}")
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1:.1}" stroke="#eee"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{label}</text>"##,
            x(i),
            top + plot_h,
            top + plot_h + 18.0
        );
    }
    for (index, (name, run)) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points: Vec<String> = PERCENTILES
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(run.percentile_ms(*p))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            points.join(" ")
        );
        for point in &points {
            if let Some((px, py)) = point.split_once(',') {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{px}" cy="{py}" r="3" fill="{colour}"/>"#
                );
            }
        }
        let ly = top + 10.0 + 20.0 * index as f64;
        let lx = left + plot_w + 16.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            ly - 10.0,
            lx + 18.0,
            ly,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The ramp: accept and saga p99 (log-scaled ms up y) against offered orders/s (along x), with
/// the objectives as dashed lines.
pub fn ramp_svg(results: &Results) -> String {
    let ramp = &results.ramp;
    let (width, height, left, right, top, bottom) = (840.0, 420.0, 70.0, 230.0, 40.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    type Pick = fn(&Step) -> &Run;
    let lines: [(&str, Pick, f64); 2] = [
        ("accept p99", |s| &s.accept, ramp.accept_objective_ms),
        ("saga p99", |s| &s.saga, ramp.saga_objective_ms),
    ];
    let values: Vec<f64> = ramp
        .steps
        .iter()
        .flat_map(|step| {
            lines
                .iter()
                .map(|(_, pick, _)| pick(step).percentile_ms(99.0))
        })
        .chain(lines.iter().map(|(_, _, objective)| *objective))
        .map(|v| v.max(0.1))
        .collect();
    let low = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .log10()
        .floor();
    let high = values
        .iter()
        .copied()
        .fold(0.1_f64, f64::max)
        .log10()
        .ceil()
        .max(low + 1.0);
    let max_rate = ramp.steps.iter().map(|s| s.rate).fold(1.0_f64, f64::max);
    let y = |ms: f64| top + plot_h * (1.0 - (ms.max(0.1).log10() - low) / (high - low));
    let x = |rate: f64| left + plot_w * rate / max_rate;
    let mut svg = svg_start(
        width,
        height,
        left,
        "Checkout p99 (ms, log scale) against offered orders/s",
    );
    let mut decade = low;
    while decade <= high {
        let ms = 10_f64.powf(decade);
        let yy = y(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            if ms < 1.0 {
                format!("{ms}")
            } else {
                format!("{ms:.0}")
            }
        );
        decade += 1.0;
    }
    for step in &ramp.steps {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            x(step.rate),
            top + plot_h + 18.0,
            step.rate
        );
    }
    for (index, (name, pick, objective)) in lines.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points: Vec<String> = ramp
            .steps
            .iter()
            .filter(|step| pick(step).ok > 0)
            .map(|step| {
                format!(
                    "{:.1},{:.1}",
                    x(step.rate),
                    y(pick(step).percentile_ms(99.0))
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            points.join(" ")
        );
        let oy = y(*objective);
        let _ = writeln!(
            svg,
            r#"<line x1="{left}" y1="{oy:.1}" x2="{:.1}" y2="{oy:.1}" stroke="{colour}" stroke-dasharray="6,4"/>"#,
            left + plot_w
        );
        let ly = top + 10.0 + 20.0 * index as f64;
        let lx = left + plot_w + 16.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{:.1}">{} (dashed: objective {objective} ms)</text>"#,
            ly - 10.0,
            lx + 18.0,
            ly,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Commits per checkout of each database, as horizontal bars.
pub fn commits_svg(results: &Results) -> String {
    let b1 = &results.checkout;
    let accepted = b1.accepted.max(1) as f64;
    let bars: Vec<(String, f64)> = b1
        .commits
        .iter()
        .map(|(service, commits, _)| (service.clone(), *commits as f64 / accepted))
        .collect();
    let total: f64 = bars.iter().map(|(_, v)| v).sum();
    let max = bars.iter().map(|(_, v)| *v).fold(1.0_f64, f64::max);
    let (width, left, bar_h, gap, top) = (640.0, 110.0, 26.0, 12.0, 44.0);
    let plot_w = width - left - 90.0;
    let height = top + (bar_h + gap) * bars.len() as f64 + 20.0;
    let mut svg = svg_start(
        width,
        height,
        10.0,
        &format!("Postgres commits per checkout, by database (total {total:.1})"),
    );
    for (i, (name, value)) in bars.iter().enumerate() {
        let y = top + (bar_h + gap) * i as f64;
        let w = plot_w * value / max;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{left}" y="{y:.1}" width="{w:.1}" height="{bar_h}" fill="{}"/><text x="{:.1}" y="{:.1}">{value:.1}</text>"#,
            left - 8.0,
            y + bar_h * 0.65,
            escape(name),
            COLOURS[i % COLOURS.len()],
            left + w + 6.0,
            y + bar_h * 0.65
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::{
        Catalog, Checkout, Plan, limiter::Limiter, load, overload::Overload, overload::Ramp,
        overload::Step,
    };

    fn run(values_ms: &[u64]) -> Run {
        let mut latency = load::histogram().unwrap();
        for ms in values_ms {
            latency.record(ms * 1000).unwrap();
        }
        Run {
            sent: values_ms.len() as u64,
            ok: values_ms.len() as u64,
            failures: Vec::new(),
            latency,
            elapsed: Duration::from_secs(1),
        }
    }

    fn results() -> Results {
        let catalog = |name| Catalog {
            name,
            body_bytes: 5000,
            fixed: run(&[1, 2, 3]),
            saturated: run(&[2, 4, 8]),
        };
        Results {
            plan: Plan {
                customers: 2,
                checkout_rate: 10.0,
                warmup: Duration::from_secs(1),
                checkout: Duration::from_secs(2),
                catalog_rate: 100.0,
                catalog: Duration::from_secs(1),
                connections: 4,
                pgbench_clients: 2,
                pgbench: Duration::from_secs(1),
                ramp_start: 10.0,
                ramp_step: 10.0,
                ramp_steps: 3,
                ramp_duration: Duration::from_secs(1),
                accept_objective_ms: 100.0,
                saga_objective_ms: 1000.0,
                overload: Duration::from_secs(1),
                drain_deadline: Duration::from_secs(1),
                limit_per_minute: 1200,
                limit_burst: 20,
                limiter_settle: Duration::from_secs(1),
                limiter: Duration::from_secs(10),
            },
            load_average: "0.50 0.40 0.30".to_owned(),
            smoke: true,
            checkout: Checkout {
                due: 20,
                accepted: 20,
                window: Duration::from_secs(2),
                accept: run(&[10, 20, 30]),
                saga: run(&[100, 200, 300]),
                confirmed: 19,
                cancelled: 1,
                commits: vec![("orders".to_owned(), 560, 3), ("users".to_owned(), 0, 0)],
                cpu_ms: vec![("orders".to_owned(), 400.0), ("gateway".to_owned(), 100.0)],
                messages: vec![
                    ("published by orders".to_owned(), 40.0),
                    ("consumed from orders.fulfilment".to_owned(), 60.0),
                ],
                memory: vec![("orders".to_owned(), 40 * 1024, 50 * 1024)],
            },
            pgbench_tps: 9600.0,
            catalog: vec![
                catalog("gateway, Redis cache on"),
                catalog("nginx, same bytes from a file"),
            ],
            ramp: Ramp {
                steps: vec![step(10.0, true), step(20.0, true), step(30.0, false)],
                accept_objective_ms: 100.0,
                saga_objective_ms: 1000.0,
            },
            overload: Overload {
                rate: 40.0,
                window: Duration::from_secs(1),
                accept: run(&[40, 50, 60]),
                refused: load::histogram().unwrap(),
                pending_at_end: 7,
                drained_after: Some(Duration::from_millis(1500)),
                drain_deadline: Duration::from_secs(1),
                confirmed: 3,
                cancelled: 0,
            },
            limiter: Limiter {
                per_minute: 1200,
                burst: 20,
                offered: 60.0,
                settle: Duration::from_secs(1),
                window: Duration::from_secs(10),
                allowed: 205,
                limited: 395,
                other: 0,
                background_rate: 10.0,
                background_due: 110,
                background_accepted: 110,
            },
            memory_idle: vec![("orders".to_owned(), 20 * 1024, 20 * 1024)],
            memory_overload: vec![("orders".to_owned(), 60 * 1024, 70 * 1024)],
        }
    }

    /// A ramp step of one second at `rate` whose `rate` checkouts each cost 10 CPU-ms in the
    /// gateway and consumed one message each from `orders.fulfilment`.
    fn step(rate: f64, held: bool) -> Step {
        Step {
            rate,
            accept: run(&[10, 20]),
            saga: run(&[100, 200]),
            elapsed: Duration::from_secs(1),
            window: Duration::from_secs(1),
            cpu_ms: vec![("gateway".to_owned(), 10.0 * rate)],
            messages: vec![("consumed from orders.fulfilment".to_owned(), rate)],
            held,
        }
    }

    #[test]
    fn the_table_divides_by_accepted_checkouts_and_compares_with_the_baselines() {
        let table = table(&results());
        assert!(
            table.contains("**28.0** (560 commits, 3 rollbacks"),
            "{table}"
        );
        assert!(
            table.contains("| … orders database | 28.0 commits, 0.15 rollbacks |"),
            "{table}"
        );
        assert!(
            table.contains("| … orders | 20.00 ms (20 % of one core) |"),
            "{table}"
        );
        assert!(table.contains("**9600 commits/s**"), "{table}");
        // Both catalog targets saturate at the same rate here: a ratio of 1.
        assert!(
            table.contains("| gateway, Redis cache on | 3 | **1.00** |"),
            "{table}"
        );
        assert!(
            table.contains("| … published by orders | 2.00 |"),
            "{table}"
        );
        assert!(table.contains("**Saturation: 20 orders/s**"), "{table}");
        assert!(table.contains("Nothing was shed"), "{table}");
        // 205 allowed in 10 s against 1200/minute = 20/s.
        assert!(table.contains("**20.50 requests/s**"), "{table}");
        assert!(table.contains("**1.025** (within ±10 %)"), "{table}");
        assert!(
            table.contains("| orders | 20.0 | 40.0 | 50.0 | 60.0 / 70.0 | 2.00 |"),
            "{table}"
        );
    }

    #[test]
    fn the_kubernetes_settings_follow_their_rules() {
        let derived = derive(&results());
        let orders = derived
            .resources
            .iter()
            .find(|r| r.service == "orders")
            .unwrap();
        // 40 MiB × 1.25 = 50 → 64; 2 × 70 MiB = 140 → 160; 400 CPU-ms in 2 s = 200 m.
        assert_eq!(
            (
                orders.memory_request_mib,
                orders.memory_limit_mib,
                orders.cpu_request_millis
            ),
            (64, 160, 200)
        );
        // At saturation (20/s) the queue's consumer handled 20/s: two seconds of it is 40.
        assert_eq!(
            derived.queues,
            vec![("orders.fulfilment".to_owned(), 20.0, 40)]
        );
        // The gateway: 50 m at B1 (10/s), 200 m at saturation; 80 % of 200 m is 320 % of 50 m.
        assert_eq!(derived.gateway_saturation_millis, 200.0);
        assert_eq!(derived.gateway_hpa_target, 320);
    }

    #[test]
    fn the_plots_are_svg_with_one_line_per_scenario_and_one_bar_per_database() {
        let results = results();
        let latency = latency_svg(&results);
        assert!(latency.starts_with("<svg"), "{latency}");
        assert!(latency.trim_end().ends_with("</svg>"));
        assert_eq!(latency.matches("<polyline").count(), 4, "{latency}");
        let commits = commits_svg(&results);
        assert_eq!(commits.matches("<rect x=").count(), 2, "{commits}");
        assert!(
            commits.contains(">orders<") && commits.contains("total 28.0"),
            "{commits}"
        );
        let ramp = ramp_svg(&results);
        assert_eq!(ramp.matches("<polyline").count(), 2, "{ramp}");
        assert!(ramp.contains("objective 100 ms"), "{ramp}");
    }
}
