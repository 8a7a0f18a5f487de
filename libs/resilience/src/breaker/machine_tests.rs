use std::time::Duration;

use super::*;
use BreakerState::{Closed, HalfOpen, Open};
use Outcome::{Failure, Success};

const OPEN_FOR: Duration = Duration::from_secs(30);

/// Opens on consecutive failures only (the rate can never reach the window's minimum).
fn consecutive(threshold: u32) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: threshold,
        failure_rate: 1.0,
        window: 1000,
        minimum_calls: 1000,
        open_for: OPEN_FOR,
        half_open_probes: 2,
    }
}

/// Opens on the failure rate only.
fn rate(failure_rate: f64, window: u32, minimum_calls: u32) -> BreakerConfig {
    BreakerConfig {
        failure_threshold: u32::MAX,
        failure_rate,
        window,
        minimum_calls,
        open_for: OPEN_FOR,
        half_open_probes: 2,
    }
}

/// A machine and a hand-driven "now".
struct Harness {
    machine: Machine,
    now: Instant,
}

impl Harness {
    fn new(config: BreakerConfig) -> Self {
        config.validate().unwrap();
        Self {
            machine: Machine::new(config),
            now: Instant::now(),
        }
    }

    fn state(&mut self) -> BreakerState {
        self.machine.state(self.now).0
    }

    fn admit(&mut self) -> Option<Ticket> {
        self.machine.admit(self.now).0
    }

    /// Admits a call and records its outcome; returns the transition, if any.
    fn call(&mut self, outcome: Outcome) -> Option<BreakerState> {
        let ticket = self.admit().unwrap();
        self.machine.record(ticket, outcome, self.now)
    }

