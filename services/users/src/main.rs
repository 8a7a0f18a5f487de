//! `users` binary: configuration → service → serve until SIGTERM (see `platform::entrypoint`);
//! or, with arguments, an operator command (`users admin grant EMAIL`, see `users::admin`).

use std::process::ExitCode;

use users::{Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        return users::admin::main(&args).await;
    }
    platform::entrypoint::run("users", |shutdown| async move {
        let app = Application::build(Config::from_env()?).await?;
        app.run(shutdown).await?;
        Ok(())
    })
    .await
}
