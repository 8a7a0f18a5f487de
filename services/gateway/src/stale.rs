//! The last good answer, kept in memory to serve while its source is down: a **fallback** for
//! the circuit breaker.
//!
//! When inventory is unavailable (its breaker is open, or every replica failed), a catalog page
//! from a few minutes ago is far more useful to a shopper than a 503: prices and stock may have
//! moved, but the checkout re-prices and reserves against inventory anyway, so a stale listing
//! cannot sell what is not there. Such a response is marked — `Warning: 110 - "Response is
//! Stale"` (RFC 7234), `X-Ferroshop-Stale: true` and `Age` — so clients can say "prices may have
//! changed". Entries older than `GATEWAY_STALE_MAX_AGE` are not served; the cache is bounded
//! (oldest entry evicted) and per replica, which is fine for a fallback.
//!
//! Only reads that are safe to serve stale use it: catalog pages and product details. An order's
//! status is never served stale — "PENDING" from five minutes ago would be a lie.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use actix_web::{HttpResponseBuilder, http::header};

/// A bounded map of recent good answers.
pub struct LastGood<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
    capacity: usize,
    max_age: Duration,
}

impl<T: Clone> LastGood<T> {
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            max_age,
        }
    }

    pub fn remember(&self, key: String, value: T) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (stored, _))| *stored)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// The remembered value and its age, if it is not too old.
    pub fn recall(&self, key: &str) -> Option<(T, Duration)> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (stored, value) = entries.get(key)?;
        let age = stored.elapsed();
        (age <= self.max_age).then(|| (value.clone(), age))
    }
}

/// Marks a response as served from the fallback.
pub fn mark_stale(response: &mut HttpResponseBuilder, age: Duration) {
    response
        .insert_header((header::WARNING, r#"110 - "Response is Stale""#))
        .insert_header(("x-ferroshop-stale", "true"))
        .insert_header((header::AGE, age.as_secs().to_string()));
    metrics::counter!("gateway_stale_responses_total").increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_recalled_until_too_old_and_the_oldest_is_evicted() {
        let cache = LastGood::new(2, Duration::from_secs(60));
        cache.remember("a".into(), 1);
        cache.remember("b".into(), 2);
        assert_eq!(cache.recall("a").map(|(v, _)| v), Some(1));
        cache.remember("c".into(), 3);
        assert_eq!(cache.recall("a"), None, "oldest evicted");
        assert_eq!(cache.recall("c").map(|(v, _)| v), Some(3));
        cache.remember("b".into(), 20);
        assert_eq!(
            cache.recall("b").map(|(v, _)| v),
            Some(20),
            "replaced in place"
        );

        let expired = LastGood::new(2, Duration::ZERO);
        expired.remember("a".into(), 1);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(expired.recall("a"), None);
    }
}
