//! Everything that can go wrong in the payments service, and what each failure means to a caller.

use platform::{ServiceError, fencing::Superseded};

use crate::{
    domain::{InvalidInput, Rejected},
    provider::ProviderError,
};

#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    #[error("payment not found")]
    NotFound,
    /// The payment's state forbids the command (capture twice, refund more than captured).
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// Optimistic concurrency: other writers kept appending to this payment while we retried.
    #[error("payment {0} is being changed concurrently; retry")]
    Contention(uuid::Uuid),
    /// The call came from a saga runner that another runner has replaced (`platform::fencing`).
    #[error(transparent)]
    Superseded(#[from] Superseded),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<PaymentsError> for ServiceError {
    fn from(error: PaymentsError) -> Self {
        match error {
            PaymentsError::InvalidInput(invalid) => {
                ServiceError::invalid(invalid.field(), invalid.reason())
            }
            PaymentsError::NotFound => ServiceError::NotFound(error.to_string()),
            PaymentsError::Rejected(_) => ServiceError::FailedPrecondition(error.to_string()),
            PaymentsError::Contention(_) => ServiceError::Aborted(error.to_string()),
            PaymentsError::Superseded(superseded) => superseded.into(),
            PaymentsError::Provider(_) => ServiceError::Unavailable(error.to_string()),
            PaymentsError::Store(err) => err.into(),
            PaymentsError::Corrupt(_) => ServiceError::internal(error),
        }
    }
}

impl From<PaymentsError> for tonic::Status {
    fn from(error: PaymentsError) -> Self {
        ServiceError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PaymentStatus;
    use tonic::Code;

    #[test]
    fn failures_map_to_the_expected_codes() {
        let cases = [
            (
                PaymentsError::InvalidInput(InvalidInput::new("order_id", "must be a UUID")),
                Code::InvalidArgument,
            ),
            (PaymentsError::NotFound, Code::NotFound),
            (
                PaymentsError::Rejected(Rejected::Capture(PaymentStatus::Voided)),
                Code::FailedPrecondition,
            ),
            (PaymentsError::Contention(uuid::Uuid::nil()), Code::Aborted),
            (
                PaymentsError::Provider(ProviderError("down".into())),
                Code::Unavailable,
            ),
            (PaymentsError::Corrupt("kind".into()), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(tonic::Status::from(error).code(), code);
        }
    }

    #[test]
    fn invalid_input_names_the_field_and_rejections_explain() {
        let status = tonic::Status::from(PaymentsError::InvalidInput(InvalidInput::new(
            "amount.amount_minor",
            "must be greater than zero",
        )));
        assert_eq!(
            status.message(),
            "amount.amount_minor: must be greater than zero"
        );
        let status = tonic::Status::from(PaymentsError::Rejected(Rejected::Capture(
            PaymentStatus::Captured,
        )));
        assert!(
            status
                .message()
                .starts_with("cannot capture a CAPTURED payment")
        );
    }
}