    fn calls(&mut self, outcomes: &[Outcome]) -> Vec<Option<BreakerState>> {
        outcomes.iter().map(|outcome| self.call(*outcome)).collect()
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Opens the breaker and waits until it is half-open.
    fn half_open(config: BreakerConfig) -> Self {
        let mut harness = Self::new(config);
        while harness.call(Failure) != Some(Open) {}
        harness.advance(OPEN_FOR);
        assert_eq!(harness.state(), HalfOpen);
        harness
    }
}

#[test]
fn a_new_breaker_is_closed_and_admits_calls() {
    let mut harness = Harness::new(BreakerConfig::default());
    assert_eq!(harness.state(), Closed);
    assert!(harness.admit().is_some());
    assert_eq!(harness.call(Success), None);
}

#[test]
fn consecutive_failures_open_at_the_threshold() {
    let mut harness = Harness::new(consecutive(3));
    assert_eq!(harness.calls(&[Failure, Failure]), vec![None, None]);
    assert_eq!(harness.state(), Closed);
    assert_eq!(harness.call(Failure), Some(Open));
    assert_eq!(harness.state(), Open);
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let mut harness = Harness::new(consecutive(3));
    harness.calls(&[Failure, Failure, Success, Failure, Failure]);
    assert_eq!(harness.state(), Closed);
    assert_eq!(harness.call(Failure), Some(Open));
}

#[test]
fn the_failure_rate_is_not_judged_below_the_minimum_calls() {
    let mut harness = Harness::new(rate(0.5, 10, 4));
    assert_eq!(harness.calls(&[Failure, Failure, Failure]), vec![None; 3]);
    assert_eq!(
        harness.state(),
        Closed,
        "3 of 3 failed, but 3 calls prove little"
    );
    assert_eq!(harness.call(Failure), Some(Open));
}

#[test]
fn the_failure_rate_opens_once_enough_calls_were_seen_even_on_a_success() {
    let mut harness = Harness::new(rate(0.5, 10, 4));
    harness.calls(&[Failure, Success, Failure]);
    assert_eq!(harness.state(), Closed);
    // The fourth call makes the window eligible: 2 of 4 failed.
    assert_eq!(harness.call(Success), Some(Open));
}

#[test]
fn a_failure_rate_just_below_the_limit_stays_closed() {
    let mut harness = Harness::new(rate(0.5, 10, 10));
    let mut outcomes = vec![Success; 6];
    outcomes.extend([Failure; 4]);
    harness.calls(&outcomes);
    assert_eq!(harness.state(), Closed, "4 of 10 is below 50%");
    assert_eq!(harness.call(Failure), Some(Open), "5 of the last 10");
}

#[test]
fn the_failure_rate_compares_exactly_at_the_limit() {
    // 0.3 · 10 is slightly more than 3 in floating point; 3 / 10 is exactly 0.3.
    let mut harness = Harness::new(rate(0.3, 10, 10));
    let mut outcomes = vec![Success; 7];
    outcomes.extend([Failure; 2]);
    harness.calls(&outcomes);
    assert_eq!(harness.call(Failure), Some(Open));
}

#[test]
fn only_the_last_window_of_calls_counts() {
    let mut harness = Harness::new(rate(0.5, 4, 4));
    harness.calls(&[Success; 6]);
    // Over all 8 calls 2 failures would be 25%; over the last 4 they are 50%.
    assert_eq!(harness.calls(&[Failure, Failure]), vec![None, Some(Open)]);
}

#[test]
fn failures_that_slide_out_of_the_window_are_forgotten() {
    let mut harness = Harness::new(rate(0.5, 4, 4));
    harness.calls(&[Failure, Success, Success, Success, Success, Success]);
    // The early failure has left the window: 1 of the last 4 is 25%.
    assert_eq!(harness.call(Failure), None);
    assert_eq!(harness.state(), Closed);
    assert_eq!(harness.call(Failure), Some(Open));
}

#[test]
fn an_open_breaker_rejects_until_open_for_has_passed() {
    let mut harness = Harness::new(consecutive(1));
    harness.call(Failure);
    assert!(harness.admit().is_none());
    harness.advance(OPEN_FOR - Duration::from_nanos(1));
    assert!(harness.admit().is_none());
    assert_eq!(harness.state(), Open);
    harness.advance(Duration::from_nanos(1));
    let (ticket, transition) = harness.machine.admit(harness.now);
    assert!(ticket.is_some(), "the first call after open_for is a probe");
    assert_eq!(transition, Some(HalfOpen));
}

#[test]
fn reading_the_state_moves_open_to_half_open_exactly_once() {
    let mut harness = Harness::new(consecutive(1));
    harness.call(Failure);
    harness.advance(OPEN_FOR);
    assert_eq!(
        harness.machine.state(harness.now),
        (HalfOpen, Some(HalfOpen))
    );
    assert_eq!(harness.machine.state(harness.now), (HalfOpen, None));
}

#[test]
fn half_open_admits_only_the_configured_number_of_probes() {
    let mut harness = Harness::half_open(consecutive(1));
    let first = harness.admit();
    let second = harness.admit();
    assert!(first.is_some() && second.is_some());
    assert!(
        harness.admit().is_none(),
        "a third concurrent probe is rejected"
    );
    // A finished probe keeps its slot: half-open never lets more than two calls through.
    harness.machine.record(first.unwrap(), Success, harness.now);
    assert!(harness.admit().is_none());
    assert_eq!(harness.state(), HalfOpen);
}

#[test]
fn all_probes_succeeding_closes_the_breaker_with_a_clean_slate() {
    let mut harness = Harness::half_open(consecutive(2));
    let probes = [harness.admit().unwrap(), harness.admit().unwrap()];
    assert_eq!(
        harness.machine.record(probes[0], Success, harness.now),
        None
    );
    assert_eq!(
        harness.machine.record(probes[1], Success, harness.now),
        Some(Closed)
    );
    // The failures that opened it are forgotten: it takes two new ones to open again.
    assert_eq!(harness.calls(&[Failure, Failure]), vec![None, Some(Open)]);
}

#[test]
fn a_closed_breaker_forgets_the_old_window() {
    let mut harness = Harness::new(rate(0.5, 4, 4));
    harness.calls(&[Success, Success, Failure, Failure]);
    harness.advance(OPEN_FOR);
    harness.calls(&[Success, Success]);
    assert_eq!(harness.state(), Closed);
    assert_eq!(harness.calls(&[Failure, Success, Success]), vec![None; 3]);
    assert_eq!(
        harness.state(),
        Closed,
        "1 of 3 new calls failed, below the minimum"
    );
}

#[test]
fn any_failing_probe_reopens_for_a_full_period() {
    let mut harness = Harness::half_open(consecutive(1));
    let probes = [harness.admit().unwrap(), harness.admit().unwrap()];
    harness.advance(Duration::from_secs(1));
    assert_eq!(
        harness.machine.record(probes[0], Success, harness.now),
        None
    );
    assert_eq!(
        harness.machine.record(probes[1], Failure, harness.now),
        Some(Open)
    );
    harness.advance(OPEN_FOR - Duration::from_nanos(1));
    assert_eq!(harness.state(), Open, "open_for counts from the reopening");
    harness.advance(Duration::from_nanos(1));
    assert_eq!(harness.state(), HalfOpen);
}

#[test]
fn the_first_probe_failure_wins_over_later_successes() {
    let mut harness = Harness::half_open(consecutive(1));
    let probes = [harness.admit().unwrap(), harness.admit().unwrap()];
    assert_eq!(
        harness.machine.record(probes[0], Failure, harness.now),
        Some(Open)
    );
    assert_eq!(
        harness.machine.record(probes[1], Success, harness.now),
        None
    );
    assert_eq!(harness.state(), Open);
}

#[test]
fn outcomes_of_calls_admitted_before_opening_are_ignored() {
    let mut harness = Harness::new(consecutive(1));
    let slow_success = harness.admit().unwrap();
    let slow_failure = harness.admit().unwrap();
    assert_eq!(harness.call(Failure), Some(Open));
    assert_eq!(
        harness.machine.record(slow_success, Success, harness.now),
        None
    );
    harness.advance(OPEN_FOR);
    assert_eq!(harness.state(), HalfOpen);
    // Neither counts as a probe: they describe the upstream as it was.
    assert_eq!(
        harness.machine.record(slow_success, Success, harness.now),
        None
    );
    assert_eq!(
        harness.machine.record(slow_failure, Failure, harness.now),
        None
    );
    assert_eq!(harness.state(), HalfOpen);
    let probes = [harness.admit().unwrap(), harness.admit().unwrap()];
    harness.machine.record(probes[0], Success, harness.now);
    assert_eq!(
        harness.machine.record(probes[1], Success, harness.now),
        Some(Closed)
    );
    // Nor do they count in the next closed period.
    assert_eq!(
        harness.machine.record(slow_failure, Failure, harness.now),
        None
    );
    assert_eq!(harness.state(), Closed);
}

#[test]
fn an_abandoned_probe_frees_its_slot() {
    let mut harness = Harness::half_open(consecutive(1));
    let abandoned = harness.admit().unwrap();
    let _in_flight = harness.admit().unwrap();
    assert!(harness.admit().is_none());
    harness.machine.release(abandoned);
    assert!(
        harness.admit().is_some(),
        "another probe takes the freed slot"
    );
    assert!(harness.admit().is_none());
}

#[test]
fn releasing_a_stale_or_closed_ticket_changes_nothing() {
    let mut harness = Harness::new(consecutive(1));
    let closed_ticket = harness.admit().unwrap();
    harness.machine.release(closed_ticket);
    assert_eq!(harness.state(), Closed);
    harness.call(Failure);
    harness.advance(OPEN_FOR);
    assert_eq!(harness.state(), HalfOpen);
    let _probes = [harness.admit().unwrap(), harness.admit().unwrap()];
    harness.machine.release(closed_ticket);
    assert!(
        harness.admit().is_none(),
        "a stale release frees no probe slot"
    );
}

#[test]
fn states_map_to_gauge_values_and_labels() {
    assert_eq!(Closed.gauge_value(), 0.0);
    assert_eq!(Open.gauge_value(), 1.0);
    assert_eq!(HalfOpen.gauge_value(), 2.0);
    assert_eq!(
        [Closed.label(), Open.label(), HalfOpen.label()],
        ["closed", "open", "half_open"]
    );
}
