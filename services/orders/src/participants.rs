//! The saga's participants, inventory and payments, behind typed gRPC clients.
//!
//! Every call goes through `libs/resilience`, in this order from the outside in:
//!
//! * a **circuit breaker per participant**: after repeated failures the breaker opens and calls
//!   fail at once with UNAVAILABLE instead of piling up on a sick service; half-open probes
//!   close it again once the participant recovers;
//! * **retries with a budget**: every call here is idempotent (per order id, or a read), so
//!   transient failures are retried a few times with jittered backoff, within a budget shared
//!   by all calls to that participant so that retries cannot multiply an outage;
//! * a **deadline per attempt** (`CallContext`, sent as `grpc-timeout`).
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
use platform::grpc::client::{CallContext, connect_lazy};
use resilience::{BreakerConfig, BudgetConfig, CircuitBreaker, RetryBudget, RetryPolicy, Upstream};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

use crate::{
    domain::{OrderLine, StepResult},
    store::SagaContext,
};

type Inventory = InventoryServiceClient<InterceptedService<Channel, CallContext>>;
type Payments = PaymentsServiceClient<InterceptedService<Channel, CallContext>>;

/// A product as the order needs it: name, unit price and currency, if it is for sale.
pub type Price = (String, i64, String);

#[derive(Clone)]
pub struct Participants {
    inventory: Inventory,
    payments: Payments,
    inventory_upstream: Upstream,
    payments_upstream: Upstream,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad participant address: {0}")]
    Address(#[from] tonic::transport::Error),
    #[error("bad resilience settings: {0}")]
    Resilience(#[from] resilience::InvalidConfig),
}

fn upstream(name: &str) -> Result<Upstream, resilience::InvalidConfig> {
    Ok(Upstream::new(
        name.to_owned(),
        CircuitBreaker::new(name.to_owned(), BreakerConfig::default())?,
        RetryBudget::new(BudgetConfig::default())?,
        RetryPolicy::default(),
    ))
}

impl Participants {
    pub fn connect(
        inventory_url: &str,
        payments_url: &str,
        call_timeout: Duration,
    ) -> Result<Self, ConnectError> {
        let context = CallContext::new(call_timeout);
        Ok(Self {
            inventory: InventoryServiceClient::with_interceptor(
                connect_lazy(inventory_url)?,
                context,
            ),
            payments: PaymentsServiceClient::with_interceptor(connect_lazy(payments_url)?, context),
            inventory_upstream: upstream("inventory")?,
            payments_upstream: upstream("payments")?,
        })
    }

    /// Looks up the current price of a product; `None` if unknown or not for sale.
    pub async fn price(&self, sku: &str) -> Result<Option<Price>, Status> {
        let request = GetProductRequest {
            sku: sku.to_owned(),
        };
        let response = self
            .inventory_upstream
            .call(true, || {
                let (mut client, request) = (self.inventory.clone(), request.clone());
                async move { client.get_product(request).await }
            })
            .await;
        match response {
            Ok(response) => Ok(response
                .into_inner()
                .product
                .filter(|product| product.active)
                .and_then(|product| {
                    let price = product.price?;
                    Some((product.name, price.amount_minor, price.currency))
                })),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) if status.code() == Code::InvalidArgument => Ok(None),
            Err(status) => Err(status),
        }
    }

    pub async fn reserve_stock(&self, order_id: Uuid, lines: &[OrderLine]) -> StepResult {
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
            .inventory_upstream
            .call(true, || {
                let (mut client, request) = (self.inventory.clone(), request.clone());
                async move { client.reserve_stock(request).await }
            })
            .await;
        match response {
            Ok(response) => match response.into_inner().reservation.map(|r| r.status()) {
                Some(ReservationStatus::Reserved | ReservationStatus::Committed) => {
                    StepResult::Reserved
                }
                Some(ReservationStatus::Rejected) => StepResult::OutOfStock,
                other => StepResult::Permanent(format!("reservation is {other:?}")),
            },
            Err(status) => classify(&status),
        }
    }

    pub async fn release_stock(&self, order_id: Uuid) -> StepResult {
        let request = ReleaseStockRequest {
            order_id: order_id.to_string(),
            reason: "checkout compensation".to_owned(),
        };
        let response = self
            .inventory_upstream
            .call(true, || {
                let (mut client, request) = (self.inventory.clone(), request.clone());
                async move { client.release_stock(request).await }
            })
            .await;
        match response {
            Ok(_) => StepResult::Released,
            Err(status) => classify(&status),
        }
    }

    /// Sells the reserved units. Inventory refuses (FAILED_PRECONDITION, a permanent result)
    /// when the reservation is no longer held: expired by the sweeper, or released.
    pub async fn commit_stock(&self, order_id: Uuid) -> StepResult {
        let request = CommitReservationRequest {
            order_id: order_id.to_string(),
        };
        let response = self
            .inventory_upstream
            .call(true, || {
                let (mut client, request) = (self.inventory.clone(), request.clone());
                async move { client.commit_reservation(request).await }
            })
            .await;
        match response {
            Ok(response) => match response.into_inner().reservation.map(|r| r.status()) {
                // RESTOCKED: committed, then given back by a cancellation; the sale happened.
                Some(ReservationStatus::Committed | ReservationStatus::Restocked) => {
                    StepResult::StockCommitted
                }
                other => StepResult::Permanent(format!("reservation is {other:?}")),
            },
            Err(status) => classify(&status),
        }
    }

    pub async fn authorize_payment(&self, order_id: Uuid, context: &SagaContext) -> StepResult {
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
            .payments_upstream
            .call(true, || {
                let (mut client, request) = (self.payments.clone(), request.clone());
                async move { client.authorize_payment(request).await }
            })
            .await;
        match response {
            Ok(response) => match response.into_inner().payment {
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
    pub async fn void_payment(&self, order_id: Uuid, context: &SagaContext) -> StepResult {
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
            .payments_upstream
            .call(true, || {
                let (mut client, request) = (self.payments.clone(), request.clone());
                async move { client.void_order_payment(request).await }
            })
            .await;
        match response {
            Ok(_) => StepResult::Voided,
            Err(status) => classify(&status),
        }
    }
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
