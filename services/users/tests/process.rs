//! The users binary as a real process: health, readiness, metrics and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

use std::{collections::HashMap, time::Duration};

use contracts::users::{RegisterRequest, UsersServiceClient};
use testkit::RunningService;

fn base_env(db: &testkit::TestDatabase) -> Vec<(String, String)> {
    vec![
        ("USERS_DATABASE_URL".to_owned(), db.url.clone()),
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
    ]
}

#[tokio::test]
async fn the_binary_serves_health_readiness_metrics_and_stops_cleanly_on_sigterm() {
    let db = testkit::fresh_database().await;
    let mut users =
        RunningService::start("users", env!("CARGO_BIN_EXE_users").as_ref(), base_env(&db))
            .await
            .unwrap();
    users.assert_healthy("shop.users.v1.UsersService").await;

    let mut client = UsersServiceClient::connect(users.grpc_endpoint())
        .await
        .unwrap();
    let register = || RegisterRequest {
        email: "hedy@example.com".into(),
        password: "frequency hopping 1942".into(),
        display_name: "Hedy".into(),
    };
    client.register(register()).await.unwrap();
    assert!(client.register(register()).await.is_err(), "duplicate");

    // One sample per question: `method` and `code` must be on the same series.
    let scrape = users.scrape().await;
    let register = |code: &str| {
        scrape.value(
            "grpc_server_requests_total",
            &[
                ("service", "shop.users.v1.UsersService"),
                ("method", "Register"),
                ("code", code),
            ],
        )
    };
    assert_eq!(
        register("Ok"),
        Some(1.0),
        "one successful Register:\n{}",
        scrape.text()
    );
    assert_eq!(
        register("AlreadyExists"),
        Some(1.0),
        "one duplicate Register:\n{}",
        scrape.text()
    );
    assert!(
        scrape
            .value(
                "grpc_server_request_duration_seconds_count",
                &[("method", "Register")]
            )
            .is_some_and(|count| count >= 2.0),
        "both Register calls timed:\n{}",
        scrape.text()
    );

    let code = users.stop(Duration::from_secs(5)).await.unwrap();
    assert_eq!(code, Some(0), "SIGTERM must lead to a clean exit");
}

#[tokio::test]
async fn logs_are_json_lines_carrying_the_trace_id_of_the_callers_traceparent() {
    let db = testkit::fresh_database().await;
    let mut users =
        RunningService::start("users", env!("CARGO_BIN_EXE_users").as_ref(), base_env(&db))
            .await
            .unwrap();

    // A caller that is part of a trace sends W3C trace context in the gRPC metadata.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(RegisterRequest {
        email: "radia@example.com".into(),
        password: "spanning tree 1985".into(),
        display_name: String::new(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    let mut client = UsersServiceClient::connect(users.grpc_endpoint())
        .await
        .unwrap();
    client.register(request).await.unwrap();

    let line = testkit::poll_until("the registration log line", Duration::from_secs(5), || {
        let logs = users.process.logs();
        async move {
            logs.into_iter()
                .find(|line| line.contains("user registered"))
        }
    })
    .await
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(json["level"], "INFO");
    assert_eq!(json["spans"][0]["trace_id"], trace_id, "{line}");
    assert_eq!(json["spans"][0]["rpc.method"], "Register", "{line}");
    for line in users.process.logs() {
        assert!(
            serde_json::from_str::<serde_json::Value>(&line).is_ok(),
            "not JSON: {line}"
        );
    }
    assert_eq!(users.stop(Duration::from_secs(5)).await.unwrap(), Some(0));
}

#[tokio::test]
async fn invalid_configuration_stops_the_binary_with_a_message_naming_the_variable() {
    let env: HashMap<String, String> = [("USERS_GRPC_ADDR", "not-an-address")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_users"))
        .env_clear()
        .envs(&env)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(logs.contains("USERS_GRPC_ADDR"), "{logs}");
}
