use std::{collections::HashMap, sync::Arc, time::Duration};

use rand::{SeedableRng as _, rngs::StdRng};

use super::*;
use crate::{clock::ManualClock, testing::TestRecorder};

const EJECTION: EjectionConfig = EjectionConfig {
    consecutive_failures: 2,
    base_ejection: Duration::from_secs(10),
    max_ejection: Duration::from_secs(60),
};

fn names(count: usize) -> Vec<Arc<str>> {
    (0..count)
        .map(|i| Arc::from(format!("http://10.0.0.{i}:50052")))
        .collect()
}

fn pool_of(strategy: Strategy, count: usize) -> (Balancer<String>, ManualClock) {
    let clock = ManualClock::new();
    let balancer =
        Balancer::with_clock("inventory", strategy, EJECTION, Arc::new(clock.clone())).unwrap();
    balancer.update(&names(count), |name| Some(name.to_owned()));
    (balancer, clock)
}

/// Picks and immediately finishes with success; returns the endpoint.
fn pick(balancer: &Balancer<String>) -> Arc<str> {
    let picked = balancer.pick(Request::default()).unwrap();
    let name = Arc::clone(picked.endpoint());
    assert_eq!(picked.value(), &*name);
    picked.finish(Outcome::Success);
    name
}

fn fail(balancer: &Balancer<String>, endpoint: &str) {
    balancer.report(endpoint, Outcome::Failure);
}

fn counts(picks: impl IntoIterator<Item = Arc<str>>) -> HashMap<Arc<str>, usize> {
    let mut counts = HashMap::new();
    for name in picks {
        *counts.entry(name).or_default() += 1;
    }
    counts
}

#[test]
fn strategies_parse_from_their_config_spelling() {
    for strategy in [Strategy::RoundRobin, Strategy::LeastRequests] {
        assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
    }
    assert_eq!(
        " Least-Requests ".parse::<Strategy>(),
        Ok(Strategy::LeastRequests)
    );
    assert!("random".parse::<Strategy>().is_err());
}

#[test]
fn an_empty_pool_picks_nothing() {
    let (balancer, _) = pool_of(Strategy::RoundRobin, 0);
    assert!(balancer.pick(Request::default()).is_none());
}

#[test]
fn round_robin_is_exactly_fair() {
    let (balancer, _) = pool_of(Strategy::RoundRobin, 3);
    let picks: Vec<Arc<str>> = (0..300).map(|_| pick(&balancer)).collect();
    assert!(counts(picks.clone()).values().all(|count| *count == 100));
    // And strictly in turn: no endpoint twice in a row.
    assert!(picks.windows(2).all(|pair| pair[0] != pair[1]));
}

#[test]
fn round_robin_stays_fair_over_the_rest_while_one_is_ejected_and_takes_it_back() {
    let (balancer, clock) = pool_of(Strategy::RoundRobin, 3);
    let all = names(3);
    fail(&balancer, &all[1]);
    fail(&balancer, &all[1]);
    let during = counts((0..100).map(|_| pick(&balancer)));
    assert_eq!(
        during.get(&all[1]),
        None,
        "an ejected endpoint gets nothing"
    );
    assert_eq!(during[&all[0]], 50);
    assert_eq!(during[&all[2]], 50);
    assert!(balancer.endpoints()[1].ejected);

    clock.advance(Duration::from_secs(10));
    let after = counts((0..99).map(|_| pick(&balancer)));
    assert_eq!(after[&all[1]], 33, "back in rotation after the ejection");
}

#[test]
fn least_requests_with_two_endpoints_always_takes_the_idle_one() {
    let (balancer, _) = pool_of(Strategy::LeastRequests, 2);
    let busy = balancer.pick(Request::default()).unwrap();
    for _ in 0..50 {
        let next = balancer.pick(Request::default()).unwrap();
        assert_ne!(next.endpoint(), busy.endpoint());
        drop(next); // finished: the other stays the busy one
    }
}

