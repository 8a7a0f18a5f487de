//! Operator commands of the orders binary.
//!
//! ```text
//! orders admin rebuild-summaries    rebuild the CQRS read model (order_summaries) from the
//!                                   write model, in one transaction
//! orders admin declare-topology     declare the broker's whole topology (exchanges, every
//!                                   consumer queue, bindings, retry tiers, parking queues)
//! ```
//!
//! `declare-topology` is what the Kubernetes Job `rabbitmq-topology` runs on every deploy, so the
//! topology exists before any service starts and again after the broker was rebuilt from an
//! empty volume (the outbox relays also declare it whenever they connect). It needs only
//! `ORDERS_AMQP_URL` and the runtime settings that name the topology.
//!
//! The read model is derived data: the projection builds it from events, and if a bug, a lost
//! event or a new column ever leaves it wrong, it can be rebuilt from `orders`, which is the
//! truth. The command uses the service's own configuration (`ORDERS_DATABASE_URL`). Locally:
//! `cargo run -p orders -- admin rebuild-summaries`; in Kubernetes the binary is in the image:
//! `kubectl -n ferroshop exec deploy/orders -- orders admin rebuild-summaries`. The running
//! service need not stop: see [`OrderStore::rebuild_summaries`] for why the projection and the
//! rebuild do not fight.

use std::process::ExitCode;

use platform::config::Env;

use crate::{Config, error::OrdersError, store::OrderStore};

/// One operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    RebuildSummaries,
    DeclareTopology,
}

const USAGE: &str = "usage: orders admin rebuild-summaries | orders admin declare-topology";

impl Command {
    /// Parses the arguments after the binary's name: `admin <verb>`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        match args {
            [admin, verb] if admin == "admin" && verb == "rebuild-summaries" => {
                Ok(Self::RebuildSummaries)
            }
            [admin, verb] if admin == "admin" && verb == "declare-topology" => {
                Ok(Self::DeclareTopology)
            }
            _ => Err(USAGE.to_owned()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Config(#[from] platform::config::ConfigError),
    #[error("cannot connect to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Orders(#[from] OrdersError),
    #[error("cannot declare the topology: {0}")]
    Topology(#[from] messaging::topology::DeclareError),
}

/// The entry point of `orders admin …`: runs the command, prints what happened, and returns the
/// exit code (0 done, 1 failed, 2 bad arguments).
pub async fn main(args: &[String]) -> ExitCode {
    let command = match Command::parse(args) {
        Ok(command) => command,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let outcome = match Config::from(&Env::new("orders")) {
        Ok(config) => run(&config, command).await,
        Err(err) => Err(err.into()),
    };
    match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("orders admin: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` with the settings of `config`; what it did, in one line.
pub async fn run(config: &Config, command: Command) -> Result<String, AdminError> {
    match command {
        Command::RebuildSummaries => {
            let written = rebuild_summaries(config).await?;
            Ok(format!("order_summaries rebuilt: {written} orders"))
        }
        Command::DeclareTopology => {
            let queues =
                messaging::topology::declare_system(&config.runtime, "orders-admin").await?;
            Ok(format!(
                "topology declared on {}: {queues} consumer queues",
                config.runtime.events_exchange
            ))
        }
    }
}

/// Rebuilds the read model from the write model; how many summaries were written.
pub async fn rebuild_summaries(config: &Config) -> Result<u64, AdminError> {
    let pool = platform::db::connect(&config.runtime.database_url, 2).await?;
    platform::db::migrate(&pool, &[&messaging::migrator(), &sqlx::migrate!()]).await?;
    let store = OrderStore::new(pool);
    let written = store.rebuild_summaries().await?;
    store.pool().close().await;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(raw: &[&str]) -> Vec<String> {
        raw.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn the_commands_are_rebuild_summaries_and_declare_topology() {
        assert_eq!(
            Command::parse(&args(&["admin", "rebuild-summaries"])),
            Ok(Command::RebuildSummaries)
        );
        assert_eq!(
            Command::parse(&args(&["admin", "declare-topology"])),
            Ok(Command::DeclareTopology)
        );
        for bad in [
            &["admin"][..],
            &["admin", "rebuild"],
            &["admin", "rebuild-summaries", "now"],
            &["rebuild-summaries"],
        ] {
            assert_eq!(Command::parse(&args(bad)), Err(USAGE.to_owned()), "{bad:?}");
        }
    }
}
