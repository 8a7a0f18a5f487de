//! Ferroshop's end-to-end suite lives in `tests/`:
//!
//! * `journeys.rs` runs the real binaries of every service and the gateway as processes and
//!   drives them over HTTP only (including one trace across all of them, caught by an in-test
//!   OTLP receiver);
//! * `storefront.rs` drives the storefront in headless Chromium through chromedriver's WebDriver
//!   HTTP API;
//! * `api_contract.rs` runs schemathesis against the gateway's OpenAPI document.
//!
//! This library is intentionally empty.
