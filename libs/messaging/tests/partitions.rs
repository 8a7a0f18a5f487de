//! Partitioned, ordered consumption against real Postgres and RabbitMQ: three consumer replicas
//! (each its own connection and member id) share one consumer's partitions; one is killed
//! mid-burst.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use messaging::{
    Consumer, Event, EventHandler, HandlerError, Handling, OutboxRelay, ReceivedEvent, RelayConfig,
    membership::Lease,
    topology::{self, ConsumerTopology},
};
use platform::Shutdown;
use support::{Fixture, event, fixture};

const ORDERS: usize = 40;
/// Events per order in each half of the burst.
const PER_HALF: usize = 5;

/// Records, in the inbox transaction, which replica applied which event of which order.
struct Applier {
    replica: i32,
}

impl EventHandler for Applier {
    async fn handle(
        &self,
        work: &mut Handling<'_>,
        event: &ReceivedEvent,
    ) -> Result<(), HandlerError> {
        let Event::UserRegistered(registered) = &event.event else {
            return Err(HandlerError::Permanent("not a registration".into()));
        };
        let n: i32 = registered
            .display_name
            .parse()
            .map_err(|_| HandlerError::Permanent("no sequence number".into()))?;
        sqlx::query("INSERT INTO applied (aggregate, n, replica) VALUES ($1, $2, $3)")
            .bind(&event.aggregate_id)
            .bind(n)
            .bind(self.replica)
            .execute(work.tx())
            .await?;
        Ok(())
    }
}

/// `(aggregate, n, replica)` of every applied event, in the order they were applied.
async fn applied(f: &Fixture) -> Vec<(String, i32, i32)> {
    sqlx::query_as("SELECT aggregate, n, replica FROM applied ORDER BY id")
        .fetch_all(&f.pool)
        .await
        .unwrap()
}

fn order(index: usize) -> String {
    format!("order-{index}")
}

/// Events `from..to` of every order, interleaved: the first of each order, then the second…
async fn enqueue_interleaved(f: &Fixture, from: usize, to: usize) {
    for n in from..to {
        let round: Vec<_> = (0..ORDERS).map(|index| event(&order(index), n)).collect();
        f.enqueue(&round).await;
    }
}

async fn members(f: &Fixture, consumer: &str) -> i64 {
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM consumer_members WHERE consumer = $1")
            .bind(consumer)
            .fetch_one(&f.pool)
            .await
            .unwrap();
    count
}

#[tokio::test]
async fn three_replicas_apply_every_order_in_order_and_a_killed_ones_partitions_move() {
    let f = fixture().await;
    sqlx::query(
        "CREATE TABLE applied (id BIGSERIAL PRIMARY KEY, aggregate TEXT NOT NULL,
                               n INT NOT NULL, replica INT NOT NULL)",
    )
    .execute(&f.pool)
    .await
    .unwrap();
    let topology = ConsumerTopology::new(
        &f.exchange,
        &testkit::unique_name("test.partitioned"),
        &["users.#"],
    )
    .with_partitions(4)
    .with_expiry(Duration::from_secs(60));
    // The partitions exist (and keep what is published) before any replica runs.
    let mut relay_config = RelayConfig::new(&f.amqp_url, &f.exchange, "partitions-test")
        .with_topology(vec![topology.clone()]);
    relay_config.poll_interval = Duration::from_millis(200);
    let shutdown = Shutdown::new();
    let relay = tokio::spawn(OutboxRelay::new(f.pool.clone(), relay_config).run(shutdown.clone()));

    let lease = Lease {
        heartbeat: Duration::from_millis(200),
        expiry: Duration::from_secs(1),
    };
    let replicas: Vec<_> = (0..3)
        .map(|replica| {
            let consumer =
                Consumer::new(f.pool.clone(), &f.amqp_url, topology.clone()).with_lease(lease);
            tokio::spawn(consumer.run(Arc::new(Applier { replica }), shutdown.clone()))
        })
        .collect();
    testkit::poll_until("three members", Duration::from_secs(20), || async {
        (members(&f, &topology.queue).await == 3).then_some(())
    })
    .await
    .unwrap();

    // First half of the burst; replica 0 is killed as soon as it has applied something: its
    // task aborted, its connection dropped with whatever it had in hand.
    enqueue_interleaved(&f, 0, PER_HALF).await;
    testkit::poll_until("replica 0 at work", Duration::from_secs(30), || async {
        applied(&f)
            .await
            .iter()
            .any(|(_, _, replica)| *replica == 0)
            .then_some(())
    })
    .await
    .unwrap();
    let mut replicas = replicas.into_iter();
    let killed = replicas.next().unwrap();
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());

    // The second half, published after the kill: only the survivors can apply it.
    enqueue_interleaved(&f, PER_HALF, 2 * PER_HALF).await;
    let total = ORDERS * 2 * PER_HALF;
    testkit::poll_until("every event applied", Duration::from_secs(60), || async {
        (applied(&f).await.len() >= total).then_some(())
    })
    .await
    .unwrap();
    testkit::poll_until(
        "the killed member forgotten",
        Duration::from_secs(10),
        || async { (members(&f, &topology.queue).await == 2).then_some(()) },
    )
    .await
    .unwrap();

    let applied = applied(&f).await;
    // Nothing applied twice (the inbox), nothing lost.
    assert_eq!(applied.len(), total, "applied exactly once each");
    // Every order's events in publication order.
    let mut per_order: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (aggregate, n, _) in &applied {
        per_order.entry(aggregate).or_default().push(*n);
    }
    let in_order: Vec<i32> = (0..i32::try_from(2 * PER_HALF).unwrap()).collect();
    assert_eq!(per_order.len(), ORDERS);
    for (aggregate, sequence) in &per_order {
        assert_eq!(sequence, &in_order, "{aggregate}");
    }
    // All partitions consumed, and each partition's second half by the survivors alone.
    let partition_of = |aggregate: &str| topology.partition_of(topology::slot(aggregate));
    let mut by_partition: BTreeMap<u16, Vec<i32>> = BTreeMap::new();
    for (aggregate, n, replica) in &applied {
        if usize::try_from(*n).unwrap() >= PER_HALF {
            by_partition
                .entry(partition_of(aggregate))
                .or_default()
                .push(*replica);
        }
    }
    assert_eq!(
        by_partition.keys().copied().collect::<Vec<_>>(),
        (0..topology.partitions).collect::<Vec<_>>()
    );
    let replica_0_partitions: Vec<u16> = applied
        .iter()
        .filter(|(_, _, replica)| *replica == 0)
        .map(|(aggregate, _, _)| partition_of(aggregate))
        .collect();
    for partition in replica_0_partitions {
        assert!(
            by_partition[&partition].iter().all(|replica| *replica != 0),
            "partition {partition} moved to a survivor"
        );
    }

    shutdown.trigger();
    for replica in replicas {
        replica.await.unwrap();
    }
    relay.await.unwrap();
    // A replica that stops leaves the members at once.
    assert_eq!(members(&f, &topology.queue).await, 0);
}
