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
    /// This service is shedding load (a bounded queue is full); retrying shortly may succeed.
    /// The gateway answers 503 with `Retry-After`.
    #[error("{0}")]
    ResourceExhausted(String),
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
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
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

impl From<inputs::InvalidInput> for ServiceError {
    fn from(invalid: inputs::InvalidInput) -> Self {
        Self::invalid(invalid.field(), invalid.reason())
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        if database_unavailable(&error) {
            // The database is down, restarting or saturated. Callers may retry; it is not a bug.
            tracing::warn!(error = %error, "database unavailable");
            return Self::Unavailable("database unavailable".to_owned());
        }
        match error {
            sqlx::Error::Database(database) => from_sqlstate(database.as_ref())
                .unwrap_or_else(|| Self::Internal(Box::new(sqlx::Error::Database(database)))),
            other => Self::Internal(Box::new(other)),
        }
    }
}

/// Whether `error` says the database cannot be reached or cannot work right now, as opposed to
/// refusing this statement: no connection from the pool in time, a lost, refused or garbled
/// connection,
/// or SQLSTATE class 08 (connection exception), 53 (insufficient resources) and 57P01–57P03
/// (shutting down, crashed, not accepting connections yet). The one classifier behind both a
/// request's UNAVAILABLE and a consumer's pause (`messaging::HandlerError::Unavailable`).
pub fn database_unavailable(error: &sqlx::Error) -> bool {
    match error {
        // A connection that breaks mid-handshake (the server went away after accepting it)
        // shows up as a protocol error: a connection problem, not this statement's.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            matches!(&code[..2], "08" | "53")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// What an error the database reported means to the caller, by its SQLSTATE class.
///
/// A refusal of the *data* is an answer about the request, not a fault of the service: a NUL
/// byte Postgres cannot store in `TEXT` (22021), a value too long for its column (22001), a
/// duplicate key (23505) or a violated constraint (23xxx). Reported as INTERNAL, such a request
/// would count as an upstream failure in every caller's circuit breaker, and one client sending
/// it a few times would open the breaker for everyone. The input rules (`libs/inputs`) are meant
/// to refuse such values first; reaching this mapping means a rule is missing, so it is logged.
///
/// | SQLSTATE | meaning | code |
/// |---|---|---|
/// | class 22 | data exception: bad encoding, too long, out of range | INVALID_ARGUMENT |
/// | 23505 | unique violation | ALREADY_EXISTS |
/// | rest of class 23 | integrity constraint violation (check, foreign key, not null) | FAILED_PRECONDITION |
/// | 40001, 40P01 | serialization failure, deadlock: a concurrent writer won | ABORTED (retryable) |
/// | 57014 | statement cancelled (statement timeout) | DEADLINE_EXCEEDED |
/// | classes 08, 53, 57P01–57P03 | connection lost, resources exhausted, server shutting down | UNAVAILABLE |
///
/// Anything else (syntax errors, missing tables) is the service's own bug: INTERNAL.
fn from_sqlstate(database: &dyn sqlx::error::DatabaseError) -> Option<ServiceError> {
    let code = database.code()?;
    let column = database
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .and_then(|postgres| postgres.column())
        .unwrap_or("request")
        .to_owned();
    let constraint = database.constraint().unwrap_or("a constraint").to_owned();
    let refused = |code: &str| {
        tracing::warn!(
            sqlstate = code,
            error = database.message(),
            "the database refused a value that the input rules let through"
        );
    };
    let mapped = match (&code[..2], code.as_ref()) {
        ("22", code) => {
            refused(code);
            ServiceError::invalid(column, format!("cannot be stored: {}", database.message()))
        }
        (_, "23505") => {
            refused("23505");
            ServiceError::AlreadyExists(format!("already exists ({constraint})"))
        }
        ("23", code) => {
            refused(code);
            ServiceError::FailedPrecondition(format!(
                "the change breaks a rule of the stored data ({constraint})"
            ))
        }
        (_, "40001" | "40P01") => {
            ServiceError::Aborted("a concurrent change won; retry".to_owned())
        }
        (_, "57014") => {
            ServiceError::DeadlineExceeded("the database query was cancelled".to_owned())
        }
        _ => return None,
    };
    Some(mapped)
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
                ServiceError::ResourceExhausted("x".into()),
                Code::ResourceExhausted,
            ),
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
    fn data_and_constraint_errors_are_answers_about_the_request() {
        use tonic::Code::*;
        for (sqlstate, code) in [
            ("22021", InvalidArgument),
            ("22001", InvalidArgument),
            ("22003", InvalidArgument),
            ("23505", AlreadyExists),
            ("23503", FailedPrecondition),
            ("23514", FailedPrecondition),
            ("23502", FailedPrecondition),
            ("40001", Aborted),
            ("40P01", Aborted),
            ("57014", DeadlineExceeded),
            ("08006", Unavailable),
            ("53300", Unavailable),
            ("57P01", Unavailable),
        ] {
            let error = sqlx::Error::Database(Box::new(FakeDatabaseError(sqlstate)));
            assert_eq!(
                database_unavailable(&error),
                code == Unavailable,
                "{sqlstate}"
            );
            assert_eq!(ServiceError::from(error).code(), code, "{sqlstate}");
        }
        let missing_table = sqlx::Error::Database(Box::new(FakeDatabaseError("42P01")));
        assert_eq!(
            ServiceError::from(missing_table).code(),
            Internal,
            "a missing table is a bug"
        );
    }

    /// A database error with only a SQLSTATE, as any driver reports it.
    #[derive(Debug)]
    struct FakeDatabaseError(&'static str);

    impl std::fmt::Display for FakeDatabaseError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for FakeDatabaseError {}

    impl sqlx::error::DatabaseError for FakeDatabaseError {
        fn message(&self) -> &str {
            "refused"
        }

        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }

        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }

        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }

        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
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
