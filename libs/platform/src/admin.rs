//! The admin HTTP port: `/healthz`, `/readyz`, `/metrics`.
//!
//! Kept apart from the API port so that probes and scrapes never compete with traffic, and so
//! that a NetworkPolicy can expose it to the kubelet and Prometheus only.
//!
//! * `/healthz` (liveness): 200 while the process can answer at all. It checks no dependency:
//!   restarting a pod because its database is down would not bring the database back.
//! * `/readyz` (readiness): 200 only when every dependency check passes and shutdown has not
//!   started; 503 with the failing check otherwise, so the replica is taken out of rotation.
//! * `/metrics`: Prometheus text format.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use futures::future::BoxFuture;
use serde_json::json;

use crate::Shutdown;

/// How long one dependency check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The dependency checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named check; it passes when the future resolves to `Ok` within two seconds.
    pub fn with_check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((
            name,
            Arc::new(move || Box::pin(check()) as BoxFuture<'_, _>),
        ));
        self
    }

    /// Adds a check that the Postgres pool answers `SELECT 1`.
    pub fn with_postgres(self, pool: sqlx::PgPool) -> Self {
        self.with_check("postgres", move || {
            let pool = pool.clone();
            async move { crate::db::ping(&pool).await.map_err(|err| err.to_string()) }
        })
    }

    /// Runs every check concurrently; returns whether all passed and each one's outcome.
    pub async fn evaluate(&self) -> (bool, BTreeMap<&'static str, String>) {
        let outcomes = futures::future::join_all(self.checks.iter().map(|(name, check)| {
            let check = check();
            async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(err)) => Err(err),
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                (*name, outcome)
            }
        }))
        .await;
        let ready = outcomes.iter().all(|(_, outcome)| outcome.is_ok());
        let report = outcomes
            .into_iter()
            .map(|(name, outcome)| (name, outcome.err().unwrap_or_else(|| "ok".to_owned())))
            .collect();
        (ready, report)
    }
}

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    shutdown: Shutdown,
}

/// The admin routes.
pub fn router(readiness: Readiness, shutdown: Shutdown) -> Router {
    crate::metrics::install();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState {
            readiness,
            shutdown,
        })
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if state.shutdown.is_triggered() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "shutting down" })),
        );
    }
    let (ready, checks) = state.readiness.evaluate().await;
    if ready {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": checks })),
        )
    } else {
        tracing::warn!(?checks, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "checks": checks })),
        )
    }
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readiness_reports_each_check() {
        let readiness = Readiness::new()
            .with_check("good", || async { Ok(()) })
            .with_check("bad", || async { Err("connection refused".to_owned()) });
        let (ready, report) = readiness.evaluate().await;
        assert!(!ready);
        assert_eq!(report["good"], "ok");
        assert_eq!(report["bad"], "connection refused");
    }

    #[tokio::test]
    async fn no_checks_means_ready() {
        assert!(Readiness::new().evaluate().await.0);
    }
}
