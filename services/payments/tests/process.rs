//! The payments binary as a real process: health, readiness, metrics and graceful shutdown.

use std::{collections::HashMap, time::Duration};

use contracts::payments::{AuthorizePaymentRequest, PaymentsServiceClient};
use testkit::{ServiceProcess, free_port};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

fn env(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[tokio::test]
async fn the_binary_serves_health_readiness_metrics_and_stops_cleanly_on_sigterm() {
    let db = testkit::fresh_database().await;
    let (grpc_port, admin_port) = (free_port(), free_port());
    let env = env(&[
        ("PAYMENTS_DATABASE_URL", db.url.clone()),
        ("PAYMENTS_GRPC_ADDR", format!("127.0.0.1:{grpc_port}")),
        ("PAYMENTS_ADMIN_ADDR", format!("127.0.0.1:{admin_port}")),
        ("LOG_FORMAT", "json".to_owned()),
    ]);
    let mut process =
        ServiceProcess::start("payments", env!("CARGO_BIN_EXE_payments").as_ref(), &env).unwrap();
    let admin = format!("http://127.0.0.1:{admin_port}");
    process
        .wait_until_ready(&format!("{admin}/readyz"), Duration::from_secs(30))
        .await
        .unwrap();

    let http = reqwest::Client::new();
    let healthz = http.get(format!("{admin}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    let readyz = http.get(format!("{admin}/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), 200);
    let body: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "ok");

    let endpoint = format!("http://127.0.0.1:{grpc_port}");
    let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "shop.payments.v1.PaymentsService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "health of {service:?}");
    }

    let mut payments = PaymentsServiceClient::connect(endpoint).await.unwrap();
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

    let metrics = http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |needle: &str| {
        metrics
            .lines()
            .any(|line| line.starts_with("grpc_server_requests_total") && line.contains(needle))
    };
    assert!(
        has(r#"method="AuthorizePayment""#) && has(r#"code="Ok""#),
        "request counter missing:\n{metrics}"
    );
    assert!(
        has(r#"code="InvalidArgument""#),
        "error counter missing:\n{metrics}"
    );

    process.terminate().await.unwrap();
    let code = process.wait_for_exit(Duration::from_secs(5)).await.unwrap();
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
