//! Runs a service: the gRPC API and the admin HTTP port, side by side, until shutdown.
//!
//! Binding is separate from serving so that callers (tests above all) can bind port 0 and learn
//! the real addresses before the service starts.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::{Shutdown, admin::Readiness, grpc::GrpcServer};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot bind {what} to {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
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

pub struct ServiceHost {
    grpc: TcpListener,
    admin: TcpListener,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl ServiceHost {
    pub async fn bind(grpc_addr: SocketAddr, admin_addr: SocketAddr) -> Result<Self, HostError> {
        let grpc = bind("gRPC API", grpc_addr).await?;
        let admin = bind("admin HTTP", admin_addr).await?;
        Ok(Self {
            grpc_addr: local_addr(&grpc, "gRPC API", grpc_addr)?,
            admin_addr: local_addr(&admin, "admin HTTP", admin_addr)?,
            grpc,
            admin,
        })
    }

    /// The address the gRPC API actually listens on (useful after binding port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves both ports until `shutdown` fires. In-flight gRPC calls then get up to `grace` to
    /// finish; the admin port keeps answering (`/readyz` says 503) until the API has drained.
    pub async fn serve(
        self,
        grpc: GrpcServer,
        readiness: Readiness,
        shutdown: Shutdown,
        grace: Duration,
    ) -> Result<(), HostError> {
        self.serve_with_workers(grpc, readiness, shutdown, grace, Vec::new())
            .await
    }

    /// Like [`ServiceHost::serve`], with background workers (outbox relay, consumers, sweepers)
    /// running beside the API. Each worker must return once `shutdown` fires; the host waits for
    /// them, within the same grace period, after the API has drained.
    pub async fn serve_with_workers(
        self,
        grpc: GrpcServer,
        readiness: Readiness,
        shutdown: Shutdown,
        grace: Duration,
        workers: Vec<Worker>,
    ) -> Result<(), HostError> {
        let mut running = tokio::task::JoinSet::new();
        for worker in workers {
            running.spawn((worker.start)(shutdown.clone()));
        }
        tracing::info!(grpc = %self.grpc_addr, admin = %self.admin_addr, "serving");
        let admin_stop = Shutdown::new();
        let admin = tokio::spawn({
            let router = crate::admin::router(readiness, shutdown.clone());
            let admin_stop = admin_stop.clone();
            async move {
                axum::serve(self.admin, router)
                    .with_graceful_shutdown(async move { admin_stop.wait().await })
                    .await
            }
        });

        let api = grpc.serve(TcpIncoming::from(self.grpc), shutdown.clone());
        let deadline = async {
            shutdown.wait().await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = api => result.map_err(HostError::from),
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
