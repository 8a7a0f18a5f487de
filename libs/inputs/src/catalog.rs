//! What the catalog is made of: SKUs, prices, names, descriptions, stock adjustments, search.

use std::fmt;

use crate::{InvalidInput, TextRule};

/// Stock keeping unit: the product's business key, e.g. `MUG-CERAMIC-350`.
///
/// 3 to 64 characters of `A-Z`, `0-9` and `-`. SKUs are not normalised (no trimming, no
/// upper-casing): they are machine keys compared byte for byte everywhere, including in the
/// idempotency check of reservations, so a near-miss is refused rather than guessed at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sku(String);

impl Sku {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = |reason: &str| Err(InvalidInput::new("sku", reason));
        if raw.is_empty() {
            return invalid("is required");
        }
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&raw.len()) {
            return invalid("must be 3 to 64 characters");
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            return invalid("may only contain A-Z, 0-9 and '-'");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 4217 alphabetic currency code: exactly three upper-case ASCII letters (`EUR`).
///
/// Whether the code is actually assigned by ISO is not checked: that list changes, and the price
/// is only ever displayed and summed per currency, never converted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        if raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidInput::new(
                "currency",
                "must be an ISO 4217 code of three upper-case letters, e.g. EUR",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A price: integer minor units (cents) of a currency, never a float.
///
/// **Greater than zero**: payments authorizes only positive amounts, so a free product could be
/// listed but never bought. At most [`Price::MAX_MINOR`], so that a full order (50 lines of 100
/// units) cannot overflow an `i64` total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    amount_minor: i64,
    currency: Currency,
}

impl Price {
    /// 100 million in major units.
    pub const MAX_MINOR: i64 = 10_000_000_000;

    /// Errors name `price.amount_minor` or `price.currency`.
    pub fn parse(amount_minor: i64, currency: &str) -> Result<Self, InvalidInput> {
        if !(1..=Self::MAX_MINOR).contains(&amount_minor) {
            return Err(InvalidInput::new(
                "price.amount_minor",
                format!("must be between 1 and {}", Self::MAX_MINOR),
            ));
        }
        let currency = Currency::parse(currency).map_err(|err| err.within("price"))?;
        Ok(Self {
            amount_minor,
            currency,
        })
    }

    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }
}

/// Declares a text newtype whose only constructor applies one [`TextRule`].
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name(String);

        impl $name {
            /// The rule every layer applies to this field.
            pub const RULE: TextRule = $rule;

            pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
                Self::RULE.parse(raw).map(|text| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Rebuilds a value read back from storage, which only ever holds parsed values.
            pub fn from_trusted(text: String) -> Self {
                Self(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use bounded_text;

bounded_text!(
    /// What the storefront shows: 1 to 200 characters, one line.
    ProductName,
    TextRule::required("name", 200)
);

bounded_text!(
    /// Free text of at most 2000 characters; may be empty and may span lines.
    Description,
    TextRule::required("description", 2000).optional().multiline()
);

bounded_text!(
    /// Why stock was adjusted, for the audit trail: 1 to 200 characters.
    AdjustmentReason,
    TextRule::required("reason", 200)
);

bounded_text!(
    /// The case-insensitive text filter over name and description: at most 100 characters;
    /// empty means no filter.
    SearchText,
    TextRule::required("query", 100).optional()
);

/// Units added (positive) or written off (negative) by an admin: never zero, at most a million
/// either way (a bound on typos, not on warehouses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockDelta(i64);

impl StockDelta {
    pub const MAX_ABS: i64 = 1_000_000;

    pub fn parse(raw: i64) -> Result<Self, InvalidInput> {
        if raw == 0 {
            return Err(InvalidInput::new("delta", "must not be zero"));
        }
        if !(-Self::MAX_ABS..=Self::MAX_ABS).contains(&raw) {
            return Err(InvalidInput::new(
                "delta",
                "must be between -1000000 and 1000000",
            ));
        }
        Ok(Self(raw))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_upper_case_machine_keys() {
        assert_eq!(
            Sku::parse("MUG-CERAMIC-350").unwrap().as_str(),
            "MUG-CERAMIC-350"
        );
        for bad in [
            "",
            "AB",
            "mug-1",
            " MUG-1",
            "MUG_1",
            "MUG\u{0}1",
            &"A".repeat(65),
        ] {
            assert_eq!(Sku::parse(bad).unwrap_err().field(), "sku", "{bad:?}");
        }
    }

    #[test]
    fn prices_are_positive_bounded_minor_units_of_a_currency() {
        let price = Price::parse(1250, "EUR").unwrap();
        assert_eq!(
            (price.amount_minor(), price.currency().as_str()),
            (1250, "EUR")
        );
        for amount in [0, -1, Price::MAX_MINOR + 1] {
            assert_eq!(
                Price::parse(amount, "EUR").unwrap_err().field(),
                "price.amount_minor"
            );
        }
        assert_eq!(
            Price::parse(1, "eur").unwrap_err().field(),
            "price.currency"
        );
    }

    #[test]
    fn the_largest_order_of_the_largest_prices_fits_an_i64() {
        let lines = i64::try_from(crate::MAX_LINES).unwrap();
        assert!(
            Price::MAX_MINOR
                .checked_mul(crate::Quantity::MAX)
                .and_then(|line| line.checked_mul(lines))
                .is_some()
        );
    }

    #[test]
    fn texts_apply_their_rules() {
        assert_eq!(ProductName::parse(" Mug ").unwrap().as_str(), "Mug");
        assert_eq!(ProductName::parse("").unwrap_err().field(), "name");
        assert_eq!(Description::parse("").unwrap().as_str(), "");
        assert!(Description::parse("two\nlines").is_ok());
        assert_eq!(
            AdjustmentReason::parse("\u{0}").unwrap_err().field(),
            "reason"
        );
        assert_eq!(
            SearchText::parse(&"x".repeat(101)).unwrap_err().field(),
            "query"
        );
    }

    #[test]
    fn deltas_are_non_zero_and_bounded() {
        assert_eq!(StockDelta::parse(-3).unwrap().get(), -3);
        assert!(StockDelta::parse(1_000_000).is_ok());
        for raw in [0, 1_000_001, -1_000_001, i64::MIN] {
            assert_eq!(
                StockDelta::parse(raw).unwrap_err().field(),
                "delta",
                "{raw}"
            );
        }
    }
}
