//! A gRPC upstream reached through the whole resilience stack, the same way by every caller:
//! the gateway for the four services, orders for inventory and payments.
//!
//! ```text
//! Backend::call(idempotent, op)
//! └─ circuit breaker (per upstream)    open → UNAVAILABLE at once (callers may serve a fallback)
//!    └─ retry with budget              transient failures of idempotent calls only
//!       └─ load balancer (per attempt) round-robin / P2C; avoids endpoints
//!          │                           that already failed this call; ejects failing ones
//!          └─ attempt                  own deadline (grpc-timeout, at most what the caller has
//!                                      left) + W3C trace context ([`CallContext`])
//! ```
//!
//! Where the endpoints come from is [`discovery`]: a fixed list, or a DNS name re-resolved
//! periodically — in Kubernetes, a headless Service, so that every ready pod is an endpoint.
//! (A normal Service answers with one virtual IP, and every call would ride one HTTP/2
//! connection to one pod: gRPC is not balanced per request by kube-proxy.) [`health`] asks
//! every endpoint `grpc.health.v1` periodically and takes the ones not SERVING out of rotation.
//!
//! Only calls the caller marks idempotent are retried. A write whose answer was lost may have
//! been executed; it is the caller, holding the idempotency key, that can safely repeat it.
//!
//! A broken connection: when a replica dies mid-call, tonic reports the transport error as
//! UNKNOWN, INTERNAL or CANCELLED ("connection closed") *with a source error attached* — unlike
//! a status the server sent, which arrives without one. (A client-side deadline is also
//! CANCELLED with a source; `effective_code` tells it apart as DEADLINE_EXCEEDED first.) Such a
//! status says nothing about the request and everything about the endpoint, so it is treated as
//! UNAVAILABLE: retryable for idempotent calls, and a strike against the endpoint's health.
//! A status the server sent about the request (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION
//! …) is the caller's business and never counts against the endpoint or the breaker.
//!
//! Identity: with [`BackendConfig::tls`], every connection is mutual TLS, and the upstream is
//! accepted only if its certificate names the service the backend is named after
//! (`crate::tls`). A PERMISSION_DENIED from it (the caller is not in the method's table,
//! `crate::grpc::authz`) is an answer about the request, like the other statuses above; a
//! refused handshake is a connection failure, like any other.
//!
//! Metrics: `upstream_picks_total{upstream,endpoint}` (which replica each attempt went to); the
//! breaker and the balancer publish their own (`circuit_breaker_*`, `load_balancer_*`).

pub mod discovery;
pub mod health;

use std::{error::Error as _, future::Future, sync::Arc, time::Duration};

use resilience::{
    BreakerConfig, BudgetConfig, CircuitBreaker, EjectionConfig, RetryBudget, RetryPolicy,
    Strategy, Upstream,
    balance::{Balancer, Outcome, Request},
    grpc::{effective_code, is_upstream_failure},
};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

pub use discovery::EndpointSource;

use super::client::CallContext;
use crate::tls::ClientTls;

/// What an attempt gets to call: a channel to one endpoint, with deadline and trace context.
pub type Endpoint = InterceptedService<Channel, CallContext>;

/// How calls to one upstream are made.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// How the balancer picks an endpoint for each attempt.
    pub strategy: Strategy,
    /// When the circuit opens and for how long.
    pub breaker: BreakerConfig,
    /// When a failing endpoint is taken out of rotation and for how long.
    pub ejection: EjectionConfig,
    /// Each attempt's own deadline (shortened to what the caller has left, if less).
    pub call_timeout: Duration,
    /// This caller's credentials for mutual TLS (the upstream must prove it is the service
    /// the backend is named after), or `None` for plaintext.
    pub tls: Option<crate::tls::TlsFiles>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::RoundRobin,
            breaker: BreakerConfig::default(),
            ejection: EjectionConfig::default(),
            call_timeout: Duration::from_secs(2),
            tls: None,
        }
    }
}

/// One upstream service: its replicas, its breaker, its retry budget. Cheap to clone; clones
/// share all three.
#[derive(Clone, Debug)]
pub struct Backend {
    name: &'static str,
    balancer: Balancer<Channel>,
    resilience: Upstream,
    context: CallContext,
    tls: Option<ClientTls>,
}

