//! The results as a Markdown table, `docs/benchmarks.md`, and SVG plots drawn here.
//!
//! The plots are plain SVG text (a few rectangles, lines and labels), so the bench needs no
//! plotting library and the files diff like source: `benchmarks/latency.svg` (latency
//! percentiles of every scenario, log scale) and `benchmarks/commits.svg` (Postgres commits per
//! checkout, per database).

use std::{fmt::Write as _, path::Path};

use super::{Results, load::Run};

/// The percentiles the tables and the latency plot show.
const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 100.0];

fn ms(run: &Run, percentile: f64) -> String {
    if run.ok == 0 {
        return "–".to_owned();
    }
    format!("{:.1}", run.percentile_ms(percentile))
}

/// The results as Markdown: B1, its baseline, B2 and its baseline.
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
    out
}

/// Writes `docs/benchmarks.md` and `docs/benchmarks/*.svg`.
pub fn write(docs: &Path, results: &Results, command: &str) -> anyhow::Result<()> {
    let plots = docs.join("benchmarks");
    std::fs::create_dir_all(&plots)?;
    std::fs::write(plots.join("latency.svg"), latency_svg(results))?;
    std::fs::write(plots.join("commits.svg"), commits_svg(results))?;
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
         - Not yet measured: broker messages per checkout, B3 overload, B4 rate-limiter accuracy, \
         B5 memory, latency against offered load (a ramp).\n\
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
    use crate::bench::{Catalog, Checkout, Plan, load};

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
            },
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
                cpu_ms: vec![("orders".to_owned(), 400.0)],
            },
            pgbench_tps: 9600.0,
            catalog: vec![
                catalog("gateway, Redis cache on"),
                catalog("nginx, same bytes from a file"),
            ],
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
    }
}
