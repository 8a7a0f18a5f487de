//! Everything that can go wrong in the {{name}} service, and what each failure means to a caller.

use platform::ServiceError;

use crate::domain::InvalidInput;

#[derive(Debug, thiserror::Error)]
pub enum {{Pascal}}Error {
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    #[error("record not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<{{Pascal}}Error> for ServiceError {
    fn from(error: {{Pascal}}Error) -> Self {
        match error {
            {{Pascal}}Error::InvalidInput(invalid) => {
                ServiceError::invalid(invalid.field(), invalid.reason())
            }
            {{Pascal}}Error::NotFound => ServiceError::NotFound(error.to_string()),
            {{Pascal}}Error::Store(err) => err.into(),
            {{Pascal}}Error::Corrupt(_) => ServiceError::internal(error),
        }
    }
}

impl From<{{Pascal}}Error> for tonic::Status {
    fn from(error: {{Pascal}}Error) -> Self {
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
                {{Pascal}}Error::InvalidInput(InvalidInput::new("reference", "is required")),
                Code::InvalidArgument,
            ),
            ({{Pascal}}Error::NotFound, Code::NotFound),
            ({{Pascal}}Error::Corrupt("reference".into()), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(tonic::Status::from(error).code(), code);
        }
    }

    #[test]
    fn invalid_input_names_the_field() {
        let status = tonic::Status::from({{Pascal}}Error::InvalidInput(InvalidInput::new(
            "reference",
            "is required",
        )));
        assert_eq!(status.message(), "reference: is required");
    }
}
