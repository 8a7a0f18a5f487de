//! The system as an attacker meets it: the real binaries, driven over HTTP (and, for the metrics,
//! gRPC) the way a hostile or merely careless client would. Each test is one way a single client
//! could hurt the others, and checks that it cannot:
//!
//! * bad bytes and over-long values in every text field are 4xx answers naming the field, and
//!   never faults that open a breaker: right after them, another customer's checkout works;
//! * every spelling of a route spends from the client's one rate-limit bucket;
//! * behind trusted proxies the client is the right-most untrusted hop, which the client cannot
//!   forge; sign-ins are throttled per account, whatever the source address;
//! * a burst of sign-ins beyond the password-hashing slots is shed with 503 + `Retry-After`,
//!   memory stays bounded, and sign-ins recover;
//! * a client that sends its body slowly is cut off;
//! * rotating the signing key logs nobody out;
//! * every response carries the browser security headers; order streams open with a short-lived
//!   ticket, never a bearer token in the URL, and one user holds a bounded number of them;
//! * a trace context from an untrusted client starts a new trace that links to it;
//! * made-up gRPC methods and HTTP methods do not add metric series;
//! * registering a privileged address makes a customer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Method, StatusCode, header::HeaderValue};
use serde_json::{Value, json};
use support::{
    otlp::OtlpReceiver,
    system::{Options, System},
    world::{ADMIN_EMAIL, APPROVE, Api, PASSWORD, metric, new_signing_pem, problem},
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long the system may take to do what it is asked (the saga, a restart).
const EVENTUALLY: Duration = Duration::from_secs(30);

/// Limits high enough never to be the reason a request in these tests is refused.
fn unlimited() -> Vec<(&'static str, String)> {
    vec![
        ("GATEWAY_RATE_LIMIT_PER_MINUTE", "1000000".to_owned()),
        ("GATEWAY_RATE_LIMIT_BURST", "100000".to_owned()),
        ("GATEWAY_LOGIN_RATE_PER_MINUTE", "1000000".to_owned()),
        ("GATEWAY_LOGIN_RATE_BURST", "100000".to_owned()),
    ]
}

/// What an attacker puts in a text field: a NUL (Postgres cannot store it), a terminal escape,
/// a value far over any limit, and one within a character limit but over its byte limit.
fn hostile_texts() -> Vec<(&'static str, String)> {
    vec![
        ("a NUL byte", "ok\u{0}ok".to_owned()),
        ("an escape sequence", "ok\u{1b}[2Jok".to_owned()),
        ("5000 characters", "x".repeat(5000)),
        ("3000 two-byte characters", "é".repeat(3000)),
    ]
}

async fn status_and_body(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Asserts a client error (never a 5xx) and, when `field` is given, that the problem names it.
fn assert_refused(case: &str, (status, body): &(StatusCode, Value), field: Option<&str>) {
    assert!(
        status.is_client_error(),
        "{case}: {status} is not a client error: {body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{case}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_text_in_every_field_is_a_client_error_and_checkout_keeps_working() {
    let system = System::start(Options {
        gateway_env: unlimited(),
        ..Options::default()
    })
    .await;
    let api = &system.api;
    let admin = system.admin().await;
    api.seed(&admin, "SAFE-1", 2500, 50).await;
    let (mallory, _) = api.sign_up("mallory@example.com").await;
    let order_id = "0192f5a0-0000-7000-8000-000000000001";

    for (what, text) in hostile_texts() {
        let case = |route: &str| format!("{route} with {what}");
        for (field, body) in [
            ("email", json!({"email": text, "password": PASSWORD})),
            (
                "password",
                json!({"email": "p@example.com", "password": text}),
            ),
            (
                "display_name",
                json!({"email": "d@example.com", "password": PASSWORD, "display_name": text}),
            ),
        ] {
            let answer =
                status_and_body(api.post("/api/v1/auth/register", None, &body).await).await;
            assert_refused(&case(&format!("register {field}")), &answer, Some(field));
        }
        for body in [
            json!({"email": text, "password": PASSWORD}),
            json!({"email": "mallory@example.com", "password": text}),
        ] {
            let answer = status_and_body(api.post("/api/v1/auth/login", None, &body).await).await;
            assert_refused(&case("login"), &answer, None);
        }
        // The request that once took checkout down: a NUL in the payment method, five times.
        for _ in 0..5 {
            let answer = status_and_body(
                api.place_paying(&mallory, "hostile", &[("SAFE-1", 1)], &text)
                    .await,
            )
            .await;
            assert_refused(
                &case("order payment_method"),
                &answer,
                Some("payment_method"),
            );
        }
        let answer = status_and_body(api.place(&mallory, "hostile-sku", &[(&text, 1)]).await).await;
        assert_refused(&case("order sku"), &answer, Some("lines[0].sku"));
        let cancel = api
            .post(
                &format!("/api/v1/orders/{order_id}/cancel"),
                Some(&mallory),
                &json!({"reason": text}),
            )
            .await;
        assert_refused(
            &case("cancel reason"),
            &status_and_body(cancel).await,
            Some("reason"),
        );
        let search = api
            .request(Method::GET, "/api/v1/products", None)
            .query(&[("q", &text)])
            .send()
            .await
            .unwrap();
        // Over-long ones may be refused by the HTTP layer before a handler sees them.
        assert_refused(&case("search"), &status_and_body(search).await, None);
        for (field, body) in [
            (
                "name",
                json!({"name": text, "price": {"amount_minor": 100, "currency": "EUR"}}),
            ),
            (
                "description",
                json!({"name": "Mug", "description": text, "price": {"amount_minor": 100, "currency": "EUR"}}),
            ),
            (
                "price.currency",
                json!({"name": "Mug", "price": {"amount_minor": 100, "currency": text}}),
            ),
        ] {
            let upsert = api
                .request(
                    Method::PUT,
                    "/api/v1/admin/products/HOSTILE-1",
                    Some(&admin),
                )
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_refused(
                &case(&format!("upsert {field}")),
                &status_and_body(upsert).await,
                Some(field),
            );
        }
        let adjust = api
            .post(
                "/api/v1/admin/products/SAFE-1/stock-adjustments",
                Some(&admin),
                &json!({"delta": 1, "reason": text}),
            )
            .await;
        assert_refused(
            &case("stock reason"),
            &status_and_body(adjust).await,
            Some("reason"),
        );
    }
    // Bytes that are not UTF-8, and escapes JSON allows but Unicode does not: 400s too.
    for body in [
        &b"{\"email\": \"\xff\xfe\", \"password\": \"x\"}"[..],
        br#"{"email": "\ud800", "password": "x"}"#,
    ] {
        let response = api
            .request(Method::POST, "/api/v1/auth/register", None)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_refused(
            "invalid UTF-8",
            &status_and_body(response).await,
            Some("body"),
        );
    }
    // Keys that cannot be headers of ours: over-long, not ASCII.
    for key in [
        HeaderValue::from_str(&"k".repeat(200)).unwrap(),
        HeaderValue::from_bytes(b"cl\xe9").unwrap(),
    ] {
        let response = api
            .request(Method::POST, "/api/v1/orders", Some(&mallory))
            .header("idempotency-key", key)
            .json(&json!({"lines": [{"sku": "SAFE-1", "quantity": 1}], "payment_method": APPROVE}))
            .send()
            .await
            .unwrap();
        assert_refused(
            "idempotency key",
            &status_and_body(response).await,
            Some("Idempotency-Key"),
        );
    }

    // Immediately after all of it, another customer checks out as if nothing had happened.
    let (ada, _) = api.sign_up("ada@example.com").await;
    let placed = api.place(&ada, "honest", &[("SAFE-1", 2)]).await;
    assert_eq!(
        placed.status(),
        StatusCode::CREATED,
        "the orders breaker stayed closed"
    );
    let order: Value = placed.json().await.unwrap();
    let settled = api.settled(&ada, order["id"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "CONFIRMED", "{settled}");
    let metrics = api.metrics().await;
    assert_eq!(
        metric(&metrics, r#"circuit_breaker_state{breaker="orders"}"#),
        Some(0.0),
        "closed: {metrics}"
    );
    system.stop().await;
}

/// A GET of `path` as the client at `ip` (behind the trusted proxy the test pretends to be).
async fn get_as(api: &Api, path: &str, ip: &str) -> StatusCode {
    api.client
        .get(format!("{}{path}", api.url))
        .header("x-forwarded-for", ip)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_spelling_of_a_route_spends_from_the_clients_one_bucket() {
    let system = System::start(Options {
        gateway_env: vec![
            ("GATEWAY_RATE_LIMIT_PER_MINUTE", "60".to_owned()),
            ("GATEWAY_RATE_LIMIT_BURST", "5".to_owned()),
            // The test plays the ingress, so that each spelling can be a client of its own.
            ("GATEWAY_TRUSTED_PROXIES", "127.0.0.1".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let api = &system.api;
    let spellings = [
        "/api/v1/products",
        "/%61pi/v1/products",
        "/api/v1/%70roducts",
        "/api//v1/products",
        "//api/v1/products",
        "/api/v1/products/",
        "/api/v1/products?page_size=1",
    ];
    for (index, spelling) in spellings.iter().enumerate() {
        let client = format!("203.0.113.{}", index + 1);
        let mut statuses = Vec::new();
        for _ in 0..8 {
            statuses.push(get_as(api, spelling, &client).await);
        }
        assert!(
            statuses[..5].iter().all(|status| *status == StatusCode::OK),
            "{spelling} is served like the plain route: {statuses:?}"
        );
        assert!(
            statuses[5..]
                .iter()
                .all(|status| *status == StatusCode::TOO_MANY_REQUESTS),
            "{spelling} is limited like the plain route: {statuses:?}"
        );
    }
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_trusted_proxies_the_client_cannot_pick_its_address_and_sign_ins_are_throttled_per_account()
 {
    let system = System::start(Options {
        gateway_env: vec![
            ("GATEWAY_RATE_LIMIT_PER_MINUTE", "60".to_owned()),
            ("GATEWAY_RATE_LIMIT_BURST", "5".to_owned()),
            ("GATEWAY_LOGIN_RATE_PER_MINUTE", "6".to_owned()),
            ("GATEWAY_LOGIN_RATE_BURST", "3".to_owned()),
            ("GATEWAY_TRUSTED_PROXIES", "127.0.0.1".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let api = &system.api;
    // A client behind the ingress writes a new "address" into the left of X-Forwarded-For for
    // every request; the ingress appends the one it saw. Only that one counts.
    let mut rotating = Vec::new();
    for i in 0..8 {
        rotating.push(
            get_as(
                api,
                "/api/v1/products",
                &format!("10.9.9.{i}, 198.51.100.7"),
            )
            .await,
        );
    }
    assert_eq!(rotating[4], StatusCode::OK, "{rotating:?}");
    assert_eq!(rotating[5], StatusCode::TOO_MANY_REQUESTS, "{rotating:?}");
    // Another client behind the same ingress has a bucket of its own.
    assert_eq!(
        get_as(api, "/api/v1/products", "198.51.100.8").await,
        StatusCode::OK
    );

    // Password guessing against one account, from a new address each time, meets the
    // per-account throttle; the account's owner, elsewhere, is not the one throttled forever.
    api.post(
        "/api/v1/auth/register",
        None,
        &json!({"email": "victim@example.com", "password": PASSWORD}),
    )
    .await;
    let mut guesses = Vec::new();
    for i in 0..5 {
        let response = api
            .client
            .post(format!("{}/api/v1/auth/login", api.url))
            .header("x-forwarded-for", format!("192.0.2.{i}"))
            .json(&json!({"email": "Victim@Example.com", "password": format!("guess number {i}")}))
            .send()
            .await
            .unwrap();
        guesses.push((
            response.status(),
            response.headers().contains_key("retry-after"),
        ));
    }
    let statuses: Vec<StatusCode> = guesses.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3], "{statuses:?}");
    assert!(
        guesses[3..]
            .iter()
            .all(|(status, retry)| *status == StatusCode::TOO_MANY_REQUESTS && *retry),
        "the fourth guess on one account is throttled: {statuses:?}"
    );
    system.stop().await;
}

/// The status of `GET /api/v1/me` with `token`.
async fn me(api: &Api, token: &str) -> StatusCode {
    api.get("/api/v1/me", Some(token)).await.status()
}

/// Peak resident memory of a process, from `/proc/<pid>/status` (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_burst_beyond_the_hashing_slots_is_shed_and_sign_ins_recover() {
    let system = System::start(Options {
        gateway_env: unlimited(),
        users_env: vec![
            ("USERS_HASH_CONCURRENCY", "1".to_owned()),
            ("USERS_HASH_QUEUE", "1".to_owned()),
        ],
        ..Options::default()
    })
    .await;
    let api = &system.api;
    api.sign_up("burst@example.com").await;
    let login = || async {
        api.post(
            "/api/v1/auth/login",
            None,
            &json!({"email": "burst@example.com", "password": PASSWORD}),
        )
        .await
    };
    let answers = join_all((0..40).map(|_| login())).await;
    let mut signed_in = 0;
    let mut shed = 0;
    for response in answers {
        match response.status() {
            StatusCode::OK => signed_in += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(response.headers().contains_key("retry-after"));
                shed += 1;
            }
            other => panic!(
                "a burst of sign-ins got {other}: {}",
                response.text().await.unwrap()
            ),
        }
    }
    assert!(
        signed_in >= 1,
        "some sign in at once ({signed_in} did, {shed} shed)"
    );
    assert!(
        shed >= 1,
        "the excess is shed, not queued without bound ({signed_in} signed in)"
    );
    let pid = system
        .users()
        .process
        .pid()
        .expect("users is still running");
    let peak = peak_rss_kib(pid);
    assert!(peak < 256 * 1024, "users peaked at {peak} KiB");
    // Once the burst is over (and any breaker it opened has cooled), signing in works again.
    testkit::poll_until("a sign-in after the burst", EVENTUALLY, || async {
        (login().await.status() == StatusCode::OK).then_some(())
    })
    .await
    .unwrap();
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_sends_its_body_slowly_is_cut_off() {
    let system = System::start(Options {
        gateway_env: vec![("GATEWAY_BODY_TIMEOUT", "2s".to_owned())],
        ..Options::default()
    })
    .await;
    let address = system.api.url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
              Content-Length: 400\r\n\r\n{",
        )
        .await
        .unwrap();
    // One byte every 300 ms: never idle for long, never done.
    let trickle = tokio::spawn(async move {
        for _ in 0..200 {
            if write.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let started = Instant::now();
    let mut response = Vec::new();
    let read_all = tokio::time::timeout(Duration::from_secs(15), read.read_to_end(&mut response));
    assert!(read_all.await.is_ok(), "the gateway ends the connection");
    trickle.abort();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotating_the_signing_key_logs_nobody_out() {
    let mut system = System::start(Options {
        gateway_env: vec![("GATEWAY_JWKS_MIN_REFRESH", "1s".to_owned())],
        ..Options::default()
    })
    .await;
    let (before, _) = system.api.sign_up("ada@example.com").await;
    assert_eq!(me(&system.api, &before).await, StatusCode::OK);

    // The operator rotates: a new key, the old one kept as previous, users restarted.
    let old = system.signing_pem.clone();
    let new = new_signing_pem();
    system
        .restart_users(&[
            ("USERS_JWT_PRIVATE_KEY", new.clone()),
            ("USERS_JWT_PREVIOUS_KEYS", old),
        ])
        .await;
    let (after, _) = system.api.log_in("ada@example.com").await;
    assert_eq!(
        me(&system.api, &after).await,
        StatusCode::OK,
        "new tokens verify"
    );
    assert_eq!(
        me(&system.api, &before).await,
        StatusCode::OK,
        "old tokens still verify"
    );

    // A gateway that starts now learns both keys from the JWKS.
    system.restart_gateway().await;
    for token in [&before, &after] {
        let status = testkit::poll_until("the restarted gateway to accept", EVENTUALLY, || async {
            let status = me(&system.api, token).await;
            (status != StatusCode::SERVICE_UNAVAILABLE).then_some(status)
        })
        .await
        .unwrap();
        assert_eq!(status, StatusCode::OK);
    }

    // A users replica that no longer lists the previous key (the rotation's next step, or a
    // replica rolled out without it) does not make the gateway forget it while tokens live.
    system
        .restart_users(&[("USERS_JWT_PREVIOUS_KEYS", String::new())])
        .await;
    // A token with a key id nobody knows makes the gateway fetch the key set again.
    let stranger = new_signing_pem();
    let forged = support::world::forge(
        &stranger,
        &support::world::claims("0192f5a0-0000-7000-8000-0000000000aa"),
    );
    assert_eq!(me(&system.api, &forged).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me(&system.api, &before).await,
        StatusCode::OK,
        "the merged set kept the old key"
    );
    assert_eq!(me(&system.api, &after).await, StatusCode::OK);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn responses_carry_security_headers_and_streams_open_with_tickets_a_few_per_user() {
    let system = System::start(Options {
        gateway_env: vec![("GATEWAY_SSE_MAX_PER_USER", "2".to_owned())],
        // Payments is unreachable, so the order stays PENDING and its streams stay open.
        orders_env: vec![("ORDERS_PAYMENTS_URL", "http://127.0.0.1:9".to_owned())],
        ..Options::default()
    })
    .await;
    let api = &system.api;
    for path in [
        "/",
        "/app.js",
        "/api/v1/products",
        "/api/v1/no-such-route",
        "/api/openapi.json",
        "/api/docs",
    ] {
        let response = api.get(path, None).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }

    let admin = system.admin().await;
    api.seed(&admin, "WAIT-1", 900, 5).await;
    let (alice, _) = api.sign_up("alice@example.com").await;
    let (mallory, _) = api.sign_up("mallory@example.com").await;
    let placed: Value = api
        .place(&alice, "pending", &[("WAIT-1", 1)])
        .await
        .json()
        .await
        .unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    let events = |query: String| {
        let url = format!("{}/api/v1/orders/{id}/events?{query}", api.url);
        let client = api.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let ticket_for = |token: String, order: String| async move {
        api.post(
            &format!("/api/v1/orders/{order}/stream-tickets"),
            Some(&token),
            &json!({}),
        )
        .await
    };

    // The bearer token is no credential in a URL.
    problem(
        events(format!("access_token={alice}")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // Another customer gets no ticket for it, and a ticket opens only its own order.
    problem(
        ticket_for(mallory.clone(), id.clone()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let ticket = |response: reqwest::Response| async move {
        let body: Value = response.json().await.unwrap();
        body["ticket"].as_str().unwrap().to_owned()
    };
    let alices = ticket(ticket_for(alice.clone(), id.clone()).await).await;
    let other: Value = api
        .place(&alice, "other", &[("WAIT-1", 1)])
        .await
        .json()
        .await
        .unwrap();
    let elsewhere = format!(
        "{}/api/v1/orders/{}/events?ticket={alices}",
        api.url,
        other["id"].as_str().unwrap()
    );
    problem(
        api.client.get(elsewhere).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Two streams are open; a third is refused until one closes.
    let mut open = Vec::new();
    for _ in 0..2 {
        let ticket = ticket(ticket_for(alice.clone(), id.clone()).await).await;
        let mut stream = events(format!("ticket={ticket}")).await;
        assert_eq!(stream.status(), StatusCode::OK);
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        let first = stream.chunk().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("PENDING"));
        open.push(stream);
    }
    let third = events(format!("ticket={alices}")).await;
    assert!(third.headers().contains_key("retry-after"));
    problem(third, StatusCode::TOO_MANY_REQUESTS).await;
    // Mallory's streams are hers to count: Alice's do not use them up.
    let mallorys: Value = api
        .place(&mallory, "hers", &[("WAIT-1", 1)])
        .await
        .json()
        .await
        .unwrap();
    let hers =
        ticket(ticket_for(mallory.clone(), mallorys["id"].as_str().unwrap().to_owned()).await)
            .await;
    let url = format!(
        "{}/api/v1/orders/{}/events?ticket={hers}",
        api.url,
        mallorys["id"].as_str().unwrap()
    );
    assert_eq!(
        api.client.get(url).send().await.unwrap().status(),
        StatusCode::OK
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_untrusted_trace_context_starts_a_new_trace_that_links_to_it() {
    const CLAIMED: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let receiver = OtlpReceiver::start().await;
    let system = System::start(Options {
        otlp_endpoint: Some(receiver.endpoint()),
        ..Options::default()
    })
    .await;
    let response = system
        .api
        .client
        .get(format!("{}/api/v1/products", system.api.url))
        .header("traceparent", format!("00-{CLAIMED}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let linked = testkit::poll_until(
        "the gateway's span linking to the claimed trace",
        EVENTUALLY,
        || async {
            let spans = receiver.linking_to(CLAIMED);
            spans.into_iter().find(|span| span.service == "gateway")
        },
    )
    .await
    .unwrap();
    assert_ne!(linked.trace_id, CLAIMED, "a trace of the gateway's own");
    assert!(linked.parent_span_id.is_empty(), "the root of its trace");
    assert!(
        receiver
            .trace(CLAIMED)
            .iter()
            .all(|span| span.service != "gateway"),
        "nothing joined the claimed trace"
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn made_up_methods_do_not_add_metric_series() {
    let system = System::start(Options::default()).await;
    // Ask inventory's port for a service it does not host (the users API): UNIMPLEMENTED.
    let mut wrong =
        contracts::users::UsersServiceClient::new(system.grpc_channel("gateway", "inventory"));
    let status = wrong
        .get_jwks(contracts::users::GetJwksRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let metrics = testkit::poll_until("the call to be counted", EVENTUALLY, || async {
        let metrics = system.inventory[0].metrics().await;
        metrics.contains(r#"method="unknown""#).then_some(metrics)
    })
    .await
    .unwrap();
    assert!(!metrics.contains("GetJwks"), "{metrics}");
    assert!(!metrics.contains("UsersService"), "{metrics}");
    // And at the edge: HTTP methods are the client's to invent too.
    let response = system
        .api
        .client
        .request(
            Method::from_bytes(b"EXFILTRATE").unwrap(),
            format!("{}/api/v1/products", system.api.url),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    let edge = system.api.metrics().await;
    assert!(!edge.contains("EXFILTRATE"), "{edge}");
    assert!(edge.contains(r#"method="other""#), "{edge}");
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registering_a_privileged_address_makes_a_customer() {
    let system = System::start(Options {
        // The old way to make admins, which whoever registered first could claim: inert now.
        users_env: vec![("USERS_ADMIN_EMAILS", ADMIN_EMAIL.to_owned())],
        ..Options::default()
    })
    .await;
    let api = &system.api;
    let (claimed, _) = api.sign_up(ADMIN_EMAIL).await;
    let me: Value = api
        .get("/api/v1/me", Some(&claimed))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "customer", "{me}");
    let upsert = api
        .request(Method::PUT, "/api/v1/admin/products/MINE-1", Some(&claimed))
        .json(&json!({"name": "Free", "price": {"amount_minor": 1, "currency": "EUR"}}))
        .send()
        .await
        .unwrap();
    problem(upsert, StatusCode::FORBIDDEN).await;
    // An operator grants the role out of band; then it works.
    system.users_admin(&["grant", ADMIN_EMAIL]).await;
    let (admin, _) = api.log_in(ADMIN_EMAIL).await;
    let upsert = api
        .request(Method::PUT, "/api/v1/admin/products/MINE-1", Some(&admin))
        .json(&json!({"name": "Mug", "price": {"amount_minor": 100, "currency": "EUR"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(upsert.status(), StatusCode::OK);
    system.stop().await;
}
