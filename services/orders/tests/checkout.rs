//! The checkout saga against the real inventory and payments services, Postgres and RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use contracts::{
    inventory::ReservationStatus,
    orders::{CancelOrderRequest, GetOrderRequest, ListOrdersRequest, OrderStatus},
    payments::PaymentStatus,
};
use support::{APPROVE, DECLINE, World, admin};
use tonic::Code;
use uuid::Uuid;

const SAGA: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_happy_path_confirms_with_stock_reserved_and_payment_authorized() {
    let world = World::full(vec![], vec![]).await;
    world.product("MUG-1", 1250, 10).await;
    world.product("TEE-1", 2000, 10).await;
    let customer = Uuid::now_v7();
    let placed = world
        .place(customer, &[("MUG-1", 2), ("TEE-1", 1)], APPROVE, "k1")
        .await
        .unwrap();
    // PlaceOrder answers once the order is stored, without waiting for the saga; the runner may
    // still have finished before the answer was read back, so CONFIRMED is as valid as PENDING.
    assert!(
        matches!(
            placed.status(),
            OrderStatus::Pending | OrderStatus::Confirmed
        ),
        "{:?}",
        placed.status()
    );
    assert_eq!(
        placed.total.as_ref().unwrap().amount_minor,
        2 * 1250 + 2000,
        "priced from the catalog"
    );

    let order = world.terminal(&placed.id, SAGA).await;
    assert_eq!(order.status(), OrderStatus::Confirmed);
    let steps: Vec<_> = order
        .timeline
        .iter()
        .map(|s| (s.step.as_str(), s.outcome.as_str()))
        .collect();
    assert_eq!(
        steps[..5],
        [
            ("place_order", "succeeded"),
            ("reserve_stock", "succeeded"),
            ("authorize_payment", "succeeded"),
            ("commit_stock", "succeeded"),
            ("confirm", "succeeded"),
        ]
    );
    // No order is CONFIRMED without its units sold and an authorization.
    assert_eq!(
        world.reservation(&order.id).await,
        Some(ReservationStatus::Committed)
    );
    let payment = world.payment(&order.id).await.unwrap();
    assert!(matches!(
        payment.status(),
        PaymentStatus::Authorized | PaymentStatus::Captured
    ));
    assert_eq!(payment.authorized.unwrap().amount_minor, 4500);
    world.assert_stock_conserved("MUG-1").await;

    // Every participant call carried the saga's lease epoch as its fencing token.
    let order_id = Uuid::parse_str(&order.id).unwrap();
    let epoch: i64 = sqlx::query_scalar("SELECT lease_epoch FROM sagas WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&world.orders_db.pool().await)
        .await
        .unwrap();
    assert!(epoch >= 1);
    for participant in [&world.inventory_db, &world.payments_db] {
        let token: Option<i64> =
            sqlx::query_scalar("SELECT token FROM fencing_tokens WHERE key = $1")
                .bind(order_id)
                .fetch_optional(&participant.pool().await)
                .await
                .unwrap();
        assert_eq!(token, Some(epoch), "{}", participant.name);
    }
    world.stop();
}

#[tokio::test]
async fn out_of_stock_cancels_and_charges_nothing() {
    let world = World::full(vec![], vec![]).await;
    world.product("RARE-1", 9900, 1).await;
    let placed = world
        .place(Uuid::now_v7(), &[("RARE-1", 2)], APPROVE, "k1")
        .await
        .unwrap();
    let order = world.terminal(&placed.id, SAGA).await;
    assert_eq!(order.status(), OrderStatus::Cancelled);
    assert_eq!(order.cancellation_reason, "out_of_stock");
    assert!(world.payment(&order.id).await.is_none(), "nothing charged");
    assert_eq!(world.available("RARE-1").await, 1);
    world.assert_stock_conserved("RARE-1").await;
    world.stop();
}

#[tokio::test]
async fn a_declined_card_cancels_and_releases_the_stock() {
    let world = World::full(vec![], vec![]).await;
    world.product("LAMP-1", 4500, 5).await;
    let placed = world
        .place(Uuid::now_v7(), &[("LAMP-1", 3)], DECLINE, "k1")
        .await
        .unwrap();
    let order = world.terminal(&placed.id, SAGA).await;
    assert_eq!(order.status(), OrderStatus::Cancelled);
    assert_eq!(order.cancellation_reason, "payment_declined");
    assert_eq!(
        world.reservation(&order.id).await,
        Some(ReservationStatus::Released)
    );
    assert_eq!(world.available("LAMP-1").await, 5, "stock back");
    assert_eq!(
        world.payment(&order.id).await.unwrap().status(),
        PaymentStatus::Declined
    );
    let steps: Vec<_> = order.timeline.iter().map(|s| s.step.as_str()).collect();
    assert!(steps.contains(&"release_stock"), "{steps:?}");
    world.assert_stock_conserved("LAMP-1").await;
    world.stop();
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_order_and_charges_once() {
    let world = World::full(vec![], vec![]).await;
    world.product("BAG-1", 3000, 10).await;
    let customer = Uuid::now_v7();
    let attempts = (0..5).map(|_| world.place(customer, &[("BAG-1", 1)], APPROVE, "same-key"));
    let orders = futures::future::join_all(attempts).await;
    let ids: std::collections::HashSet<_> =
        orders.into_iter().map(|order| order.unwrap().id).collect();
    assert_eq!(ids.len(), 1, "one order for one key");
    let id = ids.into_iter().next().unwrap();
    world.terminal(&id, SAGA).await;
    assert_eq!(world.available("BAG-1").await, 9, "reserved once");

    // The same key for a different basket is a client bug, not a new order.
    let err = world
        .place(customer, &[("BAG-1", 2)], APPROVE, "same-key")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    world.stop();
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let world = World::full(vec![], vec![]).await;
    world.product("PEN-1", 150, 10).await;
    let customer = Uuid::now_v7();
    for (lines, field) in [
        (vec![], "lines"),
        (vec![("PEN-1", 0)], "lines[0].quantity"),
        (vec![("PEN-1", 1), ("NOPE-1", 1)], "lines[1].sku"),
    ] {
        let err = world
            .place(customer, &lines, APPROVE, "k")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{}",
            err.message()
        );
    }
    world.stop();
}

#[tokio::test]
async fn bytes_postgres_cannot_store_are_invalid_argument_and_reserve_nothing() {
    let world = World::full(vec![], vec![]).await;
    world.product("PEN-1", 150, 10).await;
    let customer = Uuid::now_v7();
    for (payment_method, key, field) in [
        ("tok\u{0}visa", "k1", "payment_method"),
        ("tok visa", "k2", "payment_method"),
        (APPROVE, "key\u{0}", "idempotency_key"),
    ] {
        let err = world
            .place(customer, &[("PEN-1", 1)], payment_method, key)
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{payment_method:?}: {err:?}"
        );
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{}",
            err.message()
        );
    }
    let pool = world.orders_db.pool().await;
    let (orders,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(orders, 0, "nothing was stored");
    assert_eq!(world.available("PEN-1").await, 10, "nothing was reserved");
    world.stop();
}

