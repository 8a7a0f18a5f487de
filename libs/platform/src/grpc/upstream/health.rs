//! Active health checks: every endpoint is asked `grpc.health.v1.Health/Check` periodically.
//!
//! Passive ejection (in `resilience::balance`) needs real calls to fail before it acts. An
//! active check also catches a replica that is up but draining: `platform`'s gRPC server flips
//! its health to NOT_SERVING the moment shutdown starts, so callers stop sending it new
//! calls before its listener closes. An endpoint that does not answer SERVING (within a second)
//! is taken out of rotation until a later check says SERVING again.

use std::time::Duration;

use crate::Shutdown;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::Backend;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Checks every endpoint of `backend` every `every` until shutdown.
pub async fn keep_checking(backend: Backend, every: Duration, shutdown: Shutdown) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            _ = ticks.tick() => check_all(&backend).await,
        }
    }
}

async fn check_all(backend: &Backend) {
    let members = backend.balancer().members();
    let checks = members.into_iter().map(|(endpoint, channel)| async move {
        let serving = check(backend, &endpoint, channel).await;
        backend.balancer().set_serving(&endpoint, serving);
    });
    futures::future::join_all(checks).await;
}

/// Whether the endpoint answers SERVING, over the same connection the calls use.
async fn check(backend: &Backend, endpoint: &str, channel: tonic::transport::Channel) -> bool {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(CHECK_TIMEOUT);
    let answer =
        tokio::time::timeout(CHECK_TIMEOUT, HealthClient::new(channel).check(request)).await;
    match answer {
        Ok(Ok(response)) => response.into_inner().status() == ServingStatus::Serving,
        Ok(Err(status)) => {
            tracing::debug!(upstream = backend.name(), endpoint, code = ?status.code(), "health check failed");
            false
        }
        Err(_) => false,
    }
}
