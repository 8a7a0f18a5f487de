//! The catalog cache: **cache-aside** in Redis, kept correct by invalidation.
//!
//! Catalog reads (`GetProduct`, `ListProducts`) vastly outnumber catalog writes, so they are
//! served from Redis when possible. *Cache-aside* means the application, not the cache, owns the
//! logic: look in Redis; on a miss read Postgres and put the result in Redis; on every write
//! change Postgres first and then delete what Redis holds. Postgres stays the only source of
//! truth and Redis may be lost at any moment.
//!
//! **Keys** are namespaced by a configurable, versioned prefix (`inventory:v1`; bump the version
//! when the cached format changes, and old entries are simply never read again):
//!
//! | key | holds |
//! |---|---|
//! | `{prefix}:product:{sku}` | one `shop.inventory.v1.Product`, protobuf-encoded |
//! | `{prefix}:generation` | the catalog generation: a counter every write increments |
//! | `{prefix}:page:{generation}:{query}` | one `ListProductsResponse`, protobuf-encoded |
//!
//! **Invalidation** happens after the transaction commits (invalidating before would let a
//! concurrent reader cache the old row again) and does two things atomically (a Lua script): delete
//! the changed products' keys, and increment the generation. List pages cannot be deleted one by
//! one — any write may change any page — so they are keyed by generation instead: incrementing
//! it makes every cached page unreachable at once, and their TTL cleans them up.
//!
//! **No stale fills.** The classic cache-aside race: a reader loads the old row, a writer commits
//! and invalidates, then the reader stores the old row — stale until the TTL. Here a reader
//! notes the generation *before* reading Postgres and stores its result with a small Lua script
//! that writes only if the generation is still the same; any write in between bumped it, so the
//! outdated result is dropped. (A single Redis is assumed; on Redis Cluster the generation and
//! the entry would need one hash slot, e.g. a `{prefix}` hash tag.)
//!
//! **TTL with jitter.** Entries live `INVENTORY_CACHE_TTL` ±20%, so entries written together do
//! not all expire together (a synchronised expiry is a stampede on a timer). The TTL also bounds
//! how long anything missed by invalidation can be served.
//!
//! **Redis is optional.** Every command goes through [`redis_guard::GuardedRedis`]: a short
//! deadline (`INVENTORY_CACHE_TIMEOUT`, 250ms) and a circuit breaker that leaves Redis alone for
//! a second after a failure, so a dead cache costs each read nothing rather than a timeout. Any
//! error, timeout or open breaker makes the read go to Postgres and is counted in
//! `inventory_cache_requests_total{result="error"}`; the outage is logged once when it starts and
//! once when it ends. An invalidation that fails is remembered and retried before the cache is
//! trusted again: until it succeeds, reads bypass Redis, so entries that missed their
//! invalidation during an outage are never served afterwards. Redis is deliberately **not** part
//! of `/readyz`: a replica without its cache is slower, not broken, and taking every replica out
//! of rotation because the cache is down would turn a degradation into an outage.
//!
//! **Failover.** With Redis Sentinel (`INVENTORY_REDIS_SENTINELS`, `INVENTORY_REDIS_MASTER`) the
//! guard finds the primary through the sentinels and follows a failover to the new one; reads
//! go to Postgres while it switches, as in any outage. Redis replicates asynchronously, so an
//! invalidation the old primary acknowledged just before it failed (or after the promotion,
//! before its demotion) may never have reached the new primary, which then still holds the
//! entry it deleted. Which ones were lost cannot be known, so on a new primary the cache
//! **starts over**: before it trusts anything there, it makes the generation jump by a random
//! amount (no page key, and no fill keyed to a generation read earlier, can match it again) and
//! deletes every product entry (`SCAN` + `UNLINK`, once per failover). Any answer that came from
//! a primary the cache has not started over on is discarded and read from Postgres instead.
//! What remains is another replica of this service still writing to a demoted old primary that
//! it has not yet found to be demoted; its invalidations are lost until it follows, and
//! `INVENTORY_CACHE_TTL` bounds that, as it bounds anything else missed.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use redis_guard::{GuardedRedis, RedisTarget, SetupError};

