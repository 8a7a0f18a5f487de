//! Admission control for PlaceOrder: refuse a new checkout, fast, while the sagas already
//! accepted are more than the runners can finish in time.
//!
//! Without it, an order accepted beyond what the saga runners sustain only joins a queue: the
//! backlog grows for as long as the overload lasts, every saga in it gets slower, and the last
//! ones reach their deadline and are cancelled — after the customer was told "accepted". Shedding
//! at the door instead keeps every accepted order one that will finish within its objective.
//!
//! ```text
//! PlaceOrder ─► backlog ≥ rate × max wait, or oldest due saga waiting > max wait?
//!                 ├─ yes ─► RESOURCE_EXHAUSTED + RetryInfo (the gateway: 503 + Retry-After)
//!                 └─ no ──► price, store, NOTIFY the runners; backlog + 1
//! ```
//!
//! The bound is derived from the saga throughput measured on the deployment
//! (`ORDERS_ADMISSION_SAGA_RATE`, sagas finished per second: the bench's saturation rate,
//! docs/benchmarks.md) and how long an accepted saga may wait for a runner
//! (`ORDERS_ADMISSION_MAX_WAIT`): a backlog of `rate × max wait` sagas takes `max wait` to work
//! off. The second signal, the age of the oldest due saga, catches runners that slow down (a
//! participant answering late) before the count does.
//!
//! **No database round trip per request.** The decision reads an in-memory gauge. A small worker
//! ([`Admission::run`]) sets it from one query every `ORDERS_ADMISSION_REFRESH` (count of sagas
//! not done; how long ago the longest-due one came due, by the database's clock); between
//! refreshes this replica keeps it current itself: +1 for each order it places, −1 for each saga
//! its runner finishes. Other replicas' orders show up at the next refresh, so with several
//! replicas the gauge lags by at most one refresh interval.
//!
//! The refusal is RESOURCE_EXHAUSTED, which callers retry with backoff but never count against
//! the service's circuit breaker or its replica's health (`resilience::grpc`): shedding is the
//! answer of a healthy service. A replay of an order already placed (same idempotency key) is
//! refused too while the bound is passed; the key still returns the first order later.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use platform::{ServiceError, Shutdown};

use crate::store::OrderStore;

/// The bound and how the gauge is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionConfig {
    /// Sagas the runners finish per second (measured).
    pub saga_rate: f64,
    /// How long an accepted saga may wait for a runner; `None`: admit everything.
    pub max_wait: Option<Duration>,
    /// How often the gauge is read from the database.
    pub refresh: Duration,
}

impl AdmissionConfig {
    /// The most sagas not yet done that still admit a new order: what the runners finish in
    /// `max_wait`, at least one.
    pub fn max_backlog(&self) -> Option<u64> {
        let wait = self.max_wait?;
        // Float to int: saturating, and the product is small and positive.
        Some(((self.saga_rate * wait.as_secs_f64()).floor() as u64).max(1))
    }
}

/// Why an order was refused, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub retry_after: Duration,
}

impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> Self {
        ServiceError::ResourceExhausted {
            message: refusal.reason,
            retry_after: refusal.retry_after,
        }
    }
}

/// What the gauge knows: sagas not done, and since when the longest-due one has been due.
#[derive(Debug, Clone, Copy, Default)]
struct Gauge {
    backlog: u64,
    oldest_due: Option<Instant>,
}

/// The shared gauge and the decision; clones share it.
#[derive(Debug, Clone)]
pub struct Admission {
    config: Arc<AdmissionConfig>,
    gauge: Arc<Mutex<Gauge>>,
}

impl Admission {
    pub fn new(config: AdmissionConfig) -> Self {
        Self {
            config: Arc::new(config),
            gauge: Arc::default(),
        }
    }

    /// Whether a new order may be placed now.
    pub fn admit(&self) -> Result<(), Refusal> {
        let gauge = *self.lock();
        let oldest_wait = gauge.oldest_due.map(|due| due.elapsed());
        match decide(&self.config, gauge.backlog, oldest_wait) {
            None => Ok(()),
            Some(refusal) => {
                metrics::counter!("orders_admission_refused_total").increment(1);
                Err(refusal)
            }
        }
    }

    /// This replica placed an order: its saga is due now.
    pub fn placed(&self) {
        let mut gauge = self.lock();
        gauge.backlog += 1;
        gauge.oldest_due.get_or_insert_with(Instant::now);
    }

    /// This replica's runner finished a saga.
    pub fn finished(&self) {
        let mut gauge = self.lock();
        gauge.backlog = gauge.backlog.saturating_sub(1);
    }

    /// What the database says: `backlog` sagas not done, the longest-due one due `oldest_wait`.
    fn observe(&self, backlog: u64, oldest_wait: Option<Duration>) {
        let now = Instant::now();
        *self.lock() = Gauge {
            backlog,
            oldest_due: oldest_wait.map(|wait| now.checked_sub(wait).unwrap_or(now)),
        };
        metrics::gauge!("orders_saga_backlog").set(backlog as f64);
    }

