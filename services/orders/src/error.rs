//! Everything that can go wrong in the orders service, and what each failure means to a caller.

use platform::ServiceError;

use crate::domain::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    #[error("order not found")]
    NotFound,
    /// The idempotency key was used for a different order.
    #[error("{0}")]
    KeyReused(String),
    #[error("{0}")]
    NotCancellable(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A participant (inventory) could not be asked; the caller may retry.
    #[error("{0}")]
    Upstream(tonic::Status),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A watch ended before the order settled, because this replica is stopping; the caller
    /// watches again (another replica) after the last step it received.
    #[error("{0}")]
    Stopping(String),
    /// A watch reached the caller's deadline before the order settled.
    #[error("{0}")]
    DeadlineExceeded(String),
}

impl From<OrdersError> for ServiceError {
    fn from(error: OrdersError) -> Self {
        match error {
            OrdersError::InvalidInput(invalid) => ServiceError::from(invalid),
            OrdersError::NotFound => ServiceError::NotFound(error.to_string()),
            OrdersError::KeyReused(message) | OrdersError::NotCancellable(message) => {
                ServiceError::FailedPrecondition(message)
            }
            OrdersError::Conflict(message) => ServiceError::Aborted(message),
            OrdersError::Upstream(status) => {
                ServiceError::Unavailable(format!("inventory unavailable: {}", status.message()))
            }
            OrdersError::Store(err) => err.into(),
            OrdersError::Corrupt(_) => ServiceError::internal(error),
            OrdersError::Stopping(message) => ServiceError::Unavailable(message),
            OrdersError::DeadlineExceeded(message) => ServiceError::DeadlineExceeded(message),
        }
    }
}

impl From<OrdersError> for tonic::Status {
    fn from(error: OrdersError) -> Self {
        ServiceError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn failures_map_to_the_expected_codes() {
        let cases = [
            (
                OrdersError::InvalidInput(InvalidInput::new("lines", "empty")),
                Code::InvalidArgument,
            ),
            (OrdersError::NotFound, Code::NotFound),
            (OrdersError::KeyReused("x".into()), Code::FailedPrecondition),
            (
                OrdersError::NotCancellable("x".into()),
                Code::FailedPrecondition,
            ),
            (OrdersError::Conflict("x".into()), Code::Aborted),
            (
                OrdersError::Upstream(tonic::Status::unavailable("down")),
                Code::Unavailable,
            ),
            (OrdersError::Corrupt("x".into()), Code::Internal),
            (OrdersError::Stopping("x".into()), Code::Unavailable),
            (
                OrdersError::DeadlineExceeded("x".into()),
                Code::DeadlineExceeded,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(tonic::Status::from(error).code(), code);
        }
    }
}
