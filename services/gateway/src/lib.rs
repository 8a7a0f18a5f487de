//! The API gateway: the only public entry point of Ferroshop.
//!
//! Browsers and API clients speak REST/JSON to the gateway; the gateway speaks gRPC to the
//! services. That translation is the *API gateway* pattern, and the edge is where the concerns
//! that belong to no single service live:
//!
//! | module | job |
//! |---|---|
//! | [`config`] | `GATEWAY_*` settings |
//! | [`edge`] | request id, tracing and RED metrics, bounded and validated input |
//! | [`auth`] | JWT verification against the users JWKS; customer / admin extractors |
//! | [`ratelimit`] | GCRA in Redis per user / IP, shared by replicas; local fallback |
//! | [`upstream`] | per service: discovery (static / DNS), load balancing, breaker, retries |
//! | [`api`] | the REST routes, REST → gRPC → REST, and the OpenAPI document |
//! | [`problem`] | errors as `application/problem+json`; gRPC code → HTTP status |
//! | [`stale`] | last good catalog pages: the circuit breaker's fallback |
//! | [`state`] | what all of the above share |
//!
//! [`Application::build`] wires everything from a [`Config`] into an axum router
//! ([`edge::app`]) and binds it on a [`ServiceHost`], the same host every service runs on: the
//! admin port, graceful drain and background workers are the host's, not the gateway's.
//! [`Application::run`] serves until shutdown. `main` and the tests both go through it.
//!
//! **One HTTP stack.** The gateway serves its REST API with axum, on hyper and tower like the
//! services' tonic servers and the admin port: `http` 1 types everywhere, so the trace context
//! goes from the request's headers to the gRPC calls through `opentelemetry-http`'s carriers
//! with nothing copied by hand, and a middleware is a `tower::Layer` whichever port it sits on.

pub mod api;
pub mod auth;
pub mod config;
pub mod edge;
pub mod problem;
pub mod ratelimit;
pub mod stale;
pub mod state;
pub mod upstream;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use contracts::users::{GetJwksRequest, UsersServiceClient};
use platform::{
    ServiceHost, Shutdown,
    admin::Readiness,
    grpc::upstream::{discovery, maintenance},
    host::{Api, HostConfig, HostError, HttpLimits, Worker},
};
use resilience::SystemClock;

pub use config::Config;

use crate::{
    api::docs::OpenApiJson,
    auth::{KeyCache, jwks::Fetch, ticket::TicketSigner, verify::Expectations},
    ratelimit::{Limiter, gcra::Gcra},
    stale::LastGood,
    state::{Gateway, StreamSettings, StreamSlots},
    upstream::Upstreams,
};

