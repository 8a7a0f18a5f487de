#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod browser;
pub mod otlp;
pub mod system;
/// The whole system in this process. It is the gateway's own test world, shared by path rather
/// than copied, so the two suites can never drift apart.
#[path = "../../../../services/gateway/tests/support/mod.rs"]
pub mod world;
