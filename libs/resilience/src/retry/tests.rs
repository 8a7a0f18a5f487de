use std::{
    cell::{Cell, RefCell},
    sync::Arc,
    time::Duration,
};

use tokio::time::Instant;

use super::*;
use crate::clock::ManualClock;

#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Worth retrying; carries the attempt number that produced it.
    Transient(u32),
    /// Retrying cannot help.
    Fatal(u32),
}

fn is_transient(error: &Failure) -> bool {
    matches!(error, Failure::Transient(_))
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(1),
    }
}

/// A budget that never runs out in these tests (each call deposits a whole token and the
/// floor covers the rest).
fn generous_budget() -> RetryBudget {
    budget(1.0, 1000)
}

fn budget(ratio: f64, min_retries_per_second: u32) -> RetryBudget {
    let config = BudgetConfig {
        ratio,
        min_retries_per_second,
        max_tokens: 100,
    };
    RetryBudget::with_clock(config, Arc::new(ManualClock::new())).unwrap()
}

/// Waits exactly the ceiling, so timings are predictable.
fn full_delay(backoff: &mut Backoff) -> Duration {
    let ceiling = backoff.ceiling();
    backoff.next_delay();
    ceiling
}

/// What a scripted attempt does.
#[derive(Clone, Copy)]
enum Step {
    Succeed,
    FailTransiently,
    FailFatally,
}

/// An operation that plays `script` (one step per attempt, then transient failures forever)
/// and counts the attempts.
struct Scripted {
    attempts: Cell<u32>,
    script: RefCell<Vec<Step>>,
}

impl Scripted {
    fn new(script: Vec<Step>) -> Self {
        Self {
            attempts: Cell::new(0),
            script: RefCell::new(script),
        }
    }

