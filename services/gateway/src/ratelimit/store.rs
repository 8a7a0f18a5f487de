//! Where rate-limit state lives: Redis, shared by every gateway replica, with a local fallback.
//!
//! **Shared.** A limit of 300/min enforced by each of three replicas separately is really
//! 900/min, and a client that is refused by one replica retries on the next. So the state is in
//! Redis, and one Lua script per request does the whole GCRA step atomically (read, decide,
//! write) — no race between replicas, one round trip. The script reads the time from Redis
//! (`TIME`), not from the gateway, so replicas whose clocks disagree still agree on the limit.
//!
//! **Fail-open to a local limit.** If Redis is down or slow (`GATEWAY_REDIS_TIMEOUT`), refusing
//! every request would turn a cache outage into a full outage, and allowing everything would
//! remove the protection exactly when something is already wrong. Instead each replica enforces
//! the same limit **locally** (governor's in-memory GCRA): clients keep a limit, just not a shared
//! one (with N replicas a client may get up to N times its budget). Each such decision is counted
//! (`gateway_rate_limit_fallbacks_total`), the outage is logged once when it starts and once when
//! it ends, and Redis is left alone for a second after a failure so that a dead Redis costs each
//! request nothing rather than a timeout.

use std::{
    num::NonZeroU32,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use governor::{
    DefaultKeyedRateLimiter, Quota, clock::Clock as _, middleware::StateInformationMiddleware,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::gcra::{Decision, Gcra};

/// How long Redis is left alone after a failure.
const REST_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// GCRA in one atomic step. KEYS[1]: the client's key; ARGV[1]: T (µs); ARGV[2]: B·T (µs).
/// Returns {allowed, backlog µs} (see `gcra.rs`). Microsecond timestamps (about 1.8e15) are
/// exact in Lua's doubles, which hold every integer below 2^53 (9e15); the key expires, in
/// whole milliseconds rounded up, when the bucket is full again.
const GCRA_SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
if now < new_tat - capacity then
  return {0, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return {1, new_tat - now}
";

/// Which store decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Redis,
    Local,
}

impl Store {
    pub fn label(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Local => "local",
        }
    }
}

pub struct Limiter {
    gcra: Gcra,
    redis: ConnectionManager,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    local: DefaultKeyedRateLimiter<String, StateInformationMiddleware>,
    health: Mutex<RedisHealth>,
}

#[derive(Default)]
struct RedisHealth {
    resting_until: Option<Instant>,
    down: bool,
}

impl Limiter {
    /// Connects lazily: nothing is dialled until the first request, so the gateway starts
    /// whether or not Redis is up.
    pub fn new(
        gcra: Gcra,
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let redis = ConnectionManager::new_lazy_with_config(client, config)?;
        let burst = NonZeroU32::new(gcra.burst).unwrap_or(NonZeroU32::MIN);
        let rate = NonZeroU32::new(gcra.per_minute).unwrap_or(NonZeroU32::MIN);
        let local = governor::RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
            .with_middleware::<StateInformationMiddleware>();
        Ok(Self {
            gcra,
            redis,
            script: redis::Script::new(GCRA_SCRIPT),
            prefix: prefix.to_owned(),
            timeout,
            local,
            health: Mutex::default(),
        })
    }

    pub fn gcra(&self) -> &Gcra {
        &self.gcra
    }

    /// Decides for one request of the client `key` (`user:<id>` or `ip:<addr>`).
    pub async fn check(&self, key: &str) -> (Decision, Store) {
        if let Some(decision) = self.check_redis(key).await {
            return (decision, Store::Redis);
        }
        metrics::counter!("gateway_rate_limit_fallbacks_total").increment(1);
        (self.check_local(key), Store::Local)
    }

    async fn check_redis(&self, key: &str) -> Option<Decision> {
        if self
            .health()
            .resting_until
            .is_some_and(|until| Instant::now() < until)
        {
            return None;
        }
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("{}:rl:{key}", self.prefix))
            .arg(self.gcra.interval_us)
            .arg(self.gcra.capacity_us());
        let mut conn = self.redis.clone();
        let answer = tokio::time::timeout(self.timeout, async move {
            invocation.invoke_async::<(u8, u64)>(&mut conn).await
        })
        .await;
        let mut health = self.health();
        match answer {
            Ok(Ok((allowed, backlog))) => {
                if health.down {
                    tracing::info!("Redis is back: rate limits are shared again");
                }
                *health = RedisHealth::default();
                Some(self.gcra.decision(allowed == 1, backlog))
            }
            failed => {
                if !health.down {
                    let error = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => format!("no answer within {:?}", self.timeout),
                    };
                    tracing::warn!(%error, "Redis unavailable: rate limits fall back to this replica");
                }
                health.down = true;
                health.resting_until = Some(Instant::now() + REST_AFTER_FAILURE);
                None
            }
        }
    }

    /// The same limit, in this replica's memory.
    fn check_local(&self, key: &str) -> Decision {
        let interval = Duration::from_micros(self.gcra.interval_us);
        match self.local.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: self.gcra.burst,
                    remaining,
                    retry_after: Duration::ZERO,
                    reset_after: interval * self.gcra.burst.saturating_sub(remaining),
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.local.clock().now());
                Decision {
                    allowed: false,
                    limit: self.gcra.burst,
                    remaining: 0,
                    retry_after: wait,
                    reset_after: wait + interval * self.gcra.burst.saturating_sub(1),
                }
            }
        }
    }

    /// Forgets local state of clients that are idle (their buckets are full anyway).
    pub fn prune_local(&self) {
        self.local.retain_recent();
        self.local.shrink_to_fit();
    }

    fn health(&self) -> std::sync::MutexGuard<'_, RedisHealth> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn with_redis_unreachable_the_local_limit_applies() {
        // Port 1 on loopback: connection refused at once.
        let limiter = Limiter::new(
            Gcra::per_minute(60, 2),
            "redis://127.0.0.1:1",
            "test",
            Duration::from_millis(200),
        )
        .unwrap();
        let mut decisions = Vec::new();
        for _ in 0..3 {
            decisions.push(limiter.check("ip:127.0.0.1").await);
        }
        assert!(decisions.iter().all(|(_, store)| *store == Store::Local));
        let allowed: Vec<bool> = decisions.iter().map(|(d, _)| d.allowed).collect();
        assert_eq!(allowed, [true, true, false]);
        assert_eq!(decisions[0].0.remaining, 1);
        let refused = decisions[2].0;
        assert!(
            refused.retry_after > Duration::from_millis(900),
            "{refused:?}"
        );
        assert_eq!(refused.retry_after_secs(), 1);
        // Another client has its own bucket.
        assert!(limiter.check("ip:10.0.0.1").await.0.allowed);
    }
}
