//! The one place where service errors become `tonic::Status`.
//!
//! Each service has its own `thiserror` enum for its domain ("email already registered",
//! "insufficient stock"); it converts that into a [`ServiceError`], which knows the gRPC code.
//! Keeping the mapping here means every service answers the same situation with the same code,
//! and the gateway can translate codes to HTTP statuses without knowing any service.
//!
//! Internal errors carry their cause for the log but never leak it to the caller.

use tonic::{Code, Status};

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed; `field` names the offending input (`email`, `lines[2].quantity`).
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well-formed but the current state forbids it (capture twice, refund more
    /// than captured).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A concurrent writer won (optimistic concurrency); the caller may retry.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A dependency is down or overloaded; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A bug or an unexpected failure. The cause is logged, the caller sees "internal error".
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Aborted(_) => Code::Aborted,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unavailable(_) => Code::Unavailable,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let code = error.code();
        match error {
            ServiceError::Internal(cause) => {
                tracing::error!(error = %cause, cause = ?cause, "internal error");
                Status::new(code, "internal error")
            }
            other => Status::new(code, other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // The pool could not hand out a connection in time: the database is down or
            // saturated. Callers may retry; it is not a bug.
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::warn!(error = %error, "database unavailable");
                Self::Unavailable("database unavailable".to_owned())
            }
            other => Self::Internal(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_maps_to_its_grpc_code() {
        let cases = [
            (ServiceError::invalid("email", "x"), Code::InvalidArgument),
            (ServiceError::NotFound("x".into()), Code::NotFound),
            (ServiceError::AlreadyExists("x".into()), Code::AlreadyExists),
            (
                ServiceError::FailedPrecondition("x".into()),
                Code::FailedPrecondition,
            ),
            (ServiceError::Aborted("x".into()), Code::Aborted),
            (
                ServiceError::Unauthenticated("x".into()),
                Code::Unauthenticated,
            ),
            (
                ServiceError::PermissionDenied("x".into()),
                Code::PermissionDenied,
            ),
            (ServiceError::Unavailable("x".into()), Code::Unavailable),
            (
                ServiceError::DeadlineExceeded("x".into()),
                Code::DeadlineExceeded,
            ),
            (ServiceError::internal("boom"), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(Status::from(error).code(), code);
        }
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let status = Status::from(ServiceError::invalid("email", "must contain '@'"));
        assert_eq!(status.message(), "email: must contain '@'");
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let status = Status::from(ServiceError::internal(
            "connection to 10.0.0.7 refused: password authentication failed",
        ));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn pool_timeouts_are_unavailable_not_internal() {
        assert_eq!(
            ServiceError::from(sqlx::Error::PoolTimedOut).code(),
            Code::Unavailable
        );
        assert_eq!(
            ServiceError::from(sqlx::Error::RowNotFound).code(),
            Code::Internal
        );
    }
}
