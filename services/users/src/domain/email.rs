use std::fmt;

use super::InvalidInput;

/// A normalised email address: trimmed and lower-cased, so `Ada@Example.COM ` and
/// `ada@example.com` are the same account.
///
/// The checks are deliberately modest (RFC 5321 lengths, one `@`, a dotted domain, no spaces):
/// the only real proof that an address works is a message delivered to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// RFC 5321 limits.
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let email = raw.trim().to_lowercase();
        let invalid = |reason: &str| Err(InvalidInput::new("email", reason));
        if email.is_empty() {
            return invalid("is required");
        }
        if email.len() > MAX_LEN {
            return invalid("must be at most 254 characters");
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid("must not contain spaces");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return invalid("must contain '@'");
        };
        if local.is_empty() || local.len() > MAX_LOCAL_LEN {
            return invalid("the part before '@' must be 1 to 64 characters");
        }
        if domain.contains('@') {
            return invalid("must contain exactly one '@'");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|label| label.is_empty()) {
            return invalid("the domain must look like example.com");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`, used as a default display name and by the password policy.
    pub fn local_part(&self) -> &str {
        self.0
            .split_once('@')
            .map_or(self.0.as_str(), |(local, _)| local)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
        assert_eq!(email.local_part(), "ada.lovelace");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for raw in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@exa@mple.com",
            "ada lovelace@example.com",
            "ada@example..com",
            "ada@.example.com",
        ] {
            let err = Email::parse(raw).unwrap_err();
            assert_eq!(err.field(), "email", "{raw:?}");
        }
    }

    #[test]
    fn lengths_follow_rfc_5321() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
        let long_total = format!("a@{}.com", "b".repeat(250));
        assert!(Email::parse(&long_total).is_err());
        let longest_local = format!("{}@example.com", "a".repeat(64));
        assert!(Email::parse(&longest_local).is_ok());
    }
}
