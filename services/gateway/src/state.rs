//! What every handler and middleware shares: the upstreams, the key cache, the limiter, the
//! fallback caches. Built once per process and handed to each actix worker as `web::Data`.

use std::time::Duration;

use platform::Shutdown;

use crate::{
    api::wire::{Product, ProductPage},
    auth::{KeyCache, verify::Expectations},
    ratelimit::Limiter,
    stale::LastGood,
    upstream::Upstreams,
};

pub struct Gateway {
    pub upstreams: Upstreams,
    pub keys: KeyCache,
    pub expectations: Expectations,
    pub limiter: Limiter,
    pub trust_forwarded_for: bool,
    pub catalog_pages: LastGood<ProductPage>,
    pub products: LastGood<Product>,
    pub streams: StreamSettings,
    /// Event streams end when it fires, so that graceful shutdown is not held up by them.
    pub shutdown: Shutdown,
}

/// Order event streams (SSE).
#[derive(Clone, Copy, Debug)]
pub struct StreamSettings {
    pub poll_interval: Duration,
    pub max_duration: Duration,
}
