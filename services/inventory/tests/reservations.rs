//! Reservations against a real Postgres: no overselling under concurrency, all-or-nothing,
//! idempotent commands, the release-before-reserve tombstone, commit, expiry, and the outbox.

mod support;

use std::time::Duration;

use contracts::{
    events::{ReservationCommitted, ReservationExpired, StockReleased, StockReserved},
    inventory::{
        CommitReservationRequest, ReleaseStockRequest, ReservationStatus, ReserveStockRequest,
    },
};
use futures::future::join_all;
use support::{lines, spawn_app, spawn_app_with};
use tonic::Code;
use uuid::Uuid;

fn status(reservation: &contracts::inventory::Reservation) -> ReservationStatus {
    reservation.status()
}

#[tokio::test]
async fn two_hundred_concurrent_orders_for_fifty_units_reserve_exactly_fifty() {
    let app = spawn_app_with(&[("INVENTORY_DB_MAX_CONNECTIONS", "20")]).await;
    app.product("GPU-1", "Graphics card", 59_900, 50).await;
    let attempts = (0..200).map(|_| {
        let app = &app;
        async move { app.reserve(Uuid::now_v7(), &[("GPU-1", 1)]).await }
    });
    let results = join_all(attempts).await;
    let mut reserved = 0;
    let mut rejected = 0;
    for result in results {
        let reservation = result.expect("no order fails: it is reserved or rejected");
        match status(&reservation) {
            ReservationStatus::Reserved => reserved += 1,
            ReservationStatus::Rejected => {
                rejected += 1;
                assert_eq!(reservation.shortages.len(), 1);
                assert_eq!(reservation.shortages[0].sku, "GPU-1");
            }
            other => panic!("unexpected status {other:?}"),
        }
    }
    assert_eq!((reserved, rejected), (50, 150));
    let stock = app.stock("GPU-1").await;
    stock.assert_conserved();
    assert_eq!(
        (stock.on_hand, stock.available, stock.reserved, stock.sold),
        (50, 0, 50, 0)
    );
    let (held,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(sum(l.quantity), 0)::bigint FROM reservation_lines l
         JOIN reservations r USING (order_id) WHERE r.status = 'reserved'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        held, 50,
        "reserved units match the reservations holding them"
    );
    let reserved_events: Vec<StockReserved> = app.events("inventory.reservation.reserved").await;
    assert_eq!(
        reserved_events.len(),
        50,
        "one event per reservation, none for rejections"
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_orders_locking_skus_in_opposite_order_do_not_deadlock() {
    let app = spawn_app_with(&[("INVENTORY_DB_MAX_CONNECTIONS", "20")]).await;
    app.product("SKU-AAA", "A", 100, 40).await;
    app.product("SKU-ZZZ", "Z", 100, 40).await;
    let attempts = (0..40).map(|i| {
        let app = &app;
        let wanted: &[(&str, i64)] = if i % 2 == 0 {
            &[("SKU-AAA", 1), ("SKU-ZZZ", 1)]
        } else {
            &[("SKU-ZZZ", 1), ("SKU-AAA", 1)]
        };
        async move { app.reserve(Uuid::now_v7(), wanted).await }
    });
    for result in join_all(attempts).await {
        assert_eq!(
            status(&result.expect("no deadlock, no error")),
            ReservationStatus::Reserved
        );
    }
    for sku in ["SKU-AAA", "SKU-ZZZ"] {
        let stock = app.stock(sku).await;
        stock.assert_conserved();
        assert_eq!((stock.available, stock.reserved), (0, 40));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_retried_reserve_returns_the_same_reservation_and_reserves_once() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    app.product("CAP-1", "Cap", 3400, 10).await;
    let order = Uuid::now_v7();
    let first = app
        .reserve(order, &[("MUG-1", 2), ("CAP-1", 1)])
        .await
        .unwrap();
    assert_eq!(status(&first), ReservationStatus::Reserved);
    assert_eq!(first.order_id, order.to_string());
    assert_eq!(
        first.lines,
        lines(&[("CAP-1", 1), ("MUG-1", 2)]),
        "lines sorted by SKU"
    );
    assert!(first.expires_at.is_some());

    let retry = app
        .reserve(order, &[("CAP-1", 1), ("MUG-1", 2)])
        .await
        .unwrap();
    assert_eq!(retry, first, "same status, lines and expiry");
    assert_eq!(app.stock("MUG-1").await.reserved, 2, "reserved once");
    assert_eq!(app.stock("CAP-1").await.reserved, 1);

    let err = app.reserve(order, &[("MUG-1", 3)]).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("different lines"),
        "{}",
        err.message()
    );
    assert_eq!(app.stock("MUG-1").await.reserved, 2);
    assert_eq!(app.count("reservations").await, 1);
    assert_eq!(
        app.events::<StockReserved>("inventory.reservation.reserved")
            .await
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_of_one_order_reserve_once() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1290, 100).await;
    let order = Uuid::now_v7();
    let attempts = (0..20).map(|_| {
        let app = &app;
        async move { app.reserve(order, &[("MUG-1", 3)]).await }
    });
    let results: Vec<_> = join_all(attempts)
        .await
        .into_iter()
        .map(|result| result.expect("every duplicate gets the reservation"))
        .collect();
    assert!(
        results.iter().all(|r| r == &results[0]),
        "identical answers"
    );
    assert_eq!(status(&results[0]), ReservationStatus::Reserved);
    let stock = app.stock("MUG-1").await;
    assert_eq!((stock.available, stock.reserved), (97, 3));
    assert_eq!(
        app.events::<StockReserved>("inventory.reservation.reserved")
            .await
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn reservations_are_all_or_nothing_and_a_rejection_replays_with_its_shortages() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    app.product("CAP-1", "Cap", 3400, 2).await;
    let order = Uuid::now_v7();
    let rejected = app
        .reserve(order, &[("MUG-1", 5), ("CAP-1", 3)])
        .await
        .unwrap();
    assert_eq!(status(&rejected), ReservationStatus::Rejected);
    assert_eq!(
        rejected.shortages,
        lines(&[("CAP-1", 2)]),
        "the short line with what was available"
    );
    assert!(rejected.expires_at.is_none());
    let mug = app.stock("MUG-1").await;
    assert_eq!(
        (mug.available, mug.reserved),
        (10, 0),
        "the line that fit is not held either"
    );

    // Stock arrives, but the order's answer is settled: a retry replays the rejection.
    app.adjust("CAP-1", 10).await.unwrap();
    let retry = app
        .reserve(order, &[("CAP-1", 3), ("MUG-1", 5)])
        .await
        .unwrap();
    assert_eq!(retry, rejected);
    assert_eq!(app.stock("CAP-1").await.reserved, 0);

    // Unknown and inactive SKUs are shortages with nothing available, not errors.
    app.upsert(contracts::inventory::UpsertProductRequest {
        sku: "OLD-1".into(),
        name: "Discontinued".into(),
        description: String::new(),
        price: support::eur(100),
        active: false,
    })
    .await
    .unwrap();
    app.adjust("OLD-1", 5).await.unwrap();
    let other = app
        .reserve(
            Uuid::now_v7(),
            &[("GHOST-1", 1), ("OLD-1", 1), ("MUG-1", 1)],
        )
        .await
        .unwrap();
    assert_eq!(status(&other), ReservationStatus::Rejected);
    assert_eq!(other.shortages, lines(&[("GHOST-1", 0), ("OLD-1", 0)]));
    assert!(
        app.events::<StockReserved>("inventory.reservation.reserved")
            .await
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn release_gives_units_back_and_is_idempotent() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7();
    let reserved = app.reserve(order, &[("MUG-1", 4)]).await.unwrap();
    assert_eq!(app.stock("MUG-1").await.available, 6);

    let released = app.release(order).await.unwrap();
    assert_eq!(status(&released), ReservationStatus::Released);
    assert_eq!(released.lines, reserved.lines);
    let stock = app.stock("MUG-1").await;
    assert_eq!((stock.available, stock.reserved), (10, 0));
    stock.assert_conserved();

    let again = app.release(order).await.unwrap();
    assert_eq!(again, released);
    assert_eq!(app.stock("MUG-1").await.available, 10, "released once");
    let events: Vec<StockReleased> = app.events("inventory.reservation.released").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].order_id, order.to_string());
    assert_eq!(events[0].reason, "payment_declined");
    assert_eq!(events[0].lines.len(), 1);
    assert_eq!(
        (events[0].lines[0].sku.as_str(), events[0].lines[0].quantity),
        ("MUG-1", 4)
    );

    // The reservation is settled: a late retry of the reserve does not hold units again.
    let late = app.reserve(order, &[("MUG-1", 4)]).await.unwrap();
    assert_eq!(status(&late), ReservationStatus::Released);
    assert_eq!(app.stock("MUG-1").await.available, 10);
    app.stop().await;
}

#[tokio::test]
async fn a_release_before_the_reserve_leaves_a_tombstone_that_blocks_the_late_reserve() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7();
    let tombstone = app.release(order).await.unwrap();
    assert_eq!(status(&tombstone), ReservationStatus::Released);
    assert!(tombstone.lines.is_empty());

    let late = app.reserve(order, &[("MUG-1", 2)]).await.unwrap();
    assert_eq!(
        status(&late),
        ReservationStatus::Released,
        "the late reserve reserves nothing"
    );
    assert!(late.lines.is_empty());
    let stock = app.stock("MUG-1").await;
    assert_eq!((stock.available, stock.reserved), (10, 0));
    assert_eq!(app.reservation(order).await.unwrap(), tombstone);
    let keys: Vec<String> = app.outbox().await.into_iter().map(|(key, _)| key).collect();
    assert!(
        keys.iter().all(|key| key == "inventory.product.updated"),
        "a tombstone moves no stock and publishes nothing: {keys:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn commit_moves_reserved_units_to_sold_and_is_idempotent() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("MUG-1", 3)]).await.unwrap();
    let committed = app.commit(order).await.unwrap();
    assert_eq!(status(&committed), ReservationStatus::Committed);
    let stock = app.stock("MUG-1").await;
    assert_eq!(
        (stock.on_hand, stock.available, stock.reserved, stock.sold),
        (10, 7, 0, 3)
    );
    stock.assert_conserved();

    assert_eq!(app.commit(order).await.unwrap(), committed);
    assert_eq!(app.stock("MUG-1").await.sold, 3, "sold once");
    let events: Vec<ReservationCommitted> = app.events("inventory.reservation.committed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].order_id, order.to_string());
    assert_eq!(app.reservation(order).await.unwrap(), committed);
    app.stop().await;
}

#[tokio::test]
async fn settled_reservations_refuse_the_wrong_transitions() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1290, 10).await;

    let sold = Uuid::now_v7();
    app.reserve(sold, &[("MUG-1", 1)]).await.unwrap();
    app.commit(sold).await.unwrap();
    let err = app.release(sold).await.unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "a sold reservation cannot be released"
    );

    let released = Uuid::now_v7();
    app.reserve(released, &[("MUG-1", 1)]).await.unwrap();
    app.release(released).await.unwrap();
    let err = app.commit(released).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("released"), "{}", err.message());

    let rejected = Uuid::now_v7();
    app.reserve(rejected, &[("MUG-1", 100)]).await.unwrap();
    assert_eq!(
        app.commit(rejected).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        status(&app.release(rejected).await.unwrap()),
        ReservationStatus::Rejected,
        "releasing what holds nothing is a no-op"
    );

    let unknown = Uuid::now_v7();
    assert_eq!(
        app.commit(unknown).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        app.reservation(unknown).await.unwrap_err().code(),
        Code::NotFound
    );
    app.stock("MUG-1").await.assert_conserved();
    app.stop().await;
}

