//! Runs a service: its public API and the admin HTTP port, side by side, until shutdown.
//!
//! Every Ferroshop process is one of these. The public API is an [`Api`]: a tonic gRPC server
//! for the services, an axum router for the gateway's REST API. Both sit on the same stack
//! (tonic is built on hyper, tower and axum), so what surrounds the API is the same for every
//! process:
//!
//! | piece | what the host does with it |
//! |---|---|
//! | the API port | serves the [`Api`]; on shutdown stops accepting and lets in-flight requests finish within the grace period |
//! | the admin port | `/healthz`, `/readyz`, `/metrics` ([`crate::admin`]); answers (`/readyz` says 503) until the API has drained |
//! | the [`Worker`]s | started beside the API with the shutdown signal; awaited, within the grace period, after the API has drained |
//!
//! Binding is separate from serving so that callers (tests above all) can bind port 0 and learn
//! the real addresses before the service starts.

use std::{net::SocketAddr, time::Duration};

use axum::serve::ListenerExt as _;
use futures::{TryFutureExt as _, future::BoxFuture};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::{
    Shutdown,
    admin::Readiness,
    config::RuntimeConfig,
    grpc::GrpcServer,
    tls::{ServerTls, TlsError, TlsMode},
};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot bind {what} to {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot use the TLS credentials: {0}")]
    Tls(#[from] TlsError),
    #[error("the gRPC API's authorization tables are incomplete: {0}")]
    Authorization(String),
    #[error("gRPC server failed: {0}")]
    Grpc(Box<dyn std::error::Error + Send + Sync>),
    #[error("HTTP API server failed: {0}")]
    Http(std::io::Error),
    #[error("admin server failed: {0}")]
    Admin(std::io::Error),
}

type StartWorker = Box<dyn FnOnce(Shutdown) -> futures::future::BoxFuture<'static, ()> + Send>;

/// A background task that runs as long as the service. It is described when the service is
/// built and started by the host with the shutdown signal, on which it must return.
pub struct Worker {
    start: StartWorker,
}

impl Worker {
    pub fn new<F, Fut>(start: F) -> Self
    where
        F: FnOnce(Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            start: Box::new(move |shutdown| Box::pin(start(shutdown))),
        }
    }
}

/// What a host serves on its API port.
pub enum Api {
    /// A gRPC API (every service): mutual TLS and the authorization tables as configured.
    Grpc(GrpcServer),
    /// An HTTP API as an axum router (the gateway's REST API), over plain HTTP: public TLS
    /// ends at the ingress. Handlers can read the peer address with
    /// `axum::extract::ConnectInfo<SocketAddr>`.
    Http(axum::Router),
}

impl Api {
    /// How the API port is named in logs and errors.
    fn what(&self) -> &'static str {
        match self {
            Self::Grpc(_) => "gRPC API",
            Self::Http(_) => "HTTP API",
        }
    }
}

/// Where and how a host listens.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The API port.
    pub api_addr: SocketAddr,
    /// The admin port (`/healthz`, `/readyz`, `/metrics`).
    pub admin_addr: SocketAddr,
    /// How long in-flight requests, then the workers, may take after shutdown starts.
    pub shutdown_grace: Duration,
    /// Mutual TLS on a gRPC API, or plaintext. An HTTP API is always plaintext.
    pub tls: TlsMode,
}

impl From<&RuntimeConfig> for HostConfig {
    fn from(runtime: &RuntimeConfig) -> Self {
        Self {
            api_addr: runtime.grpc_addr,
            admin_addr: runtime.admin_addr,
            shutdown_grace: runtime.shutdown_grace,
            tls: runtime.tls.clone(),
        }
    }
}

/// A process ready to run: both ports bound, its API, its readiness checks and its background
/// workers. Every Ferroshop `Application` (the services' and the gateway's) is one of these plus
/// whatever handles its tests need.
pub struct ServiceHost {
    api_listener: TcpListener,
    admin_listener: TcpListener,
    api_addr: SocketAddr,
    admin_addr: SocketAddr,
    api: Api,
    readiness: Readiness,
    workers: Vec<Worker>,
    grace: Duration,
    tls_mode: TlsMode,
    tls: Option<ServerTls>,
}

