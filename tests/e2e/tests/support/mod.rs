#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod browser;
pub mod invariants;
pub mod load;
pub mod otlp;
pub mod system;
/// The gateway's own test support, shared by path rather than copied: its HTTP client helpers
/// (`Api`) and token forging are the same in both suites.
#[path = "../../../../services/gateway/tests/support/mod.rs"]
pub mod world;
