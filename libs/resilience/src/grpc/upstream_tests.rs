use std::{
    cell::{Cell, RefCell},
    time::Duration,
};

use tonic::{Code, TimeoutExpired};

use super::*;
use crate::{
    breaker::{BreakerConfig, BreakerState},
    clock::ManualClock,
    retry::BudgetConfig,
};

/// Opens after two failed calls in a row; retries up to three attempts.
fn upstream_with_budget(budget: BudgetConfig) -> Upstream {
    let clock = Arc::new(ManualClock::new());
    let breaker_config = BreakerConfig {
        failure_threshold: 2,
        failure_rate: 1.0,
        window: 10,
        minimum_calls: 10,
        open_for: Duration::from_secs(10),
        half_open_probes: 1,
    };
    let breaker = CircuitBreaker::with_clock("inventory", breaker_config, clock.clone()).unwrap();
    let budget = RetryBudget::with_clock(budget, clock).unwrap();
    let policy = RetryPolicy {
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(100),
    };
    Upstream::new("inventory", breaker, budget, policy)
}

fn upstream() -> Upstream {
    upstream_with_budget(BudgetConfig {
        ratio: 1.0,
        min_retries_per_second: 1000,
        max_tokens: 100,
    })
}

/// Answers each attempt from `script` (then UNAVAILABLE forever) and counts the attempts.
struct Script {
    attempts: Cell<u32>,
    steps: RefCell<Vec<Result<u32, Status>>>,
}

impl Script {
    fn new(steps: Vec<Result<u32, Status>>) -> Self {
        Self {
            attempts: Cell::new(0),
            steps: RefCell::new(steps),
        }
    }

    fn failing(code: Code) -> Self {
        Self::new(
            (0..10)
                .map(|_| Err(Status::new(code, "scripted")))
                .collect(),
        )
    }

    fn attempt(&self) -> impl Future<Output = Result<u32, Status>> + use<> {
        self.attempts.set(self.attempts.get() + 1);
        let mut steps = self.steps.borrow_mut();
        let step = if steps.is_empty() {
            Err(Status::unavailable("scripted"))
        } else {
            steps.remove(0)
        };
        async move { step }
    }

    fn attempts(&self) -> u32 {
        self.attempts.get()
    }
}

fn client_side_timeout() -> Status {
    Status::from_error(Box::new(TimeoutExpired(())))
}

