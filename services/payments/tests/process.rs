//! The payments binary as a real process: health, readiness, metrics and graceful shutdown.

use std::{collections::HashMap, time::Duration};

use contracts::payments::{AuthorizePaymentRequest, PaymentsServiceClient};
use testkit::RunningService;

fn env(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[tokio::test]
async fn the_binary_serves_health_readiness_metrics_and_stops_cleanly_on_sigterm() {
    let db = testkit::fresh_database().await;
    let exchange = testkit::unique_name("payments.test.events");
    let env = env(&[
        ("PAYMENTS_DATABASE_URL", db.url.clone()),
        // The relay and the order-event consumer run beside the API, on this test's own
        // exchange and queues.
        ("PAYMENTS_AMQP_URL", testkit::amqp_url().await),
        ("PAYMENTS_EVENTS_EXCHANGE", exchange.clone()),
        ("PAYMENTS_QUEUE_PREFIX", format!("{exchange}.")),
        ("PAYMENTS_QUEUE_EXPIRY", "60s".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
    ]);
    let mut service =
        RunningService::start("payments", env!("CARGO_BIN_EXE_payments").as_ref(), env)
            .await
            .unwrap();
    service
        .assert_healthy("shop.payments.v1.PaymentsService")
        .await;

    let mut payments = PaymentsServiceClient::connect(service.grpc_endpoint())
        .await
        .unwrap();
    let request = || AuthorizePaymentRequest {
        order_id: uuid::Uuid::now_v7().to_string(),
        amount: Some(contracts::Money {
            amount_minor: 2599,
            currency: "EUR".into(),
        }),
        customer_id: uuid::Uuid::now_v7().to_string(),
        payment_method: "tok_visa_approve".into(),
    };
    payments.authorize_payment(request()).await.unwrap();
    let mut invalid = request();
    invalid.amount = None;
    assert!(payments.authorize_payment(invalid).await.is_err());

    let scrape = service.scrape().await;
    let authorize = |code: &str| {
        scrape.value(
            "grpc_server_requests_total",
            &[("method", "AuthorizePayment"), ("code", code)],
        )
    };
    assert_eq!(authorize("Ok"), Some(1.0), "{}", scrape.text());
    assert_eq!(authorize("InvalidArgument"), Some(1.0), "{}", scrape.text());

    let code = service.stop(Duration::from_secs(5)).await.unwrap();
    assert_eq!(code, Some(0), "SIGTERM must lead to a clean exit");
}

#[tokio::test]
async fn invalid_fault_knobs_stop_the_binary_with_a_message_naming_the_variable() {
    for (variable, value) in [
        ("PAYMENTS_PROVIDER_ERROR_RATE", "2"),
        ("PAYMENTS_PROVIDER_LATENCY", "250"),
        ("PAYMENTS_PROVIDER_HANG", "maybe"),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_payments"))
            .env_clear()
            .env(variable, value)
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{variable}={value}");
        let logs = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(logs.contains(variable), "{logs}");
    }
}
