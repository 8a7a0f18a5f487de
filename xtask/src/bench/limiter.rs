//! B4: is the gateway's rate limiter accurate under load?
//!
//! The rest of the bench runs the gateway with a limit no one reaches (many requests from one
//! address and a few accounts would measure the limiter, not the system). B4 restarts it with a
//! real limit (`--limit-per-minute`, `--limit-burst`), then, at the same time:
//!
//! * one customer (one bucket: the limiter keys on the signed-in user) sends `GET /api/v1/me`
//!   at three times the limit, open loop;
//! * the other customers run B1's checkouts at `--checkout-rate`, each far below the limit, as
//!   background load on the gateway, Redis (where the buckets live) and everything behind.
//!
//! The burst is spent in the first fraction of a second, so the requests sent from
//! `plan.limiter_settle` on are the ones counted: allowed per second over that window, against the configured rate
//! (the target is within ±10 %). Afterwards the gateway is restarted with the bench's usual
//! settings.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::StatusCode;

use super::{Api, Plan, Tallies, checkouts, load, transport};
use crate::up::Stack;
use load::Outcome;

/// B4's counts.
pub struct Limiter {
    pub per_minute: u32,
    pub burst: u32,
    /// The one key's offered requests per second.
    pub offered: f64,
    /// Answers counted from this long after the start, until the end.
    pub settle: Duration,
    pub window: Duration,
    /// 200s and 429s of the key inside the window, and anything else.
    pub allowed: u64,
    pub limited: u64,
    pub other: u64,
    /// The background checkouts: due and accepted.
    pub background_rate: f64,
    pub background_due: u64,
    pub background_accepted: u64,
}

impl Limiter {
    pub fn configured_per_second(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    pub fn allowed_per_second(&self) -> f64 {
        self.allowed as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// What the limited key's requests came to, by the instant each was sent (seconds from the
/// start): the limiter decides when a request arrives, a moment after it was sent, so a late
/// client cannot shift answers across the edge of the window.
#[derive(Default)]
struct Answers {
    allowed: Vec<f64>,
    limited: Vec<f64>,
    other: Vec<f64>,
}

/// Restarts the gateway with `per_minute`/`burst` (or the bench's defaults afterwards).
async fn limit(stack: &mut Stack, per_minute: u32, burst: u32) -> anyhow::Result<()> {
    stack
        .restart(
            "gateway",
            &[
                (
                    "GATEWAY_RATE_LIMIT_PER_MINUTE".to_owned(),
                    per_minute.to_string(),
                ),
                ("GATEWAY_RATE_LIMIT_BURST".to_owned(), burst.to_string()),
            ],
        )
        .await
}

/// B4, with `key` the limited customer's token and `customers` the background's.
pub async fn b4_limiter(
    plan: &Plan,
    api: &Api,
    stack: &mut Stack,
    key: &str,
    customers: &[String],
    skus: &[String],
) -> anyhow::Result<Limiter> {
    limit(stack, plan.limit_per_minute, plan.limit_burst).await?;
    let outcome = measure(plan, api, key, customers, skus).await;
    limit(stack, super::UNLIMITED_PER_MINUTE, super::UNLIMITED_BURST).await?;
    outcome
}

async fn measure(
    plan: &Plan,
    api: &Api,
    key: &str,
    customers: &[String],
    skus: &[String],
) -> anyhow::Result<Limiter> {
    let offered = 3.0 * f64::from(plan.limit_per_minute) / 60.0;
    let total = plan.limiter_settle + plan.limiter;
    let background = Tallies::new()?;
    let background_run = tokio::spawn(load::open_loop(
        plan.checkout_rate,
        total,
        checkouts(api, customers, skus, true, &background),
    ));
    let answers = Arc::new(Mutex::new(Answers::default()));
    let start = tokio::time::Instant::now();
    let request = {
        let (client, url, key, answers) = (
            api.client.clone(),
            format!("{}/api/v1/me", api.base),
            key.to_owned(),
            answers.clone(),
        );
        move |_: u64, _due: tokio::time::Instant| {
            let (client, url, key, answers) =
                (client.clone(), url.clone(), key.clone(), answers.clone());
            async move {
                let at = start.elapsed().as_secs_f64();
                let outcome = match client.get(&url).bearer_auth(&key).send().await {
                    Ok(response) if response.status() == StatusCode::OK => Ok(true),
                    Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => Ok(false),
                    Ok(response) => Err(response.status().to_string()),
                    Err(err) => Err(transport(&err)),
                };
                if let Ok(mut answers) = answers.lock() {
                    match &outcome {
                        Ok(true) => answers.allowed.push(at),
                        Ok(false) => answers.limited.push(at),
                        Err(_) => answers.other.push(at),
                    }
                }
                match outcome {
                    Ok(_) => Outcome::Ok,
                    Err(what) => Outcome::Failed(what),
                }
            }
        }
    };
    let _ = load::open_loop(offered, total, request).await?;
    let background_run = background_run.await??;
    let settle = plan.limiter_settle.as_secs_f64();
    let in_window = |times: &[f64]| times.iter().filter(|at| **at >= settle).count() as u64;
    let (allowed, limited, other) = answers
        .lock()
        .map(|a| {
            (
                in_window(&a.allowed),
                in_window(&a.limited),
                in_window(&a.other),
            )
        })
        .unwrap_or_default();
    let limiter = Limiter {
        per_minute: plan.limit_per_minute,
        burst: plan.limit_burst,
        offered,
        settle: plan.limiter_settle,
        window: plan.limiter,
        allowed,
        limited,
        other,
        background_rate: plan.checkout_rate,
        background_due: background_run.sent,
        background_accepted: background.accepted(),
    };
    println!(
        "bench: B4 limiter: {:.2} allowed/s of {:.2} configured ({:.3}), {} limited",
        limiter.allowed_per_second(),
        limiter.configured_per_second(),
        limiter.allowed_per_second() / limiter.configured_per_second().max(1e-9),
        limiter.limited
    );
    Ok(limiter)
}