#[test]
fn least_requests_prefers_the_less_loaded_under_exact_loads() {
    let mut pool: pool::Pool<()> = pool::Pool::new(Strategy::LeastRequests, EJECTION);
    pool.update(&names(4), |_| Some(()));
    for (slot, load) in pool.slots.iter_mut().zip([3, 0, 7, 5]) {
        slot.in_flight = load;
    }
    let now = std::time::Instant::now();
    let mut rng = StdRng::seed_from_u64(42);
    let mut picks = [0; 4];
    for _ in 0..1200 {
        let index = pool.pick(Request::default(), now, &mut rng).unwrap();
        pool.slots[index].in_flight -= 1;
        picks[index] += 1;
    }
    // Pairs won: idle (1) wins 3 of the 6 pairs, load 3 wins 2, load 5 wins 1, load 7 none.
    assert_eq!(picks[2], 0);
    assert!(picks[1] > picks[0] && picks[0] > picks[3], "{picks:?}");
    assert!((500..=700).contains(&picks[1]), "{picks:?}");
}

#[test]
fn a_retry_avoids_the_endpoint_that_failed_unless_it_is_the_only_one() {
    let (balancer, _) = pool_of(Strategy::RoundRobin, 2);
    let all = names(2);
    for _ in 0..10 {
        let picked = balancer.pick(Request { avoid: &all[..1] }).unwrap();
        assert_eq!(picked.endpoint(), &all[1]);
    }
    let (single, _) = pool_of(Strategy::RoundRobin, 1);
    let picked = single.pick(Request { avoid: &names(1) }).unwrap();
    assert_eq!(picked.endpoint(), &names(1)[0]);
}

#[test]
fn when_every_endpoint_is_ejected_all_are_tried_rather_than_none() {
    let (balancer, _) = pool_of(Strategy::RoundRobin, 2);
    for name in names(2) {
        fail(&balancer, &name);
        fail(&balancer, &name);
    }
    assert!(balancer.endpoints().iter().all(|status| status.ejected));
    let shares = counts((0..10).map(|_| pick(&balancer)));
    assert_eq!(shares.len(), 2, "panic mode spreads over all endpoints");
}

#[test]
fn failures_of_picked_calls_eject_and_probation_re_ejects_on_the_first_failure() {
    let (balancer, clock) = pool_of(Strategy::RoundRobin, 2);
    let all = names(2);
    let fail_next_on = |target: &Arc<str>| loop {
        let picked = balancer.pick(Request::default()).unwrap();
        if picked.endpoint() == target {
            picked.finish(Outcome::Failure);
            return;
        }
        picked.finish(Outcome::Success);
    };
    fail_next_on(&all[0]);
    assert!(
        !balancer.endpoints()[0].ejected,
        "one failure is not enough"
    );
    fail_next_on(&all[0]);
    assert!(balancer.endpoints()[0].ejected);

    clock.advance(Duration::from_secs(10));
    assert!(
        (0..2).any(|_| pick(&balancer) == all[0]),
        "back in rotation"
    );
    // That was a success: full standing again. Two failures needed, then probation after.
    fail_next_on(&all[0]);
    assert!(!balancer.endpoints()[0].ejected);
    fail_next_on(&all[0]);
    assert!(balancer.endpoints()[0].ejected);
    clock.advance(Duration::from_secs(10));
    fail_next_on(&all[0]);
    assert!(balancer.endpoints()[0].ejected, "one failure on probation");
    clock.advance(Duration::from_secs(10));
    assert!(
        balancer.endpoints()[0].ejected,
        "the second ejection lasts longer"
    );
    clock.advance(Duration::from_secs(10));
    assert!(!balancer.endpoints()[0].ejected);
}

#[test]
fn in_flight_counts_end_when_a_pick_is_finished_or_dropped() {
    let (balancer, _) = pool_of(Strategy::LeastRequests, 1);
    let first = balancer.pick(Request::default()).unwrap();
    let second = balancer.pick(Request::default()).unwrap();
    assert_eq!(balancer.endpoints()[0].in_flight, 2);
    first.finish(Outcome::Success);
    assert_eq!(balancer.endpoints()[0].in_flight, 1);
    drop(second);
    assert_eq!(balancer.endpoints()[0].in_flight, 0);
}

