//! The provider simulator's fault knobs, end to end: transient errors, latency against the
//! caller's deadline, a provider that never answers.

mod support;

use std::time::{Duration, Instant};

use contracts::payments::PaymentStatus;
use support::{APPROVE, authorize_request, spawn_app_with};
use tonic::{Code, Request};
use uuid::Uuid;

#[tokio::test]
async fn a_failing_provider_is_unavailable_and_nothing_is_written() {
    let app = spawn_app_with(&[("PAYMENTS_PROVIDER_ERROR_RATE", "1.0")]).await;
    let order_id = Uuid::now_v7();
    for _ in 0..3 {
        let err = app
            .try_authorize(order_id, 1000, APPROVE)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "callers may retry");
        assert!(err.message().contains("provider"), "{}", err.message());
    }
    assert_eq!(app.count("payments").await, 0);
    assert_eq!(app.count("payment_events").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn retrying_through_transient_provider_errors_ends_in_one_payment() {
    let app = spawn_app_with(&[("PAYMENTS_PROVIDER_ERROR_RATE", "0.5")]).await;
    let order_id = Uuid::now_v7();
    let mut failures = 0;
    // Chance that 60 tries all fail: 2^-60.
    let payment = loop {
        match app.try_authorize(order_id, 1000, APPROVE).await {
            Ok(payment) => break payment,
            Err(err) => {
                assert_eq!(err.code(), Code::Unavailable);
                failures += 1;
                assert!(failures < 60, "the provider never answered");
            }
        }
    };
    assert_eq!(payment.status(), PaymentStatus::Authorized);
    // Once decided, retries are answered from the ledger: the provider is not asked again.
    for _ in 0..10 {
        let retry = app.try_authorize(order_id, 1000, APPROVE).await.unwrap();
        assert_eq!(retry.id, payment.id);
    }
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(app.count("outbox").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn provider_latency_past_the_callers_deadline_is_deadline_exceeded_and_writes_nothing() {
    let app = spawn_app_with(&[("PAYMENTS_PROVIDER_LATENCY", "5s")]).await;
    let mut request = Request::new(authorize_request(
        Uuid::now_v7(),
        app.customer_id,
        1000,
        APPROVE,
    ));
    request.set_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let err = app
        .client
        .clone()
        .authorize_payment(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the deadline, not the latency, ended the call: {:?}",
        started.elapsed()
    );
    assert_eq!(app.count("payments").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn provider_latency_within_the_deadline_delays_but_succeeds() {
    let app = spawn_app_with(&[("PAYMENTS_PROVIDER_LATENCY", "300ms")]).await;
    let mut request = Request::new(authorize_request(
        Uuid::now_v7(),
        app.customer_id,
        1000,
        APPROVE,
    ));
    request.set_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let payment = app
        .client
        .clone()
        .authorize_payment(request)
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(payment.status(), PaymentStatus::Authorized);
    app.stop().await;
}

#[tokio::test]
async fn a_hanging_provider_is_ended_by_the_callers_deadline() {
    let app = spawn_app_with(&[("PAYMENTS_PROVIDER_HANG", "true")]).await;
    let mut request = Request::new(authorize_request(
        Uuid::now_v7(),
        app.customer_id,
        1000,
        APPROVE,
    ));
    request.set_timeout(Duration::from_secs(1));
    let err = app
        .client
        .clone()
        .authorize_payment(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert_eq!(app.count("payments").await, 0);
    // Commands on existing payments never touch the provider, so they are not affected.
    let err = app.capture(&Uuid::now_v7().to_string()).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}
