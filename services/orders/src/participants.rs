//! The saga's participants, inventory and payments, behind typed gRPC clients.
//!
//! Every call goes through the same [`Backend`] the gateway uses (`platform::grpc::upstream`),
//! in this order from the outside in:
//!
//! * a **circuit breaker per participant**: after repeated failures the breaker opens and calls
//!   fail at once with UNAVAILABLE instead of piling up on a sick service; half-open probes
//!   close it again once the participant recovers;
//! * **retries with a budget**: every call here is idempotent (per order id, or a read), so
//!   transient failures are retried a few times with jittered backoff, within a budget shared
//!   by all calls to that participant so that retries cannot multiply an outage;
//! * a **load balancer per participant**: each attempt goes to one replica (round-robin over a
//!   static list or over a `dns://` name re-resolved periodically: in Kubernetes, the
//!   participant's headless Service, so every ready pod takes calls), skipping replicas that
//!   already failed this call and ejecting ones that keep failing or fail their health check;
//! * a **deadline per attempt** (`CallContext`, sent as `grpc-timeout`, at most what the
//!   caller has left).
//!
//! Every saga step's call carries the saga's lease epoch as a **fencing token**
//! (`platform::fencing`): once another runner has taken the saga over, the participants refuse
//! the calls of the runner it replaced (FAILED_PRECONDITION, a permanent result whose write the
//! saga store refuses too, since the epoch moved on).
//!
//! What is still failing after that is classified once, here: codes that mean "try again later"
//! become [`StepResult::Transient`] (the saga retries the step later, durably); anything else is
//! a refusal, [`StepResult::Permanent`].

use std::time::Duration;

use contracts::{
    Money,
    inventory::{
        CommitReservationRequest, GetProductRequest, InventoryServiceClient, ReleaseStockRequest,
        ReservationLine, ReservationStatus, ReserveStockRequest,
    },
    payments::{
        AuthorizePaymentRequest, PaymentStatus, PaymentsServiceClient, VoidOrderPaymentRequest,
    },
};
use platform::{
    fencing::FencingToken,
    grpc::upstream::{Backend, BackendConfig, EndpointSource, discovery, spawn_maintenance},
    host::Worker,
};
use tonic::{Code, Status};
use uuid::Uuid;

use crate::{
    domain::{OrderLine, StepResult},
    store::SagaContext,
};

/// A product as the order needs it: name, unit price and currency, if it is for sale.
pub type Price = (String, i64, String);

/// The two participants, each a balanced, ejecting [`Backend`] over its replicas.
#[derive(Clone)]
pub struct Participants {
    inventory: Backend,
    payments: Backend,
}

/// Where the participants are and how they are called.
#[derive(Debug, Clone)]
pub struct ParticipantsConfig {
    pub inventory: EndpointSource,
    pub payments: EndpointSource,
    /// Each attempt's deadline (at most what the caller has left).
    pub call_timeout: Duration,
    /// How often `dns://` sources are resolved again.
    pub dns_refresh: Duration,
    /// Active health checks of every endpoint, or `None`.
    pub health_checks: Option<Duration>,
    /// Orders' mutual-TLS credentials (`ORDERS_TLS_*`), or `None` for plaintext.
    pub tls: Option<platform::tls::TlsFiles>,
}

impl Participants {
    /// Builds both backends and fills them (one DNS lookup each for `dns://` sources: a
    /// participant that is not resolvable yet is found by [`Participants::maintenance`]).
    pub async fn connect(config: &ParticipantsConfig) -> Result<Self, resilience::InvalidConfig> {
        let backend = BackendConfig {
            call_timeout: config.call_timeout,
            tls: config.tls.clone(),
            ..BackendConfig::default()
        };
        let participants = Self {
            inventory: Backend::new("inventory", &backend)?,
            payments: Backend::new("payments", &backend)?,
        };
        discovery::initial(&participants.inventory, &config.inventory).await;
        discovery::initial(&participants.payments, &config.payments).await;
        Ok(participants)
    }

