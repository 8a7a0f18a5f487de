//! Runs a service: the gRPC API and the admin HTTP port, side by side, until shutdown.
//!
//! Binding is separate from serving so that callers (tests above all) can bind port 0 and learn
//! the real addresses before the service starts.

use std::{net::SocketAddr, time::Duration};

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

/// A service ready to run: both ports bound, its gRPC API, its readiness checks and its
/// background workers. Every Ferroshop service's `Application` is one of these plus whatever
/// handles its tests need.
pub struct ServiceHost {
    grpc_listener: TcpListener,
    admin_listener: TcpListener,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
    grpc: GrpcServer,
    readiness: Readiness,
    workers: Vec<Worker>,
    grace: Duration,
    tls_mode: TlsMode,
    tls: Option<ServerTls>,
}

impl ServiceHost {
    /// Binds the gRPC and admin ports of `runtime` (port 0 picks a free one, see
    /// [`ServiceHost::grpc_addr`]) for `grpc`, answering `/readyz` with `readiness`. With mutual
    /// TLS, the credentials are loaded here, so unusable files stop the service at start; the
    /// authorization tables are checked whatever the mode.
    pub async fn bind(
        runtime: &RuntimeConfig,
        grpc: GrpcServer,
        readiness: Readiness,
    ) -> Result<Self, HostError> {
        grpc.policy().map_err(HostError::Authorization)?;
        let tls = match runtime.tls.files() {
            Some(files) => Some(ServerTls::load(files).await?),
            None => None,
        };
        let grpc_listener = bind("gRPC API", runtime.grpc_addr).await?;
        let admin_listener = bind("admin HTTP", runtime.admin_addr).await?;
        Ok(Self {
            grpc_addr: local_addr(&grpc_listener, "gRPC API", runtime.grpc_addr)?,
            admin_addr: local_addr(&admin_listener, "admin HTTP", runtime.admin_addr)?,
            grpc_listener,
            admin_listener,
            grpc,
            readiness,
            workers: Vec::new(),
            grace: runtime.shutdown_grace,
            tls_mode: runtime.tls.clone(),
            tls,
        })
    }

    /// Adds background workers (outbox relay, consumers, sweepers) to run beside the API.
    #[must_use]
    pub fn with_workers(mut self, workers: impl IntoIterator<Item = Worker>) -> Self {
        self.workers.extend(workers);
        self
    }

    /// The address the gRPC API actually listens on (useful after binding port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves both ports, with the workers beside the API, until `shutdown` fires. In-flight
    /// gRPC calls then get up to the shutdown grace period to finish; the admin port keeps
    /// answering (`/readyz` says 503) until the API has drained. Each worker must return once
    /// `shutdown` fires; the host waits for them, within the same grace period, after the API
    /// has drained.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), HostError> {
        let grace = self.grace;
        let mut running = tokio::task::JoinSet::new();
        for worker in self.workers {
            running.spawn((worker.start)(shutdown.clone()));
        }
        tracing::info!(grpc = %self.grpc_addr, admin = %self.admin_addr, "serving");
        self.tls_mode.log("the gRPC API");
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

        let api: futures::future::BoxFuture<'_, Result<(), _>> = match self.tls {
            // Handshakes, each verifying the client's certificate; the callers' identities
            // feed the authorization layer.
            Some(tls) => Box::pin(self.grpc.serve(
                tls.incoming(self.grpc_listener, shutdown.clone()),
                shutdown.clone(),
                true,
            )),
            // TCP_NODELAY on every accepted connection, as the clients set it on theirs
            // (`grpc::client::connect_lazy`): without it, Nagle's algorithm holds a small
            // response frame back until the peer's delayed ACK arrives, up to 40 ms on Linux.
            None => Box::pin(self.grpc.serve(
                TcpIncoming::from(self.grpc_listener).with_nodelay(Some(true)),
                shutdown.clone(),
                false,
            )),
        };
        let deadline = async {
            shutdown.wait().await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = api => result.map_err(HostError::Grpc),
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
