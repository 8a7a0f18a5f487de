//! Every service binary, as a client that is not ours sees it: Python's grpcio, with the
//! reflection and health packages (`scripts/grpc_reflect.py`, from `.venv/`, which
//! `cargo xtask test` installs from requirements-test.txt).
//!
//! Each port must answer reflection in the `v1alpha` protocol those clients speak (not only
//! `v1`), list exactly the services it hosts — not every service of the shared descriptor set,
//! which a client would then call and get UNIMPLEMENTED — describe its service's methods, and
//! report SERVING — over mutual TLS, to a client that presents a certificate of the cluster CA.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use serde_json::Value;
use support::system::{Options, System};

const INSTALL: &str = "cargo xtask test (it installs requirements-test.txt into .venv/)";

fn python() -> PathBuf {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.venv/bin/python"
    ));
    assert!(
        path.exists(),
        "needs the Python test clients: {} is missing; run {INSTALL}",
        path.display()
    );
    path
}

/// The gRPC service each binary hosts, and its methods.
const HOSTED: [(&str, &str, &[&str]); 4] = [
    (
        "users",
        "shop.users.v1.UsersService",
        &["Authenticate", "GetJwks", "GetUser", "Register"],
    ),
    (
        "inventory",
        "shop.inventory.v1.InventoryService",
        &[
            "AdjustStock",
            "CommitReservation",
            "GetProduct",
            "GetReservation",
            "ListProducts",
            "ReleaseStock",
            "ReserveStock",
            "UpsertProduct",
        ],
    ),
    (
        "orders",
        "shop.orders.v1.OrdersService",
        &[
            "CancelOrder",
            "GetOrder",
            "ListOrders",
            "PlaceOrder",
            "WatchOrder",
        ],
    ),
    (
        "payments",
        "shop.payments.v1.PaymentsService",
        &[
            "AuthorizePayment",
            "CapturePayment",
            "GetPayment",
            "RefundPayment",
            "VoidOrderPayment",
            "VoidPayment",
        ],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_grpcio_lists_describes_and_health_checks_every_service() {
    let python = python();
    // Over mutual TLS, as the gateway: grpcio checks the server's DNS name, which the test
    // certificates carry beside their SPIFFE identity.
    let system = System::start(Options::default()).await;
    let certs = system.certs.as_ref().expect("mutual TLS is the default");
    let gateway = certs.files("gateway");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/grpc_reflect.py");
    for (name, service, methods) in HOSTED {
        let endpoint = system.grpc_endpoint(name);
        let target = endpoint.trim_start_matches("http://");
        let output = tokio::process::Command::new(&python)
            .args([script, target, service])
            .arg(&gateway.ca)
            .arg(&gateway.cert)
            .arg(&gateway.key)
            .arg(name)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
        let mut expected = vec![
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            service,
        ];
        expected.sort_unstable();
        assert_eq!(
            seen["services"],
            serde_json::json!(expected),
            "{name} lists: {seen}"
        );
        assert_eq!(
            seen["methods"],
            serde_json::json!(methods),
            "{name}: {seen}"
        );
        assert_eq!(seen["health"][""], "SERVING", "{name}: {seen}");
        assert_eq!(seen["health"][service], "SERVING", "{name}: {seen}");
    }
    system.stop().await;
}
