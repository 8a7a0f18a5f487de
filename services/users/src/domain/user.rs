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

/// How the storefront greets the user: the shared rule of `inputs::DisplayName` (1 to 80
/// characters, one line).
pub use inputs::DisplayName;

/// The display name an account registers with: `raw` if given, else the email's local part.
pub fn display_name(raw: &str, email: &Email) -> Result<DisplayName, InvalidInput> {
    if raw.trim().is_empty() {
        DisplayName::parse(email.local_part())
    } else {
        DisplayName::parse(raw)
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
    /// A new customer account. Registration never grants the admin role: whoever registered a
    /// privileged address first would get it. Administrators are made out of band, by an
    /// operator (`users admin grant EMAIL`, see `crate::admin`).
    pub fn register(email: Email, display_name: DisplayName, now: OffsetDateTime) -> Self {
        let role = Role::Customer;
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
        let name = display_name("  ", &email("ada@example.com")).unwrap();
        assert_eq!(name.as_str(), "ada");
        let name = display_name(" Ada L. ", &email("ada@example.com")).unwrap();
        assert_eq!(name.as_str(), "Ada L.");
    }

    #[test]
    fn display_name_is_bounded_and_printable() {
        let e = email("ada@example.com");
        assert!(display_name(&"n".repeat(81), &e).is_err());
        assert!(display_name(&"n".repeat(80), &e).is_ok());
        let err = display_name("Ada\u{0}", &e).unwrap_err();
        assert_eq!(err.field(), "display_name");
    }

    #[test]
    fn registration_makes_customers_only() {
        let e = email("admin@shop.test");
        let user = User::register(
            e.clone(),
            display_name("", &e).unwrap(),
            OffsetDateTime::now_utc(),
        );
        assert_eq!(user.role, Role::Customer);
    }

    #[test]
    fn ids_are_uuid_v7() {
        let e = email("ada@shop.test");
        let user = User::register(
            e.clone(),
            display_name("", &e).unwrap(),
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
