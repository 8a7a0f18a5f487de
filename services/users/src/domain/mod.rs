//! The users domain: pure types and rules, no I/O.
//!
//! Inputs are parsed into types that can only hold valid values ("parse, don't validate"): once a
//! handler has an [`Email`] and a [`Password`], nothing downstream re-checks them, and a value that
//! skipped the checks cannot be constructed.

mod email;
pub mod password;
mod user;

pub use email::Email;
pub use password::Password;
pub use user::{DisplayName, Role, User, display_name};

/// Why an input was refused, naming the request field: the one error type of every layer (see
/// `libs/inputs`).
pub use inputs::InvalidInput;
