use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use tokio::sync::oneshot;

use super::*;
use crate::{clock::ManualClock, testing::TestRecorder};

const OPEN_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum UpstreamError {
    #[error("upstream down")]
    Down,
    #[error("no such thing")]
    NotFound,
}

fn is_failure(error: &UpstreamError) -> bool {
    *error == UpstreamError::Down
}

fn breaker() -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let config = BreakerConfig {
        failure_threshold: 2,
        failure_rate: 1.0,
        window: 10,
        minimum_calls: 10,
        open_for: OPEN_FOR,
        half_open_probes: 2,
    };
    let breaker = CircuitBreaker::with_clock("inventory", config, Arc::new(clock.clone())).unwrap();
    (breaker, clock)
}

async fn succeed(breaker: &CircuitBreaker) -> Result<u32, BreakerError<UpstreamError>> {
    breaker.call(|| async { Ok(7) }, is_failure).await
}

async fn fail(breaker: &CircuitBreaker) -> Result<u32, BreakerError<UpstreamError>> {
    breaker
        .call(|| async { Err(UpstreamError::Down) }, is_failure)
        .await
}

async fn open(breaker: &CircuitBreaker) {
    while breaker.state() != BreakerState::Open {
        let _ = fail(breaker).await;
    }
}

#[tokio::test]
async fn a_closed_breaker_passes_results_and_errors_through() {
    let (breaker, _clock) = breaker();
    assert_eq!(succeed(&breaker).await.unwrap(), 7);
    let error = fail(&breaker).await.unwrap_err();
    assert!(matches!(error, BreakerError::Inner(UpstreamError::Down)));
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn an_open_breaker_rejects_without_calling() {
    let (breaker, _clock) = breaker();
    open(&breaker).await;
    let calls = AtomicU32::new(0);
    let result: Result<(), _> = breaker
        .call(
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            },
            is_failure,
        )
        .await;
    assert!(matches!(result, Err(BreakerError::Open)));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the operation never ran");
}

