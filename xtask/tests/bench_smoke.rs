//! `cargo xtask bench --smoke` against the real system, so the harness cannot rot.
//!
//! The smoke path is the whole bench (the system started on free ports with fresh databases,
//! customers, B1 with its commits, CPU, messages and memory, pgbench, a two-step ramp, B3's
//! overload and drain, B4 with the gateway restarted under a real limit, B2 with the cache on
//! and off, nginx) at tiny rates for a second or two each; nothing about timing is asserted, only that every step
//! ran and reported. It runs the debug service binaries next to this test, which building the
//! workspace's tests builds (`cargo xtask test`, `cargo nextest run --workspace`), or those in
//! `BENCH_BINARIES` when it is set. It needs the
//! local Postgres, Redis and RabbitMQ, and `pgbench` and `nginx` (Debian: `postgresql-client`,
//! `nginx-light`).

use std::{path::PathBuf, process::Command};

#[test]
fn the_bench_smoke_run_measures_every_scenario() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_owned();
    // `BENCH_BINARIES` points at another build of the services (e.g. `target/release`).
    let binaries = std::env::var_os("BENCH_BINARIES").map_or_else(
        || {
            std::env::current_exe()
                .ok()
                .and_then(|test| Some(test.parent()?.parent()?.to_owned()))
                .expect("the test binary is in target/<profile>/deps")
        },
        PathBuf::from,
    );
    for service in ["users", "inventory", "orders", "payments", "gateway"] {
        assert!(
            binaries.join(service).exists(),
            "the bench smoke test runs the service binaries, and {} is missing: build the \
             workspace's tests (`cargo xtask test` or `cargo nextest run --workspace`) first",
            binaries.join(service).display()
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--smoke", "--binaries"])
        .arg(&binaries)
        .current_dir(&root)
        .output()
        .expect("the xtask binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench --smoke failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for expected in [
        "### B1 checkout",
        "Postgres commits per checkout",
        "CPU-ms per checkout",
        "baseline: pgbench",
        "### B2 catalog page",
        "gateway, Redis cache on",
        "gateway, Redis cache off",
        "nginx, same bytes from a file",
        "published, all outbox relays",
        "### Ramp: where checkout saturates",
        "### B3 overload: twice the saturation rate",
        "PENDING orders when the last request was answered",
        "### B4 rate-limiter accuracy under load",
        "allowed ÷ configured",
        "### B5 memory",
        "### Derived Kubernetes settings",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
}
