//! Logs and traces.
//!
//! * **Logs** go through `tracing`. `LOG_FORMAT=json` (what the Kubernetes manifests set) writes
//!   one JSON object per line; anything else writes human-friendly lines. `RUST_LOG` filters as
//!   usual (default `info`). Request spans carry a `trace_id` field, so every line logged while
//!   handling a request names the trace it belongs to.
//! * **Traces** are OpenTelemetry spans bridged from `tracing` spans. Trace ids are always
//!   generated, so logs can be correlated even without a collector; spans are exported over
//!   OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! * **Metrics** are in [`crate::metrics`]; [`init`] installs the recorder as well.
//!
//! [`Telemetry::shutdown`] must run before the process exits, or the last spans are lost.

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

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
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the tracer provider alive; call [`Telemetry::shutdown`] before exit to flush spans.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            // The process is exiting; stderr is all that is left.
            eprintln!("failed to flush traces: {err}");
        }
    }
}

/// Installs logging, tracing and the metrics recorder for this process.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let mut provider = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("ferroshop"));

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    match config.log_format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true),
            )
            .try_init()?,
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().compact())
            .try_init()?,
    }

    crate::metrics::install();
    tracing::info!(
        service = %config.service_name,
        otlp = config.otlp_endpoint.as_deref().unwrap_or("off"),
        "telemetry initialised"
    );
    Ok(Telemetry { provider })
}
