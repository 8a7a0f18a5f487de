//! Logs and traces.
//!
//! * **Logs** go through `tracing`. `LOG_FORMAT=json` (what the Kubernetes manifests set) writes
//!   one JSON object per line; anything else writes human-friendly lines, coloured only when
//!   stdout is a terminal and `NO_COLOR` is unset (a log file or a pipe gets plain text, not
//!   escape codes). `RUST_LOG` filters as usual (default `info`), with lapin's line per returned
//!   message left out unless `RUST_LOG` names lapin ([`QUIET_RETURNS`]). Request spans carry a
//!   `trace_id` field, so every line logged while handling a request names the trace it belongs
//!   to.
//! * **Central logs**: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, every line is also exported
//!   as an OpenTelemetry log record over OTLP/gRPC, stamped with the trace and span of the span
//!   it was written in. The collector forwards the records to the log store (Loki), where a
//!   trace id finds the lines of every service that took part in the request. The exporter's
//!   own transport (`opentelemetry*`, `tonic`, `h2`, `hyper`, `tower`) is left out of the export:
//!   a line about sending a batch would itself be sent, in an endless loop.
//! * **Traces** are OpenTelemetry spans bridged from `tracing` spans. Trace ids are always
//!   generated, so logs can be correlated even without a collector; spans are exported over
//!   OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! * **Metrics** are in [`crate::metrics`]; [`init`] installs the recorder as well.
//!
//! [`Telemetry::shutdown`] must run before the process exits, or the last spans and log
//! records are lost.

use std::io::IsTerminal as _;

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource, logs::SdkLoggerProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::filter_fn, layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

/// The filter without `RUST_LOG`.
const DEFAULT_FILTER: &str = "info";

/// Added to every filter that does not name lapin itself: lapin writes a WARN line for each
/// message the broker returns, with the whole message, payload bytes included. The relay
/// handles returns itself and logs what it decides at the level it deserves
/// (`messaging::relay`): most returns are events that no queue needs, an ordinary thing.
const QUIET_RETURNS: &str = "lapin::returned_messages=error";

/// `RUST_LOG` (else [`DEFAULT_FILTER`]) with [`QUIET_RETURNS`] unless it names lapin.
fn filter(rust_log: Option<&str>) -> EnvFilter {
    let directives = rust_log
        .filter(|directives| !directives.trim().is_empty())
        .unwrap_or(DEFAULT_FILTER);
    let directives = if directives.contains("lapin") {
        directives.to_owned()
    } else {
        format!("{directives},{QUIET_RETURNS}")
    };
    EnvFilter::try_new(&directives).unwrap_or_else(|error| {
        // Nothing logs yet: stderr is where a bad filter can be reported.
        eprintln!(
            "RUST_LOG={directives:?} is not a valid filter ({error}); using {DEFAULT_FILTER}"
        );
        EnvFilter::new(DEFAULT_FILTER)
    })
}

/// The targets whose events are not exported as log records: the export's own transport.
const NOT_EXPORTED: &[&str] = &["opentelemetry", "tonic", "h2", "hyper", "tower"];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` of every span, e.g. `users`.
    pub service_name: String,
    /// `LOG_FORMAT`: `json` or `pretty` (default).
    pub log_format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://otel-collector:4317`.
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// Reads the standard, unprefixed variables (they are shared conventions, not ours).
    pub fn from_env(service_name: &str) -> Self {
        let log_format = match std::env::var("LOG_FORMAT").as_deref() {
            Ok("json") => LogFormat::Json,
            _ => LogFormat::Pretty,
        };
        Self {
            service_name: service_name.to_owned(),
            log_format,
            otlp_endpoint: std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .filter(|endpoint| !endpoint.trim().is_empty()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the tracer and logger providers alive; call [`Telemetry::shutdown`] before exit to
/// flush what is still batched.
pub struct Telemetry {
    provider: SdkTracerProvider,
    /// `None` without an OTLP endpoint: the lines go to stdout only.
    logs: Option<SdkLoggerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        // The process is exiting; stderr is all that is left to report on.
        if let Err(err) = self.provider.shutdown() {
            eprintln!("failed to flush traces: {err}");
        }
        if let Some(logs) = self.logs
            && let Err(err) = logs.shutdown()
        {
            eprintln!("failed to flush log records: {err}");
        }
    }
}

/// Whether human-friendly lines are coloured: only for a person at a terminal who has not
/// asked for no colour (<https://no-color.org>).
fn colour(stdout_is_terminal: bool, no_color: Option<&str>) -> bool {
    stdout_is_terminal && no_color.is_none_or(str::is_empty)
}

/// Installs logging, tracing and the metrics recorder for this process.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let mut provider = SdkTracerProvider::builder().with_resource(resource.clone());
    let mut logs = None;
    if let Some(endpoint) = &config.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?;
        provider = provider.with_batch_exporter(exporter);
        let exporter = opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?;
        logs = Some(
            SdkLoggerProvider::builder()
                .with_resource(resource)
                .with_batch_exporter(exporter)
                .build(),
        );
    }
    let provider = provider.build();
    global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("ferroshop"));
    let exported_logs = logs.as_ref().map(|logs| {
        OpenTelemetryTracingBridge::new(logs).with_filter(filter_fn(|metadata| {
            !NOT_EXPORTED
                .iter()
                .any(|target| metadata.target().starts_with(target))
        }))
    });

    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(exported_logs);
    let ansi = colour(
        std::io::stdout().is_terminal(),
        std::env::var("NO_COLOR").ok().as_deref(),
    );
    match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true)
                    .with_ansi(false),
            )
            .try_init()?,
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().compact().with_ansi(ansi))
            .try_init()?,
    }

    crate::metrics::install();
    tracing::info!(
        service = %config.service_name,
        otlp = config.otlp_endpoint.as_deref().unwrap_or("off"),
        "telemetry initialised"
    );
    Ok(Telemetry { provider, logs })
}

#[cfg(test)]
mod tests {
    use super::{colour, filter};

    #[test]
    fn lapins_returned_message_warnings_are_left_out_unless_asked_for() {
        assert_eq!(
            filter(None).to_string(),
            "lapin::returned_messages=error,info"
        );
        assert_eq!(
            filter(Some("debug")).to_string(),
            "lapin::returned_messages=error,debug"
        );
        assert_eq!(
            filter(Some("info,lapin=debug")).to_string(),
            "lapin=debug,info"
        );
        assert_eq!(
            filter(Some("info,[")).to_string(),
            "info",
            "a bad filter: the default"
        );
    }

    #[test]
    fn lines_are_coloured_only_at_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("")), "an empty NO_COLOR does not count");
        assert!(!colour(true, Some("1")));
        assert!(
            !colour(false, None),
            "a pipe or a file gets no escape codes"
        );
    }
}
