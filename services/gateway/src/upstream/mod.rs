//! The gRPC services behind the gateway, each reached through the whole resilience stack:
//!
//! ```text
//! Backend::call(idempotent, key, op)
//! └─ circuit breaker (per service)     open → UNAVAILABLE at once (handlers may serve a fallback)
//!    └─ retry with budget              transient failures of idempotent calls only
//!       └─ load balancer (per attempt) round-robin / P2C / consistent hash; avoids endpoints
//!          │                           that already failed this call; ejects failing ones
//!          └─ attempt                  own deadline (grpc-timeout) + W3C trace context
//! ```
//!
//! Only reads are retried (`idempotent: true`). Writes are attempted once: a failed
//! `PlaceOrder` may have been executed, and it is the client, holding the `Idempotency-Key`,
//! that can safely repeat it.
//!
//! A broken connection: when a replica dies mid-call, tonic reports the transport error as
//! UNKNOWN, INTERNAL or CANCELLED ("connection closed") *with a source error attached* — unlike a
//! status the server sent, which arrives without one. (A client-side deadline is also CANCELLED
//! with a source; `effective_code` tells it apart as DEADLINE_EXCEEDED first.) Such a status says nothing about the request and everything about the
//! endpoint, so it is treated as UNAVAILABLE: retryable for reads, and a strike against the
//! endpoint's health.
//!
//! Metrics: `gateway_upstream_picks_total{upstream,endpoint}` (which replica each attempt went
//! to); the breaker and the balancer publish their own (`circuit_breaker_*`, `load_balancer_*`).

pub mod discovery;
pub mod health;

use std::{error::Error as _, future::Future, sync::Arc, time::Duration};

use platform::grpc::client::CallContext;
use resilience::{
    BreakerConfig, BudgetConfig, CircuitBreaker, RetryBudget, RetryPolicy, Upstream,
    balance::{Balancer, EjectionConfig, Outcome, Request},
    grpc::{effective_code, is_upstream_failure},
};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

use crate::config::{Config, UpstreamConfig};

/// What an attempt gets to call: a channel to one endpoint, with deadline and trace context.
pub type Endpoint = InterceptedService<Channel, CallContext>;

/// One upstream service: its replicas, its breaker, its retry budget.
#[derive(Clone, Debug)]
pub struct Backend {
    name: &'static str,
    balancer: Balancer<Channel>,
    resilience: Upstream,
    context: CallContext,
}

impl Backend {
    pub fn new(
        config: &UpstreamConfig,
        gateway: &Config,
    ) -> Result<Self, resilience::InvalidConfig> {
        let breaker = BreakerConfig {
            failure_threshold: gateway.breaker_failures,
            open_for: gateway.breaker_open_for,
            ..BreakerConfig::default()
        };
        let ejection = EjectionConfig {
            consecutive_failures: gateway.ejection_failures,
            base_ejection: gateway.ejection_time,
            max_ejection: gateway.ejection_time.max(Duration::from_secs(300)),
        };
        Ok(Self {
            name: config.name,
            balancer: Balancer::new(config.name, config.strategy, ejection)?,
            resilience: Upstream::new(
                config.name,
                CircuitBreaker::new(config.name, breaker)?,
                RetryBudget::new(BudgetConfig::default())?,
                RetryPolicy::default(),
            ),
            context: CallContext::new(gateway.call_timeout),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn balancer(&self) -> &Balancer<Channel> {
        &self.balancer
    }

    /// Calls the service: `op` runs once per attempt, on the endpoint the balancer chose, and
    /// must build a fresh request each time. `key` is the consistent-hash affinity key (an
    /// order or user id); `idempotent` allows retries.
    pub async fn call<T, Op, Fut>(
        &self,
        idempotent: bool,
        key: Option<&[u8]>,
        mut op: Op,
    ) -> Result<T, Status>
    where
        Op: FnMut(Endpoint) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut tried: Vec<Arc<str>> = Vec::new();
        self.resilience
            .call(idempotent, || {
                let picked = self.balancer.pick(Request { key, avoid: &tried });
                let attempt = picked.map(|picked| {
                    tried.push(Arc::clone(picked.endpoint()));
                    metrics::counter!(
                        "gateway_upstream_picks_total",
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
                    let result = call.await.map(tonic::Response::into_inner).map_err(broken_connection_is_unavailable);
                    let endpoint_failed = matches!(&result, Err(status) if is_upstream_failure(effective_code(status)));
                    picked.finish(if endpoint_failed { Outcome::Failure } else { Outcome::Success });
                    result
                }
            })
            .await
    }
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

/// The four services.
#[derive(Clone, Debug)]
pub struct Upstreams {
    pub users: Backend,
    pub inventory: Backend,
    pub orders: Backend,
    pub payments: Backend,
}

impl Upstreams {
    pub fn new(config: &Config) -> Result<Self, resilience::InvalidConfig> {
        Ok(Self {
            users: Backend::new(&config.users, config)?,
            inventory: Backend::new(&config.inventory, config)?,
            orders: Backend::new(&config.orders, config)?,
            payments: Backend::new(&config.payments, config)?,
        })
    }

    pub fn all(&self) -> [&Backend; 4] {
        [&self.users, &self.inventory, &self.orders, &self.payments]
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
