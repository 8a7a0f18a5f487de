//! Sustained load for the fault tier: a shop with a few products and customers who keep
//! ordering through the gateway, the way real ones do while something breaks underneath.
//!
//! Each customer, until the load is stopped:
//!
//! 1. orders one or two products (one to three units each) under a fresh `Idempotency-Key`,
//!    paying with the approving card nine times in ten and the declining one otherwise;
//! 2. when the request fails (a connection refused or reset, a 5xx, a 429), sends it again
//!    **with the same key**, as a client must: every 201 it gets back is recorded, so the
//!    invariant "one key, one order" can be checked against the orders database;
//! 3. watches the order for a few seconds until it leaves PENDING; and cancels one confirmed
//!    order in five at once, before payments has necessarily captured it (the race between
//!    the capture and the refund is part of what the tier exercises).
//!
//! What a customer saw is the [`LoadReport`]: which orders were accepted, and when each
//! confirmation was seen, which gives the recovery time after a fault (the first checkout that
//! was placed after the fault ended and then confirmed).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::IndexedRandom as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::{sync::watch, task::JoinSet};

use super::{
    system::{Options, System},
    world::{APPROVE, Api, DECLINE},
};

/// The catalog: SKU, price in cents, initial stock. The last one sells out under a normal run,
/// so out-of-stock cancellations are part of every run too.
pub const CATALOG: [(&str, i64, i64); 4] = [
    ("FAULT-MUG", 1299, 400),
    ("FAULT-TEA", 450, 400),
    ("FAULT-PEN", 199, 200),
    ("FAULT-LAMP", 8900, 40),
];

/// How many customers order at once.
pub const CUSTOMERS: usize = 8;

/// How long a customer watches an order before moving on to the next one.
const WATCH: Duration = Duration::from_secs(10);

/// How long a customer keeps retrying one placement (same key) before giving up on it.
const PLACE_PATIENCE: Duration = Duration::from_secs(30);

/// A running system with its catalog seeded and customers signed up.
pub struct Shop {
    pub system: System,
    pub customers: Vec<Customer>,
    /// SKU → initial stock.
    pub initial: BTreeMap<String, i64>,
}

#[derive(Clone)]
pub struct Customer {
    pub token: String,
    pub id: String,
}

impl Shop {
    /// Starts the system with `options` (rate limits raised out of the way), seeds [`CATALOG`]
    /// and signs up [`CUSTOMERS`] customers.
    pub async fn open(mut options: Options) -> Self {
        options.gateway_env.extend([
            ("GATEWAY_RATE_LIMIT_PER_MINUTE", "1000000".to_owned()),
            ("GATEWAY_RATE_LIMIT_BURST", "100000".to_owned()),
        ]);
        let system = System::start(options).await;
        let admin = system.admin().await;
        for (sku, price, stock) in CATALOG {
            system.api.seed(&admin, sku, price, stock).await;
        }
        let mut customers = Vec::with_capacity(CUSTOMERS);
        for n in 0..CUSTOMERS {
            let (token, id) = system
                .api
                .sign_up(&format!("customer-{n}@faults.test"))
                .await;
            customers.push(Customer { token, id });
        }
        let initial = CATALOG
            .iter()
            .map(|(sku, _, stock)| ((*sku).to_owned(), *stock))
            .collect();
        Self {
            system,
            customers,
            initial,
        }
    }
}

/// One placement as its customer saw it.
#[derive(Debug, Clone)]
pub struct Placement {
    pub customer_id: String,
    pub key: String,
    /// The order id of every 201 answer to this key (retries included): all must be equal.
    pub ids: Vec<String>,
    /// When the first request for this key was sent.
    pub sent_at: Instant,
    /// When the customer saw the order CONFIRMED, if it watched long enough.
    pub confirmed_at: Option<Instant>,
}

/// What the customers saw, once the load has stopped.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub placements: Vec<Placement>,
}

impl LoadReport {
    /// The placements the gateway accepted (at least one 201).
    pub fn accepted(&self) -> impl Iterator<Item = &Placement> {
        self.placements.iter().filter(|p| !p.ids.is_empty())
    }

    /// From `end` to the first confirmation of an order placed at or after `end`.
    pub fn recovery_after(&self, end: Instant) -> Option<Duration> {
        self.placements
            .iter()
            .filter(|p| p.sent_at >= end)
            .filter_map(|p| p.confirmed_at)
            .min()
            .map(|at| at - end)
    }
}

/// Customers ordering in the background until [`Load::stop`].
pub struct Load {
    stop: watch::Sender<bool>,
    customers: JoinSet<()>,
    placements: Arc<Mutex<Vec<Placement>>>,
}

