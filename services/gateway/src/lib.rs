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
//! [`Application::build`] binds both ports and wires everything from a [`Config`];
//! [`Application::run`] serves until shutdown. `main` and the tests both go through it.

pub mod api;
pub mod auth;
pub mod config;
pub mod edge;
pub mod problem;
pub mod ratelimit;
pub mod stale;
pub mod state;
pub mod upstream;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use actix_files::Files;
use actix_web::{
    App, HttpServer,
    middleware::{Compress, NormalizePath, TrailingSlash, from_fn},
    web,
};
use contracts::users::{GetJwksRequest, UsersServiceClient};
use platform::{
    Shutdown,
    admin::Readiness,
    grpc::upstream::{discovery, spawn_maintenance},
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
    #[error("cannot bind {what} to {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("bad resilience settings: {0}")]
    Resilience(#[from] resilience::InvalidConfig),
    #[error("cannot use the TLS credentials: {0}")]
    Tls(#[from] platform::tls::TlsError),
    #[error("bad Redis settings: {0}")]
    Redis(#[from] redis_guard::SetupError),
    #[error("cannot render the OpenAPI document: {0}")]
    OpenApi(#[from] serde_json::Error),
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("admin server failed: {0}")]
    Admin(std::io::Error),
}

/// A built, bound, not yet serving gateway.
pub struct Application {
    http: std::net::TcpListener,
    admin: tokio::net::TcpListener,
    http_addr: SocketAddr,
    admin_addr: SocketAddr,
    gateway: web::Data<Gateway>,
    openapi: web::Data<OpenApiJson>,
    internal_shutdown: Shutdown,
    config: Config,
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
        let internal_shutdown = Shutdown::new();
        let gateway = Gateway {
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
            body_timeout: config.body_timeout,
            catalog_pages: LastGood::new(STALE_PAGES, config.stale_max_age),
            products: LastGood::new(STALE_PRODUCTS, config.stale_max_age),
            streams: StreamSettings {
                max_duration: config.sse_max_duration,
                max_per_user: config.sse_max_per_user,
            },
            open_streams: StreamSlots::new(config.sse_max_per_user),
            tickets,
            shutdown: internal_shutdown.clone(),
        };
        let openapi = OpenApiJson(Arc::from(api::document().to_json()?));

        let bind_error = |what, addr| move |source| GatewayError::Bind { what, addr, source };
        let http = std::net::TcpListener::bind(config.http_addr)
            .map_err(bind_error("HTTP API", config.http_addr))?;
        http.set_nonblocking(true)
            .map_err(bind_error("HTTP API", config.http_addr))?;
        let http_addr = http
            .local_addr()
            .map_err(bind_error("HTTP API", config.http_addr))?;
        let admin = tokio::net::TcpListener::bind(config.admin_addr)
            .await
            .map_err(bind_error("admin HTTP", config.admin_addr))?;
        let admin_addr = admin
            .local_addr()
            .map_err(bind_error("admin HTTP", config.admin_addr))?;
        Ok(Self {
            http,
            admin,
            http_addr,
            admin_addr,
            gateway: web::Data::new(gateway),
            openapi: web::Data::new(openapi),
            internal_shutdown,
            config,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `shutdown` fires: then stops accepting, ends event streams, lets in-flight
    /// requests finish within the grace period, and stops the admin port last.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), GatewayError> {
        let Self {
            http,
            admin,
            http_addr,
            admin_addr,
            gateway,
            openapi,
            internal_shutdown,
            config,
        } = self;
        let body_limit = config.body_limit;
        let static_dir: PathBuf = config.static_dir.clone();
        let app_gateway = gateway.clone();
        // actix counts connections per worker.
        let connections_per_worker = config.max_connections.div_ceil(config.http_workers).max(1);
        let server = HttpServer::new(move || {
            // `wrap` order: the last one is the outermost (see `edge`).
            App::new()
                .app_data(app_gateway.clone())
                .app_data(openapi.clone())
                .app_data(edge::extract::json_config(body_limit))
                .app_data(edge::extract::query_config())
                .app_data(edge::extract::path_config())
                .wrap(from_fn(edge::limits::middleware))
                .wrap(from_fn(ratelimit::middleware))
                .wrap(from_fn(auth::middleware))
                .wrap(from_fn(edge::observe::middleware))
                .wrap(Compress::default())
                .wrap(from_fn(edge::request_id::middleware))
                .wrap(edge::headers::security_headers())
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .service(api::docs::openapi_json)
                .service(api::docs::docs_page)
                .service(api::scope())
                .service(
                    Files::new("/", &static_dir)
                        .index_file("index.html")
                        .default_handler(web::to(edge::extract::not_found)),
                )
        })
        .workers(config.http_workers)
        .client_request_timeout(config.header_timeout)
        .max_connections(connections_per_worker)
        .disable_signals()
        .shutdown_timeout(config.shutdown_grace.as_secs().max(1))
        .listen(http)
        .map_err(GatewayError::Http)?
        .run();

        let background = spawn_background(&gateway, &config, &internal_shutdown);
        let handle = server.handle();
        tokio::spawn({
            let shutdown = shutdown.clone();
            let internal_shutdown = internal_shutdown.clone();
            async move {
                shutdown.wait().await;
                tracing::info!("shutdown requested; draining HTTP connections");
                internal_shutdown.trigger();
                handle.stop(true).await;
            }
        });

        let admin_stop = Shutdown::new();
        let admin_server = tokio::spawn({
            let router = platform::admin::router(readiness(&gateway), shutdown.clone());
            let admin_stop = admin_stop.clone();
            async move {
                axum::serve(admin, router)
                    .with_graceful_shutdown(async move { admin_stop.wait().await })
                    .await
            }
        });
        tracing::info!(http = %http_addr, admin = %admin_addr, "gateway serving");
        let served = server.await.map_err(GatewayError::Http);
        // Also when the server failed on its own: the background tasks must end either way.
        internal_shutdown.trigger();
        futures::future::join_all(background).await;
        admin_stop.trigger();
        match admin_server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(GatewayError::Admin(error)),
            Err(join) => return Err(GatewayError::Admin(std::io::Error::other(join))),
        }
        tracing::info!("gateway stopped");
        served
    }
}

/// Ready when every upstream has at least one endpoint to call. Redis and the JWKS are
/// deliberately not checked: without them the gateway degrades (local limits; 503 for signed-in
/// routes) but still serves the catalog, and pulling every replica out of rotation would not.
fn readiness(gateway: &web::Data<Gateway>) -> Readiness {
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

/// DNS re-resolution, active health checks, JWKS refresh, local limiter pruning.
fn spawn_background(
    gateway: &web::Data<Gateway>,
    config: &Config,
    shutdown: &Shutdown,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (backend, upstream) in gateway.upstreams.all().into_iter().zip(config.upstreams()) {
        tasks.extend(spawn_maintenance(
            backend,
            &upstream.source,
            config.dns_refresh,
            config.health_check_interval,
            shutdown,
        ));
    }
    tasks.push(tokio::spawn(every(JWKS_REFRESH, shutdown.clone(), {
        let gateway = gateway.clone();
        move || {
            let gateway = gateway.clone();
            async move {
                if let Err(status) = gateway.keys.refresh_now().await {
                    tracing::debug!(code = ?status.code(), "periodic JWKS refresh failed");
                }
            }
        }
    })));
    tasks.push(tokio::spawn(every(
        LOCAL_LIMITER_PRUNE,
        shutdown.clone(),
        {
            let gateway = gateway.clone();
            move || {
                gateway.limiter.prune_local();
                async {}
            }
        },
    )));
    tasks
}

/// Runs `job` now and then every `period` until shutdown.
async fn every<F, Fut>(period: Duration, shutdown: Shutdown, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            _ = ticks.tick() => job().await,
        }
    }
}
