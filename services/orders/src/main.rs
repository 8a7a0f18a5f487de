//! `orders` binary: configuration → telemetry → service → serve until SIGTERM.

use std::process::ExitCode;

use platform::{Shutdown, telemetry};
use orders::{Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = match telemetry::init(&telemetry::TelemetryConfig::from_env("orders")) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("orders: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = run().await;
    if let Err(err) = &outcome {
        tracing::error!(error = %err, "orders stopped with an error");
    }
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let shutdown = Shutdown::on_signals();
    let app = Application::build(config).await?;
    app.run(shutdown).await?;
    Ok(())
}
