//! The {{name}} domain: pure types and rules, no I/O.
//!
//! A [`Record`] is created once per [`Reference`]: the reference is the caller's key (an order
//! id, a request id), so creating the same reference again is not a second record but the first
//! one found again (the store's `UNIQUE (reference)` makes that hold under concurrency too).
//!
//! Inputs are parsed into types that can only hold valid values, so the rest of the service
//! never sees a blank or oversized reference. This is the place for the service's own rules:
//! each one a function of values in, a decision out, with its unit test beside it.

use time::OffsetDateTime;
use uuid::Uuid;

/// Why an input was refused, naming the request field at fault: the one error type of every
/// layer (see `libs/inputs`).
pub use inputs::InvalidInput;

/// The longest reference accepted (the migration's `CHECK` says the same).
pub const MAX_REFERENCE_LEN: usize = 128;

/// What a record is keyed by: 1 to [`MAX_REFERENCE_LEN`] printable characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference(String);

impl Reference {
    /// Parses the `reference` field of a request (or an event's aggregate id).
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InvalidInput::new("reference", "is required"));
        }
        if trimmed.chars().count() > MAX_REFERENCE_LEN {
            return Err(InvalidInput::new(
                "reference",
                format!("must be at most {MAX_REFERENCE_LEN} characters"),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "reference",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One record of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: Uuid,
    pub reference: Reference,
    pub created_at: OffsetDateTime,
}

impl Record {
    /// A new record for `reference`, with an id and time the caller chose.
    pub fn new(id: Uuid, reference: Reference, created_at: OffsetDateTime) -> Self {
        Self {
            id,
            reference,
            created_at,
        }
    }
}

/// Parses a UUID field (`id`).
pub fn parse_id(field: &'static str, raw: &str) -> Result<Uuid, InvalidInput> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(InvalidInput::new(field, "is required"));
    }
    Uuid::parse_str(raw).map_err(|_| InvalidInput::new(field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_trimmed_and_bounded() {
        assert_eq!(Reference::parse("  ref-1 ").unwrap().as_str(), "ref-1");
        let longest = "r".repeat(MAX_REFERENCE_LEN);
        assert_eq!(Reference::parse(&longest).unwrap().as_str(), longest);
        for (raw, reason) in [
            ("", "is required"),
            ("   ", "is required"),
            (&*"r".repeat(MAX_REFERENCE_LEN + 1), "must be at most 128 characters"),
            ("a\nb", "must not contain control characters"),
        ] {
            let err = Reference::parse(raw).unwrap_err();
            assert_eq!(err.field(), "reference", "{raw:?}");
            assert_eq!(err.reason(), reason, "{raw:?}");
        }
    }

    #[test]
    fn ids_must_be_uuids() {
        let id = Uuid::now_v7();
        assert_eq!(parse_id("id", &format!(" {id} ")).unwrap(), id);
        assert_eq!(parse_id("id", "").unwrap_err().to_string(), "id: is required");
        assert_eq!(
            parse_id("id", "42").unwrap_err().to_string(),
            "id: must be a UUID"
        );
    }
}
