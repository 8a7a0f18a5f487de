//! `cargo xtask parked list|replay SERVICE`: the parking queues of one service, for an
//! operator (see `messaging::parking`).
//!
//! The broker, exchange and queue prefix are the service's own settings
//! (`<SERVICE>_AMQP_URL`, `<SERVICE>_EVENTS_EXCHANGE`, `<SERVICE>_QUEUE_PREFIX`), read from the
//! environment with the same defaults the service uses, so the command run beside `cargo xtask
//! up`, or with a deployment's variables, looks at the queues that service consumes.

use anyhow::Context as _;
use messaging::{
    parking::{self, Parked},
    topology::{ConsumerTopology, QUEUES, Queue},
};
use platform::config::{DEFAULT_AMQP_URL, DEFAULT_EVENTS_EXCHANGE, Env};

#[derive(clap::Args)]
pub struct ParkedArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Every parked message of the service's queues: event id, type, attempts, error.
    List {
        /// A service that consumes events: inventory, orders or payments.
        service: String,
    },
    /// Moves parked messages back to their queue, attempts reset (idempotent: the inbox skips
    /// what was already handled).
    Replay {
        service: String,
        /// Only these event ids (repeat the flag); all of them when absent.
        #[arg(long = "event")]
        events: Vec<String>,
    },
}

pub async fn run(args: ParkedArgs) -> anyhow::Result<()> {
    let (service, only) = match &args.action {
        Action::List { service } => (service, None),
        Action::Replay { service, events } => (service, (!events.is_empty()).then_some(events)),
    };
    let queues = queues_of(service)?;
    let env = Env::new(&service.to_ascii_uppercase());
    let amqp_url = env.string_or("AMQP_URL", DEFAULT_AMQP_URL);
    let exchange = env.string_or("EVENTS_EXCHANGE", DEFAULT_EVENTS_EXCHANGE);
    let prefix = env.string_or("QUEUE_PREFIX", "");
    let connection = messaging::amqp::connect(&amqp_url, "xtask-parked")
        .await
        .with_context(|| format!("cannot reach the broker at {}", redacted(&amqp_url)))?;
    for queue in queues {
        let topology = ConsumerTopology::new(
            &exchange,
            &format!("{prefix}{}", queue.name),
            queue.bindings,
        );
        let parked = match &args.action {
            Action::List { .. } => parking::list(&connection, &topology).await,
            Action::Replay { .. } => {
                parking::replay(&connection, &topology, only.map(Vec::as_slice)).await
            }
        }
        .with_context(|| topology.parking_queue())?;
        let verb = match args.action {
            Action::List { .. } => "parked",
            Action::Replay { .. } => "replayed",
        };
        println!("{}: {} {verb}", topology.parking_queue(), parked.len());
        for message in &parked {
            println!("  {}", line(message));
        }
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// The queues `service` consumes, or an error naming the services that consume any.
fn queues_of(service: &str) -> anyhow::Result<Vec<Queue>> {
    let owner = |queue: &Queue| queue.name.split('.').next().unwrap_or_default().to_owned();
    let queues: Vec<Queue> = QUEUES
        .iter()
        .filter(|queue| owner(queue) == service)
        .copied()
        .collect();
    if queues.is_empty() {
        let mut consumers: Vec<String> = QUEUES.iter().map(owner).collect();
        consumers.dedup();
        anyhow::bail!(
            "{service:?} consumes no events; services with queues: {}",
            consumers.join(", ")
        );
    }
    Ok(queues)
}

fn line(message: &Parked) -> String {
    format!(
        "{} {} (first published as {}) after {} attempt(s): {}",
        message.event_id, message.event_type, message.routing_key, message.attempts, message.error
    )
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_gets_its_own_queues_and_a_non_consumer_is_refused_by_name() {
        let orders: Vec<&str> = queues_of("orders")
            .unwrap()
            .iter()
            .map(|queue| queue.name)
            .collect();
        assert_eq!(orders, ["orders.fulfilment", "orders.order-summaries"]);
        let refused = queues_of("users").unwrap_err().to_string();
        assert!(
            refused.contains("\"users\" consumes no events"),
            "{refused}"
        );
        assert!(refused.contains("inventory, payments, orders"), "{refused}");
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redacted("amqp://guest:secret@broker:5672/%2f"),
            "amqp://…@broker:5672/%2f"
        );
    }
}
