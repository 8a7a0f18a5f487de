//! One upstream service with its whole resilience policy: circuit breaker around retries
//! (with a shared budget) around attempts that carry their own deadlines.

use std::{future::Future, sync::Arc};

use tonic::Status;

use super::{effective_code, is_retryable, is_retryable_including_deadline, is_upstream_failure};
use crate::{
    breaker::{BreakerError, CircuitBreaker},
    retry::{RetryBudget, RetryPolicy, retry},
};

/// The resilience policy for calls to one upstream, e.g. `inventory` as seen from orders.
///
/// Build one per upstream at start-up and share it (it is cheap to clone; clones share the
/// breaker and the budget), so every call to that upstream feeds the same breaker and draws
/// on the same retry budget.
#[derive(Clone, Debug)]
pub struct Upstream {
    name: Arc<str>,
    breaker: CircuitBreaker,
    budget: RetryBudget,
    policy: RetryPolicy,
    retry_deadline_exceeded: bool,
}

impl Upstream {
    /// `name` appears in the "circuit open" status; use the breaker's name.
    pub fn new(
        name: impl Into<Arc<str>>,
        breaker: CircuitBreaker,
        budget: RetryBudget,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            name: name.into(),
            breaker,
            budget,
            policy,
            retry_deadline_exceeded: false,
        }
    }

    /// Also retries DEADLINE_EXCEEDED (for idempotent calls whose per-attempt deadline is well
    /// inside the caller's overall deadline; see the [module docs](super)).
    pub fn retrying_deadline_exceeded(mut self) -> Self {
        self.retry_deadline_exceeded = true;
        self
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The breaker guarding this upstream (to read its state, e.g. for readiness).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Calls the upstream through the breaker, retrying transient failures only if the call
    /// is `idempotent`.
    ///
    /// `operation` runs once per attempt and must build a **fresh request** each time, so each
    /// attempt gets its own deadline from `platform::grpc::client::CallContext`.
    ///
    /// **Pass `idempotent: true` only if the upstream deduplicates the call** (an idempotency
    /// key, a natural key such as the order id). A failed attempt may have been executed: the
    /// reply was lost, not the request. Non-idempotent calls are attempted exactly once.
    ///
    /// An open breaker answers `UNAVAILABLE "<name>: circuit open"` without calling at all.
    pub async fn call<T, Op, Fut>(&self, idempotent: bool, operation: Op) -> Result<T, Status>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let policy = if idempotent {
            self.policy
        } else {
            RetryPolicy::no_retries()
        };
        let retry_deadline_exceeded = self.retry_deadline_exceeded;
        let is_transient = move |status: &Status| {
            let code = effective_code(status);
            if retry_deadline_exceeded {
                is_retryable_including_deadline(code)
            } else {
                is_retryable(code)
            }
        };
        let attempts = || retry(&policy, &self.budget, is_transient, operation);
        let counts_against_upstream = |status: &Status| is_upstream_failure(effective_code(status));
        match self.breaker.call(attempts, counts_against_upstream).await {
            Ok(value) => Ok(value),
            Err(BreakerError::Inner(status)) => Err(status),
            Err(BreakerError::Open) => {
                Err(Status::unavailable(format!("{}: circuit open", self.name)))
            }
        }
    }
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