#[tokio::test]
async fn business_errors_never_open_the_breaker() {
    let (breaker, _clock) = breaker();
    for _ in 0..50 {
        let result: Result<(), _> = breaker
            .call(|| async { Err(UpstreamError::NotFound) }, is_failure)
            .await;
        assert!(matches!(
            result,
            Err(BreakerError::Inner(UpstreamError::NotFound))
        ));
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn business_errors_count_as_successes_between_failures() {
    let (breaker, _clock) = breaker();
    let _ = fail(&breaker).await;
    let _: Result<(), _> = breaker
        .call(|| async { Err(UpstreamError::NotFound) }, is_failure)
        .await;
    let _ = fail(&breaker).await;
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "not two failures in a row"
    );
}

#[tokio::test]
async fn after_open_for_successful_probes_close_the_breaker() {
    let (breaker, clock) = breaker();
    open(&breaker).await;
    clock.advance(OPEN_FOR);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(succeed(&breaker).await.unwrap(), 7);
    assert_eq!(breaker.state(), BreakerState::HalfOpen, "one of two probes");
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_failing_probe_reopens_the_breaker() {
    let (breaker, clock) = breaker();
    open(&breaker).await;
    clock.advance(OPEN_FOR);
    succeed(&breaker).await.unwrap();
    assert!(matches!(
        fail(&breaker).await,
        Err(BreakerError::Inner(UpstreamError::Down))
    ));
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(matches!(succeed(&breaker).await, Err(BreakerError::Open)));
}

#[tokio::test]
async fn half_open_lets_only_the_probes_through_concurrently() {
    let (breaker, clock) = breaker();
    open(&breaker).await;
    clock.advance(OPEN_FOR);
    let mut replies = Vec::new();
    let mut probes = Vec::new();
    for _ in 0..2 {
        let (reply, wait) = oneshot::channel::<Result<u32, UpstreamError>>();
        replies.push(reply);
        let breaker = breaker.clone();
        probes.push(tokio::spawn(async move {
            breaker
                .call(move || async move { wait.await.unwrap() }, is_failure)
                .await
        }));
    }
    // Let both probes get admitted and block on their replies.
    tokio::task::yield_now().await;
    assert!(
        matches!(succeed(&breaker).await, Err(BreakerError::Open)),
        "a third call while two probes are in flight is rejected"
    );
    for reply in replies {
        reply.send(Ok(1)).unwrap();
    }
    for probe in probes {
        assert_eq!(probe.await.unwrap().unwrap(), 1);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_probe_abandoned_by_its_caller_frees_its_slot() {
    let (breaker, clock) = breaker();
    open(&breaker).await;
    clock.advance(OPEN_FOR);
    for _ in 0..2 {
        let abandoned = breaker.call(
            std::future::pending::<Result<u32, UpstreamError>>,
            is_failure,
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(5), abandoned)
                .await
                .is_err()
        );
    }
    assert_eq!(
        breaker.state(),
        BreakerState::HalfOpen,
        "abandoned calls prove nothing"
    );
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn clones_share_one_state() {
    let (breaker, _clock) = breaker();
    let clone = breaker.clone();
    open(&clone).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.name(), "inventory");
}

#[tokio::test]
async fn state_transitions_and_rejections_are_published_as_metrics() {
    let recorder = TestRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let state = "circuit_breaker_state{breaker=inventory}";
    let rejected = "circuit_breaker_rejected_total{breaker=inventory}";
    let to =
        |state: &str| format!("circuit_breaker_transitions_total{{breaker=inventory,to={state}}}");

    let (breaker, clock) = breaker();
    assert_eq!(recorder.value(state), Some(0.0));
    assert_eq!(
        recorder.value(rejected),
        Some(0.0),
        "published before the first rejection"
    );
    assert_eq!(recorder.value(&to("open")), Some(0.0));

    open(&breaker).await;
    assert_eq!(recorder.value(state), Some(1.0));
    assert_eq!(recorder.value(&to("open")), Some(1.0));
    let _ = succeed(&breaker).await;
    let _ = succeed(&breaker).await;
    assert_eq!(recorder.value(rejected), Some(2.0));

    clock.advance(OPEN_FOR);
    succeed(&breaker).await.unwrap();
    assert_eq!(recorder.value(state), Some(2.0));
    assert_eq!(recorder.value(&to("half_open")), Some(1.0));
    succeed(&breaker).await.unwrap();
    assert_eq!(recorder.value(state), Some(0.0));
    assert_eq!(recorder.value(&to("closed")), Some(1.0));
    assert_eq!(recorder.value(rejected), Some(2.0));
}

#[test]
fn an_invalid_config_is_refused_at_construction() {
    let config = BreakerConfig {
        half_open_probes: 0,
        ..BreakerConfig::default()
    };
    let error = CircuitBreaker::new("payments", config).unwrap_err();
    assert_eq!(error.setting, "half_open_probes");
    assert_eq!(
        error.to_string(),
        "invalid half_open_probes: must be at least 1"
    );
}

#[test]
fn breakers_and_their_calls_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let (breaker, _clock) = breaker();
    assert_send_sync(&breaker);
    let call = breaker.call(|| async { Ok::<_, UpstreamError>(()) }, is_failure);
    assert_send(&call);
}

#[test]
fn breaker_errors_describe_themselves() {
    let open: BreakerError<UpstreamError> = BreakerError::Open;
    assert_eq!(
        open.to_string(),
        "circuit breaker is open: call not attempted"
    );
    assert_eq!(open.into_inner(), None);
    let inner = BreakerError::Inner(UpstreamError::Down);
    assert_eq!(inner.to_string(), "upstream down");
    assert_eq!(inner.into_inner(), Some(UpstreamError::Down));
}