use crate::domain::{ListQuery, Sku};

/// Every command the cache sends, its scripts' included: the grant of its Redis ACL user
/// (`redis_guard::acl`), on keys under its prefix.
pub const REDIS_COMMANDS: &[&str] = &[
    "get",
    "evalsha",
    "eval",
    "script|load",
    "set",
    "incr",
    "del",
    // Starting over on a new primary (see the module docs).
    "incrby",
    "scan",
    "unlink",
];

/// Stores `ARGV[2]` at `KEYS[2]` for `ARGV[3]` ms, only if the generation at `KEYS[1]` still is
/// `ARGV[1]` (the value seen before Postgres was read).
const FILL_IF_CURRENT: &str = r"
local current = redis.call('GET', KEYS[1]) or '0'
if current == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Increments the generation at `KEYS[1]` and deletes the entries `KEYS[2..]`, atomically.
///
/// A script rather than `MULTI`/`EXEC`: as atomic, one round trip, and a refused command comes
/// back as one plain error (redis-rs 1.8 panics in debug builds when a server refuses `MULTI`
/// itself, e.g. for lack of ACL permissions).
const INVALIDATE: &str = r"
redis.call('INCR', KEYS[1])
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
return 1
";

/// What a cache lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Hit(Vec<u8>),
    Miss,
    /// Redis failed, timed out, is resting after a failure, or has invalidations outstanding.
    Unavailable,
}

#[derive(Clone)]
pub struct CatalogCache {
    inner: Arc<Inner>,
}

struct Inner {
    redis: GuardedRedis,
    prefix: String,
    ttl: Duration,
    fill: redis::Script,
    invalidate: redis::Script,
    pending: Mutex<Pending>,
}

/// Invalidations that could not be applied yet.
#[derive(Default)]
struct Pending {
    keys: BTreeSet<String>,
    /// Generation bumps asked for and applied: outstanding while `requested > applied`.
    requested: u64,
    applied: u64,
    /// The guard's [`GuardedRedis::primary_moves`] the cache has started over for: while the
    /// guard's count is higher, the current primary is not trusted.
    started_over_for: u64,
}

impl Pending {
    /// No invalidation outstanding.
    fn is_settled(&self) -> bool {
        self.keys.is_empty() && self.requested == self.applied
    }
}

