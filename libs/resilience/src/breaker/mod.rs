//! The circuit breaker: stop calling an upstream that is failing, and find out when it is back.
//!
//! Calls pass through a [`CircuitBreaker`] while it is **closed**. It watches their outcomes
//! and **opens** after `failure_threshold` upstream failures in a row, or when at least
//! `failure_rate` of the last `window` calls failed (judged only once `minimum_calls` were
//! seen). An open breaker rejects calls at once with [`BreakerError::Open`]: the caller gets an
//! answer in microseconds instead of after a deadline, and the upstream gets room to recover
//! instead of a queue of requests nobody will wait for. After `open_for` it turns
//! **half-open** and lets `half_open_probes` trial calls through: if all succeed it closes; if
//! any fails it opens for another `open_for`.
//!
//! What counts as a failure is the caller's decision, made by the classifier passed to
//! [`CircuitBreaker::call`]. Only errors that say "the upstream is unwell" should count
//! (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL — see [`crate::grpc::is_upstream_failure`]).
//! NOT_FOUND or FAILED_PRECONDITION are a healthy upstream answering a question, and count as
//! successes; otherwise a burst of requests for a missing product would cut the whole catalog
//! off. A call abandoned before it finished (its future dropped, e.g. by an outer timeout)
//! counts as neither; put the deadline *inside* the call, as a gRPC deadline, so that a hanging
//! upstream shows up as an error the classifier sees.
//!
//! Metrics (through the `metrics` facade), labelled with the breaker's name:
//! * `circuit_breaker_state{breaker}` gauge: 0 closed, 1 open, 2 half-open;
//! * `circuit_breaker_transitions_total{breaker,to}` counter;
//! * `circuit_breaker_rejected_total{breaker}` counter: calls refused while open or while all
//!   probe slots were taken.
//!
//! Logs: a warning when the breaker first opens and an info line when it closes again; the
//! probes and re-openings in between are debug lines, so an hour-long outage is two lines.
//!
//! The Open → HalfOpen move needs no timer task: it happens on the first call, or the first
//! [`state`](CircuitBreaker::state) read, after `open_for`.

mod config;
mod machine;

use std::{
    future::Future,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

pub use config::BreakerConfig;
pub use machine::BreakerState;
use machine::{Machine, Outcome, Ticket};

use crate::{
    InvalidConfig,
    clock::{Clock, SystemClock},
};

/// A call through a [`CircuitBreaker`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BreakerError<E> {
    /// The breaker is open (or half-open with every probe slot taken): the call was rejected
    /// without being made.
    #[error("circuit breaker is open: call not attempted")]
    Open,
    /// The call was made and failed with this error.
    #[error(transparent)]
    Inner(E),
}

impl<E> BreakerError<E> {
    /// The call's own error, if it was made.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Open => None,
            Self::Inner(error) => Some(error),
        }
    }
}

/// A circuit breaker guarding one upstream.
///
/// Cheap to clone; clones share one state. `Send + Sync`, so one breaker per upstream serves
/// every task of the process.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: Arc<str>,
    clock: Arc<dyn Clock>,
    machine: Mutex<Machine>,
    /// Set from the first opening until the breaker closes: a long outage (open, probe, open
    /// again, …) is one warning when it starts and one line when it ends, not one per probe.
    outage: AtomicBool,
}

impl CircuitBreaker {
    /// A closed breaker on the system clock. `name` labels its metrics and logs (use the
    /// upstream's name: `"inventory"`).
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Result<Self, InvalidConfig> {
        Self::with_clock(name, config, Arc::new(SystemClock))
    }

    /// A breaker reading time from `clock` (a [`ManualClock`](crate::clock::ManualClock) in
    /// tests, so "open for 30 s" needs no sleeping).
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        config: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InvalidConfig> {
        config.validate()?;
        let name = name.into();
        // Publish every series at once, so dashboards and `rate()` see zeros, not gaps.
        metrics::gauge!("circuit_breaker_state", "breaker" => Arc::clone(&name))
            .set(BreakerState::Closed.gauge_value());
        metrics::counter!("circuit_breaker_rejected_total", "breaker" => Arc::clone(&name))
            .increment(0);
        for to in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            metrics::counter!(
                "circuit_breaker_transitions_total",
                "breaker" => Arc::clone(&name),
                "to" => to.label()
            )
            .increment(0);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                name,
                clock,
                machine: Mutex::new(Machine::new(config)),
                outage: AtomicBool::new(false),
            }),
        })
    }

    /// The name this breaker reports under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current state (moving Open to HalfOpen if `open_for` has passed).
    pub fn state(&self) -> BreakerState {
        let (state, transition) = self.machine().state(self.inner.clock.now());
        self.report(transition);
        state
    }

    /// Runs `operation` if the breaker admits it, and records its outcome.
    ///
    /// `is_failure` decides whether an error counts against the upstream; errors it rejects
    /// (business answers) count as successes. Returns [`BreakerError::Open`] without calling
    /// `operation` when the breaker rejects the call.
    pub async fn call<T, E, F, Fut, C>(
        &self,
        operation: F,
        is_failure: C,
    ) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnOnce(&E) -> bool,
    {
        let Some(permit) = self.admit() else {
            metrics::counter!("circuit_breaker_rejected_total", "breaker" => self.label())
                .increment(1);
            tracing::debug!(breaker = %self.inner.name, "call rejected: circuit open");
            return Err(BreakerError::Open);
        };
        let result = operation().await;
        let outcome = match &result {
            Err(error) if is_failure(error) => Outcome::Failure,
            _ => Outcome::Success,
        };
        permit.finish(outcome);
        result.map_err(BreakerError::Inner)
    }

    fn admit(&self) -> Option<Permit<'_>> {
        let (ticket, transition) = self.machine().admit(self.inner.clock.now());
        self.report(transition);
        ticket.map(|ticket| Permit {
            breaker: self,
            ticket,
            finished: false,
        })
    }

    fn machine(&self) -> MutexGuard<'_, Machine> {
        // The machine never panics while the lock is held, so a poisoned one is consistent.
        self.inner
            .machine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn label(&self) -> Arc<str> {
        Arc::clone(&self.inner.name)
    }

    /// Publishes a transition (outside the lock: recorders may do real work).
    fn report(&self, transition: Option<BreakerState>) {
        let Some(to) = transition else { return };
        metrics::gauge!("circuit_breaker_state", "breaker" => self.label()).set(to.gauge_value());
        metrics::counter!(
            "circuit_breaker_transitions_total",
            "breaker" => self.label(),
            "to" => to.label()
        )
        .increment(1);
        let breaker = &*self.inner.name;
        match to {
            BreakerState::Open if !self.inner.outage.swap(true, Ordering::SeqCst) => {
                tracing::warn!(breaker, "circuit breaker opened");
            }
            BreakerState::Open => tracing::debug!(breaker, "probe failed: circuit open again"),
            BreakerState::HalfOpen => {
                tracing::debug!(breaker, "circuit breaker half-open: probing")
            }
            BreakerState::Closed => {
                self.inner.outage.store(false, Ordering::SeqCst);
                tracing::info!(breaker, "circuit breaker closed");
            }
        }
    }
}

/// An admitted call. Reports its outcome when finished, or frees its slot if dropped first.
struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Ticket,
    finished: bool,
}

impl Permit<'_> {
    fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        let now = self.breaker.inner.clock.now();
        let transition = self.breaker.machine().record(self.ticket, outcome, now);
        self.breaker.report(transition);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.breaker.machine().release(self.ticket);
        }
    }
}

#[cfg(test)]
mod tests;
