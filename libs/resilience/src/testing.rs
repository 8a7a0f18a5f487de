//! A minimal in-memory `metrics` recorder, so tests can assert on what was emitted.
//!
//! Install it for the current thread with [`metrics::set_default_local_recorder`] (works with
//! `#[tokio::test]`, which runs on one thread). Series are keyed `name{label=value,…}` with the
//! labels in the order they were given.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

#[derive(Clone, Debug, Default)]
pub(crate) struct TestRecorder {
    values: Arc<Mutex<HashMap<String, f64>>>,
}

impl TestRecorder {
    /// The current value of a series, e.g. `circuit_breaker_state{breaker=inventory}`.
    pub(crate) fn value(&self, series: &str) -> Option<f64> {
        self.lock().get(series).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, f64>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handle(&self, key: &Key) -> Arc<Series> {
        let labels: Vec<String> = key
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.lock().entry(name.clone()).or_insert(0.0);
        Arc::new(Series {
            name,
            values: Arc::clone(&self.values),
        })
    }
}

struct Series {
    name: String,
    values: Arc<Mutex<HashMap<String, f64>>>,
}

impl Series {
    fn update(&self, change: impl FnOnce(&mut f64)) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        change(values.entry(self.name.clone()).or_insert(0.0));
    }
}

impl CounterFn for Series {
    fn increment(&self, value: u64) {
        self.update(|current| *current += value as f64);
    }

    fn absolute(&self, value: u64) {
        self.update(|current| *current = value as f64);
    }
}

impl GaugeFn for Series {
    fn increment(&self, value: f64) {
        self.update(|current| *current += value);
    }

    fn decrement(&self, value: f64) {
        self.update(|current| *current -= value);
    }

    fn set(&self, value: f64) {
        self.update(|current| *current = value);
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
