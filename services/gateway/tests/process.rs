//! The gateway binary as a real process: readiness, metrics, JSON logs carrying the request id,
//! and a clean exit on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Duration};

use testkit::{ServiceProcess, free_port};

/// The W3C example trace id.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn the_binary_is_ready_logs_request_ids_exposes_metrics_and_stops_cleanly() {
    let (http, admin) = (free_port(), free_port());
    let env: HashMap<String, String> = [
        ("GATEWAY_HTTP_ADDR", format!("127.0.0.1:{http}")),
        ("GATEWAY_ADMIN_ADDR", format!("127.0.0.1:{admin}")),
        ("GATEWAY_HTTP_WORKERS", "2".to_owned()),
        ("GATEWAY_REDIS_URL", testkit::redis_url().await),
        (
            "GATEWAY_REDIS_PREFIX",
            testkit::unique_name("gateway-process"),
        ),
        ("LOG_FORMAT", "json".to_owned()),
        // This test is a trusted client: its trace is continued (an untrusted one's is not,
        // see tests/e2e/tests/hostile.rs).
        ("GATEWAY_TRUSTED_TRACE_CLIENTS", "127.0.0.1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut process =
        ServiceProcess::start("gateway", env!("CARGO_BIN_EXE_gateway").as_ref(), &env).unwrap();
    let admin_url = format!("http://127.0.0.1:{admin}");
    process
        .wait_until_ready(&format!("{admin_url}/readyz"), Duration::from_secs(30))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{admin_url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let response = client
        .get(format!("http://127.0.0.1:{http}/api/openapi.json"))
        .header("x-request-id", "process-test-7")
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "process-test-7");

    let metrics = client
        .get(format!("{admin_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"http_server_requests_total{route="/api/openapi.json",method="GET",status="200"} 1"#,
        r#"http_server_request_duration_seconds_bucket{route="/api/openapi.json",method="GET""#,
        r#"circuit_breaker_state{breaker="inventory"} 0"#,
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }
    let logged = testkit::poll_until("the request's log line", Duration::from_secs(5), || async {
        process
            .logs()
            .into_iter()
            .find(|line| line.contains("request finished") && line.contains("process-test-7"))
    })
    .await
    .unwrap();
    let line: serde_json::Value = serde_json::from_str(&logged).expect("JSON log lines");
    let span = &line["spans"][0];
    assert_eq!(span["request_id"], "process-test-7", "{line}");
    assert_eq!(
        span["trace_id"], TRACE_ID,
        "the caller's trace is continued: {line}"
    );

    process.terminate().await.unwrap();
    assert_eq!(
        process
            .wait_for_exit(Duration::from_secs(10))
            .await
            .unwrap(),
        Some(0)
    );
}
