//! Customer journeys against the real binaries (every service and the gateway as processes,
//! real Postgres, RabbitMQ and Redis), over HTTP only:
//!
//! * browse, order, and see the order confirmed, the payment captured and the stock committed;
//! * the same `Idempotency-Key` twice, concurrently: one order, one charge;
//! * one trace follows an order from the gateway through orders, inventory and payments into
//!   the event consumers, and the log lines of every hop carry its trace id, proven with an
//!   in-test OTLP receiver;
//! * out of stock: the order is cancelled, nothing is charged;
//! * a declined card: the order is cancelled and the reserved stock comes back;
//! * cancelling a confirmed order: the captured payment is refunded and the stock restocked;
//! * the order's event stream, dropped mid-saga and resumed with `Last-Event-ID`: every step
//!   exactly once, in order, up to the capture.
//!
//! The gateway's own tests cover the same ground in-process, with finer control; here the point
//! is that the shipped binaries, wired by their environment alone, behave the same.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{collections::HashSet, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;
use support::{
    otlp::{CONSUMER, OtlpReceiver, ReceivedLog, ReceivedSpan},
    system::{Options, System},
    world::{Api, DECLINE, created_id},
};

/// How long the choreographed steps after a saga may take to show.
const EVENTUALLY: Duration = Duration::from_secs(30);

async fn shop(options: Options) -> (System, String, String) {
    let system = System::start(options).await;
    let admin = system.admin().await;
    let (customer, _) = system.api.sign_up("grace@example.com").await;
    (system, admin, customer)
}

async fn available(api: &Api, sku: &str) -> i64 {
    let product: Value = api
        .get(&format!("/api/v1/products/{sku}"), None)
        .await
        .json()
        .await
        .unwrap();
    product["available"].as_i64().unwrap()
}

/// Polls the order until `check` accepts it.
async fn order_until(api: &Api, token: &str, id: &str, what: &str, check: fn(&Value) -> bool) {
    testkit::poll_until(what, EVENTUALLY, || async {
        let order: Value = api
            .get(&format!("/api/v1/orders/{id}"), Some(token))
            .await
            .json()
            .await
            .ok()?;
        check(&order).then_some(())
    })
    .await
    .unwrap();
}