impl Load {
    /// Starts every customer of `shop`; `seed` makes their choices reproducible.
    pub fn start(shop: &Shop, seed: u64) -> Self {
        let (stop, stopped) = watch::channel(false);
        let placements = Arc::new(Mutex::new(Vec::new()));
        let api = Arc::new(Api::new(
            shop.system.api.url.clone(),
            shop.system.api.admin_url.clone(),
        ));
        let mut customers = JoinSet::new();
        for (n, customer) in shop.customers.iter().cloned().enumerate() {
            let seed = seed.wrapping_add(n as u64);
            customers.spawn(shop_for(
                Arc::clone(&api),
                customer,
                n,
                StdRng::seed_from_u64(seed),
                stopped.clone(),
                Arc::clone(&placements),
            ));
        }
        Self {
            stop,
            customers,
            placements,
        }
    }

    /// Stops the customers (each finishes the order in hand) and returns what they saw.
    pub async fn stop(mut self) -> LoadReport {
        self.stop.send_replace(true);
        while let Some(done) = self.customers.join_next().await {
            done.expect("a customer task panicked");
        }
        let placements = std::mem::take(&mut *self.placements.lock().unwrap());
        LoadReport { placements }
    }
}

async fn shop_for(
    api: Arc<Api>,
    customer: Customer,
    n: usize,
    mut rng: StdRng,
    stopped: watch::Receiver<bool>,
    placements: Arc<Mutex<Vec<Placement>>>,
) {
    let mut count = 0;
    while !*stopped.borrow() {
        count += 1;
        let key = format!("c{n}-{count}");
        let kinds = rng.random_range(1..=2);
        let chosen: Vec<&str> = CATALOG
            .choose_multiple(&mut rng, kinds)
            .map(|(sku, _, _)| *sku)
            .collect();
        let products: Vec<Value> = chosen
            .into_iter()
            .map(|sku| json!({"sku": sku, "quantity": rng.random_range(1..=3)}))
            .collect();
        let card = if rng.random_bool(0.9) {
            APPROVE
        } else {
            DECLINE
        };
        let body = json!({"lines": products, "payment_method": card});
        let cancel = rng.random_bool(0.2);

        let sent_at = Instant::now();
        let ids = place(&api, &customer.token, &key, &body).await;
        let mut placement = Placement {
            customer_id: customer.id.clone(),
            key,
            ids,
            sent_at,
            confirmed_at: None,
        };
        if let Some(id) = placement.ids.first().cloned()
            && watch_until_settled(&api, &customer.token, &id).await == Some("CONFIRMED")
        {
            placement.confirmed_at = Some(Instant::now());
            if cancel {
                cancel_order(&api, &customer.token, &id).await;
            }
        }
        placements.lock().unwrap().push(placement);
    }
}

/// Whether an answer means "try again with the same key".
fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// Places the order, retrying with the same key; the ids of every 201 answer.
async fn place(api: &Api, token: &str, key: &str, body: &Value) -> Vec<String> {
    let started = Instant::now();
    let mut ids = Vec::new();
    // A client that got its 201 sends the same request once more, as if the answer had been
    // lost on the way: the second answer must name the same order.
    let mut answers_wanted = 2;
    while started.elapsed() < PLACE_PATIENCE {
        let answer = api
            .request(Method::POST, "/api/v1/orders", Some(token))
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        match answer {
            Ok(response) if response.status() == StatusCode::CREATED => {
                let order: Value = response.json().await.unwrap_or(Value::Null);
                if let Some(id) = order["id"].as_str() {
                    ids.push(id.to_owned());
                }
                answers_wanted -= 1;
                if answers_wanted == 0 {
                    return ids;
                }
                continue;
            }
            Ok(response) if !retryable(response.status()) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                panic!("placing {key} was refused for good: {status} {text}");
            }
            Ok(_) | Err(_) => {}
        }
        if !ids.is_empty() {
            // The retry after a 201 is best effort: the order exists either way.
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ids
}

/// The order's status once it leaves PENDING, or `None` when it has not within [`WATCH`].
async fn watch_until_settled(api: &Api, token: &str, id: &str) -> Option<&'static str> {
    let started = Instant::now();
    while started.elapsed() < WATCH {
        if let Ok(response) = api
            .request(Method::GET, &format!("/api/v1/orders/{id}"), Some(token))
            .send()
            .await
            && let Ok(order) = response.json::<Value>().await
        {
            match order["status"].as_str() {
                Some("CONFIRMED") => return Some("CONFIRMED"),
                Some("CANCELLED") => return Some("CANCELLED"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    None
}

/// Cancels a confirmed order, retrying transport errors and 5xx for a while. A 409 (the order
/// was already cancelled, or cannot be any more) ends it too.
async fn cancel_order(api: &Api, token: &str, id: &str) {
    let started = Instant::now();
    while started.elapsed() < PLACE_PATIENCE {
        if let Ok(response) = api
            .request(
                Method::POST,
                &format!("/api/v1/orders/{id}/cancel"),
                Some(token),
            )
            .json(&json!({"reason": "changed my mind"}))
            .send()
            .await
            && !retryable(response.status())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
