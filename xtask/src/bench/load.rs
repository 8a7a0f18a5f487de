//! The load generator: open loop at a constant arrival rate, and closed loop for saturation.
//!
//! **Open loop.** Request *i* of a run at `rate` per second is due at `start + i / rate`. A
//! scheduler wakes at each due instant and hands the request to its own task; the latency of
//! the request is measured from that *intended* instant, not from when it was actually sent. A
//! system that stalls therefore cannot hide the queue it builds: the requests that should have
//! gone out during the stall are late, and their lateness is in the histogram. This is the
//! correction for *coordinated omission* that a closed-loop client (each worker waits for its
//! reply before sending the next) misses. Requests in flight are capped so a dead system cannot
//! make the client spawn without bound; a request waiting for a slot keeps its clock running.
//!
//! **Closed loop.** `concurrency` workers send back to back for the duration: the throughput a
//! system reaches when the client keeps it busy (what `wrk` measures). Its latencies are those
//! of a saturated system, reported as such.
//!
//! Latencies are kept in HDR histograms (microseconds, 3 significant digits), which record
//! millions of values in a few kilobytes and answer any percentile exactly enough.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use hdrhistogram::Histogram;
use tokio::{sync::Semaphore, time::Instant};

/// The most requests one run keeps in flight.
const MAX_IN_FLIGHT: usize = 4096;

/// What one request came to.
pub enum Outcome {
    /// The expected answer.
    Ok,
    /// Anything else: an unexpected status or a transport error, with a short description.
    Failed(String),
}

/// A latency histogram in microseconds, from 1 µs to 5 minutes.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 300_000_000, 3)
        .map_err(|err| anyhow::anyhow!("cannot make a histogram: {err:?}"))
}

/// Records `elapsed` into `histogram`, clamped into its range.
pub fn record(histogram: &Mutex<Histogram<u64>>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    if let Ok(mut histogram) = histogram.lock() {
        histogram.saturating_record(micros.max(1));
    }
}

/// The result of a run.
pub struct Run {
    /// Requests that were due (open loop) or sent (closed loop).
    pub sent: u64,
    pub ok: u64,
    /// The first few failure descriptions and the count of each.
    pub failures: Vec<(String, u64)>,
    /// Latencies of the successful requests.
    pub latency: Histogram<u64>,
    /// From the first due instant to the last answer.
    pub elapsed: Duration,
}

impl Run {
    /// Successful requests per second.
    pub fn ok_per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A percentile of the successful latencies, in milliseconds.
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        self.latency.value_at_quantile(percentile / 100.0) as f64 / 1000.0
    }

    /// `"409 Conflict ×3, timeout ×1"`, or `"none"`.
    pub fn failure_summary(&self) -> String {
        if self.failures.is_empty() {
            return "none".to_owned();
        }
        self.failures
            .iter()
            .map(|(what, count)| format!("{what} ×{count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Default)]
struct Tally {
    ok: u64,
    failures: Vec<(String, u64)>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Failed(what) => {
                if let Some(entry) = self.failures.iter_mut().find(|(seen, _)| *seen == what) {
                    entry.1 += 1;
                } else if self.failures.len() < 8 {
                    self.failures.push((what, 1));
                }
            }
        }
    }
}

/// Open loop: `rate` requests per second for `duration`; request `i` is `request(i, due)`,
/// where `due` is its intended send instant (a request that goes on after its answer, such as
/// following a saga, measures from there too).
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, request: F) -> anyhow::Result<Run>
where
    F: Fn(u64, Instant) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    let request = Arc::new(request);
    let latency = Arc::new(Mutex::new(histogram()?));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let (request, latency, tally, slots) = (
            request.clone(),
            latency.clone(),
            tally.clone(),
            slots.clone(),
        );
        tasks.spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            let outcome = request(i, due).await;
            if matches!(outcome, Outcome::Ok) {
                record(&latency, due.elapsed());
            }
            if let Ok(mut tally) = tally.lock() {
                tally.add(outcome);
            }
        });
        // Reap finished tasks as we go so the set does not grow with the run.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    finish(total, start, &latency, &tally)
}

