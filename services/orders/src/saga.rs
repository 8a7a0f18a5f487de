//! The saga runner: executes checkout sagas step by step, durably.
//!
//! Each runner (one per replica) loops: claim due sagas with a lease (`SKIP LOCKED`), drive each
//! one forward — run the step, ask the state machine what next, persist the transition — until
//! it finishes or has to wait for a retry. Placing an order sends `NOTIFY sagas`, which wakes
//! the runners immediately; polling covers retries that come due and missed notifications.
//!
//! Crash safety: the step's remote effect happens *before* its transition is persisted, so a
//! crash in between re-runs the step on resumption. That is harmless because every participant
//! call is idempotent per order id. A crashed runner's lease expires, and any runner (the
//! restarted process or another replica) resumes the saga at its last persisted step.

use std::{sync::Arc, time::Duration};

use platform::{Shutdown, fencing::FencingToken};
use resilience::backoff::Backoff;
use sqlx::postgres::PgListener;
use time::OffsetDateTime;
use tracing::Instrument as _;

use crate::{
    domain::{CancelReason, Saga, SagaStep, StepResult, Transition},
    events,
    participants::Participants,
    store::{ClaimedSaga, Lease, OrderStore, SAGA_CHANNEL, SagaContext},
};

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// How long a claimed saga stays leased to this runner without progress.
    pub lease: Duration,
    /// How often due retries are looked for.
    pub poll_interval: Duration,
    /// Backoff of a failing step: base and cap.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Sagas claimed per round.
    pub batch: i64,
    /// Fault injection for crash tests: abort the process right after this step's participant
    /// call returned and before its outcome is persisted. Never set in production.
    pub crash_after: Option<SagaStep>,
}

pub struct SagaRunner {
    store: OrderStore,
    participants: Participants,
    owner: String,
    config: RunnerConfig,
}

impl SagaRunner {
    pub fn new(store: OrderStore, participants: Participants, config: RunnerConfig) -> Self {
        Self {
            store,
            participants,
            owner: format!("runner-{}", uuid::Uuid::now_v7().simple()),
            config,
        }
    }

