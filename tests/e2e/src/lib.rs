//! Ferroshop's end-to-end suite lives in `tests/`. Every file starts the real binaries of every
//! service and the gateway as processes (`tests/support/system.rs`) and drives them over HTTP
//! only:
//!
//! * `journeys.rs`: a customer's journeys, and one trace across every process, caught by an
//!   in-test OTLP receiver;
//! * `edge.rs`: security refusals, rate limiting, load balancing over two inventory processes
//!   while one is killed;
//! * `storefront.rs`: the storefront in headless Chromium through chromedriver's WebDriver API;
//! * `api_contract.rs`: schemathesis against the gateway's OpenAPI document.
//!
//! This library is intentionally empty.