/// Closed loop: `concurrency` workers, each sending its next request when the last one is
/// answered, for `duration`.
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    duration: Duration,
    request: F,
) -> anyhow::Result<Run>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let request = Arc::new(request);
    let latency = Arc::new(Mutex::new(histogram()?));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    let end = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (request, latency, tally) = (request.clone(), latency.clone(), tally.clone());
        workers.spawn(async move {
            let mut sent = 0_u64;
            while Instant::now() < end {
                let began = Instant::now();
                let outcome = request(worker as u64 * 1_000_000_000 + sent).await;
                if matches!(outcome, Outcome::Ok) {
                    record(&latency, began.elapsed());
                }
                if let Ok(mut tally) = tally.lock() {
                    tally.add(outcome);
                }
                sent += 1;
            }
            sent
        });
    }
    let mut sent = 0;
    while let Some(joined) = workers.join_next().await {
        sent += joined.unwrap_or(0);
    }
    finish(sent, start, &latency, &tally)
}

fn finish(
    sent: u64,
    start: Instant,
    latency: &Mutex<Histogram<u64>>,
    tally: &Mutex<Tally>,
) -> anyhow::Result<Run> {
    let elapsed = start.elapsed();
    let latency = match latency.lock() {
        Ok(histogram) => histogram.clone(),
        Err(_) => histogram()?,
    };
    let (ok, failures) = tally
        .lock()
        .map(|t| (t.ok, t.failures.clone()))
        .unwrap_or_default();
    Ok(Run {
        sent,
        ok,
        failures,
        latency,
        elapsed,
    })
}

/// A Zipf distribution over ranks `0..n`: rank *k* is drawn with probability proportional to
/// `1 / (k + 1)^s`, so a few items take most of the traffic, as in a real catalog.
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n.max(1))
            .map(|k| {
                total += 1.0 / ((k + 1) as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        Self {
            cumulative: cumulative.into_iter().map(|c| c / total).collect(),
        }
    }

    /// The rank for a uniform `u` in `[0, 1)`.
    pub fn rank(&self, u: f64) -> usize {
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }

    /// A random rank.
    pub fn sample(&self) -> usize {
        self.rank(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_favours_the_first_ranks_and_covers_all() {
        let zipf = Zipf::new(24, 1.0);
        assert_eq!(zipf.rank(0.0), 0);
        assert_eq!(zipf.rank(0.999_999), 23);
        let mut counts = [0_u32; 24];
        for i in 0..10_000 {
            counts[zipf.rank(f64::from(i) / 10_000.0)] += 1;
        }
        // P(rank 0) = 1 / H(24) ≈ 0.27.
        assert!((2500..2900).contains(&counts[0]), "{counts:?}");
        assert!(counts[0] > counts[1] && counts[1] > counts[23] && counts[23] > 0);
    }

    #[tokio::test]
    async fn open_loop_counts_the_queue_behind_a_stall() {
        // A server that handles one request at a time stalls for 500 ms on the first. A closed
        // loop would record one slow request; the open loop sees the 49 due during the stall
        // wait behind it, each from its intended send time.
        let server = Arc::new(tokio::sync::Mutex::new(()));
        let run = open_loop(100.0, Duration::from_secs(1), move |i, _due| {
            let server = server.clone();
            async move {
                let _busy = server.lock().await;
                if i == 0 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Outcome::Ok
            }
        })
        .await
        .unwrap();
        assert_eq!((run.sent, run.ok), (100, 100));
        assert!(
            run.percentile_ms(100.0) >= 499.0,
            "{}",
            run.percentile_ms(100.0)
        );
        assert!(
            run.percentile_ms(60.0) >= 90.0,
            "{}",
            run.percentile_ms(60.0)
        );
    }
}
