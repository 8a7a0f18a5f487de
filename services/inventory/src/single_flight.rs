//! Single-flight: concurrent requests for the same thing share one load.
//!
//! When a popular product drops out of the cache (it expired, or a write invalidated it), every
//! request that arrives before it is cached again would miss and query Postgres — a *cache
//! stampede* (thundering herd). Single-flight lets the first request (the leader) do the load;
//! requests for the same key that arrive while it runs (followers) wait for its result instead
//! of starting their own. A hundred concurrent cold reads become one database query.
//!
//! How: a map from key to the in-flight load, held as a [`Shared`] future that every caller can
//! await. The load runs in its own task, so a leader whose client hangs up does not cancel it
//! for the followers; the task removes its map entry when it finishes (a drop guard, so a panic
//! cannot leave a dead entry behind), after which the next request starts a fresh load.
//!
//! The guard is per process: N replicas can still send N loads for one key. The shared Redis
//! cache absorbs the rest, since the first load fills it.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use futures::{
    FutureExt as _,
    future::{BoxFuture, Shared},
};

type Flights<V> = Arc<Mutex<HashMap<String, Flight<V>>>>;

struct Flight<V> {
    id: u64,
    /// `None` when the load task died (panicked or was cancelled at runtime shutdown).
    result: Shared<BoxFuture<'static, Option<V>>>,
}

pub struct SingleFlight<V> {
    flights: Flights<V>,
    next_id: AtomicU64,
    joined: AtomicU64,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        Self {
            flights: Arc::default(),
            next_id: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> SingleFlight<V> {
    /// Runs `load` for `key`, or waits for the load of `key` already in flight. Returns `None`
    /// only if the load task died without a result.
    pub async fn run<F, Fut>(&self, key: String, load: F) -> Option<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let result = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(flight) = flights.get(&key) {
                self.joined.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("inventory_cache_single_flight_joined_total").increment(1);
                flight.result.clone()
            } else {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let landing = Landing {
                    flights: Arc::clone(&self.flights),
                    key: key.clone(),
                    id,
                };
                let future = load();
                let task = tokio::spawn(async move {
                    let _landing = landing;
                    future.await
                });
                // The task cannot remove the entry before it is inserted: removal needs the
                // lock held here.
                let result = async move { task.await.ok() }.boxed().shared();
                flights.insert(
                    key,
                    Flight {
                        id,
                        result: result.clone(),
                    },
                );
                result
            }
        };
        result.await
    }

    /// How many calls so far joined a load already in flight instead of starting one.
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }
}

/// Removes a flight's map entry when its task ends, however it ends.
struct Landing<V> {
    flights: Flights<V>,
    key: String,
    id: u64,
}

impl<V> Drop for Landing<V> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if flights
            .get(&self.key)
            .is_some_and(|flight| flight.id == self.id)
        {
            flights.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn concurrent_calls_for_one_key_share_one_load() {
        let flights = Arc::new(SingleFlight::<u64>::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let callers: Vec<_> = (0..100)
            .map(|_| {
                let flights = Arc::clone(&flights);
                let loads = Arc::clone(&loads);
                let mut gate = gate.clone();
                tokio::spawn(async move {
                    flights
                        .run("product:MUG-1".to_owned(), move || async move {
                            loads.fetch_add(1, Ordering::SeqCst);
                            let _ = gate.wait_for(|open| *open).await;
                            42
                        })
                        .await
                })
            })
            .collect();
        // Hold the load until every other caller has joined it.
        while flights.joined() < 99 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), Some(42));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn different_keys_load_independently_and_finished_loads_are_forgotten() {
        let flights = SingleFlight::<&'static str>::default();
        assert_eq!(
            flights.run("a".into(), || async { "first" }).await,
            Some("first")
        );
        assert_eq!(
            flights.run("b".into(), || async { "other" }).await,
            Some("other")
        );
        assert_eq!(
            flights.run("a".into(), || async { "second" }).await,
            Some("second"),
            "a finished load is not reused"
        );
        assert_eq!(flights.joined(), 0);
        assert!(flights.flights.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_panicking_load_yields_none_and_leaves_no_entry_behind() {
        let flights = SingleFlight::<u8>::default();
        let result = flights
            .run("boom".into(), || async { panic!("load failed") })
            .await;
        assert_eq!(result, None);
        assert!(flights.flights.lock().unwrap().is_empty());
        assert_eq!(flights.run("boom".into(), || async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn a_load_outlives_a_cancelled_leader() {
        let flights = Arc::new(SingleFlight::<u8>::default());
        let (release, gate) = tokio::sync::oneshot::channel::<()>();
        let leader = tokio::spawn({
            let flights = Arc::clone(&flights);
            async move {
                flights
                    .run("k".into(), || async move {
                        let _ = gate.await;
                        9
                    })
                    .await
            }
        });
        while flights.flights.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        leader.abort();
        let follower = tokio::spawn({
            let flights = Arc::clone(&flights);
            async move { flights.run("k".into(), || async { 0 }).await }
        });
        while flights.joined() < 1 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        assert_eq!(
            follower.await.unwrap(),
            Some(9),
            "the follower got the leader's load"
        );
    }
}
