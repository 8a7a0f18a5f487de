//! The fault tier: sustained load through the gateway while one fault at a time is injected
//! into the real binaries, then the invariants, read from every service's database once the
//! system is quiet (`support::invariants`).
//!
//! | test | fault |
//! |---|---|
//! | `every_service_sigkilled_at_random_moments` | each of users, inventory, payments, orders and the gateway SIGKILLed once at a random moment, restarted on its ports |
//! | `an_orders_replica_frozen_past_its_saga_lease` | one of two orders replicas SIGSTOPped while it authorizes a payment, for four leases, then SIGCONTed |
//! | `a_rabbitmq_restart` | the broker itself stopped and started (`rabbitmqctl stop_app` / `start_app`), on a node of the test's own |
//! | `a_two_minute_outage_of_the_payments_database` | payments' Postgres connections cut and refused for 120 s, twice the sagas' deadline |
//! | `one_delivery_in_ten_duplicated` | a copy of one event in ten published again, as a relay retrying after a lost confirm does |
//! | `payments_slower_than_the_call_timeout` | every byte between orders and payments held for longer than orders' call timeout, for 12 s |
//!
//! Each test prints one line per fault: the orders accepted, the invariants checked, and the
//! recovery time (from the end of the fault to the first confirmation of an order placed after
//! it). The customers' choices and the fault moments come from a seed, printed too
//! (`FAULTS_SEED=… cargo nextest run -p e2e --test faults` replays them).
//!
//! The tests share nothing (each its own processes, databases, exchange; the broker test its own
//! broker), so they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use lapin::{
    options::{BasicAckOptions, BasicConsumeOptions},
    types::{FieldTable, ShortString},
};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};
use support::{
    invariants,
    load::{Load, LoadReport, Shop},
    system::Options,
};
use testkit::{EventProbe, PrivateBroker, ServiceProcess, events::Outgoing};
use tokio::sync::watch;

/// How long the system may take to become quiescent after the load stops.
const QUIESCENCE: Duration = Duration::from_secs(120);

/// The seed of this run: `FAULTS_SEED`, or a fresh one.
fn seed() -> u64 {
    std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random)
}

/// One injected fault: its name, and when it ended.
struct Fault {
    name: String,
    ended: Instant,
}

/// How many lines `process` has logged that contain `needle`.
fn logged(process: &ServiceProcess, needle: &str) -> usize {
    process
        .logs()
        .iter()
        .filter(|line| line.contains(needle))
        .count()
}

