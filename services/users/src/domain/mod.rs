//! The users domain: pure types and rules, no I/O.
//!
//! Inputs are parsed into types that can only hold valid values ("parse, don't validate"): once a
//! handler has an [`Email`] and a [`Password`], nothing downstream re-checks them, and a value that
//! skipped the checks cannot be constructed.

mod email;
mod password;
mod user;

pub use email::Email;
pub use password::Password;
pub use user::{DisplayName, Role, User};

/// Why an input was refused. Each variant names the request field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("email: {0}")]
    Email(String),
    #[error("password: {0}")]
    Password(String),
    #[error("display_name: {0}")]
    DisplayName(String),
    #[error("user_id: must be a UUID")]
    UserId,
}

impl InvalidInput {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Password(_) => "password",
            Self::DisplayName(_) => "display_name",
            Self::UserId => "user_id",
        }
    }

    /// What is wrong with it.
    pub fn reason(&self) -> String {
        match self {
            Self::Email(reason) | Self::Password(reason) | Self::DisplayName(reason) => {
                reason.clone()
            }
            Self::UserId => "must be a UUID".to_owned(),
        }
    }
}