impl CatalogCache {
    /// Sets up the connection lazily: nothing is dialled until the first read, so the service
    /// starts whether or not Redis is up.
    pub fn new(
        target: &RedisTarget,
        prefix: &str,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        let redis = GuardedRedis::new(
            "catalog cache",
            target,
            timeout,
            "catalog reads go to Postgres",
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                redis,
                prefix: prefix.to_owned(),
                ttl,
                fill: redis::Script::new(FILL_IF_CURRENT),
                invalidate: redis::Script::new(INVALIDATE),
                pending: Mutex::default(),
            }),
        })
    }

    pub fn product_key(&self, sku: &Sku) -> String {
        format!("{}:product:{sku}", self.inner.prefix)
    }

    pub fn page_key(&self, generation: u64, query: &ListQuery) -> String {
        format!(
            "{}:page:{generation}:{}",
            self.inner.prefix,
            query.cache_key()
        )
    }

    fn generation_key(&self) -> String {
        format!("{}:generation", self.inner.prefix)
    }

    /// Looks `key` up and counts the outcome under `kind` (`product` or `page`).
    pub async fn lookup(&self, key: &str, kind: &'static str) -> Lookup {
        let found = match self.settle_pending().await {
            Some(moves) => {
                let mut get = redis::cmd("GET");
                get.arg(key);
                let found = self
                    .inner
                    .redis
                    .run("GET", |mut conn| async move {
                        get.query_async::<Option<Vec<u8>>>(&mut conn).await
                    })
                    .await;
                found.filter(|_| self.on_trusted_primary(moves))
            }
            None => None,
        };
        let lookup = match found {
            Some(Some(bytes)) => Lookup::Hit(bytes),
            Some(None) => Lookup::Miss,
            None => Lookup::Unavailable,
        };
        record(kind, &lookup);
        lookup
    }

    /// The current catalog generation (0 before the first write), or `None` when Redis cannot
    /// be used.
    pub async fn generation(&self) -> Option<u64> {
        let moves = self.settle_pending().await?;
        let mut get = redis::cmd("GET");
        get.arg(self.generation_key());
        self.inner
            .redis
            .run("GET", |mut conn| async move {
                get.query_async::<Option<u64>>(&mut conn).await
            })
            .await
            .filter(|_| self.on_trusted_primary(moves))
            .map(Option::unwrap_or_default)
    }

    /// Whether a command just run went to the primary the cache had settled on before it (the
    /// guard counts a move before the first command on a new primary runs).
    fn on_trusted_primary(&self, moves: u64) -> bool {
        self.inner.redis.primary_moves() == moves
    }

    /// Stores `value` at `key` unless the catalog changed since `generation` was read.
    pub async fn fill(&self, generation: u64, key: &str, value: &[u8]) {
        let ttl = jittered(self.inner.ttl, rand::random::<f64>());
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut invocation = self.inner.fill.prepare_invoke();
        invocation
            .key(self.generation_key())
            .key(key)
            .arg(generation)
            .arg(value)
            .arg(ttl_ms);
        let stored = self
            .inner
            .redis
            .run("fill", |mut conn| async move {
                invocation.invoke_async::<i64>(&mut conn).await
            })
            .await;
        if stored == Some(0) {
            tracing::debug!(key, "catalog changed during the read; result not cached");
        }
    }

    /// Forgets what the cache holds about `skus` and every cached list page. Call it after the
    /// transaction that changed them has committed. Never fails: an invalidation Redis cannot
    /// take now is kept and retried before the next lookup.
    pub async fn invalidate(&self, skus: &[Sku]) {
        {
            let mut pending = self.pending();
            pending
                .keys
                .extend(skus.iter().map(|sku| self.product_key(sku)));
            pending.requested += 1;
        }
        self.settle_pending().await;
    }

    /// Starts over on a new primary and applies outstanding invalidations. When nothing is
    /// outstanding, the guard's primary moves the cache is consistent with; `None` otherwise.
    async fn settle_pending(&self) -> Option<u64> {
        let moves = self.inner.redis.primary_moves();
        // The two slow paths are boxed: they are rare, and inlining their futures into every
        // lookup's would make the futures that contain a lookup (up to a whole service spawned
        // in another crate's tests) deeper than the compiler's type-depth limit.
        if moves != self.pending().started_over_for {
            Box::pin(self.start_over()).await?;
            let mut pending = self.pending();
            pending.started_over_for = pending.started_over_for.max(moves);
        }
        if self.pending().is_settled() {
            return Some(moves);
        }
        Box::pin(self.apply_invalidations()).await.then_some(moves)
    }

    /// Makes everything cached before a failover unreachable (see the module docs): the
    /// generation jumps, then every product entry is deleted. In that order, so a fill racing
    /// with it either finds the generation changed or is already there for the scan to find.
    async fn start_over(&self) -> Option<()> {
        let jump = u64::from(rand::random::<u32>()) + 1;
        let mut incr = redis::cmd("INCRBY");
        incr.arg(self.generation_key()).arg(jump);
        self.inner
            .redis
            .run("start over", |mut conn| async move {
                incr.query_async::<u64>(&mut conn).await
            })
            .await?;
        let pattern = format!("{}:product:*", glob_escaped(&self.inner.prefix));
        let mut cursor = 0_u64;
        let mut deleted = 0_usize;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500);
            let (next, keys) = self
                .inner
                .redis
                .run("start over", |mut conn| async move {
                    scan.query_async::<(u64, Vec<String>)>(&mut conn).await
                })
                .await?;
            if !keys.is_empty() {
                deleted += keys.len();
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(&keys);
                self.inner
                    .redis
                    .run("start over", |mut conn| async move {
                        unlink.query_async::<u64>(&mut conn).await
                    })
                    .await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        tracing::info!(
            deleted,
            "catalog cache started over on a new Redis primary: invalidations may have been lost"
        );
        Some(())
    }

    /// Applies outstanding invalidations; true when none are left.
    async fn apply_invalidations(&self) -> bool {
        let (keys, requested) = {
            let pending = self.pending();
            if pending.is_settled() {
                return true;
            }
            (
                pending.keys.iter().cloned().collect::<Vec<_>>(),
                pending.requested,
            )
        };
        let mut invocation = self.inner.invalidate.prepare_invoke();
        invocation.key(self.generation_key());
        for key in &keys {
            invocation.key(key);
        }
        let applied = self
            .inner
            .redis
            .run("invalidate", |mut conn| async move {
                invocation.invoke_async::<i64>(&mut conn).await
            })
            .await
            .is_some();
        metrics::counter!(
            "inventory_cache_invalidations_total",
            "result" => if applied { "ok" } else { "error" },
        )
        .increment(1);
        if !applied {
            return false;
        }
        let mut pending = self.pending();
        for key in &keys {
            pending.keys.remove(key);
        }
        pending.applied = pending.applied.max(requested);
        pending.is_settled()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts one lookup: `inventory_cache_requests_total{kind, result="hit|miss|error"}`. The hit
/// ratio on the dashboard is `hit / (hit + miss + error)`.
pub fn record(kind: &'static str, lookup: &Lookup) {
    let result = match lookup {
        Lookup::Hit(_) => "hit",
        Lookup::Miss => "miss",
        Lookup::Unavailable => "error",
    };
    metrics::counter!("inventory_cache_requests_total", "kind" => kind, "result" => result)
        .increment(1);
}

/// `text` with Redis's glob characters escaped, for a `SCAN MATCH` pattern.
fn glob_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `ttl` scaled by a factor in [0.8, 1.2): `unit` is uniform in [0, 1).
fn jittered(ttl: Duration, unit: f64) -> Duration {
    ttl.mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttl_varies_by_at_most_twenty_percent() {
        let ttl = Duration::from_secs(60);
        assert_eq!(jittered(ttl, 0.0), Duration::from_secs(48));
        assert_eq!(jittered(ttl, 0.5), Duration::from_secs(60));
        assert!(jittered(ttl, 0.999_999) <= Duration::from_secs(72));
        assert_eq!(jittered(ttl, 7.0), Duration::from_secs(72), "clamped");
        for _ in 0..1000 {
            let value = jittered(ttl, rand::random::<f64>());
            assert!((Duration::from_secs(48)..=Duration::from_secs(72)).contains(&value));
        }
    }

    #[test]
    fn a_prefix_is_matched_literally() {
        assert_eq!(glob_escaped("inventory:v1"), "inventory:v1");
        assert_eq!(glob_escaped(r"a*b?c[d]\e"), r"a\*b\?c\[d\]\\e");
    }

    #[tokio::test]
    async fn keys_are_namespaced_by_the_prefix() {
        let cache = CatalogCache::new(
            &RedisTarget::Url("redis://127.0.0.1:1".to_owned()),
            "test:v9",
            Duration::from_secs(60),
            Duration::from_millis(50),
        )
        .unwrap();
        let sku = Sku::parse("MUG-1").unwrap();
        assert_eq!(cache.product_key(&sku), "test:v9:product:MUG-1");
        assert_eq!(cache.generation_key(), "test:v9:generation");
        let query = ListQuery::parse(0, "", "").unwrap();
        assert_eq!(cache.page_key(7, &query), "test:v9:page:7:20:-:-");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_miss_for_the_caller_and_invalidations_wait() {
        let cache = CatalogCache::new(
            &RedisTarget::Url("redis://127.0.0.1:1".to_owned()),
            "test:v1",
            Duration::from_secs(60),
            Duration::from_millis(100),
        )
        .unwrap();
        let sku = Sku::parse("MUG-1").unwrap();
        assert_eq!(
            cache.lookup(&cache.product_key(&sku), "product").await,
            Lookup::Unavailable
        );
        assert_eq!(cache.generation().await, None);
        cache.invalidate(std::slice::from_ref(&sku)).await;
        let pending = cache.pending();
        assert!(pending.keys.contains("test:v1:product:MUG-1"));
        assert!(pending.requested > pending.applied);
    }
}
