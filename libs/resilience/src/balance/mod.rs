//! Client-side load balancing: spreading calls over the replicas of one service, and routing
//! around the ones that are failing.
//!
//! In Kubernetes a `Service` gives one virtual IP and kube-proxy balances **connections**. gRPC
//! keeps one long-lived HTTP/2 connection and multiplexes every call over it, so connection
//! balancing pins a caller to one replica for hours: a new replica added by the autoscaler gets
//! nothing. The fix is to balance **calls**, in the caller: resolve every replica (a *headless*
//! service returns all pod IPs), keep a connection to each, and choose one per call. That choice
//! is this module.
//!
//! | piece | job |
//! |---|---|
//! | [`Strategy`] | round-robin, least-requests (power of two choices) |
//! | [`health`] | passive health: eject an endpoint after consecutive failures, probation on return |
//! | [`Balancer`] | the thread-safe pool of endpoints: update from discovery, pick, report |
//!
//! ```text
//! let balancer = Balancer::new("inventory", Strategy::RoundRobin, EjectionConfig::default())?;
//! balancer.update(&names, |name| connect_lazy(name).ok());      // from config or DNS
//! let picked = balancer.pick(Request { avoid: &tried })?;
//! let result = call(picked.value().clone()).await;
//! picked.finish(if endpoint_failed(&result) { Outcome::Failure } else { Outcome::Success });
//! ```
//!
//! How it composes with the rest of the crate: the circuit breaker and retry budget guard the
//! *service*; the balancer is consulted once per **attempt**, inside the retry loop, and told to
//! avoid the endpoints that already failed this call, so a retry after a refused connection lands
//! on another replica instead of hammering the dead one.
//!
//! Metrics (labelled with the balancer's name and the endpoint):
//! * `load_balancer_ejections_total{balancer,endpoint}` counter;
//! * `load_balancer_endpoint_ejected{balancer,endpoint}` gauge: 1 while ejected.

pub mod health;
mod pool;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use health::{EjectionConfig, Outcome, Transition};
use pool::Pool;
pub use pool::{Request, Strategy};

use crate::{
    InvalidConfig,
    clock::{Clock, SystemClock},
};

/// What the balancer knows about one endpoint, for readiness reports and debugging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointStatus {
    pub name: Arc<str>,
    pub in_flight: u32,
    /// Out of rotation after consecutive failures.
    pub ejected: bool,
    /// What the last active health check said (`true` when there are none).
    pub serving: bool,
}

/// A pool of endpoints of one service, shared by every task that calls it.
///
/// Cheap to clone; clones share one pool. `T` is whatever a call needs to reach the endpoint
/// (a `tonic::transport::Channel`), cloned out on each pick.
pub struct Balancer<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Balancer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> std::fmt::Debug for Balancer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

struct Inner<T> {
    name: Arc<str>,
    clock: Arc<dyn Clock>,
    pool: Mutex<Pool<T>>,
}

impl<T: Clone> Balancer<T> {
    /// An empty balancer on the system clock; `name` labels metrics and logs.
    pub fn new(
        name: impl Into<Arc<str>>,
        strategy: Strategy,
        ejection: EjectionConfig,
    ) -> Result<Self, InvalidConfig> {
        Self::with_clock(name, strategy, ejection, Arc::new(SystemClock))
    }

