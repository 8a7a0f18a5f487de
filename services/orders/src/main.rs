//! `orders` binary: configuration → service → serve until SIGTERM (see `platform::entrypoint`);
//! or, with arguments, an operator command (`orders admin rebuild-summaries`, see
//! `orders::admin`).

use std::process::ExitCode;

use orders::{Application, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        return orders::admin::main(&args).await;
    }
    platform::entrypoint::run("orders", |shutdown| async move {
        let app = Application::build(Config::from_env()?).await?;
        app.run(shutdown).await?;
        Ok(())
    })
    .await
}
