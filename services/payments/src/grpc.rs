//! The gRPC API: decode → service (the ledger: domain + store) → encode, nothing else.
//!
//! Every handler runs within the caller's deadline: the platform's gRPC server ends a call whose
//! `grpc-timeout` has passed with DEADLINE_EXCEEDED (`platform::grpc::deadline`).

use contracts::payments::{
    self as api, AuthorizePaymentRequest, AuthorizePaymentResponse, CapturePaymentRequest,
    CapturePaymentResponse, GetPaymentRequest, GetPaymentResponse, RefundPaymentRequest,
    RefundPaymentResponse, VoidOrderPaymentRequest, VoidOrderPaymentResponse, VoidPaymentRequest,
    VoidPaymentResponse, get_payment_request::Key,
};
use messaging::envelope::timestamp;
use platform::{fencing::FencingToken, grpc::authz::Callers};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        self, Authorize, InvalidInput, Money, Payment, PaymentMethod, PaymentStatus, Reason,
        VoidOrder,
    },
    error::PaymentsError,
    events::money,
    provider::PaymentProvider,
    service::Ledger,
};

/// Who may call what (`platform::grpc::authz`, enforced with mutual TLS): the saga in orders
/// authorizes and voids, and captures and refunds; the gateway only reads.
pub const CALLERS: Callers = &[
    ("AuthorizePayment", &["orders"]),
    ("CapturePayment", &["orders"]),
    ("RefundPayment", &["orders"]),
    ("VoidPayment", &["orders"]),
    ("VoidOrderPayment", &["orders"]),
    ("GetPayment", &["gateway"]),
];

pub struct PaymentsApi<P> {
    ledger: Ledger<P>,
}

impl<P: PaymentProvider> PaymentsApi<P> {
    pub fn new(ledger: Ledger<P>) -> Self {
        Self { ledger }
    }

    async fn authorize(
        &self,
        request: AuthorizePaymentRequest,
        fence: Option<FencingToken>,
    ) -> Result<Payment, PaymentsError> {
        let command = Authorize {
            order_id: domain::parse_id("order_id", &request.order_id)?,
            customer_id: domain::parse_id("customer_id", &request.customer_id)?,
            amount: amount(request.amount.as_ref())?,
            payment_method: PaymentMethod::parse(&request.payment_method)?,
        };
        self.ledger.authorize(command, fence).await
    }

    async fn refund(&self, request: RefundPaymentRequest) -> Result<Payment, PaymentsError> {
        let payment_id = domain::parse_id("payment_id", &request.payment_id)?;
        let amount = amount(request.amount.as_ref())?;
        let reason = Reason::parse(&request.reason)?;
        self.ledger.refund(payment_id, amount, reason).await
    }

    async fn void(&self, request: VoidPaymentRequest) -> Result<Payment, PaymentsError> {
        let payment_id = domain::parse_id("payment_id", &request.payment_id)?;
        let reason = Reason::parse(&request.reason)?;
        self.ledger.void(payment_id, reason).await
    }

    async fn void_order(
        &self,
        request: VoidOrderPaymentRequest,
        fence: Option<FencingToken>,
    ) -> Result<Payment, PaymentsError> {
        let command = VoidOrder {
            order_id: domain::parse_id("order_id", &request.order_id)?,
            customer_id: domain::parse_id("customer_id", &request.customer_id)?,
            amount: amount(request.amount.as_ref())?,
            reason: Reason::parse(&request.reason)?,
        };
        self.ledger.void_order(command, fence).await
    }

    async fn get(&self, request: GetPaymentRequest) -> Result<Payment, PaymentsError> {
        match request.key {
            Some(Key::PaymentId(id)) => self.ledger.get(domain::parse_id("payment_id", &id)?).await,
            Some(Key::OrderId(id)) => {
                self.ledger
                    .get_by_order(domain::parse_id("order_id", &id)?)
                    .await
            }
            None => Err(InvalidInput::new("key", "set payment_id or order_id").into()),
        }
    }
}

fn amount(amount: Option<&contracts::Money>) -> Result<Money, InvalidInput> {
    let amount = amount.ok_or_else(|| InvalidInput::new("amount", "is required"))?;
    domain::parse_amount(amount.amount_minor, &amount.currency)
}

