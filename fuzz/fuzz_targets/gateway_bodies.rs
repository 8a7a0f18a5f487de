//! Arbitrary bytes as the body (and header) of the gateway's write routes: deserialising them
//! as the route's JSON type and building the upstream call from it must never panic, whatever
//! the bytes, and a call that is built obeys the shared input rules.
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd fuzz && cargo +nightly fuzz run gateway_bodies
//! ```

#![no_main]

use gateway::api::{
    admin::upsert_product_request,
    orders::place_order_request,
    wire::{Cancellation, NewOrder, ProductDraft, Registration, StockAdjustment},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the Idempotency-Key header (or the SKU of an admin route), the rest the body.
    let (head, body) = match data.iter().position(|byte| *byte == b'\n') {
        Some(split) => (&data[..split], &data[split + 1..]),
        None => (&data[..0], data),
    };
    let head = String::from_utf8_lossy(head);
    if let Ok(order) = serde_json::from_slice::<NewOrder>(body)
        && let Ok(key) = inputs::IdempotencyKey::parse(&head)
        && let Ok(call) = place_order_request("0192f5a0-0000-7000-8000-000000000001", order, &key)
    {
        assert!(inputs::PaymentMethod::parse(&call.payment_method).is_ok());
        for line in &call.lines {
            assert!(inputs::Sku::parse(&line.sku).is_ok());
            assert!(inputs::Quantity::parse(line.quantity).is_ok());
        }
    }
    if let Ok(product) = serde_json::from_slice::<ProductDraft>(body)
        && let Ok(call) = upsert_product_request(&head, product)
    {
        assert!(inputs::ProductName::parse(&call.name).is_ok());
    }
    let _ = serde_json::from_slice::<Registration>(body);
    let _ = serde_json::from_slice::<StockAdjustment>(body);
    let _ = serde_json::from_slice::<Cancellation>(body);
});
