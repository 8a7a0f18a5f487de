//! What the processes write to their logs on a normal day: an operator reads WARN and ERROR as
//! "look at me", so a clean start and an ordinary checkout must not write either.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::{
    system::{Options, System},
    world::created_id,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clean_start_and_a_checkout_log_no_warnings() {
    let system = System::start(Options::default()).await;
    let admin = system.admin().await;
    let (customer, _) = system.api.sign_up("quiet@example.com").await;
    system.api.seed(&admin, "QUIET-1", 1200, 3).await;
    let id = created_id(
        system
            .api
            .place(&customer, "quiet", &[("QUIET-1", 1)])
            .await,
    )
    .await;
    assert_eq!(
        system.api.settled(&customer, &id).await["status"],
        "CONFIRMED"
    );

    let loud: Vec<(String, String)> = system
        .logs()
        .into_iter()
        .filter(|(_, line)| {
            serde_json::from_str::<Value>(line)
                .is_ok_and(|line| matches!(line["level"].as_str(), Some("WARN" | "ERROR")))
        })
        .collect();
    assert!(loud.is_empty(), "warnings on a normal day: {loud:#?}");
    system.stop().await;
}