/// The order a saga log line is about (`"order_id":"…"` in its span).
fn order_of(line: &str) -> Option<&str> {
    let start = line.find(r#""order_id":""#)? + r#""order_id":""#.len();
    line[start..].split('"').next()
}

/// The sagas a runner's log shows it in the middle of authorizing: moved to
/// `authorize_payment` and not yet out of it.
fn sagas_held(logs: &[String]) -> HashSet<&str> {
    let mut held = HashSet::new();
    for line in logs {
        let Some(order) = order_of(line) else {
            continue;
        };
        if line.contains(r#""to":"authorize_payment""#) {
            held.insert(order);
        } else if line.contains(r#""from":"authorize_payment""#) {
            held.remove(order);
        }
    }
    held
}

/// Waits (the load runs on meanwhile) until `at` after `started`.
async fn until(started: Instant, at: Duration) {
    tokio::time::sleep_until((started + at).into()).await;
}

/// Stops the load, waits for quiescence, checks every invariant, prints one line per fault,
/// and stops the system.
async fn conclude(test: &str, seed: u64, shop: Shop, load: Load, faults: &[Fault]) {
    let report: LoadReport = load.stop().await;
    let accepted = report.accepted().count();
    assert!(accepted > 0, "{test}: no order was accepted at all");
    let checked = invariants::settle(&shop.system, &report, &shop.initial, QUIESCENCE).await;
    for fault in faults {
        let recovery = report.recovery_after(fault.ended);
        println!(
            "{test}: fault={} seed={seed} accepted={accepted} confirmed={} cancelled={} \
             invariants={} quiescent_after={:.1?} recovery={}",
            fault.name,
            checked.confirmed,
            checked.cancelled,
            checked.invariants,
            checked.quiescent_after,
            recovery.map_or_else(|| "none".to_owned(), |d| format!("{d:.1?}")),
        );
        assert!(
            recovery.is_some(),
            "{test}: no order placed after {} ended was confirmed",
            fault.name
        );
    }
    shop.system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_sigkilled_at_random_moments() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut shop = Shop::open(Options::default()).await;
    let load = Load::start(&shop, seed);
    let started = Instant::now();

    let mut victims = ["users", "inventory", "payments", "orders", "gateway"];
    victims.shuffle(&mut rng);
    let mut moments: Vec<Duration> = (0..victims.len())
        .map(|_| Duration::from_millis(rng.random_range(2_000..16_000)))
        .collect();
    moments.sort();
    let mut faults = Vec::new();
    for (victim, at) in victims.into_iter().zip(moments) {
        until(started, at).await;
        shop.system.kill_and_restart(victim, 0).await;
        faults.push(Fault {
            name: format!("SIGKILL {victim} at {at:.1?}"),
            ended: Instant::now(),
        });
    }
    until(started, Duration::from_secs(26)).await;
    conclude("sigkill", seed, shop, load, &faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_orders_replica_frozen_past_its_saga_lease() {
    const LEASE: Duration = Duration::from_secs(2);
    const FROZEN: Duration = Duration::from_secs(8);
    let seed = seed();
    // A slow provider keeps every authorization in flight for a second: the replica is frozen
    // with a saga in its hands, between the participant's answer and the saga's next write.
    let shop = Shop::open(Options {
        orders_replicas: 2,
        orders_env: vec![("ORDERS_SAGA_LEASE", "2s".to_owned())],
        payments_env: vec![("PAYMENTS_PROVIDER_LATENCY", "1s".to_owned())],
        ..Options::default()
    })
    .await;
    let load = Load::start(&shop, seed);
    let started = Instant::now();

    until(started, Duration::from_secs(5)).await;
    let frozen = &shop.system.process("orders", 0).process;
    let authorizing = r#""to":"authorize_payment""#;
    let before = logged(frozen, authorizing);
    testkit::poll_until(
        "the replica to start authorizing a payment",
        Duration::from_secs(10),
        || async { (logged(frozen, authorizing) > before).then_some(()) },
    )
    .await
    .unwrap();
    frozen.pause().await.unwrap();
    let paused_lines = frozen.logs().len();
    let resume_at = started.elapsed() + FROZEN;
    until(started, resume_at).await;
    frozen.resume().await.unwrap();
    let ended = Instant::now();
    until(started, resume_at + Duration::from_secs(15)).await;
    // What the runner did when it woke: it finished the step it was frozen in (its answer or
    // its timeout) for a saga the other replica had taken over meanwhile, and tried to record
    // it (the invariants then prove that the saga was finished, exactly once).
    let logs = frozen.logs();
    let (before, after) = logs.split_at(paused_lines);
    let held = sagas_held(before);
    let stale = after
        .iter()
        .filter(|line| {
            line.contains("saga step will be retried") || line.contains("lost the saga lease")
        })
        .filter(|line| order_of(line).is_some_and(|order| held.contains(order)))
        .count();
    assert!(
        stale > 0,
        "the replica was frozen in the middle of a saga step (it held {held:?})"
    );
    let faults = [Fault {
        name: format!(
            "SIGSTOP orders replica mid-saga for {FROZEN:?} (lease {LEASE:?}; it held {} \
             sagas and woke to {stale} stale steps)",
            held.len()
        ),
        ended,
    }];
    conclude("sigstop", seed, shop, load, &faults).await;
}

/// The load goes on for a fixed time after the broker is back, not up to a fixed moment: a
/// node can take 15 s to accept connections after `start_app` on a busy machine, and a schedule
/// that ended the load at a fixed moment could end it before any order was placed after the
/// fault, failing the test with no recovery measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rabbitmq_restart() {
    let seed = seed();
    let broker = PrivateBroker::start().await;
    let shop = Shop::open(Options {
        amqp_url: Some(broker.url()),
        ..Options::default()
    })
    .await;
    let load = Load::start(&shop, seed);
    let started = Instant::now();

    until(started, Duration::from_secs(5)).await;
    broker.stop_app().await;
    until(started, Duration::from_secs(15)).await;
    broker.start_app().await;
    let ended = Instant::now();
    let faults = [Fault {
        name: format!(
            "RabbitMQ stopped for 10s (back {:.1?} after start_app)",
            ended - started - Duration::from_secs(15)
        ),
        ended,
    }];
    until(ended, Duration::from_secs(13)).await;
    conclude("rabbitmq", seed, shop, load, &faults).await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_minute_outage_of_the_payments_database() {
    const OUTAGE: Duration = Duration::from_secs(120);
    let seed = seed();
    // Half the outage: sagas caught in it pass their deadline while payments is still
    // unreachable, and must compensate against a participant that cannot answer yet.
    let shop = Shop::open(Options {
        proxied_databases: vec!["payments"],
        orders_env: vec![("ORDERS_SAGA_DEADLINE", "60s".to_owned())],
        ..Options::default()
    })
    .await;
    let load = Load::start(&shop, seed);
    let started = Instant::now();

    until(started, Duration::from_secs(5)).await;
    let proxy = shop.system.database_proxy("payments");
    proxy.cut();
    until(started, Duration::from_secs(5) + OUTAGE).await;
    proxy.restore();
    assert!(
        proxy.refused() > 0,
        "payments tried to reach its database during the outage"
    );
    let faults = [Fault {
        name: format!("payments database down for {OUTAGE:?}"),
        ended: Instant::now(),
    }];
    until(started, OUTAGE + Duration::from_secs(18)).await;
    conclude("postgres", seed, shop, load, &faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_delivery_in_ten_duplicated() {
    let seed = seed();
    let shop = Shop::open(Options::default()).await;
    let (stop, stopped) = watch::channel(false);
    let duplicator = tokio::spawn(duplicate(
        shop.system.amqp_url.clone(),
        shop.system.exchange.clone(),
        seed,
        stopped,
    ));
    let load = Load::start(&shop, seed);
    let started = Instant::now();

    until(started, Duration::from_secs(15)).await;
    stop.send_replace(true);
    let (seen, copies) = duplicator.await.unwrap();
    assert!(copies > 0, "some deliveries were duplicated ({seen} seen)");
    let faults = [Fault {
        name: format!("{copies} of {seen} events delivered twice"),
        ended: Instant::now(),
    }];
    until(started, Duration::from_secs(24)).await;
    conclude("duplicates", seed, shop, load, &faults).await;
}

/// Publishes a second copy of one event in ten on `exchange` (the same routing key, message id,
/// type and bytes) until `stopped`; returns how many events it saw and how many it copied.
///
/// This is the duplicate a real relay makes: it publishes, the broker's confirm is lost, and it
/// publishes the same outbox row again. Every consumer bound to the key gets both copies.
async fn duplicate(
    amqp_url: String,
    exchange: String,
    seed: u64,
    mut stopped: watch::Receiver<bool>,
) -> (usize, usize) {
    let probe = EventProbe::bind(&amqp_url, &exchange, "#").await;
    let mut deliveries = probe
        .channel()
        .basic_consume(
            ShortString::from(probe.queue()),
            ShortString::from(testkit::unique_name("duplicator")),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xD0D0);
    let mut seen = HashSet::new();
    let mut copies = 0;
    loop {
        let delivery = tokio::select! {
            delivery = deliveries.next() => delivery,
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let Some(Ok(delivery)) = delivery else { break };
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        let Some(id) = delivery.properties.message_id().clone() else {
            continue;
        };
        // Our own copies come back here too: each event is considered once.
        if !seen.insert(id.to_string()) || !rng.random_bool(0.1) {
            continue;
        }
        let event_type = delivery
            .properties
            .kind()
            .as_ref()
            .map_or("", ShortString::as_str);
        testkit::events::publish(
            &amqp_url,
            &exchange,
            Outgoing {
                routing_key: delivery.routing_key.as_str(),
                message_id: id.to_string(),
                event_type,
                body: &delivery.data,
            },
        )
        .await;
        copies += 1;
    }
    (seen.len(), copies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_slower_than_the_call_timeout() {
    /// `ORDERS_CALL_TIMEOUT`'s default.
    const CALL_TIMEOUT: Duration = Duration::from_secs(2);
    let seed = seed();
    let shop = Shop::open(Options {
        proxied_payments: true,
        ..Options::default()
    })
    .await;
    let load = Load::start(&shop, seed);
    let started = Instant::now();

    until(started, Duration::from_secs(5)).await;
    let proxy = shop.system.payments_proxy();
    proxy.set_delay(CALL_TIMEOUT * 3 / 2);
    until(started, Duration::from_secs(17)).await;
    proxy.set_delay(Duration::ZERO);
    let ended = Instant::now();
    let timed_out = logged(&shop.system.process("orders", 0).process, "Timeout expired");
    assert!(timed_out > 0, "some saga calls to payments timed out");
    let faults = [Fault {
        name: format!(
            "orders→payments {:?} slower for 12s (call timeout {CALL_TIMEOUT:?}; \
             {timed_out} calls timed out)",
            CALL_TIMEOUT * 3 / 2
        ),
        ended,
    }];
    until(started, Duration::from_secs(26)).await;
    conclude("latency", seed, shop, load, &faults).await;
}
