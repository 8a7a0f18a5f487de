//! [`InvalidInput`]: why a value was refused, naming the request field at fault.

/// Why an input was refused: the request field at fault (`sku`, `lines[2].quantity`) and what is
/// wrong with it. The gateway shows both to the client, in a 400 problem whose `field` member
/// is [`InvalidInput::field`]; the services answer INVALID_ARGUMENT with `"<field>: <reason>"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    field: String,
    reason: String,
}

impl InvalidInput {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The request field at fault.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The same problem, one level down: `quantity` inside `lines[2]` → `lines[2].quantity`.
    #[must_use]
    pub fn within(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            reason: self.reason,
        }
    }

    /// The same problem under another name, for a request whose field is spelt differently
    /// (the gateway's `Idempotency-Key` header is orders' `idempotency_key`).
    #[must_use]
    pub fn renamed(self, field: &str) -> Self {
        Self {
            field: field.to_owned(),
            reason: self.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_names_the_field_and_nests() {
        let err = InvalidInput::new("quantity", "must be at least 1").within("lines[2]");
        assert_eq!(err.field(), "lines[2].quantity");
        assert_eq!(err.reason(), "must be at least 1");
        assert_eq!(err.to_string(), "lines[2].quantity: must be at least 1");
        assert_eq!(err.renamed("other").field(), "other");
    }
}
