//! `WatchOrder`: timeline steps pushed as they commit (LISTEN/NOTIFY), each once and in order,
//! until the order is settled.
//!
//! * over gRPC, a real checkout: every step from placement to capture, ending with the
//!   settling one, exactly as `GetOrder` shows the timeline afterwards;
//! * the watcher itself, on its own database, with steps written by hand: a step recorded
//!   before the feed listens (between the watch's snapshot and listening) is delivered once
//!   the feed listens; a notified step is delivered; a step recorded while the listener's
//!   connection is down is delivered after it reconnects; the stream ends after the settling
//!   step; a customer cannot watch another's order.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use std::time::Duration;

use contracts::orders::{WatchOrderRequest, WatchOrderResponse};
use futures::{Stream, StreamExt as _};
use orders::{
    error::OrdersError,
    service::{TimelineFeed, Viewer, WatchedStep, Watcher},
    store::OrderStore,
};
use platform::Shutdown;
use sqlx::PgPool;
use support::{APPROVE, World, admin};
use uuid::Uuid;

const SETTLE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_checkout_is_watched_step_by_step_up_to_the_capture() {
    let world = World::full(vec![], vec![]).await;
    world.product("LAMP-9", 2500, 3).await;
    let placed = world
        .place(Uuid::now_v7(), &[("LAMP-9", 1)], APPROVE, "watch-1")
        .await
        .unwrap();
    let mut stream = world
        .orders()
        .watch_order(WatchOrderRequest {
            order_id: placed.id.clone(),
            customer_id: placed.customer_id.clone(),
            after: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut received: Vec<WatchOrderResponse> = Vec::new();
    while let Some(message) = tokio::time::timeout(SETTLE, stream.message())
        .await
        .expect("steps keep coming until the order settles")
        .unwrap()
    {
        received.push(message);
    }
    let sequences: Vec<i64> = received
        .iter()
        .map(|m| m.step.as_ref().unwrap().sequence)
        .collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "in order, each once: {sequences:?}"
    );
    let last = received.last().expect("some steps");
    assert!(last.settled, "the stream ends with the settling step");
    assert_eq!(last.payment_status, "captured");
    assert_eq!(last.stock_status, "committed");
    assert!(received[..received.len() - 1].iter().all(|m| !m.settled));
    // Exactly the timeline the order shows once settled.
    let order = world.order(&placed.id).await;
    assert!(order.settled);
    let watched: Vec<_> = received.into_iter().map(|m| m.step.unwrap()).collect();
    assert_eq!(watched, order.timeline);
    let steps: Vec<_> = watched.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "place_order",
            "reserve_stock",
            "authorize_payment",
            "commit_stock",
            "confirm",
            "capture_payment"
        ]
    );

    // Resuming after the last step of a settled order: nothing more, the stream just ends.
    let mut again = world
        .orders()
        .watch_order(admin(WatchOrderRequest {
            order_id: placed.id.clone(),
            customer_id: String::new(),
            after: *sequences.last().unwrap(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(again.message().await.unwrap().is_none());

    // Another customer's order is NOT_FOUND, as with GetOrder.
    let theirs = world
        .orders()
        .watch_order(WatchOrderRequest {
            order_id: placed.id.clone(),
            customer_id: Uuid::now_v7().to_string(),
            after: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), tonic::Code::NotFound);
    let negative = world
        .orders()
        .watch_order(admin(WatchOrderRequest {
            order_id: placed.id,
            customer_id: String::new(),
            after: -1,
        }))
        .await
        .unwrap_err();
    assert_eq!(negative.code(), tonic::Code::InvalidArgument);
    assert!(negative.message().contains("after"), "{negative:?}");
}

/// An order row as checkout would leave it, with its first timeline entry.
async fn order_row(pool: &PgPool, customer: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, payment_method, currency, total_minor,
                             idempotency_key, created_at, updated_at)
         VALUES ($1, $2, 'PENDING', 'tok_visa_approve', 'EUR', 100, $1::text, now(), now())",
    )
    .bind(id)
    .bind(customer)
    .execute(pool)
    .await
    .unwrap();
    step(pool, id, "place_order").await;
    id
}

/// Records a timeline step the way the store does (the trigger announces it).
async fn step(pool: &PgPool, order: Uuid, name: &str) {
    sqlx::query(
        "INSERT INTO order_timeline (order_id, step, outcome, at) VALUES ($1, $2, 'succeeded', now())",
    )
    .bind(order)
    .bind(name)
    .execute(pool)
    .await
    .unwrap();
}

async fn next(
    steps: &mut (impl Stream<Item = Result<WatchedStep, OrdersError>> + Unpin),
) -> Option<WatchedStep> {
    tokio::time::timeout(Duration::from_secs(10), steps.next())
        .await
        .expect("the next step within 10 s")
        .map(|step| step.unwrap())
}

/// The backend pid of the feed's listening connection, once it listens.
async fn listener_pid(pool: &PgPool) -> i32 {
    testkit::poll_until("the feed to LISTEN", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_optional(pool)
        .await
        .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_watcher_loses_no_step_whether_notified_missed_or_listening_late() {
    let db = testkit::fresh_database().await;
    let pool = db.pool().await;
    sqlx::migrate!().run(&pool).await.unwrap();
    let store = OrderStore::new(pool.clone());
    let feed = TimelineFeed::new();
    let watcher = Watcher::new(store, feed.clone());
    let customer = Uuid::now_v7();
    let order = order_row(&pool, customer).await;

    assert!(matches!(
        watcher
            .watch(order, Viewer::Customer(Uuid::now_v7()), 0, None)
            .await,
        Err(OrdersError::NotFound)
    ));
    let steps = watcher
        .watch(order, Viewer::Customer(customer), 0, None)
        .await
        .unwrap();
    let mut steps = Box::pin(steps);
    let first = next(&mut steps).await.unwrap();
    assert_eq!(first.entry.step, "place_order");

    // Recorded after the watch read its snapshot, before the feed listens: no notification
    // reaches anyone. Listening starts with a resync, and the watch reads it then.
    step(&pool, order, "reserve_stock").await;
    let shutdown = Shutdown::new();
    let running = tokio::spawn(feed.clone().run(pool.clone(), shutdown.clone()));
    let second = next(&mut steps).await.unwrap();
    assert_eq!(second.entry.step, "reserve_stock");
    assert!(second.entry.sequence > first.entry.sequence);

    // Notified: delivered as it commits.
    step(&pool, order, "authorize_payment").await;
    assert_eq!(
        next(&mut steps).await.unwrap().entry.step,
        "authorize_payment"
    );

    // The listener's connection is cut, and a step is recorded: whether it committed before
    // the reconnect (its notification lost) or after, the watch gets it exactly once.
    let pid = listener_pid(&pool).await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&pool)
        .await
        .unwrap();
    step(&pool, order, "commit_stock").await;
    assert_eq!(next(&mut steps).await.unwrap().entry.step, "commit_stock");
    testkit::poll_until(
        "the feed to listen again",
        Duration::from_secs(10),
        || async {
            let now = listener_pid(&pool).await;
            (now != pid).then_some(())
        },
    )
    .await
    .unwrap();

    // The step that settles the order is the last: the stream ends after it.
    sqlx::query(
        "UPDATE orders SET status = 'CONFIRMED', payment_status = 'captured',
                           stock_status = 'committed'
         WHERE id = $1",
    )
    .bind(order)
    .execute(&pool)
    .await
    .unwrap();
    step(&pool, order, "capture_payment").await;
    let last = next(&mut steps).await.unwrap();
    assert_eq!(last.entry.step, "capture_payment");
    assert!(last.settled);
    assert!(next(&mut steps).await.is_none(), "nothing after settling");

    // A watch still open when the feed stops (the process shuts down) ends, UNAVAILABLE.
    let other = order_row(&pool, customer).await;
    let mut open = Box::pin(watcher.watch(other, Viewer::Anyone, 0, None).await.unwrap());
    assert_eq!(next(&mut open).await.unwrap().entry.step, "place_order");
    shutdown.trigger();
    running.await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), open.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ended, Err(OrdersError::Stopping(_))), "{ended:?}");
}