    /// A balancer reading time from `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        strategy: Strategy,
        ejection: EjectionConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InvalidConfig> {
        ejection.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.into(),
                clock,
                pool: Mutex::new(Pool::new(strategy, ejection)),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn strategy(&self) -> Strategy {
        self.pool().strategy
    }

    /// Sets the endpoint list (from static config or a DNS answer). Endpoints that stay keep
    /// their connection, load and health; `make` is called only for new ones (and may refuse
    /// one by returning `None`).
    pub fn update(&self, names: &[Arc<str>], make: impl FnMut(&str) -> Option<T>) {
        let (added, removed) = self.pool().update(names, make);
        for endpoint in &added {
            tracing::info!(balancer = %self.inner.name, %endpoint, "endpoint added");
            self.publish_ejected(endpoint, false);
        }
        for endpoint in &removed {
            tracing::info!(balancer = %self.inner.name, %endpoint, "endpoint removed");
            self.publish_ejected(endpoint, false);
        }
    }

    /// Chooses an endpoint for one attempt; `None` when the pool is empty. The returned
    /// [`Picked`] counts as in flight until it is finished or dropped.
    pub fn pick(&self, request: Request<'_>) -> Option<Picked<T>> {
        let now = self.inner.clock.now();
        let (picked, returned) = {
            let mut pool = self.pool();
            let returned = pool.refresh(now);
            let picked = pool
                .pick(request, now, &mut rand::rng())
                .and_then(|index| pool.slots.get(index))
                .map(|slot| Picked {
                    balancer: self.clone(),
                    id: slot.id,
                    name: Arc::clone(&slot.name),
                    value: slot.value.clone(),
                    finished: false,
                });
            (picked, returned)
        };
        for endpoint in returned {
            tracing::info!(balancer = %self.inner.name, %endpoint, "endpoint back on probation");
            self.publish_ejected(&endpoint, false);
        }
        picked
    }

    /// Reports an outcome observed outside a pick, e.g. a failed active health check.
    pub fn report(&self, endpoint: &str, outcome: Outcome) {
        let now = self.inner.clock.now();
        let transition = self.pool().report(endpoint, outcome, now);
        if let Some(transition) = transition {
            self.publish(endpoint, transition);
        }
    }

    /// Takes an endpoint out of rotation (or puts it back) per an active health check.
    pub fn set_serving(&self, endpoint: &str, serving: bool) {
        if self.pool().set_serving(endpoint, serving) {
            // Answering is the normal state, reached by every endpoint at start: not a warning.
            if serving {
                tracing::info!(balancer = %self.inner.name, endpoint, "health check passed: in rotation");
            } else {
                tracing::warn!(balancer = %self.inner.name, endpoint, "health check failed: out of rotation");
            }
        }
    }

    /// Every endpoint and its standing.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        let now = self.inner.clock.now();
        self.pool()
            .slots
            .iter()
            .map(|slot| EndpointStatus {
                name: Arc::clone(&slot.name),
                in_flight: slot.in_flight,
                ejected: slot.health.is_ejected(now),
                serving: slot.serving,
            })
            .collect()
    }

    /// Every endpoint with its value, e.g. to health-check each over its own connection.
    pub fn members(&self) -> Vec<(Arc<str>, T)> {
        self.pool()
            .slots
            .iter()
            .map(|slot| (Arc::clone(&slot.name), slot.value.clone()))
            .collect()
    }

    fn finish(&self, id: u64, outcome: Option<Outcome>) {
        let now = self.inner.clock.now();
        let transition = self.pool().finish(id, outcome, now);
        if let Some((endpoint, transition)) = transition {
            self.publish(&endpoint, transition);
        }
    }

    fn pool(&self) -> MutexGuard<'_, Pool<T>> {
        // Nothing panics while the lock is held, so a poisoned pool is still consistent.
        self.inner
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, endpoint: &str, transition: Transition) {
        match transition {
            Transition::Ejected(time) => {
                tracing::warn!(
                    balancer = %self.inner.name,
                    endpoint,
                    ejected_for = ?time,
                    "endpoint ejected after consecutive failures"
                );
                metrics::counter!(
                    "load_balancer_ejections_total",
                    "balancer" => Arc::clone(&self.inner.name),
                    "endpoint" => endpoint.to_owned()
                )
                .increment(1);
                self.publish_ejected(endpoint, true);
            }
            Transition::Returned => self.publish_ejected(endpoint, false),
        }
    }

    fn publish_ejected(&self, endpoint: &str, ejected: bool) {
        metrics::gauge!(
            "load_balancer_endpoint_ejected",
            "balancer" => Arc::clone(&self.inner.name),
            "endpoint" => endpoint.to_owned()
        )
        .set(if ejected { 1.0 } else { 0.0 });
    }
}

/// One attempt's endpoint. Finish it with the attempt's outcome; dropping it unfinished (the
/// attempt was abandoned) only ends its in-flight count and says nothing about health.
pub struct Picked<T: Clone> {
    balancer: Balancer<T>,
    id: u64,
    name: Arc<str>,
    value: T,
    finished: bool,
}

impl<T: Clone> Picked<T> {
    /// The endpoint's name (its URL).
    pub fn endpoint(&self) -> &Arc<str> {
        &self.name
    }

    /// What reaches the endpoint.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// Ends the attempt, reporting whether the endpoint failed it.
    pub fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.balancer.finish(self.id, Some(outcome));
    }
}

impl<T: Clone> Drop for Picked<T> {
    fn drop(&mut self) {
        if !self.finished {
            self.balancer.finish(self.id, None);
        }
    }
}
