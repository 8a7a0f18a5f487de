//! AuthorizePayment and GetPayment against a real Postgres: outcomes, idempotency per order,
//! input validation.

mod support;

use contracts::{
    events::{EventEnvelope, PaymentAuthorized},
    payments::{PaymentStatus, get_payment_request::Key},
};
use prost::Message as _;
use support::{APPROVE, authorize_request, eur, spawn_app};
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn an_approving_card_authorizes_the_payment() {
    let app = spawn_app().await;
    let order_id = Uuid::now_v7();
    let payment = app.try_authorize(order_id, 4999, APPROVE).await.unwrap();
    assert_eq!(payment.status(), PaymentStatus::Authorized);
    assert_eq!(payment.order_id, order_id.to_string());
    assert_eq!(payment.customer_id, app.customer_id.to_string());
    assert_eq!(payment.authorized, Some(eur(4999)));
    assert_eq!(payment.captured, Some(eur(0)));
    assert_eq!(payment.decline_reason, "");
    assert_eq!(Uuid::parse_str(&payment.id).unwrap().get_version_num(), 7);
    assert_eq!(payment.events.len(), 1);
    assert_eq!(payment.events[0].seq, 1);
    assert_eq!(payment.events[0].kind, "authorized");
    assert_eq!(payment.events[0].amount, Some(eur(4999)));

    let alias = app.authorize(100, "tok_approve").await;
    assert_eq!(alias.status(), PaymentStatus::Authorized);
    app.stop().await;
}

