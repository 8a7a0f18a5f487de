//! Metrics: one Prometheus recorder behind the `metrics` facade.
//!
//! Code anywhere records with `metrics::counter!`/`histogram!`/`gauge!`; the admin port renders
//! everything at `/metrics` in the Prometheus text format. The recorder is process-global, so
//! [`install`] is idempotent: several services built in one test process share it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds) for every `*_seconds` histogram: from a cache hit to a slow saga.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder on first use and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = match builder
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            {
                Ok(with_buckets) => with_buckets,
                // Only fails for an empty bucket list, which LATENCY_BUCKETS is not.
                Err(err) => {
                    tracing::warn!(error = %err, "histogram buckets rejected; using summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// Renders every metric in the Prometheus text exposition format.
pub fn render() -> String {
    let handle = install();
    // Histograms buffer samples until upkeep; a scrape is a natural moment to fold them.
    handle.run_upkeep();
    handle.render()
}