    /// The worker that keeps both endpoint lists current: DNS re-resolution and health checks.
    pub fn maintenance(&self, config: &ParticipantsConfig) -> Worker {
        let (participants, config) = (self.clone(), config.clone());
        Worker::new(move |shutdown| async move {
            let mut tasks = spawn_maintenance(
                &participants.inventory,
                &config.inventory,
                config.dns_refresh,
                config.health_checks,
                &shutdown,
            );
            tasks.extend(spawn_maintenance(
                &participants.payments,
                &config.payments,
                config.dns_refresh,
                config.health_checks,
                &shutdown,
            ));
            futures::future::join_all(tasks).await;
        })
    }

    /// Looks up the current price of a product; `None` if unknown or not for sale.
    pub async fn price(&self, sku: &str) -> Result<Option<Price>, Status> {
        let request = GetProductRequest {
            sku: sku.to_owned(),
        };
        let response = self
            .inventory
            .call(true, |endpoint| {
                let request = request.clone();
                async move {
                    InventoryServiceClient::new(endpoint)
                        .get_product(request)
                        .await
                }
            })
            .await;
        match response {
            Ok(response) => {
                Ok(response
                    .product
                    .filter(|product| product.active)
                    .and_then(|product| {
                        let price = product.price?;
                        Some((product.name, price.amount_minor, price.currency))
                    }))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) if status.code() == Code::InvalidArgument => Ok(None),
            Err(status) => Err(status),
        }
    }

    pub async fn reserve_stock(
        &self,
        order_id: Uuid,
        lines: &[OrderLine],
        fence: FencingToken,
    ) -> StepResult {
        let request = ReserveStockRequest {
            order_id: order_id.to_string(),
            lines: lines
                .iter()
                .map(|line| ReservationLine {
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                })
                .collect(),
        };
        let response = self
            .inventory
            .call(true, |endpoint| {
                let request = fenced(&request, fence);
                async move {
                    InventoryServiceClient::new(endpoint)
                        .reserve_stock(request)
                        .await
                }
            })
            .await;
        match response {
            Ok(response) => match response.reservation.map(|r| r.status()) {
                Some(ReservationStatus::Reserved | ReservationStatus::Committed) => {
                    StepResult::Reserved
                }
                Some(ReservationStatus::Rejected) => StepResult::OutOfStock,
                other => StepResult::Permanent(format!("reservation is {other:?}")),
            },
            Err(status) => classify(&status),
        }
    }

    pub async fn release_stock(&self, order_id: Uuid, fence: FencingToken) -> StepResult {
        let request = ReleaseStockRequest {
            order_id: order_id.to_string(),
            reason: "checkout compensation".to_owned(),
        };
        let response = self
            .inventory
            .call(true, |endpoint| {
                let request = fenced(&request, fence);
                async move {
                    InventoryServiceClient::new(endpoint)
                        .release_stock(request)
                        .await
                }
            })
            .await;
        match response {
            Ok(_) => StepResult::Released,
            Err(status) => classify(&status),
        }
    }

    /// Sells the reserved units. Inventory refuses (FAILED_PRECONDITION, a permanent result)
    /// when the reservation is no longer held: expired by the sweeper, or released.
    pub async fn commit_stock(&self, order_id: Uuid, fence: FencingToken) -> StepResult {
        let request = CommitReservationRequest {
            order_id: order_id.to_string(),
        };
        let response = self
            .inventory
            .call(true, |endpoint| {
                let request = fenced(&request, fence);
                async move {
                    InventoryServiceClient::new(endpoint)
                        .commit_reservation(request)
                        .await
                }
            })
            .await;
        match response {
            Ok(response) => match response.reservation.map(|r| r.status()) {
                // RESTOCKED: committed, then given back by a cancellation; the sale happened.
                Some(ReservationStatus::Committed | ReservationStatus::Restocked) => {
                    StepResult::StockCommitted
                }
                other => StepResult::Permanent(format!("reservation is {other:?}")),
            },
            Err(status) => classify(&status),
        }
    }

