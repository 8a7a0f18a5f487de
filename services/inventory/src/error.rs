//! Everything that can go wrong in the inventory service, and what each failure means to a
//! caller. The mapping to gRPC codes lives here and only here.

use std::sync::Arc;

use platform::{ServiceError, fencing::Superseded};

use crate::domain::{
    ConflictingRetry, InsufficientStock, InvalidInput, InvalidTransition, OrderId, Sku,
};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    #[error("product {0} not found")]
    ProductNotFound(Sku),
    #[error("no reservation for order {0}")]
    ReservationNotFound(OrderId),
    #[error(transparent)]
    InsufficientStock(#[from] InsufficientStock),
    #[error(transparent)]
    ConflictingRetry(#[from] ConflictingRetry),
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    /// The call came from a saga runner that another runner has replaced (`platform::fencing`).
    #[error(transparent)]
    Superseded(#[from] Superseded),
    /// A conditional update matched no row although the row was locked: impossible unless the
    /// locking discipline is broken. The transaction was rolled back; a retry is safe.
    #[error("the stock of {0} changed concurrently; retry")]
    Contended(Sku),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    /// A failure shared by every caller of one single-flight load (see `catalog`).
    #[error(transparent)]
    Shared(Arc<InventoryError>),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl InventoryError {
    /// The mapping, by reference, so that a [`InventoryError::Shared`] failure maps exactly like
    /// the error it wraps.
    fn to_service_error(&self) -> ServiceError {
        match self {
            Self::InvalidInput(invalid) => ServiceError::invalid(invalid.field(), invalid.reason()),
            Self::ProductNotFound(_) | Self::ReservationNotFound(_) => {
                ServiceError::NotFound(self.to_string())
            }
            Self::InsufficientStock(_) | Self::ConflictingRetry(_) | Self::InvalidTransition(_) => {
                ServiceError::FailedPrecondition(self.to_string())
            }
            Self::Superseded(superseded) => superseded.clone().into(),
            Self::Contended(_) => ServiceError::Aborted(self.to_string()),
            Self::Store(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => {
                tracing::warn!(error = %self, "database unavailable");
                ServiceError::Unavailable("database unavailable".to_owned())
            }
            Self::Shared(inner) => inner.to_service_error(),
            Self::Store(_) | Self::Corrupt(_) => ServiceError::internal(self.to_string()),
        }
    }
}

impl From<InventoryError> for ServiceError {
    fn from(error: InventoryError) -> Self {
        match error {
            // Owned, so the cause chain reaches the log intact.
            InventoryError::Store(err) => err.into(),
            other => other.to_service_error(),
        }
    }
}

impl From<InventoryError> for tonic::Status {
    fn from(error: InventoryError) -> Self {
        ServiceError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ReservationStatus, Sku};
    use tonic::Code;

    fn sku() -> Sku {
        Sku::parse("MUG-1").unwrap()
    }

    fn order() -> OrderId {
        OrderId::parse("0190f5a4-7c1e-7b9a-8c2d-3e4f5a6b7c8d").unwrap()
    }

    #[test]
    fn failures_map_to_the_expected_codes() {
        let cases = [
            (
                InventoryError::InvalidInput(InvalidInput::new("sku", "is required")),
                Code::InvalidArgument,
            ),
            (InventoryError::ProductNotFound(sku()), Code::NotFound),
            (InventoryError::ReservationNotFound(order()), Code::NotFound),
            (
                InventoryError::InsufficientStock(InsufficientStock {
                    sku: sku(),
                    available: 1,
                    requested: 2,
                }),
                Code::FailedPrecondition,
            ),
            (
                InventoryError::ConflictingRetry(ConflictingRetry { order_id: order() }),
                Code::FailedPrecondition,
            ),
            (
                InventoryError::InvalidTransition(InvalidTransition {
                    order_id: order(),
                    status: ReservationStatus::Committed,
                    action: "released",
                }),
                Code::FailedPrecondition,
            ),
            (InventoryError::Contended(sku()), Code::Aborted),
            (
                InventoryError::Store(sqlx::Error::PoolTimedOut),
                Code::Unavailable,
            ),
            (
                InventoryError::Store(sqlx::Error::RowNotFound),
                Code::Internal,
            ),
            (InventoryError::Corrupt("status".into()), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(tonic::Status::from(error).code(), code);
        }
    }

    #[test]
    fn shared_failures_map_like_the_error_they_wrap() {
        let shared =
            InventoryError::Shared(Arc::new(InventoryError::Store(sqlx::Error::PoolTimedOut)));
        assert_eq!(tonic::Status::from(shared).code(), Code::Unavailable);
        let shared = InventoryError::Shared(Arc::new(InventoryError::ProductNotFound(sku())));
        assert_eq!(tonic::Status::from(shared).code(), Code::NotFound);
    }

    #[test]
    fn invalid_input_names_the_field_and_internal_errors_hide_their_cause() {
        let status = tonic::Status::from(InventoryError::InvalidInput(InvalidInput::new(
            "lines[1].quantity",
            "must be between 1 and 100",
        )));
        assert_eq!(
            status.message(),
            "lines[1].quantity: must be between 1 and 100"
        );
        let status = tonic::Status::from(InventoryError::Corrupt("secret detail".into()));
        assert_eq!(status.message(), "internal error");
    }
}
