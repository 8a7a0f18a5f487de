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
//! (`gateway_rate_limit_fallbacks_total`). Redis is reached through [`redis_guard::GuardedRedis`],
//! the same guard the catalog cache uses: every command has the deadline, the outage is logged
//! once when it starts and once when it ends, and Redis is left alone for a second after a
//! failure (a circuit breaker), so that a dead Redis costs each request nothing rather than a
//! timeout. With Sentinel (`GATEWAY_REDIS_SENTINELS`) the guard also follows a failover to the
//! new primary; while it switches, the local limit applies as in any other outage.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, clock::Clock as _, middleware::StateInformationMiddleware,
};
use redis_guard::{GuardedRedis, RedisTarget, SetupError};

use super::gcra::{Decision, Gcra};

/// Every command the limiter sends, its script's included: the grant of its Redis ACL user
/// (`redis_guard::acl`), on keys under its prefix.
pub const REDIS_COMMANDS: &[&str] = &["evalsha", "eval", "script|load", "time", "get", "set"];

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
    redis: GuardedRedis,
    script: redis::Script,
    prefix: String,
    local: DefaultKeyedRateLimiter<String, StateInformationMiddleware>,
}

impl Limiter {
    /// Connects lazily: nothing is dialled until the first request, so the gateway starts
    /// whether or not Redis is up.
    pub fn new(
        gcra: Gcra,
        target: &RedisTarget,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        let redis = GuardedRedis::new(
            "rate limiter",
            target,
            timeout,
            "rate limits fall back to this replica",
        )?;
        let burst = NonZeroU32::new(gcra.burst).unwrap_or(NonZeroU32::MIN);
        let rate = NonZeroU32::new(gcra.per_minute).unwrap_or(NonZeroU32::MIN);
        let local = governor::RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
            .with_middleware::<StateInformationMiddleware>();
        Ok(Self {
            gcra,
            redis,
            script: redis::Script::new(GCRA_SCRIPT),
            prefix: prefix.to_owned(),
            local,
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
        let key = format!("{}:rl:{key}", self.prefix);
        let (interval, capacity) = (self.gcra.interval_us, self.gcra.capacity_us());
        let script = &self.script;
        let (allowed, backlog) = self
            .redis
            .run("rate limit", |mut connection| async move {
                let mut invocation = script.prepare_invoke();
                invocation.key(key).arg(interval).arg(capacity);
                invocation.invoke_async::<(u8, u64)>(&mut connection).await
            })
            .await?;
        Some(self.gcra.decision(allowed == 1, backlog))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn with_redis_unreachable_the_local_limit_applies() {
        // Port 1 on loopback: connection refused at once.
        let limiter = Limiter::new(
            Gcra::per_minute(60, 2),
            &RedisTarget::Url("redis://127.0.0.1:1".to_owned()),
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
