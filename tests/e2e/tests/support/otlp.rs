//! A tiny OpenTelemetry collector for tests: an OTLP/gRPC `TraceService` and `LogsService` on a
//! free loopback port that keep every span and log record they are sent, with the
//! `service.name` of the process that sent it. Tests point `OTEL_EXPORTER_OTLP_ENDPOINT` at it
//! and assert on what arrived, instead of reading a tracing UI or a log store by eye.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::{
            ExportLogsServiceRequest, ExportLogsServiceResponse,
            logs_service_server::{LogsService, LogsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
};
use platform::Shutdown;
use tokio_stream::wrappers::TcpListenerStream;

/// One received span, flattened to what tests look at.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `service.name` of the exporting process's resource.
    pub service: String,
    pub name: String,
    /// OTLP `SpanKind`: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i32,
    /// Hex, as in `traceparent`.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// The trace ids of the spans this one links to (hex).
    pub linked_traces: Vec<String>,
}

pub const SERVER: i32 = 2;
pub const CONSUMER: i32 = 5;

/// One received log record, flattened to what tests look at.
#[derive(Debug, Clone)]
pub struct ReceivedLog {
    /// `service.name` of the exporting process's resource.
    pub service: String,
    /// `INFO`, `WARN`, …
    pub severity: String,
    /// The message.
    pub body: String,
    /// Hex, as in `traceparent`; empty for a line written outside any span.
    pub trace_id: String,
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    logs: Arc<Mutex<Vec<ReceivedLog>>>,
}

/// The `service.name` attribute of a resource.
fn service_name(resource: Option<&Resource>) -> String {
    resource
        .iter()
        .flat_map(|resource| &resource.attributes)
        .find(|attribute| attribute.key == "service.name")
        .and_then(|attribute: &KeyValue| string(attribute.value.as_ref()?))
        .unwrap_or_default()
}

fn string(value: &AnyValue) -> Option<String> {
    match value.value.as_ref()? {
        Value::StringValue(text) => Some(text.clone()),
        _ => None,
    }
}

#[tonic::async_trait]
impl LogsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_logs in request.into_inner().resource_logs {
            let service = service_name(resource_logs.resource.as_ref());
            for record in resource_logs
                .scope_logs
                .into_iter()
                .flat_map(|scope| scope.log_records)
            {
                received.push(ReceivedLog {
                    service: service.clone(),
                    severity: record.severity_text,
                    body: record.body.as_ref().and_then(string).unwrap_or_default(),
                    trace_id: hex(&record.trace_id),
                });
            }
        }
        self.logs
            .lock()
            .map_err(|_| tonic::Status::internal("poisoned"))?
            .extend(received);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = service_name(resource_spans.resource.as_ref());
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    linked_traces: span.links.iter().map(|link| hex(&link.trace_id)).collect(),
                });
            }
        }
        self.spans
            .lock()
            .map_err(|_| tonic::Status::internal("poisoned"))?
            .extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The receiver; stops serving when dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    collector: Collector,
    shutdown: Shutdown,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let collector = Collector::default();
        let shutdown = Shutdown::new();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(LogsServiceServer::new(collector.clone()))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), {
                let shutdown = shutdown.clone();
                async move { shutdown.wait().await }
            });
        tokio::spawn(server);
        Self {
            addr,
            collector,
            shutdown,
        }
    }

    /// For `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far that links to `trace_id`.
    pub fn linking_to(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|span| span.linked_traces.iter().any(|linked| linked == trace_id))
            .cloned()
            .collect()
    }

    /// Every log record of `trace_id` received so far.
    pub fn logs_of(&self, trace_id: &str) -> Vec<ReceivedLog> {
        self.collector
            .logs
            .lock()
            .unwrap()
            .iter()
            .filter(|record| record.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// Every span of `trace_id` received so far.
    pub fn trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
