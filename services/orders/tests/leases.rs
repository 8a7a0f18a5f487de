//! Saga leases as fencing tokens, against a real Postgres: a drive that outlived its claim
//! cannot write, even when the runner that made it has claimed the saga again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

use std::time::Duration;

use orders::{
    domain::{Saga, SagaStep},
    store::{ClaimedSaga, OrderStore},
};
use uuid::Uuid;

/// A fresh orders database holding one order whose saga is due now.
async fn one_due_saga() -> (testkit::TestDatabase, OrderStore, Uuid) {
    let db = testkit::fresh_database().await;
    let pool = db.pool().await;
    platform::db::migrate(&pool, &[&messaging::migrator(), &sqlx::migrate!()])
        .await
        .unwrap();
    let order_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, payment_method, currency, total_minor,
                             idempotency_key, created_at, updated_at)
         VALUES ($1, $2, 'PENDING', 'tok_visa_approve', 'EUR', 1000, 'k', now(), now())",
    )
    .bind(order_id)
    .bind(Uuid::now_v7())
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO sagas (order_id, step, next_attempt_at, deadline, updated_at)
         VALUES ($1, 'reserve_stock', now(), now() + interval '1 hour', now())",
    )
    .bind(order_id)
    .execute(&pool)
    .await
    .unwrap();
    (db, OrderStore::new(pool), order_id)
}

/// Claims the saga for `owner`, waiting for a live lease to expire first.
async fn claim(store: &OrderStore, owner: &str, lease: Duration) -> ClaimedSaga {
    testkit::poll_until(
        "the saga to be claimable",
        Duration::from_secs(10),
        || async {
            store
                .claim_due(owner, lease, 10)
                .await
                .unwrap()
                .into_iter()
                .next()
        },
    )
    .await
    .unwrap()
}

fn advanced(saga: &Saga) -> Saga {
    Saga {
        step: SagaStep::AuthorizePayment,
        ..saga.clone()
    }
}

#[tokio::test]
async fn a_drive_that_outlived_its_claim_cannot_write_even_for_the_same_runner() {
    let (_db, store, order_id) = one_due_saga().await;
    let short = Duration::from_millis(200);
    // The runner claims the saga, and its step hangs past the lease…
    let stale = claim(&store, "runner-a", short).await;
    // …so the same runner, in a later round, claims the saga again.
    let fresh = claim(&store, "runner-a", Duration::from_secs(30)).await;
    assert_eq!(stale.saga.order_id, order_id);
    assert_eq!(fresh.lease.owner, stale.lease.owner);
    assert_eq!(fresh.lease.epoch, stale.lease.epoch + 1);

    // The hung step returns: its transition, its retry and its finish are all refused.
    let finished = ("reserve_stock", "succeeded", "");
    let lease = Duration::from_secs(30);
    assert!(
        !store
            .save_advance(&stale.lease, lease, &advanced(&stale.saga), finished)
            .await
            .unwrap(),
        "the stale drive advanced the saga under the fresh claim"
    );
    assert!(
        !store
            .save_retry(&stale.lease, &stale.saga, Duration::ZERO, "late")
            .await
            .unwrap(),
        "the stale drive released the fresh claim's lease"
    );
    // The fresh claim's writes go through.
    assert!(
        store
            .save_advance(&fresh.lease, lease, &advanced(&fresh.saga), finished)
            .await
            .unwrap()
    );
    let step: (String,) = sqlx::query_as("SELECT step FROM sagas WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(step.0, "authorize_payment");
}
