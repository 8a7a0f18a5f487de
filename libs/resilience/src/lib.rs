//! Resilience for calls between Ferroshop services
//! (docs/architecture.md#failures-retries-and-the-deadline).
//!
//! Every remote call can be slow, can fail, or can succeed without the caller ever hearing
//! about it. The orders saga calls inventory and payments; the gateway calls everyone. Without
//! care, one slow or broken service takes its callers down with it: their threads, connections
//! and memory pile up waiting on it, and their retries keep it from recovering. Three tools,
//! each answering one question, prevent that.
//!
//! # Deadlines — how long will I wait?
//!
//! Every gRPC call carries a deadline, set per call by `platform::grpc::client::CallContext`
//! as the `grpc-timeout` header. The server stops working on a call nobody waits for any more;
//! the client gives up and frees its resources. A call without a deadline can hang for as long
//! as a TCP connection survives, holding everything it touched.
//!
//! tonic enforces the deadline on the client too, and when the client's own timer fires first
//! it reports CANCELLED ("Timeout expired"), not DEADLINE_EXCEEDED. [`grpc::effective_code`]
//! turns that back into DEADLINE_EXCEEDED, so a hanging upstream still counts against its
//! circuit breaker.
//!
//! # Retries with a budget — is it worth trying again?
//!
//! Some failures are transient (a replica restarting: UNAVAILABLE) and a second attempt a
//! moment later succeeds; others are answers (NOT_FOUND) and repeating the question changes
//! nothing. [`retry()`] retries only what the classifier calls transient, waits a jittered
//! exponential [`backoff`] in between, and asks the upstream's [`RetryBudget`] before every
//! retry, so retries add at most ~20% load to an upstream that is failing instead of tripling
//! it. **Only idempotent calls may be retried**: a retry repeats a request whose first
//! execution may have succeeded (see [`retry`](mod@retry)).
//!
//! # Circuit breakers — should I call at all?
//!
//! When an upstream is down, waiting for each call's deadline is wasted time for the caller
//! and wasted load for the upstream. A [`CircuitBreaker`] watches outcomes; after too many
//! upstream failures it *opens* and rejects calls immediately, giving the upstream room to
//! recover and the caller a fast answer it can act on (compensate the saga step, serve a
//! fallback). After a cool-down it lets a few probe calls through and closes again if they
//! succeed. Business errors (NOT_FOUND, FAILED_PRECONDITION) are a healthy upstream answering;
//! they never open a breaker.
//!
//! # How they compose
//!
//! ```text
//! Upstream::call(idempotent, op)
//! └─ circuit breaker   open: UNAVAILABLE "<name>: circuit open", nothing is sent
//!    └─ retry          transient errors, idempotent calls, while attempts and budget last
//!       └─ attempt     a fresh request with its own deadline (grpc-timeout via CallContext)
//! ```
//!
//! * **Breaker outside retry.** An open breaker rejects the whole call before any attempt is
//!   made or any budget spent, and a retry never sees — so never retries — a rejection. The
//!   breaker judges the upstream by what the caller finally got: a blip that a retry absorbed
//!   is not a failure; a problem that survives the retries is.
//! * **Deadline per attempt.** Each attempt builds a new request, so each gets a full deadline
//!   and a slow first attempt does not starve the retry. The worst case for the caller is
//!   `max_attempts × deadline + backoff`; a caller with an overall deadline (a saga step's)
//!   wraps the call in `tokio::time::timeout`.
//!
//! [`grpc::Upstream`] packages this composition for one upstream:
//!
//! ```text
//! let inventory = Upstream::new(
//!     "inventory",
//!     CircuitBreaker::new("inventory", BreakerConfig::default())?,
//!     RetryBudget::new(BudgetConfig::default())?,
//!     RetryPolicy::default(),
//! );
//! // ReserveStock is idempotent per order id, so it may be retried.
//! let reply = inventory
//!     .call(true, || {
//!         let mut client = client.clone();
//!         let request = Request::new(reserve.clone()); // a fresh request, a fresh deadline
//!         async move { client.reserve_stock(request).await }
//!     })
//!     .await?;
//! ```
//!
//! | module | job |
//! |---|---|
//! | [`backoff`] | capped exponential backoff with full jitter |
//! | [`retry`](mod@retry) | [`RetryPolicy`], the shared [`RetryBudget`], the [`retry()`] loop |
//! | [`breaker`] | the [`CircuitBreaker`] state machine and its metrics |
//! | [`grpc`] | which `tonic::Status` codes are transient or upstream failures; [`grpc::Upstream`] |
//! | [`balance`] | client-side load balancing over replicas: round-robin, least-requests (P2C), passive ejection |
//! | [`clock`] | time as a dependency, so tests move it by hand instead of sleeping |

pub mod backoff;
pub mod balance;
pub mod breaker;
pub mod clock;
pub mod grpc;
pub mod retry;

#[cfg(test)]
mod testing;

pub use backoff::Backoff;
pub use balance::{Balancer, EjectionConfig, Strategy};
pub use breaker::{BreakerConfig, BreakerError, BreakerState, CircuitBreaker};
pub use clock::{Clock, ManualClock, SystemClock};
pub use grpc::Upstream;
pub use retry::{BudgetConfig, RetryBudget, RetryPolicy, retry};

/// A setting that cannot work, found when a breaker or budget is built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {setting}: {reason}")]
pub struct InvalidConfig {
    /// The field, e.g. `failure_rate`.
    pub setting: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl InvalidConfig {
    pub(crate) fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting,
            reason: reason.into(),
        }
    }
}
