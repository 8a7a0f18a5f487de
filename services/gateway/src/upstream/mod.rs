//! The gRPC services behind the gateway, each a [`Backend`]: breaker, retry budget, balancer
//! over its replicas, per-attempt deadline and trace context (`platform::grpc::upstream`, which
//! orders uses for its participants too).
//!
//! Only reads are retried (`idempotent: true`). Writes are attempted once: a failed
//! `PlaceOrder` may have been executed, and it is the client, holding the `Idempotency-Key`,
//! that can safely repeat it.

use std::time::Duration;

use platform::grpc::upstream::{Backend, BackendConfig};
use resilience::{BreakerConfig, EjectionConfig};

use crate::config::{Config, UpstreamConfig};

/// How the gateway calls `upstream`: its settings for breakers, ejection and deadlines.
fn backend(
    upstream: &UpstreamConfig,
    gateway: &Config,
) -> Result<Backend, resilience::InvalidConfig> {
    Backend::new(
        upstream.name,
        &BackendConfig {
            strategy: upstream.strategy,
            breaker: BreakerConfig {
                failure_threshold: gateway.breaker_failures,
                open_for: gateway.breaker_open_for,
                ..BreakerConfig::default()
            },
            ejection: EjectionConfig {
                consecutive_failures: gateway.ejection_failures,
                base_ejection: gateway.ejection_time,
                max_ejection: gateway.ejection_time.max(Duration::from_secs(300)),
            },
            call_timeout: gateway.call_timeout,
            tls: gateway.tls.files().cloned(),
        },
    )
}

/// The four services.
#[derive(Clone, Debug)]
pub struct Upstreams {
    pub users: Backend,
    pub inventory: Backend,
    pub orders: Backend,
    pub payments: Backend,
}

impl Upstreams {
    pub fn new(config: &Config) -> Result<Self, resilience::InvalidConfig> {
        Ok(Self {
            users: backend(&config.users, config)?,
            inventory: backend(&config.inventory, config)?,
            orders: backend(&config.orders, config)?,
            payments: backend(&config.payments, config)?,
        })
    }

    pub fn all(&self) -> [&Backend; 4] {
        [&self.users, &self.inventory, &self.orders, &self.payments]
    }
}
