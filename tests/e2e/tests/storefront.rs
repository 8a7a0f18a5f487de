//! The storefront in headless Chromium against the whole system (the real binaries of every
//! service and the gateway): browse, register, add to the cart, check out with the approving test
//! card, and watch the order page reach CONFIRMED through the live saga timeline, then the
//! capture arrive on the same page, without a reload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{
    browser::Browser,
    system::{Options, System},
    world::{Api, PASSWORD},
};

/// A product with a shop-like name, and stock, through the admin API.
async fn seed(gateway: &Api, admin: &str, sku: &str, name: &str, price: i64, stock: i64) {
    let response = gateway
        .request(
            Method::PUT,
            &format!("/api/v1/admin/products/{sku}"),
            Some(admin),
        )
        .json(&json!({
            "name": name,
            "description": format!("{name}, made to last. A Ferroshop favourite."),
            "price": {"amount_minor": price, "currency": "EUR"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "upsert {sku}");
    let response = gateway
        .post(
            &format!("/api/v1/admin/products/{sku}/stock-adjustments"),
            Some(admin),
            &json!({"delta": stock, "reason": "e2e delivery"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "stock {sku}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_registers_orders_with_the_approve_card_and_sees_it_confirmed_live() {
    // The browser first: a machine without Chromium fails here, before anything else starts.
    let browser = Browser::launch().await;
    let system = System::start(Options {
        // Every answer of the payment provider takes a while, the capture after confirmation
        // too: the capture lands well after the page has shown CONFIRMED, so only a stream
        // that goes on past the confirmation can bring it to the page.
        payments_env: vec![("PAYMENTS_PROVIDER_LATENCY", "1500ms".to_owned())],
        ..Options::default()
    })
    .await;
    let gateway = &system.api;
    let admin = system.admin().await;
    seed(
        gateway,
        &admin,
        "MUG-CERAMIC-350",
        "Ceramic Mug 350 ml",
        1299,
        20,
    )
    .await;
    seed(
        gateway,
        &admin,
        "TEA-SENCHA-100",
        "Sencha Green Tea",
        850,
        20,
    )
    .await;
    seed(gateway, &admin, "LAMP-DESK-OAK", "Oak Desk Lamp", 5900, 5).await;
    let url = &gateway.url;

    // The catalog lists the products, with prices formatted from minor units; search filters.
    browser.goto(&format!("{url}/")).await;
    assert!(
        browser
            .eval("return document.title;", json!([]))
            .await
            .as_str()
            .unwrap()
            .contains("Ferroshop")
    );
    browser
        .wait_for_text(
            "the catalog to list the mug",
            "[data-testid=product-card][data-sku=MUG-CERAMIC-350]",
            Duration::from_secs(15),
            |text| text.contains("Ceramic Mug 350 ml") && text.contains("12.99"),
        )
        .await;
    browser.screenshot("catalog").await;
    browser
        .type_into("[data-testid=search-input]", "sencha")
        .await;
    browser.click(".search button[type=submit]").await;
    browser
        .wait_for_text(
            "the search to narrow the catalog",
            "[data-testid=product-grid]",
            Duration::from_secs(15),
            |text| text.contains("Sencha") && !text.contains("Ceramic Mug"),
        )
        .await;

    // Register (which signs in too).
    browser.goto(&format!("{url}/#/register")).await;
    browser
        .type_into("[data-testid=email]", "grace@example.com")
        .await;
    browser.type_into("[data-testid=password]", PASSWORD).await;
    browser.click("[data-testid=register-submit]").await;
    browser
        .wait_for_text(
            "the header to show the signed-in customer",
            "[data-testid=signed-in-as]",
            Duration::from_secs(15),
            |text| text.contains("grace"),
        )
        .await;

    // The product page; two mugs into the cart.
    browser
        .goto(&format!("{url}/#/product/MUG-CERAMIC-350"))
        .await;
    browser
        .wait_for_text(
            "the product page",
            "[data-testid=product-name]",
            Duration::from_secs(15),
            |text| text == "Ceramic Mug 350 ml",
        )
        .await;
    browser.screenshot("product").await;
    browser.click("[data-testid=add-to-cart]").await;
    browser.click("[data-testid=add-to-cart]").await;
    browser
        .wait_for_text(
            "the cart badge",
            "[data-testid=cart-count]",
            Duration::from_secs(5),
            |n| n == "2",
        )
        .await;
    browser.click("[data-testid=nav-cart]").await;
    browser
        .wait_for_text(
            "the cart total",
            "[data-testid=cart-total]",
            Duration::from_secs(5),
            |text| text.contains("25.98"),
        )
        .await;
    browser.screenshot("cart").await;

    // Checkout with the approving test card.
    browser.click("[data-testid=go-to-checkout]").await;
    browser.click("[data-testid=card-tok_visa_approve]").await;
    browser.screenshot("checkout").await;
    // A mark on this document, gone if the page reloads, and a watch for the polling fallback:
    // the steps below must arrive through the event stream, on this very page.
    browser
        .eval(
            "window.__sameDocument = true; window.__polled = false; \
             new MutationObserver(() => { if (document.querySelector('[data-live=polling]')) window.__polled = true; }) \
               .observe(document.body, { subtree: true, childList: true, attributes: true }); \
             return true;",
            json!([]),
        )
        .await;
    browser.click("[data-testid=place-order]").await;

    // The order page follows the saga live until it is confirmed.
    let status = browser
        .wait_for_text(
            "the order page to show CONFIRMED",
            "[data-testid=order-page] [data-testid=order-status]",
            Duration::from_secs(45),
            |status| status == "CONFIRMED",
        )
        .await;
    assert_eq!(status, "CONFIRMED");
    let timeline = browser.text("[data-testid=timeline]").await.unwrap();
    assert!(!timeline.is_empty(), "the saga timeline is shown");
    let steps = browser
        .eval(
            "return document.querySelectorAll('[data-testid=timeline-step]').length;",
            json!([]),
        )
        .await;
    assert!(steps.as_u64().unwrap() >= 2, "timeline: {timeline}");
    // After confirmation, the choreographed capture joins the timeline (the stock was committed
    // by the saga just before): live, without a reload and without polling.
    let script = "return ['commit_stock', 'capture_payment'].every((step) => \
        document.querySelector(`[data-testid=timeline-step][data-step=${step}]`));";
    testkit::poll_until(
        "the capture and the stock commit in the timeline",
        Duration::from_secs(45),
        || {
            let browser = &browser;
            async move { (browser.eval(script, json!([])).await == true).then_some(()) }
        },
    )
    .await
    .unwrap_or_else(|err| panic!("{err}; timeline: {timeline}"));
    assert_eq!(
        browser
            .eval(
                "return [window.__sameDocument === true, window.__polled === false];",
                json!([])
            )
            .await,
        json!([true, true]),
        "the steps arrived on the same page, through the stream"
    );
    browser
        .wait_for_text(
            "the page to say checkout is over",
            "[data-testid=live-state]",
            Duration::from_secs(5),
            |text| text == "Checkout finished.",
        )
        .await;
    assert_eq!(
        browser.text("[data-testid=cart-count]").await.as_deref(),
        Some("0"),
        "the cart is emptied once the order is placed"
    );
    browser.screenshot("order-confirmed").await;

    // My orders (the read model, eventually consistent) lists it in time.
    let order_id = browser.text("[data-testid=order-id]").await.unwrap();
    browser.goto(&format!("{url}/#/orders")).await;
    browser.find("[data-testid=eventual-note]").await;
    // Look for the row; once a load has finished without it, ask for a fresh one.
    let script = "if (document.querySelector(`[data-testid=order-row][data-order-id=\"${arguments[0]}\"]`)) return true; \
        if (document.getElementById('orders')?.getAttribute('aria-busy') === 'false') \
          document.querySelector('[data-testid=refresh-orders]').click(); \
        return false;";
    testkit::poll_until(
        "the read model to list the order",
        Duration::from_secs(30),
        || {
            let (browser, order_id) = (&browser, &order_id);
            async move { (browser.eval(script, json!([order_id])).await == true).then_some(()) }
        },
    )
    .await
    .unwrap();
    browser.screenshot("orders").await;

    browser.quit().await;
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_declined_card_cancels_the_order_and_the_page_says_why() {
    let browser = Browser::launch().await;
    let system = System::start(Options::default()).await;
    let gateway = &system.api;
    let admin = system.admin().await;
    seed(
        gateway,
        &admin,
        "TEA-SENCHA-100",
        "Sencha Green Tea",
        850,
        20,
    )
    .await;
    gateway.sign_up("linus@example.com").await;
    let url = &gateway.url;

    // Sign in through the login form; checkout sends a signed-out customer there first.
    browser.goto(&format!("{url}/#/login")).await;
    browser
        .type_into("[data-testid=email]", "linus@example.com")
        .await;
    browser.type_into("[data-testid=password]", PASSWORD).await;
    browser.click("[data-testid=login-submit]").await;
    browser.find("[data-testid=signed-in-as]").await;

    // Add from the catalog grid, then check out with the declining card.
    browser.goto(&format!("{url}/#/")).await;
    browser
        .click("[data-testid=product-card][data-sku=TEA-SENCHA-100] [data-testid=add-to-cart]")
        .await;
    browser
        .wait_for_text(
            "the cart badge",
            "[data-testid=cart-count]",
            Duration::from_secs(5),
            |n| n == "1",
        )
        .await;
    browser.goto(&format!("{url}/#/checkout")).await;
    browser.click("[data-testid=card-tok_visa_decline]").await;
    browser.click("[data-testid=place-order]").await;

    browser
        .wait_for_text(
            "the order page to show CANCELLED",
            "[data-testid=order-page] [data-testid=order-status]",
            Duration::from_secs(45),
            |status| status == "CANCELLED",
        )
        .await;
    let reason = browser
        .text("[data-testid=cancellation-reason]")
        .await
        .unwrap_or_default();
    assert!(reason.contains("payment declined"), "reason: {reason}");
    browser.screenshot("order-cancelled").await;

    browser.quit().await;
    system.stop().await;
}
