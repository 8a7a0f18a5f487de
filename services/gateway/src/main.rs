//! `gateway` binary: configuration → gateway → serve until SIGTERM (see `platform::entrypoint`).

use std::process::ExitCode;

use gateway::{Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    platform::entrypoint::run("gateway", |shutdown| async move {
        let app = Application::build(Config::from_env()?).await?;
        app.run(shutdown).await?;
        Ok(())
    })
    .await
}