#[tokio::test]
async fn declining_cards_decline_the_payment_with_the_providers_reason() {
    let app = spawn_app().await;
    for (token, reason) in [
        ("tok_visa_decline", "card_declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
        ("tok_unheard_of", "unknown_payment_method"),
    ] {
        let payment = app.authorize(1000, token).await;
        assert_eq!(payment.status(), PaymentStatus::Declined, "{token}");
        assert_eq!(payment.decline_reason, reason);
        assert_eq!(payment.authorized, Some(eur(0)));
        assert_eq!(payment.events.len(), 1);
        assert_eq!(payment.events[0].kind, "declined");
        assert_eq!(payment.events[0].detail, reason);
        assert_eq!(payment.events[0].amount, None);
    }
    let routing_keys: Vec<String> = app.outbox().await.into_iter().map(|(key, _)| key).collect();
    assert_eq!(routing_keys, ["payments.payment.declined"; 3]);
    app.stop().await;
}

#[tokio::test]
async fn a_retried_authorization_returns_the_same_payment_whatever_its_outcome() {
    let app = spawn_app().await;
    let approved_order = Uuid::now_v7();
    let first = app
        .try_authorize(approved_order, 2500, APPROVE)
        .await
        .unwrap();
    let retry = app
        .try_authorize(approved_order, 2500, APPROVE)
        .await
        .unwrap();
    assert_eq!(retry, first);

    let declined_order = Uuid::now_v7();
    let declined = app
        .try_authorize(declined_order, 2500, "tok_visa_decline")
        .await
        .unwrap();
    // A retry with another card does not re-run the provider: the order's payment is decided.
    let retry = app
        .try_authorize(declined_order, 2500, APPROVE)
        .await
        .unwrap();
    assert_eq!(retry, declined);
    assert_eq!(retry.status(), PaymentStatus::Declined);

    assert_eq!(app.count("payments").await, 2);
    assert_eq!(app.count("payment_events").await, 2);
    assert_eq!(app.count("outbox").await, 2, "retries publish nothing");
    app.stop().await;
}

#[tokio::test]
async fn a_retry_with_different_terms_is_failed_precondition() {
    let app = spawn_app().await;
    let order_id = Uuid::now_v7();
    app.try_authorize(order_id, 2500, APPROVE).await.unwrap();
    let mut client = app.client.clone();

    let other_amount = authorize_request(order_id, app.customer_id, 2600, APPROVE);
    let mut other_currency = authorize_request(order_id, app.customer_id, 2500, APPROVE);
    other_currency.amount.as_mut().unwrap().currency = "USD".into();
    let other_customer = authorize_request(order_id, Uuid::now_v7(), 2500, APPROVE);
    for (request, field) in [
        (other_amount, "amount"),
        (other_currency, "currency"),
        (other_customer, "customer"),
    ] {
        let err = client.authorize_payment(request).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{field}");
        assert!(
            err.message().starts_with(&format!(
                "order already has a payment with a different {field}"
            )),
            "{}",
            err.message()
        );
    }
    assert_eq!(app.count("payments").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_duplicate_authorizations_of_one_order_create_one_payment() {
    let app = spawn_app().await;
    let order_id = Uuid::now_v7();
    let attempts = (0..10).map(|_| app.try_authorize(order_id, 1234, APPROVE));
    let results = futures::future::join_all(attempts).await;
    let ids: Vec<String> = results
        .into_iter()
        .map(|result| result.expect("every duplicate succeeds").id)
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(app.count("payment_events").await, 1);
    assert_eq!(app.count("outbox").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_authorization_records_one_payment_authorized_event_in_the_outbox() {
    let app = spawn_app().await;
    let payment = app.authorize(777, APPROVE).await;
    let pool = app.db.pool().await;
    let (routing_key, aggregate_id, bytes): (String, String, Vec<u8>) =
        sqlx::query_as("SELECT routing_key, aggregate_id, envelope FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(routing_key, "payments.payment.authorized");
    assert_eq!(aggregate_id, payment.id);
    let envelope = EventEnvelope::decode(bytes.as_slice()).unwrap();
    assert_eq!(envelope.event_type, "shop.events.v1.PaymentAuthorized");
    let event = PaymentAuthorized::decode(envelope.payload.as_slice()).unwrap();
    assert_eq!(event.payment_id, payment.id);
    assert_eq!(event.order_id, payment.order_id);
    assert_eq!(event.amount, Some(eur(777)));
    app.stop().await;
}

#[tokio::test]
async fn get_payment_finds_by_payment_id_or_order_id() {
    let app = spawn_app().await;
    let payment = app.authorize(500, APPROVE).await;
    let by_id = app.get(Key::PaymentId(payment.id.clone())).await.unwrap();
    let by_order = app
        .get(Key::OrderId(payment.order_id.clone()))
        .await
        .unwrap();
    assert_eq!(by_id, payment);
    assert_eq!(by_order, payment);

    for key in [
        Key::PaymentId(Uuid::now_v7().to_string()),
        Key::OrderId(Uuid::now_v7().to_string()),
    ] {
        assert_eq!(app.get(key).await.unwrap_err().code(), Code::NotFound);
    }
    assert_eq!(
        app.capture(&Uuid::now_v7().to_string())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_input_is_invalid_argument_naming_the_field_and_writes_nothing() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let order = Uuid::now_v7();
    let customer = app.customer_id;
    let valid = || authorize_request(order, customer, 100, APPROVE);

    let mut cases = Vec::new();
    let mut request = valid();
    request.order_id = "order-1".into();
    cases.push((request, "order_id"));
    let mut request = valid();
    request.customer_id = String::new();
    cases.push((request, "customer_id"));
    let mut request = valid();
    request.amount = None;
    cases.push((request, "amount"));
    for minor in [0, -100] {
        let mut request = valid();
        request.amount.as_mut().unwrap().amount_minor = minor;
        cases.push((request, "amount.amount_minor"));
    }
    for currency in ["eur", "EURO", "", "E1R"] {
        let mut request = valid();
        request.amount.as_mut().unwrap().currency = currency.into();
        cases.push((request, "amount.currency"));
    }
    let mut request = valid();
    request.payment_method = "  ".into();
    cases.push((request, "payment_method"));

    for (request, field) in cases {
        let err = client.authorize_payment(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{field}: got {:?}",
            err.message()
        );
    }

    let err = app.capture("42").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("payment_id: "),
        "{}",
        err.message()
    );
    let err = client
        .get_payment(contracts::payments::GetPaymentRequest { key: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("key: "), "{}", err.message());

    assert_eq!(app.count("payments").await, 0);
    assert_eq!(app.count("payment_events").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    app.stop().await;
}
