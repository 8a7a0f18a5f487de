use std::fmt;

use super::{Email, InvalidInput};

/// A password that passed the policy. Its `Debug` never shows the secret.
///
/// The policy follows NIST SP 800-63B: length is what matters, composition rules ("one digit,
/// one symbol") are not imposed, and passwords that are known-common or derived from the
/// account's own email are refused.
#[derive(Clone)]
pub struct Password(String);

pub const MIN_CHARS: usize = 10;
/// Bounded so a megabyte "password" cannot be used to burn hashing CPU.
pub const MAX_CHARS: usize = 128;
/// Four bytes per character: any 128 characters fit, nothing larger is counted.
pub const MAX_BYTES: usize = MAX_CHARS * 4;

/// A small deny-list of the most common passwords of at least MIN_CHARS characters.
const COMMON: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789012",
    "0987654321",
    "qwertyuiop",
    "1q2w3e4r5t",
    "password12",
    "password123",
    "password1234",
    "iloveyou12",
    "qwerty1234",
    "qwerty123456",
    "abcdefghij",
    "letmein123",
    "welcome123",
    "administrator",
    "football123",
    "passw0rd123",
];

impl Password {
    /// Checks `raw` against the policy for an account with address `email`.
    pub fn parse(raw: &str, email: &Email) -> Result<Self, InvalidInput> {
        let invalid = |reason: String| Err(InvalidInput::new("password", reason));
        if raw.len() > MAX_BYTES {
            return invalid(format!("must be at most {MAX_CHARS} characters"));
        }
        let chars = raw.chars().count();
        if chars < MIN_CHARS {
            return invalid(format!("must be at least {MIN_CHARS} characters"));
        }
        if chars > MAX_CHARS {
            return invalid(format!("must be at most {MAX_CHARS} characters"));
        }
        if raw.chars().any(char::is_control) {
            return invalid("must not contain control characters".to_owned());
        }
        let lowered = raw.to_lowercase();
        if COMMON.contains(&lowered.as_str()) {
            return invalid("is too common".to_owned());
        }
        let mut distinct: Vec<char> = lowered.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 4 {
            return invalid("must use more than three different characters".to_owned());
        }
        let local = email.local_part();
        if local.len() >= 4 && lowered.contains(local) {
            return invalid("must not contain the email address".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("grace.hopper@example.com").unwrap()
    }

    #[test]
    fn a_long_unremarkable_password_is_accepted() {
        let password = Password::parse("correct horse battery", &email()).unwrap();
        assert_eq!(password.expose(), "correct horse battery");
    }

    #[test]
    fn length_is_bounded_in_characters_not_bytes() {
        assert!(Password::parse("short", &email()).is_err());
        assert!(Password::parse("ünïcödé-ok", &email()).is_ok());
        assert!(Password::parse(&"x1y2".repeat(32), &email()).is_ok());
        assert!(Password::parse(&"x1y2".repeat(33), &email()).is_err());
    }

    #[test]
    fn common_and_repetitive_passwords_are_refused() {
        for raw in ["password123", "PASSWORD123", "aaaaaaaaaaaa", "abababababab"] {
            let err = Password::parse(raw, &email()).unwrap_err();
            assert_eq!(err.field(), "password", "{raw}");
        }
    }

    #[test]
    fn passwords_containing_the_email_are_refused() {
        let err = Password::parse("Grace.Hopper2026", &email()).unwrap_err();
        assert_eq!(err.reason(), "must not contain the email address");
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(Password::parse("tab\tinside-password", &email()).is_err());
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let password = Password::parse("correct horse battery", &email()).unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
    }
}