impl Backend {
    /// A backend with no endpoints yet: fill it with [`discovery::initial`].
    pub fn new(
        name: &'static str,
        config: &BackendConfig,
    ) -> Result<Self, resilience::InvalidConfig> {
        Ok(Self {
            name,
            balancer: Balancer::new(name, config.strategy, config.ejection)?,
            resilience: Upstream::new(
                name,
                CircuitBreaker::new(name, config.breaker)?,
                RetryBudget::new(BudgetConfig::default())?,
                RetryPolicy::default(),
            ),
            context: CallContext::new(config.call_timeout),
            tls: config.tls.as_ref().map(|files| ClientTls::new(files, name)),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The mutual-TLS connector of this upstream's channels, if any.
    pub fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    pub fn balancer(&self) -> &Balancer<Channel> {
        &self.balancer
    }

    /// The breaker guarding this upstream (to read its state, e.g. for readiness).
    pub fn breaker(&self) -> &CircuitBreaker {
        self.resilience.breaker()
    }

    /// Calls the service: `op` runs once per attempt, on the endpoint the balancer chose, and
    /// must build a fresh request each time; `idempotent` allows retries.
    pub async fn call<T, Op, Fut>(&self, idempotent: bool, mut op: Op) -> Result<T, Status>
    where
        Op: FnMut(Endpoint) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut tried: Vec<Arc<str>> = Vec::new();
        self.resilience
            .call(idempotent, || {
                let picked = self.balancer.pick(Request { avoid: &tried });
                let attempt = picked.map(|picked| {
                    tried.push(Arc::clone(picked.endpoint()));
                    metrics::counter!(
                        "upstream_picks_total",
                        "upstream" => self.name,
                        "endpoint" => picked.endpoint().to_string()
                    )
                    .increment(1);
                    let endpoint = InterceptedService::new(picked.value().clone(), self.context);
                    (picked, op(endpoint))
                });
                let name = self.name;
                async move {
                    let Some((picked, call)) = attempt else {
                        return Err(Status::unavailable(format!("{name}: no endpoints")));
                    };
                    let result = call
                        .await
                        .map(tonic::Response::into_inner)
                        .map_err(broken_connection_is_unavailable);
                    let endpoint_failed = matches!(&result, Err(status) if is_upstream_failure(effective_code(status)));
                    picked.finish(if endpoint_failed {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                    result
                }
            })
            .await
    }
}

/// Spawns what keeps `backend` current until `shutdown`, once [`discovery::initial`] has filled
/// it: DNS re-resolution every `dns_refresh` (DNS sources only) and active health checks every
/// `health_checks` (unless `None`). The caller awaits the handles when it stops.
pub fn spawn_maintenance(
    backend: &Backend,
    source: &EndpointSource,
    dns_refresh: Duration,
    health_checks: Option<Duration>,
    shutdown: &crate::Shutdown,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if matches!(source, EndpointSource::Dns { .. }) {
        tasks.push(tokio::spawn(discovery::keep_resolving(
            backend.clone(),
            source.clone(),
            dns_refresh,
            shutdown.clone(),
        )));
    }
    if let Some(every) = health_checks {
        tasks.push(tokio::spawn(health::keep_checking(
            backend.clone(),
            every,
            shutdown.clone(),
        )));
    }
    tasks
}

/// See the module docs: transport failures surface as UNKNOWN/INTERNAL with a source error.
fn broken_connection_is_unavailable(status: Status) -> Status {
    let client_side = status.source().is_some();
    match effective_code(&status) {
        Code::Unknown | Code::Internal | Code::Cancelled if client_side => {
            Status::unavailable(format!("connection failed: {}", status.message()))
        }
        _ => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_become_unavailable_and_server_statuses_stay() {
        let transport = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(transport.code(), Code::Unknown);
        assert_eq!(
            broken_connection_is_unavailable(transport).code(),
            Code::Unavailable
        );
        let from_server = Status::internal("bug");
        assert_eq!(
            broken_connection_is_unavailable(from_server).code(),
            Code::Internal
        );
        let not_found = Status::not_found("x");
        assert_eq!(
            broken_connection_is_unavailable(not_found).code(),
            Code::NotFound
        );
        let mut closed = Status::cancelled("operation was canceled");
        closed.set_source(Arc::new(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        )));
        assert_eq!(
            broken_connection_is_unavailable(closed).code(),
            Code::Unavailable
        );
        let caller_gave_up = Status::cancelled("by the caller");
        assert_eq!(
            broken_connection_is_unavailable(caller_gave_up).code(),
            Code::Cancelled
        );
        let timed_out = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(
            effective_code(&broken_connection_is_unavailable(timed_out)),
            Code::DeadlineExceeded
        );
    }
}
