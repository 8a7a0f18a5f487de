//! The event-sourced ledger against a real Postgres: capture, refund and void rules, the stream
//! as the source of truth, optimistic concurrency, one outbox row per appended event.

mod support;

use contracts::payments::{PaymentStatus, get_payment_request::Key};
use payments::{
    domain::{Currency, PaymentState},
    grpc::encode_status,
};
use support::{APPROVE, eur, spawn_app};
use tonic::Code;

#[tokio::test]
async fn capturing_twice_is_failed_precondition_and_leaves_one_captured_event() {
    let app = spawn_app().await;
    let payment = app.authorize(1500, APPROVE).await;
    let captured = app.capture(&payment.id).await.unwrap();
    assert_eq!(captured.status(), PaymentStatus::Captured);
    assert_eq!(captured.captured, Some(eur(1500)));

    let err = app.capture(&payment.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message()
            .starts_with("cannot capture a CAPTURED payment"),
        "{}",
        err.message()
    );
    let kinds: Vec<&str> = app
        .stored_events(&payment.id)
        .await
        .iter()
        .map(|recorded| recorded.event.kind())
        .collect();
    assert_eq!(kinds, ["authorized", "captured"]);
    app.stop().await;
}

#[tokio::test]
async fn declined_payments_accept_nothing() {
    let app = spawn_app().await;
    let payment = app.authorize(1500, "tok_visa_decline").await;
    let capture = app.capture(&payment.id).await.unwrap_err();
    let void = app.void(&payment.id).await.unwrap_err();
    let refund = app.refund(&payment.id, eur(1)).await.unwrap_err();
    for err in [capture, void, refund] {
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(
            err.message().contains("DECLINED payment"),
            "{}",
            err.message()
        );
    }
    assert_eq!(app.count("payment_events").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn refunds_are_bounded_by_the_capture_and_sum_up_to_refunded() {
    let app = spawn_app().await;
    let payment = app.authorize(1000, APPROVE).await;
    let err = app.refund(&payment.id, eur(100)).await.unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "refund before capture"
    );
    app.capture(&payment.id).await.unwrap();

    let err = app.refund(&payment.id, eur(1001)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("exceeds") || err.message().contains("left to refund"));

    let mut usd = eur(100);
    usd.currency = "USD".into();
    let err = app.refund(&payment.id, usd).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "amount.currency: the payment is in EUR, not USD"
    );

    let err = app.refund(&payment.id, eur(0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("amount.amount_minor: "));

    let partial = app.refund(&payment.id, eur(300)).await.unwrap();
    assert_eq!(partial.status(), PaymentStatus::PartiallyRefunded);
    assert_eq!(partial.refunded, Some(eur(300)));
    let partial = app.refund(&payment.id, eur(600)).await.unwrap();
    assert_eq!(partial.status(), PaymentStatus::PartiallyRefunded);

    let err = app.refund(&payment.id, eur(101)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "only 100 left");
    let full = app.refund(&payment.id, eur(100)).await.unwrap();
    assert_eq!(full.status(), PaymentStatus::Refunded);
    assert_eq!(full.refunded, Some(eur(1000)));

    let err = app.refund(&payment.id, eur(1)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(full.events.len(), 5);
    app.stop().await;
}

#[tokio::test]
async fn void_works_before_capture_and_is_rejected_after() {
    let app = spawn_app().await;
    let to_void = app.authorize(800, APPROVE).await;
    let voided = app.void(&to_void.id).await.unwrap();
    assert_eq!(voided.status(), PaymentStatus::Voided);
    assert_eq!(voided.events.last().unwrap().kind, "voided");
    assert_eq!(voided.events.last().unwrap().detail, "order cancelled");
    let err = app.capture(&to_void.id).await.unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "no capture after a void"
    );
    let err = app.void(&to_void.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "no second void");

    let captured = app.authorize(800, APPROVE).await;
    app.capture(&captured.id).await.unwrap();
    let err = app.void(&captured.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().starts_with("cannot void a CAPTURED payment"));
    assert!(err.message().contains("refunded instead"));
    app.stop().await;
}

#[tokio::test]
async fn the_stored_stream_folded_by_the_domain_equals_what_get_payment_returns() {
    let app = spawn_app().await;
    let payment = app.authorize(2000, APPROVE).await;
    app.capture(&payment.id).await.unwrap();
    app.refund(&payment.id, eur(500)).await.unwrap();
    app.refund(&payment.id, eur(250)).await.unwrap();
    let served = app.get(Key::PaymentId(payment.id.clone())).await.unwrap();

    // Straight from the table, folded with the domain's fold: the stream is the truth.
    let stored = app.stored_events(&payment.id).await;
    let seqs: Vec<i64> = stored.iter().map(|recorded| recorded.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let state = PaymentState::fold_recorded(Currency::parse("EUR").unwrap(), &stored);
    assert_eq!(served.status(), encode_status(state.status));
    assert_eq!(served.status(), PaymentStatus::PartiallyRefunded);
    assert_eq!(
        served.authorized,
        Some(payments::events::money(state.authorized()))
    );
    assert_eq!(
        served.captured,
        Some(payments::events::money(state.captured()))
    );
    assert_eq!(
        served.refunded,
        Some(payments::events::money(state.refunded()))
    );
    assert_eq!(served.refunded, Some(eur(750)));

    assert_eq!(served.events.len(), stored.len());
    for (wire, recorded) in served.events.iter().zip(&stored) {
        assert_eq!(wire.seq, recorded.seq);
        assert_eq!(wire.kind, recorded.event.kind());
        assert_eq!(
            wire.amount,
            recorded.event.amount().map(payments::events::money)
        );
        assert_eq!(wire.detail, recorded.event.detail());
        assert_eq!(
            wire.occurred_at,
            Some(messaging::envelope::timestamp(recorded.occurred_at))
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn concurrent_captures_of_one_payment_let_exactly_one_win() {
    let app = spawn_app().await;
    let payment = app.authorize(990, APPROVE).await;
    let attempts = (0..10).map(|_| app.capture(&payment.id));
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for err in results.iter().filter_map(|result| result.as_ref().err()) {
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    }

    let stored = app.stored_events(&payment.id).await;
    let seqs: Vec<i64> = stored.iter().map(|recorded| recorded.seq).collect();
    assert_eq!(seqs, [1, 2], "consecutive seqs, one capture");
    let captures = app
        .outbox()
        .await
        .into_iter()
        .filter(|(key, _)| key == "payments.payment.captured")
        .count();
    assert_eq!(captures, 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_refunds_land_on_consecutive_seqs_and_never_exceed_the_capture() {
    let app = spawn_app().await;
    let payment = app.authorize(1000, APPROVE).await;
    app.capture(&payment.id).await.unwrap();
    // Five refunds of 300 race for 1000: at most three fit.
    let attempts = (0..5).map(|_| app.refund(&payment.id, eur(300)));
    let results = futures::future::join_all(attempts).await;
    // A conflict only ever means another refund committed, so every loser decides again on
    // fresher state and, after the third refund, is refused: none runs out of attempts.
    let refunded = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(refunded, 3, "{results:?}");
    for err in results.iter().filter_map(|result| result.as_ref().err()) {
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    }
    let stored = app.stored_events(&payment.id).await;
    let seqs: Vec<i64> = stored.iter().map(|recorded| recorded.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let state = PaymentState::fold_recorded(Currency::parse("EUR").unwrap(), &stored);
    assert_eq!(
        state.refunded(),
        state.captured().checked_sub(state.refundable()).unwrap()
    );
    assert_eq!(state.refunded().minor(), 900);
    app.stop().await;
}

#[tokio::test]
async fn every_state_change_writes_exactly_one_outbox_row_with_its_routing_key() {
    let app = spawn_app().await;
    let kept = app.authorize(1000, APPROVE).await;
    app.capture(&kept.id).await.unwrap();
    app.refund(&kept.id, eur(400)).await.unwrap();
    app.refund(&kept.id, eur(600)).await.unwrap();
    let voided = app.authorize(50, APPROVE).await;
    app.void(&voided.id).await.unwrap();
    let declined = app.authorize(50, "tok_insufficient_funds").await;
    // Refused commands write nothing.
    app.capture(&kept.id).await.unwrap_err();
    app.capture(&declined.id).await.unwrap_err();

    let expected = [
        ("payments.payment.authorized", &kept.id),
        ("payments.payment.captured", &kept.id),
        ("payments.payment.refunded", &kept.id),
        ("payments.payment.refunded", &kept.id),
        ("payments.payment.authorized", &voided.id),
        ("payments.payment.voided", &voided.id),
        ("payments.payment.declined", &declined.id),
    ]
    .map(|(key, id)| (key.to_owned(), id.clone()));
    assert_eq!(app.outbox().await, expected);
    assert_eq!(app.count("payment_events").await, 7);
    app.stop().await;
}

#[tokio::test]
async fn the_event_table_is_append_only() {
    let app = spawn_app().await;
    let payment = app.authorize(1000, APPROVE).await;
    let pool = app.db.pool().await;
    let id = uuid::Uuid::parse_str(&payment.id).unwrap();
    let update = sqlx::query("UPDATE payment_events SET amount_minor = 1 WHERE payment_id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = sqlx::query("DELETE FROM payment_events WHERE payment_id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    pool.close().await;
    assert_eq!(app.stored_events(&payment.id).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_authorization_after_a_void_by_order_returns_the_tombstone_and_holds_nothing() {
    let app = spawn_app().await;
    let order_id = uuid::Uuid::now_v7();
    // The saga compensated an order whose authorization it never saw answered…
    let tombstone = app.void_order(order_id, 1500).await.unwrap();
    assert_eq!(tombstone.status(), PaymentStatus::Voided);
    assert_eq!(tombstone.authorized, Some(eur(0)));
    // …and a runner that stalled before sending it sends it now.
    let late = app.try_authorize(order_id, 1500, APPROVE).await.unwrap();
    assert_eq!(
        late.status(),
        PaymentStatus::Voided,
        "the late call must hold nothing"
    );
    assert_eq!(
        late.id, tombstone.id,
        "the order's one payment is the tombstone"
    );
    let kinds: Vec<&str> = app
        .stored_events(&late.id)
        .await
        .iter()
        .map(|recorded| recorded.event.kind())
        .collect();
    assert_eq!(kinds, ["voided"]);
    // Compensation may run again: a no-op.
    let again = app.void_order(order_id, 1500).await.unwrap();
    assert_eq!((again.id, again.events.len()), (late.id, 1));
    app.stop().await;
}

#[tokio::test]
async fn a_void_by_order_voids_an_authorized_payment_once_and_leaves_a_declined_one() {
    let app = spawn_app().await;
    let order_id = uuid::Uuid::now_v7();
    let authorized = app.try_authorize(order_id, 900, APPROVE).await.unwrap();
    let voided = app.void_order(order_id, 900).await.unwrap();
    assert_eq!(voided.id, authorized.id);
    assert_eq!(voided.status(), PaymentStatus::Voided);
    let again = app.void_order(order_id, 900).await.unwrap();
    assert_eq!(again.events.len(), 2, "authorized, voided: nothing more");

    let declined_order = uuid::Uuid::now_v7();
    let declined = app
        .try_authorize(declined_order, 900, "tok_visa_decline")
        .await
        .unwrap();
    let after = app.void_order(declined_order, 900).await.unwrap();
    assert_eq!(after.status(), PaymentStatus::Declined);
    assert_eq!(after.events.len(), declined.events.len());

    let captured = app.authorize(900, APPROVE).await;
    app.capture(&captured.id).await.unwrap();
    let order_of_captured = uuid::Uuid::parse_str(&captured.order_id).unwrap();
    let err = app.void_order(order_of_captured, 900).await.unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "compensation never follows a capture"
    );
    app.stop().await;
}

#[tokio::test]
async fn racing_authorizations_and_voids_of_one_order_never_leave_money_held() {
    let app = spawn_app().await;
    for _ in 0..10 {
        let order_id = uuid::Uuid::now_v7();
        let authorize = app.try_authorize(order_id, 700, APPROVE);
        let void = app.void_order(order_id, 700);
        let (authorized, voided) = tokio::join!(authorize, void);
        let (authorized, voided) = (authorized.unwrap(), voided.unwrap());
        assert_eq!(authorized.id, voided.id, "one payment per order");
        let now = app.by_order(order_id).await;
        assert_eq!(now.status(), PaymentStatus::Voided, "{:?}", now.events);
    }
    app.stop().await;
}

/// A saga runner that stalled past its lease wakes up with its old epoch and compensates,
/// after its successor (a higher epoch) authorized the order's payment: the void is refused and
/// the successor's authorization stands, so its confirmation can capture it.
#[tokio::test]
async fn a_superseded_runner_cannot_void_the_payment_its_successor_authorized() {
    let app = spawn_app().await;
    let order_id = uuid::Uuid::now_v7();
    fn fenced<T>(epoch: i64, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        platform::fencing::FencingToken::new(epoch).attach(&mut request);
        request
    }

    let authorized = app
        .client
        .clone()
        .authorize_payment(fenced(
            2,
            support::authorize_request(order_id, app.customer_id, 1500, APPROVE),
        ))
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(authorized.status(), PaymentStatus::Authorized);

    let void = contracts::payments::VoidOrderPaymentRequest {
        order_id: order_id.to_string(),
        amount: Some(eur(1500)),
        customer_id: app.customer_id.to_string(),
        reason: "checkout compensation".to_owned(),
    };
    let refused = app
        .client
        .clone()
        .void_order_payment(fenced(1, void.clone()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("superseded"), "{refused:?}");
    // A stale authorization retry is refused the same way, before the provider is asked.
    let refused = app
        .client
        .clone()
        .authorize_payment(fenced(
            1,
            support::authorize_request(order_id, app.customer_id, 1500, APPROVE),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let payment = app.get(Key::OrderId(order_id.to_string())).await.unwrap();
    assert_eq!(payment.status(), PaymentStatus::Authorized);
    app.capture(&payment.id).await.unwrap();

    // The current runner's void of the same order is not fenced off (equal epoch), and the
    // ledger's own rules answer it: a captured payment cannot be voided.
    let after_capture = app
        .client
        .clone()
        .void_order_payment(fenced(2, void))
        .await
        .unwrap_err();
    assert!(
        !after_capture.message().contains("superseded"),
        "{after_capture:?}"
    );
}
