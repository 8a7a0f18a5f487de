//! The users binary as a real process: health, readiness, metrics and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

use std::{collections::HashMap, time::Duration};

use contracts::users::{RegisterRequest, UsersServiceClient};
use testkit::{ServiceProcess, free_port};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn the_binary_serves_health_readiness_metrics_and_stops_cleanly_on_sigterm() {
    let db = testkit::fresh_database().await;
    let (grpc_port, admin_port) = (free_port(), free_port());
    let env: HashMap<String, String> = [
        ("USERS_DATABASE_URL", db.url.clone()),
        ("USERS_GRPC_ADDR", format!("127.0.0.1:{grpc_port}")),
        ("USERS_ADMIN_ADDR", format!("127.0.0.1:{admin_port}")),
        ("LOG_FORMAT", "json".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut process =
        ServiceProcess::start("users", env!("CARGO_BIN_EXE_users").as_ref(), &env).unwrap();
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
    for service in ["", "shop.users.v1.UsersService"] {
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

    let mut users = UsersServiceClient::connect(endpoint).await.unwrap();
    users
        .register(RegisterRequest {
            email: "hedy@example.com".into(),
            password: "frequency hopping 1942".into(),
            display_name: "Hedy".into(),
        })
        .await
        .unwrap();
    let duplicate = users
        .register(RegisterRequest {
            email: "hedy@example.com".into(),
            password: "frequency hopping 1942".into(),
            display_name: "Hedy".into(),
        })
        .await;
    assert!(duplicate.is_err());

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
        has(r#"method="Register""#) && has(r#"code="Ok""#),
        "request counter missing:\n{metrics}"
    );
    assert!(
        has(r#"code="AlreadyExists""#),
        "error counter missing:\n{metrics}"
    );
    assert!(
        metrics.contains("grpc_server_request_duration_seconds_bucket"),
        "duration histogram missing:\n{metrics}"
    );

    process.terminate().await.unwrap();
    let code = process.wait_for_exit(Duration::from_secs(5)).await.unwrap();
    assert_eq!(code, Some(0), "SIGTERM must lead to a clean exit");
}

#[tokio::test]
async fn logs_are_json_lines_carrying_the_trace_id_of_the_callers_traceparent() {
    let db = testkit::fresh_database().await;
    let (grpc_port, admin_port) = (free_port(), free_port());
    let env: HashMap<String, String> = [
        ("USERS_DATABASE_URL", db.url.clone()),
        ("USERS_GRPC_ADDR", format!("127.0.0.1:{grpc_port}")),
        ("USERS_ADMIN_ADDR", format!("127.0.0.1:{admin_port}")),
        ("LOG_FORMAT", "json".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut process =
        ServiceProcess::start("users", env!("CARGO_BIN_EXE_users").as_ref(), &env).unwrap();
    process
        .wait_until_ready(
            &format!("http://127.0.0.1:{admin_port}/readyz"),
            Duration::from_secs(30),
        )
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
    let mut users = UsersServiceClient::connect(format!("http://127.0.0.1:{grpc_port}"))
        .await
        .unwrap();
    users.register(request).await.unwrap();

    let line = testkit::poll_until("the registration log line", Duration::from_secs(5), || {
        let logs = process.logs();
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
    for line in process.logs() {
        assert!(
            serde_json::from_str::<serde_json::Value>(&line).is_ok(),
            "not JSON: {line}"
        );
    }
    process.terminate().await.unwrap();
    assert_eq!(
        process.wait_for_exit(Duration::from_secs(5)).await.unwrap(),
        Some(0)
    );
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