    pub async fn authorize_payment(
        &self,
        order_id: Uuid,
        context: &SagaContext,
        fence: FencingToken,
    ) -> StepResult {
        let request = AuthorizePaymentRequest {
            order_id: order_id.to_string(),
            amount: Some(Money {
                amount_minor: context.total_minor,
                currency: context.currency.clone(),
            }),
            customer_id: context.customer_id.to_string(),
            payment_method: context.payment_method.clone(),
        };
        let response = self
            .payments
            .call(true, |endpoint| {
                let request = fenced(&request, fence);
                async move {
                    PaymentsServiceClient::new(endpoint)
                        .authorize_payment(request)
                        .await
                }
            })
            .await;
        match response {
            Ok(response) => match response.payment {
                Some(payment) => {
                    let Ok(payment_id) = Uuid::parse_str(&payment.id) else {
                        return StepResult::Permanent(format!("bad payment id {}", payment.id));
                    };
                    match payment.status() {
                        PaymentStatus::Declined => StepResult::Declined { payment_id },
                        PaymentStatus::Authorized | PaymentStatus::Captured => {
                            StepResult::Authorized { payment_id }
                        }
                        // A compensation of this order ran first and left a tombstone: this
                        // call comes from a runner that stalled; its result must not count.
                        PaymentStatus::Voided => {
                            StepResult::Permanent("the order's payment was voided".to_owned())
                        }
                        other => StepResult::Permanent(format!("payment is {other:?}")),
                    }
                }
                None => StepResult::Permanent("no payment in the response".to_owned()),
            },
            Err(status) => classify(&status),
        }
    }

    /// Voids the order's payment, by order id: after a timeout the saga may not know whether
    /// (or which) payment the provider authorized. When the order has none, payments records a
    /// tombstone with the amount and customer this saga would authorize, so that a late
    /// `AuthorizePayment` (a stalled runner resuming) is answered VOIDED and holds nothing.
    pub async fn void_payment(
        &self,
        order_id: Uuid,
        context: &SagaContext,
        fence: FencingToken,
    ) -> StepResult {
        let request = VoidOrderPaymentRequest {
            order_id: order_id.to_string(),
            amount: Some(Money {
                amount_minor: context.total_minor,
                currency: context.currency.clone(),
            }),
            customer_id: context.customer_id.to_string(),
            reason: "checkout compensation".to_owned(),
        };
        let response = self
            .payments
            .call(true, |endpoint| {
                let request = fenced(&request, fence);
                async move {
                    PaymentsServiceClient::new(endpoint)
                        .void_order_payment(request)
                        .await
                }
            })
            .await;
        match response {
            Ok(_) => StepResult::Voided,
            Err(status) => classify(&status),
        }
    }
}

/// The request with the saga's fencing token in its metadata: a participant refuses it once a
/// newer runner (a higher lease epoch) has acted on the order (`platform::fencing`).
fn fenced<T: Clone>(message: &T, fence: FencingToken) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message.clone());
    fence.attach(&mut request);
    request
}

/// Which gRPC failures are worth retrying.
pub fn classify(status: &Status) -> StepResult {
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Unknown
        | Code::Internal
        | Code::Cancelled => {
            StepResult::Transient(format!("{:?}: {}", status.code(), status.message()))
        }
        _ => StepResult::Permanent(format!("{:?}: {}", status.code(), status.message())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_and_permanent_failures_are_told_apart() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::Internal,
        ] {
            assert!(matches!(
                classify(&Status::new(code, "x")),
                StepResult::Transient(_)
            ));
        }
        for code in [
            Code::InvalidArgument,
            Code::FailedPrecondition,
            Code::NotFound,
        ] {
            assert!(matches!(
                classify(&Status::new(code, "x")),
                StepResult::Permanent(_)
            ));
        }
    }
}
