//! The `main` every service binary shares: telemetry → run until SIGTERM → flush → exit code.

use std::process::ExitCode;

use crate::{Shutdown, telemetry};

/// What a service's startup can fail with: any error that explains itself.
pub type RunError = Box<dyn std::error::Error + Send + Sync>;

/// Initialises telemetry for `service`, runs `serve` with a [`Shutdown`] wired to SIGTERM and
/// Ctrl-C, flushes telemetry, and turns the outcome into the process exit code (0 after a
/// graceful stop, 1 after an error, which is logged).
pub async fn run<F, Fut>(service: &str, serve: F) -> ExitCode
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<(), RunError>>,
{
    let telemetry = match telemetry::init(&telemetry::TelemetryConfig::from_env(service)) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("{service}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = serve(Shutdown::on_signals()).await;
    if let Err(err) = &outcome {
        tracing::error!(error = %err, "{service} stopped with an error");
    }
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
