//! The JWKS cache: the users service's public keys, fetched over gRPC (`GetJwks`) and kept.
//!
//! Verifying a token must not cost a call to users — that would make users a dependency of
//! every request and the gateway's latency its latency. So the key set is fetched once, cached,
//! and refreshed only when needed:
//!
//! * **at start** (in the background: a gateway whose users service is down still serves the
//!   catalog), and then **periodically**, to learn a rotated key before the first token signed
//!   with it arrives;
//! * **on an unknown key id**: the signer may have rotated. This refresh is **rate-limited**
//!   (at most one per `GATEWAY_JWKS_MIN_REFRESH`, one per second while no set could be loaded
//!   yet), because the kid comes from the token — from the attacker — and a stream of tokens
//!   with random kids must not become a stream of calls to users.
//!
//! Concurrent requests that meet the same unknown kid share one refresh (single flight): the
//! first takes the refresh lock and fetches, the rest wait for it and then find the key.
//!
//! **Merged, not replaced.** A fetched set is *added* to the keys already known; a key is
//! forgotten only once no fetch has listed it for `GATEWAY_JWKS_KEY_RETENTION` (24 h, longer
//! than any token lives). Replacing the set would log everyone out at every rotation: during a
//! roll-out, users replicas with the old and the new key answer in turn, and a set fetched from
//! a new replica that no longer lists the old key would make every token it signed unknown,
//! although each is valid until it expires.

