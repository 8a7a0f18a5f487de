//! Graceful shutdown as a small type.
//!
//! One [`Shutdown`] is created per process and cloned into every task that must stop cleanly.
//! Triggering it (SIGTERM from Kubernetes, Ctrl-C locally, or a test) lets each server stop
//! accepting new work and finish what is in flight; `main` then flushes telemetry and exits 0.
//! The same pattern as mini-redis's `Shutdown`, built on `tokio_util`'s cancellation token so
//! that clones observe one flag.

use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A shutdown that only fires when [`Shutdown::trigger`] is called (tests).
    pub fn new() -> Self {
        Self::default()
    }

    /// A shutdown that fires on SIGTERM or SIGINT (Ctrl-C).
    pub fn on_signals() -> Self {
        let shutdown = Self::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            let signal = wait_for_signal().await;
            tracing::info!(signal, "shutdown requested; draining in-flight work");
            trigger.trigger();
        });
        shutdown
    }

    /// Starts the shutdown. Idempotent.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once shutdown has started.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        (Err(err), _) | (_, Err(err)) => {
            tracing::warn!(error = %err, "cannot listen for unix signals; falling back to Ctrl-C");
            wait_for_ctrl_c().await
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    wait_for_ctrl_c().await
}

async fn wait_for_ctrl_c() -> &'static str {
    match tokio::signal::ctrl_c().await {
        Ok(()) => "Ctrl-C",
        Err(err) => {
            // Without any signal source the process can still be stopped by a test or SIGKILL;
            // never returning is the honest behaviour.
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_observe_the_trigger() {
        let shutdown = Shutdown::new();
        let observer = shutdown.clone();
        assert!(!observer.is_triggered());
        shutdown.trigger();
        observer.wait().await;
        assert!(observer.is_triggered());
        shutdown.trigger();
    }
}
