//! The {{name}} binary as a real process: health, readiness, reflection, metrics and graceful
//! shutdown.

use std::time::Duration;

use contracts::{{snake}}::{CreateRecordRequest, {{Pascal}}ServiceClient};
use testkit::RunningService;

#[tokio::test]
async fn the_binary_serves_health_readiness_metrics_and_stops_cleanly_on_sigterm() {
    let db = testkit::fresh_database().await;
    let amqp_url = testkit::amqp_url().await;
    let exchange = testkit::unique_name("{{name}}.test.events");
    let mut env: Vec<(String, String)> =
        testkit::service_vars("{{snake}}", &db.url, &amqp_url, &exchange);
    env.push(("LOG_FORMAT".to_owned(), "json".to_owned()));
    let mut service =
        RunningService::start("{{snake}}", env!("CARGO_BIN_EXE_{{name}}").as_ref(), env)
            .await
            .unwrap();
    service
        .assert_healthy("shop.{{snake}}.v1.{{Pascal}}Service")
        .await;

    let mut client = {{Pascal}}ServiceClient::connect(service.grpc_endpoint())
        .await
        .unwrap();
    client
        .create_record(CreateRecordRequest {
            reference: "process-test".to_owned(),
        })
        .await
        .unwrap();
    let blank = CreateRecordRequest {
        reference: " ".to_owned(),
    };
    assert!(client.create_record(blank).await.is_err());

    let scrape = service.scrape().await;
    let create = |code: &str| {
        scrape.value(
            "grpc_server_requests_total",
            &[("method", "CreateRecord"), ("code", code)],
        )
    };
    assert_eq!(create("Ok"), Some(1.0), "{}", scrape.text());
    assert_eq!(create("InvalidArgument"), Some(1.0), "{}", scrape.text());

    let code = service.stop(Duration::from_secs(5)).await.unwrap();
    assert_eq!(code, Some(0), "SIGTERM must lead to a clean exit");
}

#[tokio::test]
async fn an_invalid_setting_stops_the_binary_with_a_message_naming_the_variable() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_{{name}}"))
        .env_clear()
        .env("{{PREFIX}}_GRPC_ADDR", "localhost")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(logs.contains("{{PREFIX}}_GRPC_ADDR"), "{logs}");
}
