//! `gateway` binary: configuration → gateway → serve until SIGTERM (see `platform::entrypoint`).
//!
//! The runtime is built here rather than by `#[tokio::main]` so that its worker threads, which
//! serve the HTTP API, number `GATEWAY_HTTP_WORKERS`.

use std::process::ExitCode;

use gateway::{Application, Config};

fn main() -> ExitCode {
    let config = Config::from_env();
    // A configuration error is reported by `entrypoint::run`, once logging is set up.
    let workers = config.as_ref().map_or(1, |config| config.http_workers);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gateway: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(platform::entrypoint::run(
        "gateway",
        |shutdown| async move {
            let app = Application::build(config?).await?;
            app.run(shutdown).await?;
            Ok(())
        },
    ))
}