#[tonic::async_trait]
impl<P: PaymentProvider> api::PaymentsService for PaymentsApi<P> {
    async fn authorize_payment(
        &self,
        request: Request<AuthorizePaymentRequest>,
    ) -> Result<Response<AuthorizePaymentResponse>, Status> {
        let fence = FencingToken::from_request(&request)?;
        let payment = self.authorize(request.into_inner(), fence).await?;
        Ok(Response::new(AuthorizePaymentResponse {
            payment: Some(encode(&payment)),
        }))
    }

    async fn capture_payment(
        &self,
        request: Request<CapturePaymentRequest>,
    ) -> Result<Response<CapturePaymentResponse>, Status> {
        let payment_id = domain::parse_id("payment_id", &request.get_ref().payment_id)
            .map_err(PaymentsError::from)?;
        let payment = self.ledger.capture(payment_id).await?;
        Ok(Response::new(CapturePaymentResponse {
            payment: Some(encode(&payment)),
        }))
    }

    async fn refund_payment(
        &self,
        request: Request<RefundPaymentRequest>,
    ) -> Result<Response<RefundPaymentResponse>, Status> {
        let payment = self.refund(request.into_inner()).await?;
        Ok(Response::new(RefundPaymentResponse {
            payment: Some(encode(&payment)),
        }))
    }

    async fn void_payment(
        &self,
        request: Request<VoidPaymentRequest>,
    ) -> Result<Response<VoidPaymentResponse>, Status> {
        let payment = self.void(request.into_inner()).await?;
        Ok(Response::new(VoidPaymentResponse {
            payment: Some(encode(&payment)),
        }))
    }

    async fn void_order_payment(
        &self,
        request: Request<VoidOrderPaymentRequest>,
    ) -> Result<Response<VoidOrderPaymentResponse>, Status> {
        let fence = FencingToken::from_request(&request)?;
        let payment = self.void_order(request.into_inner(), fence).await?;
        Ok(Response::new(VoidOrderPaymentResponse {
            payment: Some(encode(&payment)),
        }))
    }

    async fn get_payment(
        &self,
        request: Request<GetPaymentRequest>,
    ) -> Result<Response<GetPaymentResponse>, Status> {
        let payment = self.get(request.into_inner()).await?;
        Ok(Response::new(GetPaymentResponse {
            payment: Some(encode(&payment)),
        }))
    }
}

/// The wire form of a payment: its folded state plus its full event history.
pub fn encode(payment: &Payment) -> api::Payment {
    let state = &payment.state;
    api::Payment {
        id: payment.header.id.to_string(),
        order_id: payment.header.order_id.to_string(),
        customer_id: payment.header.customer_id.to_string(),
        status: encode_status(state.status).into(),
        authorized: Some(money(state.authorized())),
        captured: Some(money(state.captured())),
        refunded: Some(money(state.refunded())),
        decline_reason: state.decline_reason.clone().unwrap_or_default(),
        events: payment
            .history
            .iter()
            .map(|recorded| api::PaymentEvent {
                seq: recorded.seq,
                kind: recorded.event.kind().to_owned(),
                amount: recorded.event.amount().map(money),
                detail: recorded.event.detail().to_owned(),
                occurred_at: Some(timestamp(recorded.occurred_at)),
            })
            .collect(),
    }
}

pub fn encode_status(status: PaymentStatus) -> api::PaymentStatus {
    match status {
        PaymentStatus::Opened => api::PaymentStatus::Unspecified,
        PaymentStatus::Authorized => api::PaymentStatus::Authorized,
        PaymentStatus::Declined => api::PaymentStatus::Declined,
        PaymentStatus::Captured => api::PaymentStatus::Captured,
        PaymentStatus::PartiallyRefunded => api::PaymentStatus::PartiallyRefunded,
        PaymentStatus::Refunded => api::PaymentStatus::Refunded,
        PaymentStatus::Voided => api::PaymentStatus::Voided,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_table_admits_exactly_the_declared_callers() {
        platform::grpc::authz::check_declared(CALLERS, &declarations::payments::PAYMENTS).unwrap();
    }

    #[test]
    fn statuses_map_to_the_api_enum_of_the_same_name() {
        for status in PaymentStatus::ALL {
            let encoded = encode_status(status);
            if status == PaymentStatus::Opened {
                assert_eq!(encoded, api::PaymentStatus::Unspecified);
            } else {
                assert_eq!(
                    encoded.as_str_name(),
                    format!("PAYMENT_STATUS_{}", status.as_str())
                );
            }
        }
    }

    #[test]
    fn a_missing_amount_is_named() {
        assert_eq!(amount(None).unwrap_err().to_string(), "amount: is required");
    }
}
