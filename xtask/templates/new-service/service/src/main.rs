//! `{{name}}` binary: configuration → service → serve until SIGTERM (see `platform::entrypoint`).

use std::process::ExitCode;

use {{snake}}::{Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    platform::entrypoint::run("{{name}}", |shutdown| async move {
        let app = Application::build(Config::from_env()?).await?;
        app.run(shutdown).await?;
        Ok(())
    })
    .await
}
