//! Everything that can go wrong in the users service, and what each failure means to a caller.

use platform::ServiceError;

use crate::{domain::InvalidInput, passwords::HashError};

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    #[error("email already registered")]
    EmailTaken,
    /// Deliberately vague: saying which of email or password was wrong would tell an attacker
    /// which addresses have accounts.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("user not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error("cannot sign the token: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<UsersError> for ServiceError {
    fn from(error: UsersError) -> Self {
        match error {
            UsersError::InvalidInput(invalid) => ServiceError::from(invalid),
            UsersError::Hashing(HashError::Busy) => {
                ServiceError::ResourceExhausted(HashError::Busy.to_string())
            }
            UsersError::EmailTaken => ServiceError::AlreadyExists(error.to_string()),
            UsersError::InvalidCredentials => ServiceError::Unauthenticated(error.to_string()),
            UsersError::NotFound => ServiceError::NotFound(error.to_string()),
            UsersError::Store(err) => err.into(),
            UsersError::Hashing(_) | UsersError::Signing(_) | UsersError::Corrupt(_) => {
                ServiceError::internal(error)
            }
        }
    }
}

impl From<UsersError> for tonic::Status {
    fn from(error: UsersError) -> Self {
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
                UsersError::InvalidInput(InvalidInput::new("email", "must contain '@'")),
                Code::InvalidArgument,
            ),
            (UsersError::EmailTaken, Code::AlreadyExists),
            (UsersError::InvalidCredentials, Code::Unauthenticated),
            (UsersError::NotFound, Code::NotFound),
            (UsersError::Corrupt("role".into()), Code::Internal),
            (
                UsersError::Hashing(HashError::Busy),
                Code::ResourceExhausted,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(tonic::Status::from(error).code(), code);
        }
    }

    #[test]
    fn invalid_input_names_the_field() {
        let status = tonic::Status::from(UsersError::InvalidInput(InvalidInput::new(
            "password",
            "must be at least 10 characters",
        )));
        assert_eq!(status.message(), "password: must be at least 10 characters");
    }
}