    fn call(&self) -> impl Future<Output = Result<&'static str, Failure>> + use<> {
        let attempt = self.attempts.get() + 1;
        self.attempts.set(attempt);
        let mut script = self.script.borrow_mut();
        let step = if script.is_empty() {
            Step::FailTransiently
        } else {
            script.remove(0)
        };
        async move {
            match step {
                Step::Succeed => Ok("done"),
                Step::FailTransiently => Err(Failure::Transient(attempt)),
                Step::FailFatally => Err(Failure::Fatal(attempt)),
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_success_is_returned_without_retrying() {
    let op = Scripted::new(vec![Step::Succeed]);
    let result = retry(&policy(3), &generous_budget(), is_transient, || op.call()).await;
    assert_eq!(result, Ok("done"));
    assert_eq!(op.attempts.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_success() {
    let op = Scripted::new(vec![
        Step::FailTransiently,
        Step::FailTransiently,
        Step::Succeed,
    ]);
    let result = retry(&policy(5), &generous_budget(), is_transient, || op.call()).await;
    assert_eq!(result, Ok("done"));
    assert_eq!(op.attempts.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_error_is_returned_at_once() {
    let op = Scripted::new(vec![Step::FailFatally, Step::Succeed]);
    let result = retry(&policy(5), &generous_budget(), is_transient, || op.call()).await;
    assert_eq!(result, Err(Failure::Fatal(1)));
    assert_eq!(op.attempts.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_error_after_retries_stops_them() {
    let op = Scripted::new(vec![
        Step::FailTransiently,
        Step::FailFatally,
        Step::Succeed,
    ]);
    let result = retry(&policy(5), &generous_budget(), is_transient, || op.call()).await;
    assert_eq!(result, Err(Failure::Fatal(2)));
    assert_eq!(op.attempts.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn exhausted_attempts_return_the_last_error() {
    let op = Scripted::new(vec![]);
    let result = retry(&policy(3), &generous_budget(), is_transient, || op.call()).await;
    assert_eq!(
        result,
        Err(Failure::Transient(3)),
        "the last error, not the first"
    );
    assert_eq!(op.attempts.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn one_attempt_means_no_retries_and_zero_is_treated_as_one() {
    for max_attempts in [0, 1] {
        let op = Scripted::new(vec![]);
        let result = retry(
            &policy(max_attempts),
            &generous_budget(),
            is_transient,
            || op.call(),
        )
        .await;
        assert_eq!(result, Err(Failure::Transient(1)));
        assert_eq!(op.attempts.get(), 1, "max_attempts = {max_attempts}");
    }
    let op = Scripted::new(vec![]);
    let no_retries = RetryPolicy::no_retries();
    let result = retry(&no_retries, &generous_budget(), is_transient, || op.call()).await;
    assert_eq!(result, Err(Failure::Transient(1)));
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_stops_retries_and_returns_the_last_error() {
    // No deposits worth a token, one retry per second from the floor.
    let budget = budget(0.0, 1);
    let op = Scripted::new(vec![]);
    let result = retry(&policy(10), &budget, is_transient, || op.call()).await;
    assert_eq!(result, Err(Failure::Transient(2)));
    assert_eq!(
        op.attempts.get(),
        2,
        "the original attempt and the one retry the floor paid"
    );

    // The budget is shared: the next call to the same upstream gets no retry at all.
    let op = Scripted::new(vec![]);
    let result = retry(&policy(10), &budget, is_transient, || op.call()).await;
    assert_eq!(result, Err(Failure::Transient(1)));
}

#[tokio::test(start_paused = true)]
async fn each_call_deposits_into_the_budget_it_spends() {
    // A whole token per original call and no floor: every call may retry exactly once.
    let budget = budget(1.0, 0);
    for _ in 0..3 {
        let op = Scripted::new(vec![]);
        let result = retry(&policy(10), &budget, is_transient, || op.call()).await;
        assert_eq!(result, Err(Failure::Transient(2)));
    }
}

#[tokio::test(start_paused = true)]
async fn retries_wait_the_backoff_delay_and_not_after_the_last_attempt() {
    let start = Instant::now();
    let times = RefCell::new(Vec::new());
    let result: Result<(), Failure> = retry_with_delays(
        &policy(4),
        &generous_budget(),
        is_transient,
        || {
            times.borrow_mut().push(start.elapsed());
            let attempt = u32::try_from(times.borrow().len()).unwrap();
            async move { Err(Failure::Transient(attempt)) }
        },
        full_delay,
    )
    .await;
    assert_eq!(result, Err(Failure::Transient(4)));
    let millis: Vec<u128> = times.borrow().iter().map(Duration::as_millis).collect();
    assert_eq!(millis, vec![0, 100, 300, 700], "waits of 100, 200, 400 ms");
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(700),
        "no wait after giving up"
    );
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_within_the_ceilings() {
    let policy = policy(6);
    let backoff = policy.backoff();
    for _ in 0..20 {
        let start = Instant::now();
        let times = RefCell::new(Vec::new());
        let _: Result<(), Failure> = retry(&policy, &generous_budget(), is_transient, || {
            times.borrow_mut().push(start.elapsed());
            async { Err(Failure::Transient(0)) }
        })
        .await;
        let times = times.borrow();
        assert_eq!(times.len(), 6);
        for (failures, pair) in (0_u32..).zip(times.windows(2)) {
            let gap = pair[1] - pair[0];
            assert!(
                gap <= backoff.ceiling_for(failures),
                "gap {gap:?} after {failures}"
            );
        }
    }
}

#[test]
fn the_retry_future_is_send_when_the_operation_is() {
    fn assert_send<T: Send>(_: &T) {}
    let budget = generous_budget();
    let policy = policy(3);
    let future = retry(&policy, &budget, is_transient, || async {
        Err::<(), _>(Failure::Fatal(1))
    });
    assert_send(&future);
}

#[test]
fn the_default_policy_makes_three_attempts_with_short_waits() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_attempts, 3);
    let backoff = policy.backoff();
    assert_eq!(backoff.ceiling_for(0), Duration::from_millis(50));
    assert_eq!(backoff.ceiling_for(1), Duration::from_millis(100));
}
