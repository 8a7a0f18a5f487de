//! What every handler and middleware shares: the upstreams, the key cache, the limiters, the
//! fallback caches. Built once per process and handed to each actix worker as `web::Data`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use platform::Shutdown;
use uuid::Uuid;

use crate::{
    api::wire::{Product, ProductPage},
    auth::{KeyCache, ticket::TicketSigner, verify::Expectations},
    edge::client_ip::Networks,
    ratelimit::Limiter,
    stale::LastGood,
    upstream::Upstreams,
};

pub struct Gateway {
    pub upstreams: Upstreams,
    pub keys: KeyCache,
    pub expectations: Expectations,
    /// Every request, per user or per client IP.
    pub limiter: Limiter,
    /// Sign-in attempts, per account.
    pub login_limiter: Limiter,
    /// Proxies whose `X-Forwarded-For` is believed (`edge::client_ip`).
    pub trusted_proxies: Networks,
    /// Clients whose `traceparent` is continued (`edge::observe`).
    pub trusted_trace_clients: Networks,
    /// The whole request body must arrive within this (`edge::limits`).
    pub body_timeout: Duration,
    pub catalog_pages: LastGood<ProductPage>,
    pub products: LastGood<Product>,
    pub streams: StreamSettings,
    /// Order streams open per user, bounded by `StreamSettings::max_per_user`.
    pub open_streams: StreamSlots,
    /// Signs the tickets that open order streams.
    pub tickets: TicketSigner,
    /// Event streams end when it fires, so that graceful shutdown is not held up by them.
    pub shutdown: Shutdown,
}

/// Order event streams (SSE).
#[derive(Clone, Copy, Debug)]
pub struct StreamSettings {
    pub max_duration: Duration,
    pub max_per_user: usize,
}

/// How many order streams each user holds open, bounded: an open stream costs a client
/// connection and a `WatchOrder` stream to orders, so one user may not open thousands.
#[derive(Clone, Debug)]
pub struct StreamSlots {
    max_per_user: usize,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// One open stream; dropping it (the stream ended or the client left) frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    user: Uuid,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl StreamSlots {
    pub fn new(max_per_user: usize) -> Self {
        Self {
            max_per_user,
            open: Arc::default(),
        }
    }

    /// A slot for `user`, unless they already hold the maximum.
    pub fn try_open(&self, user: Uuid) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(user).or_insert(0);
        if *count >= self.max_per_user {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            user,
            open: Arc::clone(&self.open),
        })
    }

    /// Streams `user` holds open now.
    pub fn held_by(&self, user: Uuid) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&user).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_a_bounded_number_of_stream_slots() {
        let slots = StreamSlots::new(2);
        let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let first = slots.try_open(ada).unwrap();
        let _second = slots.try_open(ada).unwrap();
        assert!(slots.try_open(ada).is_none(), "the third is refused");
        assert!(slots.try_open(bob).is_some(), "others are not affected");
        drop(first);
        assert_eq!(slots.held_by(ada), 1);
        assert!(
            slots.try_open(ada).is_some(),
            "a closed stream frees its slot"
        );
    }
}