#[tokio::test]
async fn customers_only_see_their_own_orders() {
    let world = World::full(vec![], vec![]).await;
    world.product("CUP-1", 800, 10).await;
    let (alice, mallory) = (Uuid::now_v7(), Uuid::now_v7());
    let order = world
        .place(alice, &[("CUP-1", 1)], APPROVE, "k")
        .await
        .unwrap();
    let err = world
        .orders()
        .get_order(GetOrderRequest {
            order_id: order.id.clone(),
            customer_id: mallory.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::NotFound,
        "404, not 403: existence is not disclosed"
    );
    let err = world
        .orders()
        .cancel_order(CancelOrderRequest {
            order_id: order.id.clone(),
            customer_id: mallory.to_string(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    world.stop();
}

#[tokio::test]
async fn only_a_call_with_the_admin_scope_may_leave_the_customer_out() {
    let world = World::full(vec![], vec![]).await;
    world.product("CUP-2", 800, 10).await;
    let order = world
        .place(Uuid::now_v7(), &[("CUP-2", 1)], APPROVE, "k")
        .await
        .unwrap();
    let anyones = || GetOrderRequest {
        order_id: order.id.clone(),
        customer_id: String::new(),
    };
    // Without the scope an empty customer id is a mistake of the caller, naming the field.
    let err = world.orders().get_order(anyones()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("customer_id"), "{err:?}");
    let err = world
        .orders()
        .cancel_order(CancelOrderRequest {
            order_id: order.id.clone(),
            customer_id: String::new(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("customer_id"), "{err:?}");
    // With it, the administrator sees anyone's order.
    let seen = world
        .orders()
        .get_order(admin(anyones()))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(seen.id, order.id);
    world.stop();
}

#[tokio::test]
async fn the_read_model_lists_orders_from_events() {
    let world = World::full(vec![], vec![]).await;
    world.product("SOCK-1", 500, 50).await;
    let customer = Uuid::now_v7();
    let mut ids = Vec::new();
    for n in 0..5 {
        let order = world
            .place(customer, &[("SOCK-1", 1)], APPROVE, &format!("k{n}"))
            .await
            .unwrap();
        ids.push(order.id);
    }
    for id in &ids {
        world.terminal(id, SAGA).await;
    }
    // Eventually consistent: poll until the projection has caught up.
    let listed = testkit::poll_until("the projection", SAGA, || async {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = world
                .orders()
                .list_orders(ListOrdersRequest {
                    customer_id: customer.to_string(),
                    page_size: 2,
                    page_token: token.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            all.extend(page.orders);
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        (all.len() == 5 && all.iter().all(|o| o.status() == OrderStatus::Confirmed)).then_some(all)
    })
    .await
    .unwrap();
    let listed_ids: Vec<_> = listed.iter().map(|o| o.id.clone()).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed_ids, newest_first);
    assert!(listed.iter().all(|o| o.item_count == 1));
    let other = world
        .orders()
        .list_orders(ListOrdersRequest {
            customer_id: Uuid::now_v7().to_string(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other.orders.is_empty());
    world.stop();
}

/// The customer's orders as `ListOrders` (the read model) shows them: (id, status, payment,
/// stock, items), newest first.
async fn summaries(
    world: &World,
    customer: Uuid,
) -> Vec<(String, OrderStatus, String, String, i64)> {
    world
        .orders()
        .list_orders(ListOrdersRequest {
            customer_id: customer.to_string(),
            page_size: 50,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .orders
        .into_iter()
        .map(|o| {
            let status = o.status();
            (o.id, status, o.payment_status, o.stock_status, o.item_count)
        })
        .collect()
}

#[tokio::test]
async fn a_damaged_read_model_is_rebuilt_from_the_write_model() {
    let world = World::full(vec![], vec![]).await;
    world.product("BOOK-1", 1500, 2).await;
    let customer = Uuid::now_v7();
    let mut ids = Vec::new();
    for (n, quantity) in [1, 1, 3].into_iter().enumerate() {
        let placed = world
            .place(customer, &[("BOOK-1", quantity)], APPROVE, &format!("k{n}"))
            .await
            .unwrap();
        world.terminal(&placed.id, SAGA).await;
        ids.push(placed.id);
    }
    // Two confirmed orders, captured and committed; the third found no stock left.
    let settled = testkit::poll_until("the projection settles", SAGA, || async {
        let listed = summaries(&world, customer).await;
        (listed.len() == 3
            && listed
                .iter()
                .filter(|o| o.1 == OrderStatus::Confirmed)
                .all(|o| o.2 == "captured"))
        .then_some(listed)
    })
    .await
    .unwrap();

    // A lost event and a bad update, as a bug would leave them.
    let pool = world.orders_db.pool().await;
    sqlx::query("DELETE FROM order_summaries WHERE order_id = $1")
        .bind(Uuid::parse_str(&ids[0]).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE order_summaries SET status = 'PENDING', payment_status = 'none', item_count = 9 WHERE order_id = $1")
        .bind(Uuid::parse_str(&ids[1]).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_ne!(summaries(&world, customer).await, settled);

    let written = orders::admin::rebuild_summaries(&world.orders_config())
        .await
        .unwrap();
    assert_eq!(written, 3);
    let rebuilt = summaries(&world, customer).await;
    assert_eq!(
        rebuilt, settled,
        "the rebuild restores what the events had built"
    );
    world.stop();
}

#[tokio::test]
async fn a_saga_past_its_deadline_compensates() {
    // The provider never answers: every authorization attempt times out.
    let world = World::full(
        vec![("PAYMENTS_PROVIDER_HANG", "true".into())],
        vec![
            ("ORDERS_SAGA_DEADLINE", "2s".into()),
            ("ORDERS_CALL_TIMEOUT", "300ms".into()),
        ],
    )
    .await;
    world.product("SLOW-1", 1000, 3).await;
    let placed = world
        .place(Uuid::now_v7(), &[("SLOW-1", 1)], APPROVE, "k")
        .await
        .unwrap();
    let order = world.terminal(&placed.id, SAGA).await;
    assert_eq!(order.status(), OrderStatus::Cancelled);
    assert_eq!(order.cancellation_reason, "saga_timeout");
    assert_eq!(
        world.reservation(&order.id).await,
        Some(ReservationStatus::Released)
    );
    assert_eq!(world.available("SLOW-1").await, 3);
    world.assert_stock_conserved("SLOW-1").await;
    world.stop();
}

#[tokio::test]
async fn an_authorization_that_arrives_after_compensation_holds_no_money() {
    // Every authorization the saga sends takes longer than its call timeout: it never learns
    // whether the provider approved, and compensates at the deadline.
    let world = World::full(
        vec![("PAYMENTS_PROVIDER_LATENCY", "1500ms".into())],
        vec![
            ("ORDERS_SAGA_DEADLINE", "1s".into()),
            ("ORDERS_CALL_TIMEOUT", "200ms".into()),
        ],
    )
    .await;
    world.product("STALE-1", 1000, 3).await;
    let customer = Uuid::now_v7();
    let placed = world
        .place(customer, &[("STALE-1", 1)], APPROVE, "k")
        .await
        .unwrap();
    let order = world.terminal(&placed.id, SAGA).await;
    assert_eq!(
        (order.status(), order.cancellation_reason.as_str()),
        (OrderStatus::Cancelled, "saga_timeout")
    );

    // Now the AuthorizePayment of a runner that stalled before sending it (a frozen replica
    // whose lease another runner took over) arrives, with its caller's patience.
    let late = world
        .payments
        .clone()
        .authorize_payment(contracts::payments::AuthorizePaymentRequest {
            order_id: order.id.clone(),
            amount: order.total.clone(),
            customer_id: customer.to_string(),
            payment_method: APPROVE.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(
        late.status(),
        PaymentStatus::Voided,
        "a cancelled order must not end with an authorization that nothing will ever void"
    );
    assert_eq!(
        world.payment(&order.id).await.unwrap().status(),
        PaymentStatus::Voided
    );
    world.stop();
}

#[tokio::test]
async fn a_reservation_that_expires_before_confirmation_cancels_the_order_instead_of_selling_twice()
{
    // The provider takes longer than inventory holds a reservation: by the time the payment is
    // authorized, the sweeper has given the units back to `available`.
    let mut world = World::participants_with(
        vec![
            ("INVENTORY_RESERVATION_TTL", "1s".into()),
            ("INVENTORY_SWEEP_INTERVAL", "100ms".into()),
        ],
        vec![("PAYMENTS_PROVIDER_LATENCY", "2500ms".into())],
        testkit::amqp_url().await,
    )
    .await;
    world
        .start_orders(vec![("ORDERS_CALL_TIMEOUT", "10s".into())])
        .await;
    world.product("LATE-1", 1000, 1).await;
    let placed = world
        .place(Uuid::now_v7(), &[("LATE-1", 1)], APPROVE, "k")
        .await
        .unwrap();
    let order = world.terminal(&placed.id, SAGA).await;

    // The one unit is available again, so the order must not stand as sold: it is cancelled and
    // its authorization voided, and nothing is charged.
    assert_eq!(
        world.reservation(&order.id).await,
        Some(ReservationStatus::Expired)
    );
    assert_eq!(world.available("LATE-1").await, 1);
    assert_eq!(
        (order.status(), order.cancellation_reason.as_str()),
        (OrderStatus::Cancelled, "saga_timeout"),
        "an order confirmed on an expired reservation sells its units twice"
    );
    let payment = world.payment(&order.id).await.unwrap();
    assert_eq!(payment.status(), PaymentStatus::Voided);
    world.assert_stock_conserved("LATE-1").await;
    world.stop();
}

#[tokio::test]
async fn orders_balances_over_inventory_replicas_and_keeps_confirming_when_one_stops() {
    let mut world = World::participants(vec![]).await;
    let (second, _stop_second) = world.inventory_replica().await;
    let both = format!("http://{},http://{second}", world.inventory_addr);
    world
        .start_orders(vec![
            ("ORDERS_INVENTORY_URL", both),
            ("ORDERS_HEALTH_CHECK_INTERVAL", "200ms".into()),
        ])
        .await;
    world.product("PAIR-1", 1000, 100).await;
    let customer = Uuid::now_v7();
    let place = |key: String| {
        let world = &world;
        async move {
            let placed = world
                .place(customer, &[("PAIR-1", 1)], APPROVE, &key)
                .await
                .unwrap();
            world.terminal(&placed.id, SAGA).await
        }
    };
    assert_eq!(
        place("before".into()).await.status(),
        OrderStatus::Confirmed
    );

    // One replica goes away (a pod rolled, a node lost). Orders must carry on with the other,
    // well inside the saga deadline, instead of retrying a dead address until it gives up.
    world.stop_first_inventory();
    for i in 0..5 {
        let order = place(format!("after-{i}")).await;
        assert_eq!(
            order.status(),
            OrderStatus::Confirmed,
            "{:?}",
            order.timeline
        );
    }
    world.stop();
}

#[tokio::test]
async fn a_hundred_customers_race_for_the_last_ten_units() {
    let world = World::full(vec![], vec![]).await;
    world.product("LAST-1", 2500, 10).await;
    let placements = (0..100).map(|n| {
        let world = &world;
        async move {
            world
                .place(Uuid::now_v7(), &[("LAST-1", 1)], APPROVE, &format!("k{n}"))
                .await
                .unwrap()
                .id
        }
    });
    let ids = futures::future::join_all(placements).await;
    let mut confirmed = 0;
    let mut out_of_stock = 0;
    for id in &ids {
        let order = world.terminal(id, Duration::from_secs(60)).await;
        match (order.status(), order.cancellation_reason.as_str()) {
            (OrderStatus::Confirmed, _) => confirmed += 1,
            (OrderStatus::Cancelled, "out_of_stock") => out_of_stock += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((confirmed, out_of_stock), (10, 90));
    let (on_hand, available, reserved, sold) = world.assert_stock_conserved("LAST-1").await;
    assert_eq!((on_hand, available), (10, 0));
    assert_eq!(reserved + sold, 10);
    world.stop();
}

#[tokio::test]
async fn a_dead_participant_opens_its_circuit_breaker() {
    let dead = format!("http://127.0.0.1:{}", testkit::free_port());
    let world = World::full(
        vec![],
        vec![
            ("ORDERS_INVENTORY_URL", dead),
            ("ORDERS_CALL_TIMEOUT", "200ms".into()),
        ],
    )
    .await;
    let customer = Uuid::now_v7();
    let mut messages = Vec::new();
    for n in 0..8 {
        let err = world
            .place(customer, &[("ANY-1", 1)], APPROVE, &format!("k{n}"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
        messages.push(err.message().to_owned());
    }
    // The first calls try (and retry) the dead participant; once the breaker has seen enough
    // failures it answers at once without calling.
    assert!(!messages[0].contains("circuit open"), "{messages:?}");
    assert!(messages[7].contains("circuit open"), "{messages:?}");
    world.stop();
}
