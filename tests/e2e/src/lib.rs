//! Browser end-to-end tests of the Ferroshop storefront live in `tests/`: they start every
//! service and the gateway in-process and drive the storefront in headless Chromium through
//! chromedriver's WebDriver HTTP API. This library is intentionally empty.