/// How often the JWKS is refreshed even without an unknown key id.
const JWKS_REFRESH: Duration = Duration::from_secs(300);
/// How often idle clients are dropped from the local rate limiter.
const LOCAL_LIMITER_PRUNE: Duration = Duration::from_secs(60);
/// Bounded fallback caches.
const STALE_PAGES: usize = 256;
const STALE_PRODUCTS: usize = 1024;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("bad resilience settings: {0}")]
    Resilience(#[from] resilience::InvalidConfig),
    #[error("cannot use the TLS credentials: {0}")]
    Tls(#[from] platform::tls::TlsError),
    #[error("bad Redis settings: {0}")]
    Redis(#[from] redis_guard::SetupError),
    #[error("cannot render the OpenAPI document: {0}")]
    OpenApi(#[from] serde_json::Error),
}

/// A built, bound, not yet serving gateway.
pub struct Application {
    host: ServiceHost,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, GatewayError> {
        let upstreams = Upstreams::new(&config)?;
        config.tls.log("gRPC clients");
        for (backend, upstream) in upstreams.all().into_iter().zip(config.upstreams()) {
            if let Some(tls) = backend.tls() {
                tls.check().await?;
            }
            discovery::initial(backend, &upstream.source).await;
        }
        let users = upstreams.users.clone();
        let fetch: Fetch = Arc::new(move || {
            let users = users.clone();
            Box::pin(async move {
                users
                    .call(true, |endpoint| async move {
                        UsersServiceClient::new(endpoint)
                            .get_jwks(GetJwksRequest {})
                            .await
                    })
                    .await
                    .map(|jwks| jwks.keys)
            })
        });
        let limiter = Limiter::new(
            Gcra::per_minute(config.rate_limit_per_minute, config.rate_limit_burst),
            &config.redis,
            &config.redis_prefix,
            config.redis_timeout,
        )?;
        let login_limiter = Limiter::new(
            Gcra::per_minute(config.login_rate_per_minute, config.login_rate_burst),
            &config.redis,
            &config.redis_prefix,
            config.redis_timeout,
        )?;
        let tickets = match &config.stream_ticket_key {
            Some(key) => TicketSigner::new(key.clone(), config.stream_ticket_ttl),
            None => {
                tracing::warn!(
                    "no GATEWAY_STREAM_TICKET_KEY set: generated a key for order-stream tickets; \
                     replicas will not accept each other's tickets"
                );
                TicketSigner::generated(config.stream_ticket_ttl)
            }
        };
        let streams_end = Shutdown::new();
        let gateway = Arc::new(Gateway {
            upstreams,
            keys: KeyCache::new(
                fetch,
                config.jwks_min_refresh,
                config.jwks_key_retention,
                Arc::new(SystemClock),
            ),
            expectations: Expectations {
                issuer: config.jwt_issuer.clone(),
                audience: config.jwt_audience.clone(),
            },
            limiter,
            login_limiter,
            trusted_proxies: config.trusted_proxies.clone(),
            trusted_trace_clients: config.trusted_trace_clients.clone(),
            body_limit: config.body_limit,
            body_timeout: config.body_timeout,
            catalog_pages: LastGood::new(STALE_PAGES, config.stale_max_age),
            products: LastGood::new(STALE_PRODUCTS, config.stale_max_age),
            streams: StreamSettings {
                max_duration: config.sse_max_duration,
                max_per_user: config.sse_max_per_user,
            },
            open_streams: StreamSlots::new(config.sse_max_per_user),
            tickets,
            shutdown: streams_end.clone(),
        });
        let (routes, document) = api::router();
        let openapi = OpenApiJson(Arc::from(document.to_json()?));
        let app = edge::app(gateway.clone(), routes, &config.static_dir, openapi);

        let host = ServiceHost::bind(
            &HostConfig {
                api_addr: config.http_addr,
                admin_addr: config.admin_addr,
                shutdown_grace: config.shutdown_grace,
                tls: config.tls.clone(),
            },
            Api::Http(app),
            readiness(&gateway),
        )
        .await?
        .with_http_limits(HttpLimits {
            header_timeout: config.header_timeout,
            max_connections: config.max_connections,
        })
        .with_workers(workers(&gateway, &config, streams_end));
        Ok(Self { host })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.host.api_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.host.admin_addr()
    }

    /// Serves until `shutdown` fires: then stops accepting, ends event streams, lets in-flight
    /// requests finish within the grace period, and stops the admin port last.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), GatewayError> {
        Ok(self.host.run(shutdown).await?)
    }
}

/// Ready when every upstream has at least one endpoint to call. Redis and the JWKS are
/// deliberately not checked: without them the gateway degrades (local limits; 503 for signed-in
/// routes) but still serves the catalog, and pulling every replica out of rotation would not.
fn readiness(gateway: &Arc<Gateway>) -> Readiness {
    let gateway = gateway.clone();
    Readiness::new().with_check("upstreams", move || {
        let gateway = gateway.clone();
        async move {
            let empty: Vec<&str> = gateway
                .upstreams
                .all()
                .into_iter()
                .filter(|backend| backend.balancer().endpoints().is_empty())
                .map(|backend| backend.name())
                .collect();
            if empty.is_empty() {
                Ok(())
            } else {
                Err(format!("no endpoints for {}", empty.join(", ")))
            }
        }
    })
}

/// Beside the API: DNS re-resolution and health checks of the upstreams, the periodic JWKS
/// refresh, local limiter pruning, and the end of open event streams on shutdown (`streams_end`
/// is `Gateway::shutdown`), so that they do not hold the drain up.
fn workers(gateway: &Arc<Gateway>, config: &Config, streams_end: Shutdown) -> Vec<Worker> {
    let backends = gateway
        .upstreams
        .all()
        .into_iter()
        .cloned()
        .zip(config.upstreams().map(|upstream| upstream.source.clone()))
        .collect();
    let refresh = gateway.clone();
    let prune = gateway.clone();
    vec![
        maintenance(backends, config.dns_refresh, config.health_check_interval),
        Worker::every(JWKS_REFRESH, move || {
            let gateway = refresh.clone();
            async move {
                if let Err(status) = gateway.keys.refresh_now().await {
                    tracing::debug!(code = ?status.code(), "periodic JWKS refresh failed");
                }
            }
        }),
        Worker::every(LOCAL_LIMITER_PRUNE, move || {
            prune.limiter.prune_local();
            async {}
        }),
        Worker::new(move |shutdown| async move {
            shutdown.wait().await;
            streams_end.trigger();
        }),
    ]
}