async fn payment_of(api: &Api, token: &str, id: &str) -> (StatusCode, Value) {
    let response = api
        .get(&format!("/api/v1/orders/{id}/payment"), Some(token))
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browse_order_and_see_it_confirmed_captured_and_committed() {
    let (system, admin, customer) = shop(Options::default()).await;
    let api = &system.api;
    api.seed(&admin, "MUG-1", 1299, 10).await;
    api.seed(&admin, "TEA-1", 450, 10).await;

    let page: Value = api
        .get("/api/v1/products?page_size=1", None)
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_page_token"].as_str().expect("a second page");
    let second: Value = api
        .get(
            &format!("/api/v1/products?page_size=1&page_token={cursor}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["products"][0]["sku"], "MUG-1");
    assert_eq!(second["products"][0]["sku"], "TEA-1");

    let placed = api
        .place(&customer, "happy-1", &[("MUG-1", 2), ("TEA-1", 1)])
        .await;
    let id = created_id(placed).await;
    assert_eq!(api.settled(&customer, &id).await["status"], "CONFIRMED");
    order_until(api, &customer, &id, "captured and committed", |order| {
        order["payment_status"] == "captured" && order["stock_status"] == "committed"
    })
    .await;
    let (_, payment) = payment_of(api, &customer, &id).await;
    assert_eq!(payment["status"], "CAPTURED", "{payment}");
    assert_eq!(payment["captured"]["amount_minor"], 2 * 1299 + 450);
    assert_eq!(available(api, "MUG-1").await, 8);
    assert_eq!(available(api, "TEA-1").await, 9);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_idempotency_key_twice_places_one_order_and_charges_once() {
    let (system, admin, customer) = shop(Options::default()).await;
    let api = &system.api;
    api.seed(&admin, "PEN-1", 199, 10).await;

    // The second request is a client's retry, sent while the first may still be in flight.
    let (first, again) = tokio::join!(
        api.place(&customer, "retry-me", &[("PEN-1", 3)]),
        api.place(&customer, "retry-me", &[("PEN-1", 3)]),
    );
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(again.status(), StatusCode::CREATED);
    let (first, again): (Value, Value) = (first.json().await.unwrap(), again.json().await.unwrap());
    assert_eq!(first["id"], again["id"], "one order for one key");
    let id = first["id"].as_str().unwrap();
    order_until(api, &customer, id, "captured", |order| {
        order["payment_status"] == "captured"
    })
    .await;
    let (_, payment) = payment_of(api, &customer, id).await;
    assert_eq!(
        payment["captured"]["amount_minor"],
        3 * 199,
        "charged once: {payment}"
    );
    assert_eq!(available(api, "PEN-1").await, 7, "stock taken once");
    let listed = api
        .my_orders_until(&customer, |orders| !orders.is_empty())
        .await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    system.stop().await;
}

/// The W3C example trace: the test is the caller, so it chooses the trace id to look for.
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_and_its_log_lines_span_the_gateway_orders_inventory_payments_and_consumers() {
    let receiver = OtlpReceiver::start().await;
    let (system, admin, customer) = shop(Options {
        otlp_endpoint: Some(receiver.endpoint()),
        // The test is the caller whose trace the gateway continues: a trusted client.
        gateway_env: vec![("GATEWAY_TRUSTED_TRACE_CLIENTS", "127.0.0.1".to_owned())],
        ..Options::default()
    })
    .await;
    let api = &system.api;
    api.seed(&admin, "KETTLE-1", 3900, 5).await;

    let placed = api
        .request(reqwest::Method::POST, "/api/v1/orders", Some(&customer))
        .header("idempotency-key", "traced-1")
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&serde_json::json!({
            "lines": [{"sku": "KETTLE-1", "quantity": 1}],
            "payment_method": support::world::APPROVE,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    let id = order["id"].as_str().unwrap();
    assert_eq!(api.settled(&customer, id).await["status"], "CONFIRMED");

    // Spans arrive in batches, from five processes: wait until every hop has reported and the
    // spans form one tree hanging off the caller's span.
    let spans = testkit::poll_until("the whole trace", EVENTUALLY, || async {
        let spans = receiver.trace(TRACE_ID);
        let has = |service: &str, matches: &dyn Fn(&ReceivedSpan) -> bool| {
            spans.iter().any(|s| s.service == service && matches(s))
        };
        let complete = has("gateway", &|s| s.parent_span_id == CALLER_SPAN)
            && has("orders", &|s| s.name.ends_with("/PlaceOrder"))
            && has("orders", &|s| s.name == "saga")
            && has("inventory", &|s| s.name.ends_with("/ReserveStock"))
            && has("payments", &|s| s.name.ends_with("/AuthorizePayment"))
            && has("inventory", &|s| s.kind == CONSUMER)
            && has("payments", &|s| s.kind == CONSUMER);
        (complete && connected(&spans)).then_some(spans)
    })
    .await
    .unwrap_or_else(|err| panic!("{err}: received {:#?}", receiver.trace(TRACE_ID)));

    let services: HashSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    for service in ["gateway", "orders", "inventory", "payments"] {
        assert!(services.contains(service), "{service} in {services:?}");
    }

    // The log lines written while serving the request went to the collector as well, stamped
    // with the same trace: the trace id found in one service's line finds the others'.
    let logging = |records: &[ReceivedLog]| -> HashSet<String> {
        records.iter().map(|r| r.service.clone()).collect()
    };
    testkit::poll_until("log lines of every hop", EVENTUALLY, || async {
        let services = logging(&receiver.logs_of(TRACE_ID));
        ["gateway", "orders", "inventory", "payments"]
            .iter()
            .all(|service| services.contains(*service))
            .then_some(())
    })
    .await
    .unwrap_or_else(|err| panic!("{err}: received {:#?}", receiver.logs_of(TRACE_ID)));
    system.stop().await;
}

/// Every span's parent is the caller's span or another span of the trace: one tree, no hop
/// that started a trace of its own.
fn connected(spans: &[ReceivedSpan]) -> bool {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    spans
        .iter()
        .all(|s| s.parent_span_id == CALLER_SPAN || ids.contains(s.parent_span_id.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_for_more_than_is_in_stock_is_cancelled_and_nothing_is_charged() {
    let (system, admin, customer) = shop(Options::default()).await;
    let api = &system.api;
    api.seed(&admin, "LAST-1", 1000, 1).await;

    let placed = api.place(&customer, "too-many", &[("LAST-1", 2)]).await;
    let id = created_id(placed).await;
    let order = api.settled(&customer, &id).await;
    assert_eq!(order["status"], "CANCELLED", "{order}");
    assert_eq!(order["cancellation_reason"], "out_of_stock", "{order}");

    let (status, body) = payment_of(api, &customer, &id).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no payment was ever made: {body}"
    );
    assert_eq!(available(api, "LAST-1").await, 1, "nothing was reserved");
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_declined_card_cancels_the_order_and_puts_the_stock_back() {
    let (system, admin, customer) = shop(Options::default()).await;
    let api = &system.api;
    api.seed(&admin, "LAMP-2", 4500, 3).await;

    let placed = api
        .place_paying(&customer, "declined", &[("LAMP-2", 2)], DECLINE)
        .await;
    let id = created_id(placed).await;
    let order = api.settled(&customer, &id).await;
    assert_eq!(order["status"], "CANCELLED", "{order}");
    assert_eq!(order["cancellation_reason"], "payment_declined", "{order}");

    let (status, payment) = payment_of(api, &customer, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(payment["status"], "DECLINED", "{payment}");
    assert_eq!(payment["captured"]["amount_minor"], 0, "{payment}");
    // The saga released the reservation before it cancelled the order.
    assert_eq!(available(api, "LAMP-2").await, 3);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_confirmed_order_refunds_the_payment_and_restocks() {
    let (system, admin, customer) = shop(Options::default()).await;
    let api = &system.api;
    api.seed(&admin, "CHAIR-1", 12_000, 4).await;

    let placed = api.place(&customer, "regret", &[("CHAIR-1", 1)]).await;
    let id = created_id(placed).await;
    assert_eq!(api.settled(&customer, &id).await["status"], "CONFIRMED");
    // After confirmation, payments captures and inventory commits on their own (choreography);
    // wait for both, so the cancellation has a captured payment to refund.
    order_until(api, &customer, &id, "captured and committed", |order| {
        order["payment_status"] == "captured" && order["stock_status"] == "committed"
    })
    .await;
    assert_eq!(available(api, "CHAIR-1").await, 3);

    let cancelled = api
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&customer),
            &serde_json::json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["status"], "CANCELLED", "{cancelled}");

    order_until(api, &customer, &id, "refunded and restocked", |order| {
        order["payment_status"] == "refunded" && order["stock_status"] == "restocked"
    })
    .await;
    let (status, payment) = payment_of(api, &customer, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(payment["status"], "REFUNDED", "{payment}");
    assert_eq!(payment["refunded"]["amount_minor"], 12_000, "{payment}");
    assert_eq!(available(api, "CHAIR-1").await, 4);

    // Cancelling is idempotent: a retried request gets the cancelled order, and no second refund.
    let again = api
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&customer),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "CANCELLED");
    let (_, payment) = payment_of(api, &customer, &id).await;
    assert_eq!(payment["refunded"]["amount_minor"], 12_000, "{payment}");
    system.stop().await;
}

/// One `step` event of an order stream: its `id:` and its data.
struct StreamedStep {
    id: i64,
    data: Value,
}

/// Reads `step` events from an open event stream until `enough` of them arrived or the stream
/// ends by itself. Comments (heartbeats) are skipped.
async fn read_steps(stream: &mut reqwest::Response, enough: usize) -> Vec<StreamedStep> {
    let mut text = String::new();
    let mut steps = Vec::new();
    while steps.len() < enough {
        let Some(chunk) = tokio::time::timeout(EVENTUALLY, stream.chunk())
            .await
            .expect("events keep coming until the order settles")
            .unwrap()
        else {
            break;
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|line| line.strip_prefix(name).map(str::to_owned))
            };
            if field("event: ").as_deref() != Some("step") {
                continue;
            }
            steps.push(StreamedStep {
                id: field("id: ").expect("an id").parse().unwrap(),
                data: serde_json::from_str(&field("data: ").expect("data")).unwrap(),
            });
        }
    }
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_order_stream_resumes_after_a_disconnect_with_every_step_once_up_to_settlement() {
    let (system, admin, customer) = shop(Options::default()).await;
    let api = &system.api;
    api.seed(&admin, "KETTLE-1", 3500, 5).await;
    let id = created_id(api.place(&customer, "live-1", &[("KETTLE-1", 1)]).await).await;
    let events = format!("/api/v1/orders/{id}/events");

    // Right after checkout: the first step, then the client goes away mid-saga.
    let mut first = api.get(&events, Some(&customer)).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    let before = read_steps(&mut first, 1).await;
    drop(first);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].data["step"], "place_order", "{}", before[0].data);
    assert_eq!(before[0].data["settled"], false);

    // Reconnecting as EventSource does: the last id seen, in `Last-Event-ID`.
    let mut second = api
        .request(reqwest::Method::GET, &events, Some(&customer))
        .header("Last-Event-ID", before[0].id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let after = read_steps(&mut second, usize::MAX).await;
    let streamed: Vec<&StreamedStep> = before.iter().chain(&after).collect();
    let ids: Vec<i64> = streamed.iter().map(|step| step.id).collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "each step once, in order: {ids:?}"
    );
    for step in &streamed {
        assert_eq!(step.data["sequence"], step.id, "the id is the sequence");
    }
    let last = &streamed.last().unwrap().data;
    assert_eq!(
        last["settled"], true,
        "the stream ends with the settling step: {last}"
    );
    assert_eq!(last["payment_status"], "captured", "{last}");
    assert_eq!(last["stock_status"], "committed", "{last}");

    // Every step of the settled order's timeline, exactly as streamed.
    let order: Value = api
        .get(&format!("/api/v1/orders/{id}"), Some(&customer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["settled"], true, "{order}");
    let timeline: Vec<(i64, String)> = order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["sequence"].as_i64().unwrap(),
                step["step"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let streamed: Vec<(i64, String)> = streamed
        .iter()
        .map(|step| (step.id, step.data["step"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(streamed, timeline);
    let names: Vec<&str> = timeline.iter().map(|(_, step)| step.as_str()).collect();
    assert!(
        names.contains(&"commit_stock") && names.contains(&"capture_payment"),
        "{names:?}"
    );

    // Resuming after the settling step: 204, which tells EventSource to stop reconnecting.
    let done = api
        .request(reqwest::Method::GET, &events, Some(&customer))
        .header("Last-Event-ID", ids.last().unwrap().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    // A Last-Event-ID that is not a sequence is the client's mistake, named.
    let bad = api
        .request(reqwest::Method::GET, &events, Some(&customer))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["field"], "Last-Event-ID", "{bad}");
    system.stop().await;
}