#[tokio::test]
async fn expired_reservations_are_swept_back_into_available_stock() {
    // A long sweep interval: only this test's explicit sweep_once runs.
    let app = spawn_app_with(&[
        ("INVENTORY_RESERVATION_TTL", "1s"),
        ("INVENTORY_SWEEP_INTERVAL", "1h"),
    ])
    .await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7();
    let reserved = app.reserve(order, &[("MUG-1", 4)]).await.unwrap();
    assert_eq!(app.sweeper.sweep_once().await.unwrap(), 0, "not due yet");

    let pool = app.pool.clone();
    testkit::poll_until(
        "the reservation to be past its expiry",
        Duration::from_secs(10),
        || {
            let pool = pool.clone();
            async move {
                let (due,): (bool,) = sqlx::query_as(
                    "SELECT expires_at <= now() FROM reservations WHERE order_id = $1",
                )
                .bind(order)
                .fetch_one(&pool)
                .await
                .ok()?;
                due.then_some(())
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(app.sweeper.sweep_once().await.unwrap(), 1);
    assert_eq!(app.sweeper.sweep_once().await.unwrap(), 0, "expired once");

    let expired = app.reservation(order).await.unwrap();
    assert_eq!(status(&expired), ReservationStatus::Expired);
    assert_eq!(expired.lines, reserved.lines);
    let stock = app.stock("MUG-1").await;
    assert_eq!((stock.available, stock.reserved), (10, 0));
    stock.assert_conserved();
    let events: Vec<ReservationExpired> = app.events("inventory.reservation.expired").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].order_id, order.to_string());

    // Too late to commit; releasing is a harmless no-op for the saga's compensation.
    assert_eq!(
        app.commit(order).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        status(&app.release(order).await.unwrap()),
        ReservationStatus::Expired
    );
    assert_eq!(
        app.get("MUG-1").await.unwrap().available,
        10,
        "the catalog shows the units again"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_background_sweeper_expires_reservations_on_its_own() {
    let app = spawn_app_with(&[
        ("INVENTORY_RESERVATION_TTL", "1s"),
        ("INVENTORY_SWEEP_INTERVAL", "100ms"),
    ])
    .await;
    app.product("MUG-1", "Mug", 1290, 5).await;
    let order = Uuid::now_v7();
    app.reserve(order, &[("MUG-1", 5)]).await.unwrap();
    testkit::poll_until(
        "the sweeper to expire the reservation",
        Duration::from_secs(10),
        || async {
            let reservation = app.reservation(order).await.ok()?;
            (status(&reservation) == ReservationStatus::Expired).then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(app.stock("MUG-1").await.available, 5);
    app.stop().await;
}

#[tokio::test]
async fn reserve_validation_errors_name_the_field_and_write_nothing() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1290, 10).await;
    let order = Uuid::now_v7().to_string();
    let fifty_one: Vec<(String, i64)> = (0..51).map(|i| (format!("SKU-{i:03}"), 1)).collect();
    let fifty_one: Vec<(&str, i64)> = fifty_one.iter().map(|(s, q)| (s.as_str(), *q)).collect();
    type Case<'a> = (String, Vec<(&'a str, i64)>, &'a str);
    let cases: Vec<Case> = vec![
        ("42".into(), vec![("MUG-1", 1)], "order_id"),
        (order.clone(), vec![], "lines"),
        (order.clone(), fifty_one, "lines"),
        (order.clone(), vec![("MUG-1", 0)], "lines[0].quantity"),
        (
            order.clone(),
            vec![("MUG-1", 1), ("MUG-1", 1001)],
            "lines[1].quantity",
        ),
        (
            order.clone(),
            vec![("MUG-1", 1), ("mug", 1)],
            "lines[1].sku",
        ),
        (
            order.clone(),
            vec![("MUG-1", 1), ("MUG-1", 2)],
            "lines[1].sku",
        ),
    ];
    let mut client = app.client();
    for (order_id, wanted, field) in cases {
        let err = client
            .reserve_stock(ReserveStockRequest {
                order_id,
                lines: lines(&wanted),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{field}: got {:?}",
            err.message()
        );
    }
    let err = client
        .release_stock(contracts::inventory::ReleaseStockRequest {
            order_id: "nope".into(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert!(err.message().starts_with("order_id: "), "{}", err.message());
    let err = client
        .commit_reservation(contracts::inventory::CommitReservationRequest {
            order_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert!(err.message().starts_with("order_id: "), "{}", err.message());
    assert_eq!(app.count("reservations").await, 0);
    assert_eq!(app.stock("MUG-1").await.reserved, 0);
    app.stop().await;
}

/// A saga runner that stalled past its lease resumes with its old epoch after another runner
/// took the order over and reserved again: its compensation must not give back the units its
/// successor holds, nor its commit sell them.
#[tokio::test]
async fn a_superseded_runner_cannot_release_or_commit_what_its_successor_reserved() {
    let app = spawn_app().await;
    app.product("MUG-1", "Mug", 1_200, 5).await;
    let order = Uuid::now_v7();
    fn fenced<T>(epoch: i64, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        platform::fencing::FencingToken::new(epoch).attach(&mut request);
        request
    }

    // Runner A (epoch 1) reserved; runner B (epoch 2) took over and reserved again (the same
    // answer, idempotent per order id), which raised the order's token to 2.
    for epoch in [1, 2] {
        let reserved = app
            .client()
            .reserve_stock(fenced(
                epoch,
                ReserveStockRequest {
                    order_id: order.to_string(),
                    lines: lines(&[("MUG-1", 2)]),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        assert_eq!(status(&reserved), ReservationStatus::Reserved);
    }

    // A wakes up and compensates with epoch 1: refused, nothing moves.
    let refused = app
        .client()
        .release_stock(fenced(
            1,
            ReleaseStockRequest {
                order_id: order.to_string(),
                reason: "payment_declined".to_owned(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("superseded"), "{refused:?}");
    let refused = app
        .client()
        .commit_reservation(fenced(
            1,
            CommitReservationRequest {
                order_id: order.to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let held = app.reservation(order).await.unwrap();
    assert_eq!(status(&held), ReservationStatus::Reserved);
    let stock = app.stock("MUG-1").await;
    assert_eq!((stock.available, stock.reserved), (3, 2));

    // B, with the current epoch, goes on.
    let committed = app
        .client()
        .commit_reservation(fenced(
            2,
            CommitReservationRequest {
                order_id: order.to_string(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    assert_eq!(status(&committed), ReservationStatus::Committed);

    // A malformed token is the caller's mistake, named.
    let mut request = tonic::Request::new(ReleaseStockRequest {
        order_id: order.to_string(),
        reason: "payment_declined".to_owned(),
    });
    request.metadata_mut().insert(
        platform::fencing::METADATA_KEY,
        "yesterday".parse().unwrap(),
    );
    let invalid = app.client().release_stock(request).await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");
    assert!(invalid.message().contains("x-fencing-token"), "{invalid:?}");
}
