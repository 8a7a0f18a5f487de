//! Redis as an *optional* dependency: one client constructor and one outage guard for every
//! Ferroshop component that uses Redis to go faster, never to be correct.
//!
//! Inventory caches catalog reads in Redis; the gateway keeps rate-limit state there. Both have a
//! fallback that works without Redis (read Postgres; enforce the limit locally), so for both a
//! Redis outage must cost **nothing but the fallback**: no failed requests, no request that waits
//! for a dead server, no warning per request. That takes three things, which [`GuardedRedis`]
//! bundles so no component writes them again:
//!
//! 1. **A lazy client.** [`GuardedRedis::new`] dials nothing: the process starts whether or not
//!    Redis is up, and the connection (a `redis::aio::ConnectionManager`, one multiplexed
//!    connection shared by every task) reconnects on its own.
//! 2. **A deadline on every command** (`timeout`, e.g. `INVENTORY_CACHE_TIMEOUT`). A Redis that
//!    hangs is a Redis that is down; the deadline makes it show up as an error.
//! 3. **A circuit breaker** ([`resilience::CircuitBreaker`]) around every command. The first
//!    failure opens it; while open, [`GuardedRedis::run`] answers `None` at once without touching
//!    the network, so a dead Redis costs each request nothing rather than a timeout. After
//!    [`REST_AFTER_FAILURE`] one probe command goes through; if it succeeds the breaker closes.
//!    Every error counts: for a component with a fallback, a Redis that refuses commands (an ACL
//!    change, out of memory) is as unusable as one that is gone.
//!
//! The outage is logged once when it starts (a warning naming what degrades) and once when it
//! ends; the breaker's own series (`circuit_breaker_state{breaker="redis-<name>"}` and
//! friends) show it on dashboards.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::{
    RedisResult,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use resilience::{BreakerConfig, CircuitBreaker, Clock, SystemClock};

/// How long Redis is left alone after a failure before one command probes it again.
pub const REST_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// A Redis connection whose every command has a deadline and passes a circuit breaker.
///
/// Cheap to clone; clones share the connection, the breaker and the outage state.
#[derive(Clone)]
pub struct GuardedRedis {
    inner: Arc<Inner>,
}

struct Inner {
    /// Multiplexed, reconnecting; cloning it is cloning a handle.
    connection: ConnectionManager,
    /// Opens on the first failure, probes after [`REST_AFTER_FAILURE`].
    breaker: CircuitBreaker,
    /// The deadline of one command.
    timeout: Duration,
    /// Who is using Redis, for logs (`catalog cache`, `rate limiter`).
    user: &'static str,
    /// What happens while Redis is down, for the outage warning.
    fallback: &'static str,
    /// Set from the first failure to the next success: the outage is logged once each way.
    down: AtomicBool,
}

/// Why a [`GuardedRedis`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL does not parse.
    #[error("invalid Redis URL: {0}")]
    Url(#[from] redis::RedisError),
    /// The breaker settings are unusable (a zero timeout).
    #[error("invalid Redis guard: {0}")]
    Breaker(#[from] resilience::InvalidConfig),
}

impl GuardedRedis {
    /// A guard for `user` (`"catalog cache"`) on the Redis at `url`; `fallback` says what the
    /// component does without Redis (`"catalog reads go to Postgres"`), for the outage warning.
    /// Nothing is dialled until the first command.
    pub fn new(
        user: &'static str,
        url: &str,
        timeout: Duration,
        fallback: &'static str,
    ) -> Result<Self, SetupError> {
        Self::with_clock(user, url, timeout, fallback, Arc::new(SystemClock))
    }

    /// [`GuardedRedis::new`] with the breaker reading time from `clock` (tests).
    pub fn with_clock(
        user: &'static str,
        url: &str,
        timeout: Duration,
        fallback: &'static str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SetupError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(REST_AFTER_FAILURE);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        let breaker = CircuitBreaker::with_clock(
            format!("redis-{}", user.replace(' ', "-")),
            BreakerConfig {
                failure_threshold: 1,
                failure_rate: 1.0,
                window: 1,
                minimum_calls: 1,
                open_for: REST_AFTER_FAILURE,
                half_open_probes: 1,
            },
            clock,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                connection,
                breaker,
                timeout,
                user,
                fallback,
                down: AtomicBool::new(false),
            }),
        })
    }

    /// Runs one command: `command` gets a handle on the shared connection. `None` when Redis
    /// failed, missed the deadline, or is being left alone after a failure; the caller then
    /// takes its fallback. `operation` names the command in logs (`"GET"`, `"invalidate"`).
    pub async fn run<T, F, Fut>(&self, operation: &'static str, command: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let inner = &self.inner;
        let connection = inner.connection.clone();
        let outcome = inner
            .breaker
            .call(
                || async move {
                    match tokio::time::timeout(inner.timeout, command(connection)).await {
                        Ok(Ok(value)) => Ok(value),
                        Ok(Err(err)) => Err(err.to_string()),
                        Err(_) => Err(format!("no answer within {:?}", inner.timeout)),
                    }
                },
                |_| true,
            )
            .await;
        match outcome {
            Ok(value) => {
                if inner.down.swap(false, Ordering::SeqCst) {
                    tracing::info!(user = inner.user, "Redis is back");
                }
                Some(value)
            }
            Err(resilience::BreakerError::Inner(error)) => {
                if inner.down.swap(true, Ordering::SeqCst) {
                    tracing::debug!(user = inner.user, operation, %error, "Redis still unavailable");
                } else {
                    tracing::warn!(
                        user = inner.user,
                        operation,
                        %error,
                        "Redis unavailable: {} until it is back",
                        inner.fallback
                    );
                }
                None
            }
            Err(resilience::BreakerError::Open) => None,
        }
    }

    /// True from a failure until the next successful command.
    pub fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicU32;

    use resilience::ManualClock;

    use super::*;

    /// Nothing listens on port 1: every command fails fast with a connection error.
    fn unreachable(clock: Arc<ManualClock>) -> GuardedRedis {
        GuardedRedis::with_clock(
            "test",
            "redis://127.0.0.1:1",
            Duration::from_millis(100),
            "tests fall back",
            clock,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn after_a_failure_redis_is_left_alone_until_one_probe_is_due() {
        let clock = Arc::new(ManualClock::new());
        let redis = unreachable(Arc::clone(&clock));
        let attempts = AtomicU32::new(0);
        let ping = |mut connection: ConnectionManager| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async move {
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
            }
        };
        assert_eq!(redis.run("PING", ping).await, None);
        assert!(redis.is_down());
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        // Resting: answered at once, the command is never run.
        for _ in 0..10 {
            assert_eq!(redis.run("PING", ping).await, None);
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "no command while open");
        // After the rest, one probe goes out (and fails again: still down).
        clock.advance(REST_AFTER_FAILURE);
        assert_eq!(redis.run("PING", ping).await, None);
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert!(redis.is_down());
    }

    #[tokio::test]
    async fn a_command_that_hangs_is_a_failure_at_the_deadline() {
        let clock = Arc::new(ManualClock::new());
        let redis = unreachable(clock);
        let started = tokio::time::Instant::now();
        let hung = redis
            .run("BLPOP", |_| std::future::pending::<RedisResult<()>>())
            .await;
        assert_eq!(hung, None);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(redis.is_down(), "a hang counts like an error");
    }

    #[test]
    fn a_bad_url_is_a_setup_error() {
        let err = GuardedRedis::new("test", "not a url", Duration::from_millis(100), "x")
            .err()
            .unwrap();
        assert!(matches!(err, SetupError::Url(_)), "{err}");
    }
}