#[test]
fn an_update_keeps_the_state_of_endpoints_that_stay_and_builds_only_new_ones() {
    let (balancer, _) = pool_of(Strategy::RoundRobin, 2);
    let all = names(3);
    fail(&balancer, &all[0]);
    fail(&balancer, &all[0]);
    let held = balancer.pick(Request::default()).unwrap();
    assert_eq!(held.endpoint(), &all[1]);
    let mut built = Vec::new();
    // Shuffled and duplicated, as a DNS answer may be.
    let answer = vec![
        Arc::clone(&all[2]),
        Arc::clone(&all[1]),
        Arc::clone(&all[0]),
        Arc::clone(&all[2]),
    ];
    balancer.update(&answer, |name| {
        built.push(name.to_owned());
        Some(format!("new {name}"))
    });
    assert_eq!(built, vec![all[2].to_string()]);
    let status = balancer.endpoints();
    assert_eq!(status.len(), 3);
    assert!(status[0].ejected, "health survives the update");
    assert_eq!(status[1].in_flight, 1, "load survives the update");
    assert_eq!(
        balancer.pick(Request::default()).unwrap().value(),
        &format!("new {}", all[2])
    );
}

#[test]
fn a_late_finish_for_a_removed_endpoint_touches_nothing() {
    let (balancer, _) = pool_of(Strategy::RoundRobin, 1);
    let held = balancer.pick(Request::default()).unwrap();
    balancer.update(&[], |name| Some(name.to_owned()));
    balancer.update(&names(1), |name| Some(name.to_owned()));
    held.finish(Outcome::Failure);
    let status = &balancer.endpoints()[0];
    assert_eq!(status.in_flight, 0);
    assert!(!status.ejected);
}

#[test]
fn active_health_checks_take_an_endpoint_out_and_back() {
    let (balancer, _) = pool_of(Strategy::RoundRobin, 2);
    let all = names(2);
    balancer.set_serving(&all[0], false);
    assert!((0..10).all(|_| pick(&balancer) == all[1]));
    balancer.set_serving(&all[0], true);
    assert_eq!(counts((0..10).map(|_| pick(&balancer))).len(), 2);
}

/// Records the level of every event logged while it is the default subscriber.
#[derive(Clone, Default)]
struct Levels(Arc<std::sync::Mutex<Vec<tracing::Level>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Levels {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0.lock().unwrap().push(*event.metadata().level());
    }
}

#[test]
fn passing_a_health_check_is_info_and_failing_one_is_a_warning() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let levels = Levels::default();
    let subscriber = tracing_subscriber::registry().with(levels.clone());
    let (balancer, _) = pool_of(Strategy::RoundRobin, 1);
    let endpoint = &names(1)[0];
    tracing::subscriber::with_default(subscriber, || {
        balancer.set_serving(endpoint, false);
        // At start every endpoint comes up this way: the ordinary course of things.
        balancer.set_serving(endpoint, true);
    });
    assert_eq!(
        *levels.0.lock().unwrap(),
        [tracing::Level::WARN, tracing::Level::INFO]
    );
}

#[test]
fn ejections_are_counted_and_the_gauge_follows_the_endpoint() {
    let recorder = TestRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (balancer, clock) = pool_of(Strategy::RoundRobin, 2);
    let endpoint = &names(2)[0];
    let series = |name: &str| format!("{name}{{balancer=inventory,endpoint={endpoint}}}");
    assert_eq!(
        recorder.value(&series("load_balancer_endpoint_ejected")),
        Some(0.0)
    );
    fail(&balancer, endpoint);
    fail(&balancer, endpoint);
    assert_eq!(
        recorder.value(&series("load_balancer_ejections_total")),
        Some(1.0)
    );
    assert_eq!(
        recorder.value(&series("load_balancer_endpoint_ejected")),
        Some(1.0)
    );
    clock.advance(Duration::from_secs(10));
    pick(&balancer);
    assert_eq!(
        recorder.value(&series("load_balancer_endpoint_ejected")),
        Some(0.0)
    );
}

#[test]
fn invalid_ejection_settings_are_refused() {
    let config = EjectionConfig {
        consecutive_failures: 0,
        ..EJECTION
    };
    let err = Balancer::<()>::new("x", Strategy::RoundRobin, config).unwrap_err();
    assert_eq!(err.setting, "consecutive_failures");
}