use std::{
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use contracts::users::JsonWebKey;
use futures::future::BoxFuture;
use resilience::Clock;
use tonic::Status;

use super::verify::{Expectations, KeySet, Principal, TokenError, key_id, verify};

/// Retry interval while the cache has never been filled.
const RETRY_WHILE_EMPTY: Duration = Duration::from_secs(1);

/// Fetches the current JWKS.
pub type Fetch = Arc<dyn Fn() -> BoxFuture<'static, Result<Vec<JsonWebKey>, Status>> + Send + Sync>;

/// Why a token could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// The token is bad: 401.
    #[error(transparent)]
    Refused(#[from] TokenError),
    /// No key set could be loaded, so no token can be checked: 503, not 401, because the
    /// client did nothing wrong.
    #[error("cannot verify tokens right now: {0}")]
    Unavailable(String),
}

pub struct KeyCache {
    fetch: Fetch,
    keys: RwLock<Arc<KeySet>>,
    refresh: tokio::sync::Mutex<Attempts>,
    min_interval: Duration,
    /// How long a key stays after the last fetch that listed it.
    retention: Duration,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Attempts {
    /// The last refresh asked for by an unknown kid (the periodic ones do not count: they are
    /// not attacker-triggered).
    last_on_demand: Option<Instant>,
    last_failed: bool,
    /// When each known key was last listed by a fetch.
    last_listed: std::collections::HashMap<String, Instant>,
}

impl KeyCache {
    pub fn new(
        fetch: Fetch,
        min_interval: Duration,
        retention: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            fetch,
            keys: RwLock::default(),
            refresh: tokio::sync::Mutex::default(),
            min_interval,
            retention,
            clock,
        }
    }

    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Verifies a token, refreshing the key set once if its kid is unknown.
    pub async fn verify(
        &self,
        token: &str,
        expect: &Expectations,
    ) -> Result<Principal, AuthFailure> {
        let kid = key_id(token)?;
        let mut keys = self.current();
        if !keys.contains(&kid) {
            self.refresh_for(&kid).await;
            keys = self.current();
            if keys.is_empty() {
                return Err(AuthFailure::Unavailable(
                    "the signing keys could not be loaded".to_owned(),
                ));
            }
        }
        Ok(verify(token, &keys, expect)?)
    }

    /// Refreshes for an unknown kid, unless the rate limit says it is too soon.
    async fn refresh_for(&self, kid: &str) {
        let mut attempts = self.refresh.lock().await;
        if self.current().contains(kid) {
            return; // refreshed by whoever held the lock before us
        }
        let now = self.clock.now();
        let interval = if attempts.last_failed || self.current().is_empty() {
            RETRY_WHILE_EMPTY.min(self.min_interval)
        } else {
            self.min_interval
        };
        if attempts
            .last_on_demand
            .is_some_and(|last| now < last + interval)
        {
            metrics::counter!("gateway_jwks_refreshes_total", "outcome" => "throttled")
                .increment(1);
            tracing::debug!(kid, "unknown key id; JWKS refresh throttled");
            return;
        }
        tracing::info!(kid, "unknown key id; refreshing the JWKS");
        attempts.last_on_demand = Some(now);
        // A failure is logged and counted inside; the caller sees the key still missing.
        let _ = self.fetch_into(&mut attempts).await;
    }

    /// Fetches now, ignoring the rate limit (start-up and the periodic refresh).
    pub async fn refresh_now(&self) -> Result<(), Status> {
        let mut attempts = self.refresh.lock().await;
        self.fetch_into(&mut attempts).await
    }

    async fn fetch_into(&self, attempts: &mut Attempts) -> Result<(), Status> {
        match (self.fetch)().await {
            Ok(jwks) => {
                let fetched = KeySet::from_jwks(&jwks);
                let now = self.clock.now();
                for kid in fetched.kids() {
                    attempts.last_listed.insert(kid.to_owned(), now);
                }
                let retention = self.retention;
                attempts
                    .last_listed
                    .retain(|_, listed| now.saturating_duration_since(*listed) < retention);
                let listed = &attempts.last_listed;
                let set = self
                    .current()
                    .merged(&fetched)
                    .without(|kid| !listed.contains_key(kid));
                attempts.last_failed = set.is_empty();
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
                metrics::counter!("gateway_jwks_refreshes_total", "outcome" => "ok").increment(1);
                Ok(())
            }
            Err(status) => {
                attempts.last_failed = true;
                metrics::counter!("gateway_jwks_refreshes_total", "outcome" => "error")
                    .increment(1);
                tracing::warn!(code = ?status.code(), message = status.message(), "JWKS fetch failed");
                Err(status)
            }
        }
    }

    /// Whether any key is loaded.
    pub fn is_loaded(&self) -> bool {
        !self.current().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    };

    use resilience::ManualClock;

    use super::*;
    use crate::auth::testing::{AUDIENCE, ISSUER, Signer};

    struct Users {
        keys: Mutex<Vec<JsonWebKey>>,
        down: Mutex<bool>,
        calls: AtomicU32,
    }

    fn cache(users: &Arc<Users>, clock: &ManualClock) -> KeyCache {
        let users = Arc::clone(users);
        let fetch: Fetch = Arc::new(move || {
            let users = Arc::clone(&users);
            Box::pin(async move {
                users.calls.fetch_add(1, Ordering::SeqCst);
                if *users.down.lock().unwrap() {
                    return Err(Status::unavailable("down"));
                }
                Ok(users.keys.lock().unwrap().clone())
            })
        });
        KeyCache::new(
            fetch,
            Duration::from_secs(30),
            Duration::from_secs(3600),
            Arc::new(clock.clone()),
        )
    }

    fn expect() -> Expectations {
        Expectations {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
        }
    }

    fn users(keys: Vec<JsonWebKey>) -> Arc<Users> {
        Arc::new(Users {
            keys: Mutex::new(keys),
            down: Mutex::new(false),
            calls: AtomicU32::new(0),
        })
    }

    #[tokio::test]
    async fn keys_are_fetched_once_and_reused() {
        let k1 = Signer::new();
        let users = users(vec![k1.jwk()]);
        let cache = cache(&users, &ManualClock::new());
        for _ in 0..5 {
            cache
                .verify(&k1.sign(&k1.claims()), &expect())
                .await
                .unwrap();
        }
        assert_eq!(users.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_rotated_key_is_learned_by_a_rate_limited_refresh() {
        let (k1, k2, k3) = (Signer::new(), Signer::new(), Signer::new());
        let users = users(vec![k1.jwk()]);
        let clock = ManualClock::new();
        let cache = cache(&users, &clock);
        cache.refresh_now().await.unwrap();
        // The signer rotates to k2: the first k2 token triggers one refresh and verifies.
        users.keys.lock().unwrap().push(k2.jwk());
        cache
            .verify(&k2.sign(&k2.claims()), &expect())
            .await
            .unwrap();
        assert_eq!(users.calls.load(Ordering::SeqCst), 2);
        // Unknown kids right after (an attacker's random kids, or k3 too early): no new calls.
        users.keys.lock().unwrap().push(k3.jwk());
        for _ in 0..10 {
            let error = cache
                .verify(&k3.sign(&k3.claims()), &expect())
                .await
                .unwrap_err();
            assert_eq!(
                error,
                AuthFailure::Refused(TokenError::UnknownKey(k3.kid().into()))
            );
        }
        assert_eq!(users.calls.load(Ordering::SeqCst), 2);
        clock.advance(Duration::from_secs(30));
        cache
            .verify(&k3.sign(&k3.claims()), &expect())
            .await
            .unwrap();
        assert_eq!(users.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn without_any_keys_tokens_are_unverifiable_not_invalid_and_retried_each_second() {
        let k1 = Signer::new();
        let users = users(vec![k1.jwk()]);
        *users.down.lock().unwrap() = true;
        let clock = ManualClock::new();
        let cache = cache(&users, &clock);
        let token = k1.sign(&k1.claims());
        assert!(matches!(
            cache.verify(&token, &expect()).await,
            Err(AuthFailure::Unavailable(_))
        ));
        assert!(matches!(
            cache.verify(&token, &expect()).await,
            Err(AuthFailure::Unavailable(_))
        ));
        assert_eq!(users.calls.load(Ordering::SeqCst), 1, "throttled");
        *users.down.lock().unwrap() = false;
        clock.advance(Duration::from_secs(1));
        cache.verify(&token, &expect()).await.unwrap();
        assert!(cache.is_loaded());
    }

    #[tokio::test]
    async fn a_key_that_leaves_the_set_stays_accepted_for_the_retention() {
        let (old, new) = (Signer::new(), Signer::new());
        let users = users(vec![old.jwk()]);
        let clock = ManualClock::new();
        let cache = cache(&users, &clock);
        cache.refresh_now().await.unwrap();
        let old_token = old.sign(&old.claims());
        // The signer rotated and no longer lists the old key (a replica without it answered).
        *users.keys.lock().unwrap() = vec![new.jwk()];
        cache
            .verify(&new.sign(&new.claims()), &expect())
            .await
            .unwrap();
        cache.verify(&old_token, &expect()).await.unwrap();
        // Past the retention, a fetch that still does not list it drops it.
        clock.advance(Duration::from_secs(3601));
        cache.refresh_now().await.unwrap();
        assert_eq!(
            cache.verify(&old_token, &expect()).await.unwrap_err(),
            AuthFailure::Refused(TokenError::UnknownKey(old.kid().into()))
        );
    }

    #[tokio::test]
    async fn header_problems_never_trigger_a_fetch() {
        let users = users(vec![]);
        let cache = cache(&users, &ManualClock::new());
        assert!(cache.verify("garbage", &expect()).await.is_err());
        assert_eq!(users.calls.load(Ordering::SeqCst), 0);
    }
}
