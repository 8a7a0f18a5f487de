//! What the gateway accepts, the services accept: the edge and the services parse each request
//! with the same rules (`libs/inputs`), checked here on arbitrary input rather than examples.
//!
//! A disagreement between layers is found late and costs the most: a payment method the gateway
//! and orders took but payments refused failed checkout after stock had been reserved. So for
//! every generated PlaceOrder body, if the gateway builds a call from it, orders must parse that
//! call and payments its payment method; for every generated product, if the gateway builds an
//! UpsertProduct call, inventory must parse it. No process runs here: the layers' parsers are
//! called directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gateway::api::{
    admin::upsert_product_request,
    orders::place_order_request,
    wire::{Money, NewOrder, OrderLineInput, ProductDraft},
};
use inputs::IdempotencyKey;
use proptest::prelude::*;

/// Strings near the rules' edges: valid-looking SKUs and tokens, spaces, control and
/// multi-byte characters, lengths around the limits.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9-]{1,70}",
        "[a-z_]{1,110}",
        "[ -~]{0,130}",
        "\\PC{0,40}",
        any::<String>(),
        Just(String::new()),
        Just("tok visa".to_owned()),
        Just("tok\u{0}".to_owned()),
    ]
}

fn quantity() -> impl Strategy<Value = i64> {
    prop_oneof![-2_i64..=102, any::<i64>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_place_order_the_gateway_accepts_is_one_orders_and_payments_accept(
        lines in prop::collection::vec((text(), quantity()), 0..53),
        payment_method in text(),
        key in text(),
    ) {
        let Ok(key) = IdempotencyKey::parse(&key) else { return Ok(()); };
        let customer = "0192f5a0-0000-7000-8000-000000000001";
        let body = NewOrder {
            lines: lines
                .into_iter()
                .map(|(sku, quantity)| OrderLineInput { sku, quantity })
                .collect(),
            payment_method,
        };
        if let Ok(call) = place_order_request(customer, body, &key) {
            let lines = call.lines.iter().map(|line| (line.sku.clone(), line.quantity)).collect();
            let parsed = orders::domain::OrderRequest::parse(
                &call.customer_id,
                lines,
                &call.payment_method,
                &call.idempotency_key,
            );
            prop_assert!(parsed.is_ok(), "orders refused {call:?}: {parsed:?}");
            let payment = payments::domain::PaymentMethod::parse(&call.payment_method);
            prop_assert!(payment.is_ok(), "payments refused {:?}", call.payment_method);
        }
    }

    #[test]
    fn a_product_the_gateway_accepts_is_one_inventory_accepts(
        sku in text(),
        name in text(),
        description in text(),
        amount_minor in prop_oneof![-1_i64..=2, any::<i64>()],
        currency in prop_oneof!["[A-Z]{3}", text()],
    ) {
        let body = ProductDraft {
            name,
            description,
            price: Money { amount_minor, currency },
            active: true,
        };
        if let Ok(call) = upsert_product_request(&sku, body) {
            let price = call.price.clone().unwrap();
            let parsed = inventory::domain::ProductDraft::parse(
                &call.sku,
                &call.name,
                &call.description,
                Some((price.amount_minor, &price.currency)),
                call.active,
            );
            prop_assert!(parsed.is_ok(), "inventory refused {call:?}: {parsed:?}");
        }
    }
}