#[tokio::test(start_paused = true)]
async fn idempotent_calls_are_retried_through_transient_failures() {
    let upstream = upstream();
    let script = Script::new(vec![
        Err(Status::unavailable("restarting")),
        Err(Status::resource_exhausted("shedding")),
        Ok(42),
    ]);
    assert_eq!(upstream.call(true, || script.attempt()).await.unwrap(), 42);
    assert_eq!(script.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_calls_are_never_retried() {
    let upstream = upstream();
    let script = Script::new(vec![Err(Status::unavailable("restarting")), Ok(42)]);
    let status = upstream.call(false, || script.attempt()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "restarting");
    assert_eq!(script.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn answers_about_the_request_are_returned_at_once() {
    let upstream = upstream();
    let script = Script::failing(Code::NotFound);
    let status = upstream.call(true, || script.attempt()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(script.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_return_the_last_status() {
    let upstream = upstream();
    let script = Script::new(vec![
        Err(Status::unavailable("first")),
        Err(Status::unavailable("second")),
        Err(Status::unavailable("third")),
    ]);
    let status = upstream.call(true, || script.attempt()).await.unwrap_err();
    assert_eq!(status.message(), "third");
    assert_eq!(script.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn deadline_exceeded_is_retried_only_when_opted_in() {
    let script = Script::failing(Code::DeadlineExceeded);
    let status = upstream()
        .call(true, || script.attempt())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(script.attempts(), 1);

    let opted_in = upstream().retrying_deadline_exceeded();
    let script = Script::new(vec![
        Err(Status::deadline_exceeded("slow")),
        Err(client_side_timeout()),
    ]);
    let status = opted_in.call(true, || script.attempt()).await.unwrap_err();
    assert_eq!(
        script.attempts(),
        3,
        "a client-side timeout is a missed deadline too"
    );
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_answers_unavailable_without_calling() {
    let upstream = upstream();
    for _ in 0..2 {
        let script = Script::failing(Code::Internal);
        let _ = upstream.call(false, || script.attempt()).await;
    }
    assert_eq!(upstream.breaker().state(), BreakerState::Open);
    let script = Script::new(vec![Ok(1)]);
    let status = upstream.call(true, || script.attempt()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "inventory: circuit open");
    assert_eq!(script.attempts(), 0, "nothing was sent");
}

#[tokio::test(start_paused = true)]
async fn the_breaker_judges_whole_calls_not_attempts() {
    let upstream = upstream();
    // Four failed attempts, each absorbed by a retry: the caller saw two successes.
    for _ in 0..2 {
        let script = Script::new(vec![
            Err(Status::unavailable("blip")),
            Err(Status::unavailable("blip")),
            Ok(1),
        ]);
        upstream.call(true, || script.attempt()).await.unwrap();
    }
    assert_eq!(upstream.breaker().state(), BreakerState::Closed);
    // Two calls that failed even after retrying: two failures in a row.
    for _ in 0..2 {
        let script = Script::failing(Code::Unavailable);
        let _ = upstream.call(true, || script.attempt()).await;
        assert_eq!(script.attempts(), 3);
    }
    assert_eq!(upstream.breaker().state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn business_errors_never_open_the_breaker() {
    let upstream = upstream();
    for code in [
        Code::NotFound,
        Code::FailedPrecondition,
        Code::InvalidArgument,
    ] {
        for _ in 0..5 {
            let script = Script::failing(code);
            let _ = upstream.call(true, || script.attempt()).await;
        }
    }
    assert_eq!(upstream.breaker().state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn client_side_timeouts_count_against_the_upstream() {
    let upstream = upstream();
    for _ in 0..2 {
        let script = Script::new(vec![Err(client_side_timeout())]);
        let status = upstream.call(true, || script.attempt()).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::Cancelled,
            "the caller sees tonic's status unchanged"
        );
    }
    assert_eq!(upstream.breaker().state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_stops_retries_across_calls() {
    // No floor; each call deposits half a token, so only every second call may retry once.
    let upstream = upstream_with_budget(BudgetConfig {
        ratio: 0.5,
        min_retries_per_second: 0,
        max_tokens: 100,
    });
    let mut attempts = Vec::new();
    for _ in 0..4 {
        let script = Script::new(vec![Err(Status::unavailable("down")), Ok(1)]);
        let _ = upstream.call(true, || script.attempt()).await;
        attempts.push(script.attempts());
    }
    assert_eq!(attempts, vec![1, 2, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_calls_still_count_as_traffic_for_the_budget() {
    let upstream = upstream_with_budget(BudgetConfig {
        ratio: 0.5,
        min_retries_per_second: 0,
        max_tokens: 100,
    });
    let script = Script::new(vec![Ok(1)]);
    upstream.call(false, || script.attempt()).await.unwrap();
    // Half a token from the call above and half from this one pay for one retry.
    let script = Script::new(vec![Err(Status::unavailable("down")), Ok(1)]);
    assert_eq!(upstream.call(true, || script.attempt()).await.unwrap(), 1);
    assert_eq!(script.attempts(), 2);
}

#[test]
fn an_upstream_is_cheap_to_share_across_tasks() {
    fn assert_send_sync<T: Send + Sync + Clone>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let upstream = upstream();
    assert_send_sync(&upstream);
    assert_eq!(upstream.name(), "inventory");
    let call = upstream.call(true, || async { Ok::<_, Status>(()) });
    assert_send(&call);
}
