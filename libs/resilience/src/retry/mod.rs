//! Retries: a bounded number of attempts, backoff between them, and a shared budget.
//!
//! # Only idempotent calls may be retried
//!
//! **A retry repeats a request whose outcome is unknown.** A call that failed with UNAVAILABLE
//! or timed out may well have been executed by the server — the reply was lost, not the
//! request. Retrying `ReserveStock` is safe only because inventory makes it idempotent per
//! order id: the second reservation for the same order returns the first. Retrying a call that
//! is not idempotent (charge a card without an idempotency key, append a ledger entry) can do
//! the thing twice. Before retrying anything, make sure the callee deduplicates it.
//!
//! # What gets retried
//!
//! [`retry`] retries an error only if
//! 1. the caller's classifier says it is transient (UNAVAILABLE: yes; NOT_FOUND: retrying
//!    cannot help — see [`crate::grpc::is_retryable`]),
//! 2. the [`RetryPolicy`] has attempts left, and
//! 3. the upstream's [`RetryBudget`] has a token — so a failing upstream is not buried under
//!    a retry storm.
//!
//! Between attempts it waits a [`Backoff`] delay (exponential, capped, full jitter). When it
//! gives up, the caller gets the **last** error, which is the most current description of
//! what is wrong.
//!
//! Each attempt must carry its own deadline (a new `tonic::Request` per attempt, with
//! `platform::grpc::client::CallContext` setting `grpc-timeout`); an overall deadline for the
//! whole sequence, if the caller needs one, wraps the call in `tokio::time::timeout`.

mod budget;

use std::{future::Future, time::Duration};

pub use budget::{BudgetConfig, RetryBudget};

use crate::backoff::Backoff;

/// How many times to try and how long to wait in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included: 1 means "never retry". 0 is treated as 1 —
    /// an operation is always attempted once.
    pub max_attempts: u32,
    /// The backoff ceiling after the first failure.
    pub backoff_base: Duration,
    /// The largest backoff ceiling.
    pub backoff_cap: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, waiting up to 50 ms, then up to 100 ms.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// A policy that makes exactly one attempt.
    pub const fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            backoff_base: Duration::ZERO,
            backoff_cap: Duration::ZERO,
        }
    }

    /// A fresh backoff for one call.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.backoff_base, self.backoff_cap)
    }
}

/// Runs `operation` until it succeeds, fails with an error `is_retryable` rejects, runs out of
/// attempts, or the budget refuses a retry; returns the success or the last error.
///
/// **Only for idempotent operations** (see the [module docs](self)).
///
/// `operation` is called once per attempt and must build a fresh request each time.
pub async fn retry<T, E, Op, Fut, C>(
    policy: &RetryPolicy,
    budget: &RetryBudget,
    is_retryable: C,
    operation: Op,
) -> Result<T, E>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: FnMut(&E) -> bool,
{
    retry_with_delays(policy, budget, is_retryable, operation, Backoff::next_delay).await
}

/// [`retry`] with the delay chosen by `next_delay` (tests make it deterministic).
async fn retry_with_delays<T, E, Op, Fut, C, D>(
    policy: &RetryPolicy,
    budget: &RetryBudget,
    mut is_retryable: C,
    mut operation: Op,
    mut next_delay: D,
) -> Result<T, E>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: FnMut(&E) -> bool,
    D: FnMut(&mut Backoff) -> Duration,
{
    budget.deposit();
    let mut backoff = policy.backoff();
    let mut attempt: u32 = 1;
    loop {
        let error = match operation().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !is_retryable(&error) {
            return Err(error);
        }
        if attempt >= policy.max_attempts {
            tracing::debug!(attempt, "giving up: no attempts left");
            return Err(error);
        }
        if !budget.try_withdraw() {
            tracing::debug!(attempt, "giving up: retry budget exhausted");
            return Err(error);
        }
        let delay = next_delay(&mut backoff);
        tracing::debug!(attempt, ?delay, "retrying after a transient failure");
        tokio::time::sleep(delay).await;
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests;
