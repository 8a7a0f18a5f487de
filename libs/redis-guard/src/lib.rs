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
//! Each component connects as an ACL user of its own, limited to its key prefix and commands
//! ([`acl`]); the URL carries the user (`redis://<user>:<password>@host`).
//!
//! The outage is logged once when it starts (a warning naming what degrades) and once when it
//! ends; the breaker's own series (`circuit_breaker_state{breaker="redis-<name>"}` and
//! friends) show it on dashboards.
//!
//! # One server, or the primary Sentinel names
//!
//! Where Redis is comes from [`RedisTarget`] (module [`target`]): either one URL
//! (`<SVC>_REDIS_URL`), or Redis Sentinel (`<SVC>_REDIS_SENTINELS` and `<SVC>_REDIS_MASTER`,
//! which take precedence over the URL when both are set). With one URL the connection manager
//! reconnects to that address by itself, and that is all there is to it.
//!
//! With Sentinel, the primary moves. A failover promotes a replica, and the old primary either is
//! gone (connections are refused) or comes back demoted to a replica, where it still answers
//! reads but refuses every write with `READONLY`. A connection manager reconnects only to the
//! address it was built with, so on its own it would stay on the demoted node forever: reads
//! would keep working and every write would fail. The guard therefore follows the failover
//! itself, in four steps that reuse the outage machinery above:
//!
//! 1. **Ask.** The first command asks the sentinels (in the configured order, the first that
//!    answers wins) for the primary of `<SVC>_REDIS_MASTER`, checks with `ROLE` that the server
//!    they name is a primary, and builds a connection manager for it. Commands that arrive while
//!    the sentinels are being asked wait for that one answer.
//! 2. **Fail.** When the primary dies or is demoted, commands fail: a refused or broken
//!    connection, a `READONLY` error, a missed deadline. Each is an ordinary failure: the breaker
//!    opens and callers take their fallback, so requests keep being served while Redis switches.
//! 3. **Forget.** Every failure also forgets the primary the command used (a failure on an older
//!    primary never forgets a newer one). Any error is treated alike, as the breaker does: a
//!    spurious re-ask costs one Sentinel round trip, a missed one costs writes.
//! 4. **Ask again.** After [`REST_AFTER_FAILURE`] the breaker lets one probe through; with no
//!    primary known it asks the sentinels again (within the same command deadline). While the
//!    sentinels still name the old primary (they need `down-after-milliseconds` to notice a dead
//!    one) the probe fails and the breaker rests again; once they name the new primary the probe
//!    succeeds there, the breaker closes, and everything goes to the new primary.
//!
//! So a failover costs the fallback for about as long as Sentinel takes to promote a replica,
//! plus at most one rest. What is written to the old primary between the promotion and its
//! demotion is lost, as with any Redis failover: for a rate limiter that is harmless. A user
//! for whom a lost write matters (the catalog cache: a lost *invalidation* leaves an entry that
//! is no longer true) watches [`GuardedRedis::primary_moves`] and starts over on a new primary.

pub mod acl;
mod route;
pub mod target;

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

use route::Route;
pub use target::{RedisTarget, SentinelAddr, SettingError};

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
    /// The fixed connection, or the primary Sentinel named (see the crate docs).
    route: Route,
    /// Opens on the first failure, probes after [`REST_AFTER_FAILURE`].
    breaker: CircuitBreaker,
    /// The deadline of one command, Sentinel lookup included.
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
    /// The URL does not parse, or the sentinel list is unusable.
    #[error("invalid Redis URL or sentinels: {0}")]
    Url(#[from] redis::RedisError),
    /// The breaker settings are unusable (a zero timeout).
    #[error("invalid Redis guard: {0}")]
    Breaker(#[from] resilience::InvalidConfig),
}

impl GuardedRedis {
    /// A guard for `user` (`"catalog cache"`) on the Redis `target` names; `fallback` says what
    /// the component does without Redis (`"catalog reads go to Postgres"`), for the outage
    /// warning. Nothing is dialled, and no sentinel asked, until the first command.
    pub fn new(
        user: &'static str,
        target: &RedisTarget,
        timeout: Duration,
        fallback: &'static str,
    ) -> Result<Self, SetupError> {
        Self::with_clock(user, target, timeout, fallback, Arc::new(SystemClock))
    }

    /// [`GuardedRedis::new`] with the breaker reading time from `clock` (tests).
    pub fn with_clock(
        user: &'static str,
        target: &RedisTarget,
        timeout: Duration,
        fallback: &'static str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SetupError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(REST_AFTER_FAILURE);
        let route = match target {
            RedisTarget::Url(url) => Route::fixed(url, config)?,
            RedisTarget::Sentinel { sentinels, master } => {
                Route::sentinel(sentinels, master, config)?
            }
        };
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
                route,
                breaker,
                timeout,
                user,
                fallback,
                down: AtomicBool::new(false),
            }),
        })
    }

    /// Runs one command: `command` gets a handle on the shared connection (through Sentinel: the
    /// current primary's). `None` when Redis failed, missed the deadline, or is being left alone
    /// after a failure; the caller then takes its fallback. `operation` names the command in
    /// logs (`"GET"`, `"invalidate"`).
    pub async fn run<T, F, Fut>(&self, operation: &'static str, command: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let inner = &self.inner;
        let outcome = inner
            .breaker
            .call(
                || async move {
                    // One deadline for the whole command, a Sentinel lookup included.
                    let deadline = tokio::time::Instant::now() + inner.timeout;
                    let late = || format!("no answer within {:?}", inner.timeout);
                    let leased = tokio::time::timeout_at(deadline, inner.route.connection())
                        .await
                        .map_err(|_| late())?
                        .map_err(|err| err.to_string())?;
                    let outcome =
                        tokio::time::timeout_at(deadline, command(leased.connection.clone())).await;
                    match outcome {
                        Ok(Ok(value)) => Ok(value),
                        failed => {
                            inner.route.forget(&leased);
                            Err(match failed {
                                Ok(Err(err)) => err.to_string(),
                                _ => late(),
                            })
                        }
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

    /// How many times commands have moved to another primary (failovers followed through
    /// Sentinel; always 0 with one URL). The count grows before the first command on the new
    /// primary runs, so a value read after a command that equals the one read before it means
    /// the command ran where the caller's earlier commands did.
    pub fn primary_moves(&self) -> u64 {
        self.inner.route.moves()
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
            &RedisTarget::Url("redis://127.0.0.1:1".to_owned()),
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
        let target = RedisTarget::Url("not a url".to_owned());
        let err = GuardedRedis::new("test", &target, Duration::from_millis(100), "x")
            .err()
            .unwrap();
        assert!(matches!(err, SetupError::Url(_)), "{err}");
    }

    #[tokio::test]
    async fn with_no_sentinel_answering_a_command_fails_within_its_deadline() {
        let target = RedisTarget::Sentinel {
            sentinels: vec![SentinelAddr {
                host: "127.0.0.1".to_owned(),
                port: 1,
            }],
            master: "test".to_owned(),
        };
        let redis = GuardedRedis::with_clock(
            "test",
            &target,
            Duration::from_millis(100),
            "tests fall back",
            Arc::new(ManualClock::new()),
        )
        .unwrap();
        let started = tokio::time::Instant::now();
        let ping = redis
            .run("PING", |mut connection| async move {
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
            })
            .await;
        assert_eq!(ping, None);
        assert!(redis.is_down());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