    /// Runs sagas until `shutdown`; a saga in flight finishes its current step first.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let mut listener = match PgListener::connect_with(self.store.pool()).await {
            Ok(mut listener) => match listener.listen(SAGA_CHANNEL).await {
                Ok(()) => Some(listener),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot LISTEN; polling only");
                    None
                }
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot LISTEN; polling only");
                None
            }
        };
        while !shutdown.is_triggered() {
            if let Err(err) = self.run_due().await {
                tracing::warn!(error = %err, "saga round failed");
            }
            let notified = async {
                match listener.as_mut() {
                    Some(listener) => {
                        let _ = listener.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.wait() => break,
                () = notified => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        tracing::info!("saga runner stopped");
    }

    /// Claims the due sagas and drives each as far as it can go now. Returns how many it claimed.
    pub async fn run_due(&self) -> Result<usize, crate::error::OrdersError> {
        let claimed = self
            .store
            .claim_due(&self.owner, self.config.lease, self.config.batch)
            .await?;
        let count = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|claimed| self.drive(claimed))).await;
        Ok(count)
    }

    /// Drives one saga inside a span that continues the trace of the PlaceOrder call which
    /// started it: the participants' calls (whose metadata carries the current span) and the
    /// events the saga emits (whose envelopes do) join the customer's trace, although the runner
    /// works later, in its own task, maybe in another replica.
    async fn drive(&self, claimed: ClaimedSaga) {
        let ClaimedSaga {
            saga,
            lease,
            context,
            trace,
        } = claimed;
        let span = tracing::info_span!(
            "saga",
            order_id = %saga.order_id,
            resumed_at = saga.step.as_str(),
            trace_id = tracing::field::Empty,
        );
        platform::trace_context::continue_trace(&span, trace.parent());
        self.drive_steps(saga, &lease, context)
            .instrument(span)
            .await;
    }

    async fn drive_steps(&self, mut saga: Saga, lease: &Lease, context: SagaContext) {
        loop {
            if saga.is_done() {
                return;
            }
            if let Some(compensating) = saga.check_deadline(OffsetDateTime::now_utc()) {
                tracing::warn!(
                    step = saga.step.as_str(),
                    "saga deadline passed; compensating"
                );
                let finished = (saga.step.as_str(), "timed_out", "saga deadline passed");
                if !self.persist_advance(lease, &compensating, finished).await {
                    return;
                }
                saga = compensating;
                continue;
            }

            let started = std::time::Instant::now();
            let result = self.execute(&saga, lease, &context).await;
            metrics::histogram!("saga_step_duration_seconds", "step" => saga.step.as_str())
                .record(started.elapsed().as_secs_f64());
            if self.config.crash_after == Some(saga.step)
                && !matches!(result, StepResult::Transient(_))
            {
                tracing::error!(step = saga.step.as_str(), "fault injection: crashing now");
                std::process::abort();
            }

            let backoff = |attempt: u32| self.retry_delay(attempt);
            let outcome = describe(&result);
            match saga.advance(result, backoff) {
                Ok(Transition::Advance(next)) => {
                    tracing::info!(
                        from = saga.step.as_str(),
                        to = next.step.as_str(),
                        "saga step done"
                    );
                    let local = matches!(saga.step, SagaStep::Confirm | SagaStep::Cancel);
                    if next.is_done() {
                        metrics::counter!(
                            "saga_outcomes_total",
                            "outcome" => next.cancel_reason.map_or("confirmed", |r| r.as_str()),
                        )
                        .increment(1);
                    }
                    // Local steps persisted their own transition to done atomically.
                    if !local
                        && !self
                            .persist_advance(
                                lease,
                                &next,
                                (saga.step.as_str(), &outcome.0, &outcome.1),
                            )
                            .await
                    {
                        return;
                    }
                    saga = next;
                }
                Ok(Transition::Retry { saga: retry, delay }) => {
                    tracing::warn!(step = saga.step.as_str(), attempt = retry.attempts, ?delay, error = %outcome.1, "saga step will be retried");
                    metrics::counter!("saga_step_retries_total", "step" => saga.step.as_str())
                        .increment(1);
                    if let Err(err) = self
                        .store
                        .save_retry(lease, &retry, delay, &outcome.1)
                        .await
                    {
                        tracing::warn!(error = %err, "cannot schedule the retry; the lease will expire");
                    }
                    return;
                }
                Err(illegal) => {
                    tracing::error!(error = %illegal, "saga bug: illegal transition");
                    return;
                }
            }
        }
    }

    /// Full-jitter delay before retry number `attempt` (1-based).
    fn retry_delay(&self, attempt: u32) -> Duration {
        let ceiling = Backoff::new(self.config.retry_base, self.config.retry_cap)
            .ceiling_for(attempt.saturating_sub(1));
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=millis))
    }

    async fn persist_advance(
        &self,
        lease: &Lease,
        next: &Saga,
        finished: (&str, &str, &str),
    ) -> bool {
        match self
            .store
            .save_advance(lease, self.config.lease, next, finished)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!("lost the saga lease; another runner continues");
                false
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot persist the saga step; the lease will expire");
                false
            }
        }
    }

    async fn execute(&self, saga: &Saga, lease: &Lease, context: &SagaContext) -> StepResult {
        let p = &self.participants;
        let fence = FencingToken::new(lease.epoch);
        match saga.step {
            SagaStep::ReserveStock => p.reserve_stock(saga.order_id, &context.lines, fence).await,
            SagaStep::AuthorizePayment => p.authorize_payment(saga.order_id, context, fence).await,
            SagaStep::CommitStock => p.commit_stock(saga.order_id, fence).await,
            SagaStep::VoidPayment => p.void_payment(saga.order_id, context, fence).await,
            SagaStep::ReleaseStock => p.release_stock(saga.order_id, fence).await,
            SagaStep::Confirm => {
                let confirmed = events::order_confirmed(saga, context);
                local(self.store.confirm(lease, saga, &confirmed).await)
            }
            SagaStep::Cancel => {
                let reason = saga.cancel_reason.unwrap_or(CancelReason::Failed);
                let cancelled = events::order_cancelled(
                    saga.order_id,
                    context.customer_id,
                    reason,
                    false,
                    saga.payment_id,
                );
                local(self.store.cancel(lease, saga, &cancelled).await)
            }
            SagaStep::Done => StepResult::Permanent("saga already done".to_owned()),
        }
    }
}

fn local(outcome: Result<bool, crate::error::OrdersError>) -> StepResult {
    match outcome {
        Ok(true) => StepResult::Committed,
        // Lost the lease: another runner owns the saga now; retrying here would be refused.
        Ok(false) => StepResult::Transient("lease lost".to_owned()),
        Err(err) => StepResult::Transient(err.to_string()),
    }
}

/// The timeline's words for a step result: (outcome, detail).
fn describe(result: &StepResult) -> (String, String) {
    let (outcome, detail) = match result {
        StepResult::Reserved => ("succeeded", String::new()),
        StepResult::OutOfStock => ("rejected", "out of stock".to_owned()),
        StepResult::Authorized { payment_id } => ("succeeded", format!("payment {payment_id}")),
        StepResult::Declined { payment_id } => ("declined", format!("payment {payment_id}")),
        StepResult::StockCommitted => ("succeeded", String::new()),
        StepResult::Voided => ("succeeded", String::new()),
        StepResult::Released => ("succeeded", String::new()),
        StepResult::Committed => ("succeeded", String::new()),
        StepResult::Transient(reason) => ("retrying", reason.clone()),
        StepResult::Permanent(reason) => ("failed", reason.clone()),
    };
    (outcome.to_owned(), detail)
}
