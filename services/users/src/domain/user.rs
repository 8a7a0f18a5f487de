use time::OffsetDateTime;
use uuid::Uuid;

use super::{Email, InvalidInput};

/// What an account may do. Customers shop; admins also manage the catalog and stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    /// The spelling used in the database and in token claims.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "customer" => Some(Self::Customer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// How the storefront greets the user: 1 to 80 characters, trimmed, printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 80;

    /// Parses `raw`; an empty name defaults to the email's local part.
    pub fn parse_or_default(raw: &str, email: &Email) -> Result<Self, InvalidInput> {
        let trimmed = raw.trim();
        let name = if trimmed.is_empty() {
            email.local_part()
        } else {
            trimmed
        };
        if name.chars().count() > Self::MAX_CHARS {
            return Err(InvalidInput::DisplayName(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidInput::DisplayName(
                "must not contain control characters".to_owned(),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// Rebuilds a name read from the database, which only ever holds parsed names.
    pub fn from_trusted(name: String) -> Self {
        Self(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A registered account (without its password hash, which never leaves the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUIDv7: time-ordered, so new rows append to the primary-key index.
    pub id: Uuid,
    pub email: Email,
    pub display_name: DisplayName,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

impl User {
    /// A new account. Addresses listed in `admin_emails` get the admin role: this is how the
    /// first administrator of a fresh deployment is made.
    pub fn register(
        email: Email,
        display_name: DisplayName,
        admin_emails: &[Email],
        now: OffsetDateTime,
    ) -> Self {
        let role = if admin_emails.contains(&email) {
            Role::Admin
        } else {
            Role::Customer
        };
        Self {
            id: Uuid::now_v7(),
            email,
            display_name,
            role,
            // Postgres keeps microseconds: truncating here makes what we answer equal to what
            // a later read returns.
            created_at: now.replace_microsecond(now.microsecond()).unwrap_or(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    #[test]
    fn display_name_defaults_to_the_email_local_part() {
        let name = DisplayName::parse_or_default("  ", &email("ada@example.com")).unwrap();
        assert_eq!(name.as_str(), "ada");
        let name = DisplayName::parse_or_default(" Ada L. ", &email("ada@example.com")).unwrap();
        assert_eq!(name.as_str(), "Ada L.");
    }

    #[test]
    fn display_name_is_bounded_and_printable() {
        let e = email("ada@example.com");
        assert!(DisplayName::parse_or_default(&"n".repeat(81), &e).is_err());
        assert!(DisplayName::parse_or_default(&"n".repeat(80), &e).is_ok());
        let err = DisplayName::parse_or_default("Ada\u{0}", &e).unwrap_err();
        assert_eq!(err.field(), "display_name");
    }

    #[test]
    fn listed_addresses_register_as_admins() {
        let admins = [email("root@shop.test")];
        let now = OffsetDateTime::now_utc();
        let name = |e: &Email| DisplayName::parse_or_default("", e).unwrap();
        let admin = email("ROOT@shop.test");
        let customer = email("ada@shop.test");
        assert_eq!(
            User::register(admin.clone(), name(&admin), &admins, now).role,
            Role::Admin
        );
        assert_eq!(
            User::register(customer.clone(), name(&customer), &admins, now).role,
            Role::Customer
        );
    }

    #[test]
    fn ids_are_uuid_v7() {
        let e = email("ada@shop.test");
        let user = User::register(
            e.clone(),
            DisplayName::parse_or_default("", &e).unwrap(),
            &[],
            OffsetDateTime::now_utc(),
        );
        assert_eq!(user.id.get_version_num(), 7);
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Customer, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