impl ServiceHost {
    /// Binds the API and admin ports of `config` (port 0 picks a free one, see
    /// [`ServiceHost::api_addr`]) for `api`, answering `/readyz` with `readiness`. For a gRPC
    /// API with mutual TLS, the credentials are loaded here, so unusable files stop the service
    /// at start; its authorization tables are checked whatever the mode.
    pub async fn bind(
        config: &HostConfig,
        api: Api,
        readiness: Readiness,
    ) -> Result<Self, HostError> {
        let tls = match &api {
            Api::Grpc(grpc) => {
                grpc.policy().map_err(HostError::Authorization)?;
                match config.tls.files() {
                    Some(files) => Some(ServerTls::load(files).await?),
                    None => None,
                }
            }
            Api::Http(_) => None,
        };
        let what = api.what();
        let api_listener = bind(what, config.api_addr).await?;
        let admin_listener = bind("admin HTTP", config.admin_addr).await?;
        Ok(Self {
            api_addr: local_addr(&api_listener, what, config.api_addr)?,
            admin_addr: local_addr(&admin_listener, "admin HTTP", config.admin_addr)?,
            api_listener,
            admin_listener,
            api,
            readiness,
            workers: Vec::new(),
            grace: config.shutdown_grace,
            tls_mode: config.tls.clone(),
            tls,
        })
    }

    /// Adds background workers (outbox relay, consumers, sweepers) to run beside the API.
    #[must_use]
    pub fn with_workers(mut self, workers: impl IntoIterator<Item = Worker>) -> Self {
        self.workers.extend(workers);
        self
    }

    /// The address the API actually listens on (useful after binding port 0).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves both ports, with the workers beside the API, until `shutdown` fires. In-flight
    /// requests then get up to the shutdown grace period to finish; the admin port keeps
    /// answering (`/readyz` says 503) until the API has drained. Each worker must return once
    /// `shutdown` fires; the host waits for them, within the same grace period, after the API
    /// has drained.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        let grace = self.grace;
        let mut running = tokio::task::JoinSet::new();
        for worker in self.workers {
            running.spawn((worker.start)(shutdown.clone()));
        }
        tracing::info!(api = %self.api_addr, admin = %self.admin_addr, "serving {}", self.api.what());
        let admin_stop = Shutdown::new();
        let admin = tokio::spawn({
            let router = crate::admin::router(self.readiness, shutdown.clone());
            let admin_stop = admin_stop.clone();
            let listener = self.admin_listener;
            async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { admin_stop.wait().await })
                    .await
            }
        });

        let api = serve(
            self.api,
            self.api_listener,
            self.tls,
            &self.tls_mode,
            &shutdown,
        );
        let deadline = async {
            shutdown.wait().await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = api => result,
            () = deadline => {
                tracing::warn!(?grace, "grace period over; abandoning in-flight calls");
                Ok(())
            }
        };

        // The API may also have stopped on its own (an error): the workers must stop too.
        shutdown.trigger();
        let drained = tokio::time::timeout(grace, async {
            while let Some(joined) = running.join_next().await {
                if let Err(err) = joined {
                    tracing::error!(error = %err, "a background worker failed");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                ?grace,
                "background workers still busy after the grace period"
            );
            running.abort_all();
        }

        admin_stop.trigger();
        match admin.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(HostError::Admin(err)),
            Err(join) => return Err(HostError::Admin(std::io::Error::other(join))),
        }
        tracing::info!("stopped");
        result
    }
}

/// The API served on `listener` until `shutdown` fires, then drained.
fn serve(
    api: Api,
    listener: TcpListener,
    tls: Option<ServerTls>,
    tls_mode: &TlsMode,
    shutdown: &Shutdown,
) -> BoxFuture<'static, Result<(), HostError>> {
    let drain = {
        let shutdown = shutdown.clone();
        async move { shutdown.wait().await }
    };
    match (api, tls) {
        (Api::Grpc(grpc), tls) => {
            tls_mode.log("the gRPC API");
            match tls {
                // Handshakes, each verifying the client's certificate; the callers' identities
                // feed the authorization layer.
                Some(tls) => Box::pin(
                    grpc.serve(
                        tls.incoming(listener, shutdown.clone()),
                        shutdown.clone(),
                        true,
                    )
                    .map_err(HostError::Grpc),
                ),
                // TCP_NODELAY on every accepted connection, as the clients set it on theirs
                // (`grpc::client::connect_lazy`): without it, Nagle's algorithm holds a small
                // response frame back until the peer's delayed ACK arrives, up to 40 ms on Linux.
                None => Box::pin(
                    grpc.serve(
                        TcpIncoming::from(listener).with_nodelay(Some(true)),
                        shutdown.clone(),
                        false,
                    )
                    .map_err(HostError::Grpc),
                ),
            }
        }
        (Api::Http(router), _) => {
            // The same TCP_NODELAY as the gRPC port, for the same reason.
            let listener = listener.tap_io(|stream| {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
            });
            Box::pin(async move {
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(drain)
                .await
                .map_err(HostError::Http)
            })
        }
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, HostError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HostError::Bind { what, addr, source })
}

fn local_addr(
    listener: &TcpListener,
    what: &'static str,
    addr: SocketAddr,
) -> Result<SocketAddr, HostError> {
    listener
        .local_addr()
        .map_err(|source| HostError::Bind { what, addr, source })
}