    /// Refreshes the gauge from `store` every `refresh` until `shutdown` (nothing to do when
    /// admission control is off).
    pub async fn run(self, store: OrderStore, shutdown: Shutdown) {
        if self.config.max_wait.is_none() {
            return;
        }
        let mut ticks = tokio::time::interval(self.config.refresh);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                _ = ticks.tick() => {}
            }
            match store.saga_backlog().await {
                Ok((backlog, oldest_wait)) => self.observe(backlog, oldest_wait),
                Err(err) => tracing::warn!(error = %err, "cannot read the saga backlog"),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gauge> {
        // The gauge is two numbers, valid whatever a panicking holder left.
        self.gauge.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The decision on a gauge reading: a refusal, or `None` to admit.
fn decide(
    config: &AdmissionConfig,
    backlog: u64,
    oldest_wait: Option<Duration>,
) -> Option<Refusal> {
    let (max_wait, max_backlog) = (config.max_wait?, config.max_backlog()?);
    if backlog >= max_backlog {
        // The excess drains at the measured rate.
        let excess = (backlog + 1 - max_backlog) as f64;
        return Some(Refusal {
            reason: format!(
                "checkout is overloaded: {backlog} checkouts in progress (at most \
                 {max_backlog}); retry shortly"
            ),
            retry_after: whole_seconds(excess / config.saga_rate.max(f64::MIN_POSITIVE)),
        });
    }
    match oldest_wait {
        Some(wait) if wait > max_wait => Some(Refusal {
            reason: format!(
                "checkout is overloaded: the oldest checkout has waited {} ms for a runner (at \
                 most {} ms); retry shortly",
                wait.as_millis(),
                max_wait.as_millis()
            ),
            retry_after: whole_seconds((wait - max_wait).as_secs_f64()),
        }),
        _ => None,
    }
}

/// `seconds` rounded up to whole seconds (HTTP's `Retry-After` has no finer unit), from 1 s to
/// a minute.
fn whole_seconds(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.ceil().clamp(1.0, 60.0)).unwrap_or(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: f64, wait_ms: u64) -> AdmissionConfig {
        AdmissionConfig {
            saga_rate: rate,
            max_wait: Some(Duration::from_millis(wait_ms)),
            refresh: Duration::from_millis(500),
        }
    }

    #[test]
    fn the_bound_is_what_the_runners_finish_in_the_wait() {
        assert_eq!(config(30.0, 2000).max_backlog(), Some(60));
        assert_eq!(config(0.1, 1000).max_backlog(), Some(1), "at least one");
        let off = AdmissionConfig {
            max_wait: None,
            ..config(30.0, 2000)
        };
        assert_eq!(off.max_backlog(), None);
        assert_eq!(
            decide(&off, 1_000_000, Some(Duration::from_secs(3600))),
            None
        );
    }

    #[test]
    fn below_both_bounds_an_order_is_admitted() {
        let config = config(30.0, 2000);
        assert_eq!(decide(&config, 0, None), None);
        assert_eq!(decide(&config, 59, Some(Duration::from_millis(1999))), None);
    }

    #[test]
    fn a_full_backlog_refuses_with_the_time_its_excess_takes_to_drain() {
        let config = config(10.0, 2000);
        let at_bound = decide(&config, 20, None).unwrap();
        assert_eq!(at_bound.retry_after, Duration::from_secs(1));
        assert!(
            at_bound.reason.contains("20 checkouts"),
            "{}",
            at_bound.reason
        );
        let far_over = decide(&config, 50, None).unwrap();
        assert_eq!(
            far_over.retry_after,
            Duration::from_secs(4),
            "31 over at 10/s"
        );
    }

    #[test]
    fn a_saga_waiting_too_long_refuses_even_with_a_short_backlog() {
        let config = config(30.0, 2000);
        let refusal = decide(&config, 3, Some(Duration::from_millis(4500))).unwrap();
        assert_eq!(refusal.retry_after, Duration::from_secs(3));
        assert!(refusal.reason.contains("4500 ms"), "{}", refusal.reason);
    }

    #[test]
    fn the_gauge_counts_this_replicas_orders_until_the_next_refresh() {
        let admission = Admission::new(config(1.0, 2000));
        admission.placed();
        assert!(admission.admit().is_ok());
        admission.placed();
        let refused = admission.admit().unwrap_err();
        assert_eq!(
            ServiceError::from(refused).code(),
            tonic::Code::ResourceExhausted
        );
        admission.finished();
        assert!(admission.admit().is_ok());
        admission.observe(5, Some(Duration::ZERO));
        assert!(
            admission.admit().is_err(),
            "the database saw other replicas' orders"
        );
        admission.observe(0, None);
        assert!(admission.admit().is_ok());
    }
}
