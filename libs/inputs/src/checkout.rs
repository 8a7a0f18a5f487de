//! What a customer sends to check out: lines of SKUs and quantities, a payment method token, an
//! idempotency key, and (to cancel) a reason.

use std::{collections::HashSet, fmt};

use crate::{InvalidInput, Sku, TextRule, catalog::bounded_text};

/// The most lines one order may have.
pub const MAX_LINES: usize = 50;

/// Units of one order line: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i64);

impl Quantity {
    pub const MAX: i64 = 100;

    pub fn parse(raw: i64) -> Result<Self, InvalidInput> {
        if (1..=Self::MAX).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(InvalidInput::new(
                "quantity",
                format!("must be between 1 and {}", Self::MAX),
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The lines of an order: 1 to [`MAX_LINES`], each a [`Sku`] and a [`Quantity`], no SKU twice
/// (one line per product: a retry compares lines, and two lines of one SKU would reserve it
/// twice). Errors name the line: `lines[3].quantity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLines(Vec<(Sku, Quantity)>);

impl OrderLines {
    pub fn parse<'a>(
        lines: impl ExactSizeIterator<Item = (&'a str, i64)>,
    ) -> Result<Self, InvalidInput> {
        if lines.len() == 0 {
            return Err(InvalidInput::new(
                "lines",
                "an order needs at least one line",
            ));
        }
        if lines.len() > MAX_LINES {
            return Err(InvalidInput::new(
                "lines",
                format!("at most {MAX_LINES} lines per order"),
            ));
        }
        let mut seen = HashSet::new();
        let mut parsed = Vec::with_capacity(lines.len());
        for (index, (sku, quantity)) in lines.enumerate() {
            let at = format!("lines[{index}]");
            let sku = Sku::parse(sku).map_err(|err| err.within(&at))?;
            let quantity = Quantity::parse(quantity).map_err(|err| err.within(&at))?;
            if !seen.insert(sku.clone()) {
                return Err(InvalidInput::new(
                    format!("{at}.sku"),
                    "appears twice; combine the quantities",
                ));
            }
            parsed.push((sku, quantity));
        }
        Ok(Self(parsed))
    }

    /// The lines, in the order they were given.
    pub fn lines(&self) -> &[(Sku, Quantity)] {
        &self.0
    }
}

/// A card token the payment provider understands (`tok_visa_approve`): 1 to 100 printable
/// ASCII characters, no spaces.
///
/// Opaque to every service: never parsed beyond that. The same rule at the gateway, in orders
/// (which stores it with the order) and in payments (which hands it to the provider) means a
/// token that reached the saga is one payments will take; before the rule was shared, a token
/// with a space passed the first two and was refused by the third, after stock was reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod(String);

impl PaymentMethod {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        printable_token("payment_method", raw, Self::MAX_CHARS).map(|token| Self(token.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The client's key for a PlaceOrder: the same key returns the same order instead of a second
/// one. 1 to 128 printable ASCII characters, no spaces (a UUID is the usual choice).
///
/// ASCII because it travels as the `Idempotency-Key` HTTP header, and printable so that it can
/// be logged and compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        printable_token("idempotency_key", raw, Self::MAX_CHARS).map(|key| Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Trimmed; 1 to `max` bytes, every one printable ASCII (`!` to `~`).
fn printable_token<'a>(field: &str, raw: &'a str, max: usize) -> Result<&'a str, InvalidInput> {
    let token = raw.trim();
    if token.is_empty() {
        return Err(InvalidInput::new(field, "is required"));
    }
    if token.len() > max || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidInput::new(
            field,
            format!("must be 1 to {max} printable ASCII characters without spaces"),
        ));
    }
    Ok(token)
}

bounded_text!(
    /// Why a customer cancels a confirmed order: at most 200 characters; empty means the
    /// default, `customer_request`.
    CancelReason,
    TextRule::required("reason", 200).optional()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_one_to_a_hundred() {
        assert_eq!(Quantity::parse(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse(100).unwrap().get(), 100);
        for bad in [0, -1, 101, i64::MIN, i64::MAX] {
            assert_eq!(Quantity::parse(bad).unwrap_err().field(), "quantity");
        }
    }

    #[test]
    fn order_lines_are_bounded_distinct_and_name_their_index() {
        let parse = |lines: &[(&str, i64)]| OrderLines::parse(lines.iter().copied());
        assert_eq!(
            parse(&[("MUG-1", 2), ("TEA-1", 1)]).unwrap().lines().len(),
            2
        );
        assert_eq!(parse(&[]).unwrap_err().field(), "lines");
        assert_eq!(
            parse(&[("MUG-1", 1), ("TEA-1", 0)]).unwrap_err().field(),
            "lines[1].quantity"
        );
        assert_eq!(parse(&[("mug", 1)]).unwrap_err().field(), "lines[0].sku");
        assert_eq!(
            parse(&[("MUG-1", 1), ("MUG-1", 2)]).unwrap_err().field(),
            "lines[1].sku"
        );
        let many: Vec<String> = (0..=MAX_LINES).map(|i| format!("SKU-{i}")).collect();
        let too_many = OrderLines::parse(many.iter().map(|sku| (sku.as_str(), 1)));
        assert_eq!(too_many.unwrap_err().field(), "lines");
    }

    #[test]
    fn payment_methods_are_short_printable_tokens() {
        assert_eq!(
            PaymentMethod::parse(" tok_visa_approve ").unwrap().as_str(),
            "tok_visa_approve"
        );
        for raw in [
            "",
            "   ",
            "tok visa",
            "tok\u{0}visa",
            "tok_é",
            &"x".repeat(101),
        ] {
            let err = PaymentMethod::parse(raw).unwrap_err();
            assert_eq!(err.field(), "payment_method", "{raw:?}");
        }
    }

    #[test]
    fn idempotency_keys_are_printable_ascii_of_at_most_128() {
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
        for raw in ["", "a b", "ключ", &"k".repeat(129), "k\u{7f}"] {
            let err = IdempotencyKey::parse(raw).unwrap_err();
            assert_eq!(err.field(), "idempotency_key", "{raw:?}");
        }
    }

    #[test]
    fn cancel_reasons_are_optional_bounded_text() {
        assert_eq!(CancelReason::parse("").unwrap().as_str(), "");
        assert_eq!(
            CancelReason::parse("changed my mind").unwrap().as_str(),
            "changed my mind"
        );
        assert_eq!(CancelReason::parse("\u{0}").unwrap_err().field(), "reason");
    }
}
