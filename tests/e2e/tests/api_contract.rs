//! Property-based API testing with schemathesis: requests generated from /api/openapi.json
//! against the whole system must never get a 5xx, and every response's status, content type and
//! body must be the ones the document lists for that operation (the edge's own answers, such as
//! 401 or 415, are documented on every operation they can happen on: `gateway::api::document`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{path::PathBuf, process::Stdio};

use support::system::{Options, System};
use tokio::process::Command;

const INSTALL: &str = "python3 -m venv .venv && .venv/bin/pip install schemathesis==4.32.5";

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../.venv/bin/schemathesis"
            ))
        },
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "the API contract test needs schemathesis: `{}` is missing (set SCHEMATHESIS to another path). \
         Install it at the workspace root with: {INSTALL}",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generated_requests_get_no_server_errors_and_documented_responses() {
    let schemathesis = schemathesis();
    let system = System::start(Options {
        // Generated requests come fast from one address; let them reach the handlers.
        gateway_env: vec![
            ("GATEWAY_RATE_LIMIT_PER_MINUTE", "100000".to_owned()),
            ("GATEWAY_RATE_LIMIT_BURST", "10000".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let gateway = &system.api;
    let admin = system.admin().await;
    gateway.seed(&admin, "MUG-1", 1299, 10).await;

    let output = Command::new(&schemathesis)
        .args([
            "run",
            &format!("{}/api/openapi.json", gateway.url),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--generation-deterministic",
            "--phases",
            "examples,coverage,fuzzing",
            "--header",
            &format!("Authorization: Bearer {admin}"),
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    system.stop().await;
}
