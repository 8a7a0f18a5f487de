//! Products: what the shop sells and at what price.

use std::fmt;

use time::OffsetDateTime;

use super::InvalidInput;

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

/// What the storefront shows: 1 to 200 characters, trimmed, printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        let invalid = |reason: &str| Err(InvalidInput::new("name", reason));
        if name.is_empty() {
            return invalid("is required");
        }
        if name.chars().count() > Self::MAX_CHARS {
            return invalid("must be at most 200 characters");
        }
        if name.chars().any(char::is_control) {
            return invalid("must not contain control characters");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text of at most 2000 characters; may be empty and may span lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let text = raw.trim();
        let invalid = |reason: &str| Err(InvalidInput::new("description", reason));
        if text.chars().count() > Self::MAX_CHARS {
            return invalid("must be at most 2000 characters");
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return invalid("must not contain control characters other than newlines and tabs");
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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

/// A price: integer minor units (cents) of a currency. Never a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    amount_minor: i64,
    currency: Currency,
}

impl Price {
    /// Errors name `price.amount_minor` or `price.currency`.
    pub fn parse(amount_minor: i64, currency: &str) -> Result<Self, InvalidInput> {
        if amount_minor < 0 {
            return Err(InvalidInput::new(
                "price.amount_minor",
                "must not be negative",
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

/// What an admin submits with `UpsertProduct`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDraft {
    pub sku: Sku,
    pub name: ProductName,
    pub description: Description,
    pub price: Price,
    pub active: bool,
}

impl ProductDraft {
    /// Parses every field; the first invalid one is reported, by name. `price` is `None` when
    /// the request carried no price at all.
    pub fn parse(
        sku: &str,
        name: &str,
        description: &str,
        price: Option<(i64, &str)>,
        active: bool,
    ) -> Result<Self, InvalidInput> {
        let sku = Sku::parse(sku)?;
        let name = ProductName::parse(name)?;
        let description = Description::parse(description)?;
        let Some((amount_minor, currency)) = price else {
            return Err(InvalidInput::new("price", "is required"));
        };
        Ok(Self {
            sku,
            name,
            description,
            price: Price::parse(amount_minor, currency)?,
            active,
        })
    }
}

/// A stored product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: Sku,
    pub name: ProductName,
    pub description: Description,
    pub price: Price,
    pub active: bool,
    pub updated_at: OffsetDateTime,
}

/// A product as the catalog shows it: with the units that can still be reserved. This is what
/// `GetProduct` and `ListProducts` return and what the cache holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogItem {
    pub product: Product,
    pub available: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_upper_case_digits_and_dashes() {
        for ok in ["MUG", "MUG-CERAMIC-350", "A1-B2", &"X".repeat(64)] {
            assert_eq!(Sku::parse(ok).unwrap().as_str(), ok);
        }
        for (raw, reason) in [
            ("", "is required"),
            ("AB", "must be 3 to 64 characters"),
            (&"X".repeat(65), "must be 3 to 64 characters"),
            ("mug-1", "may only contain A-Z, 0-9 and '-'"),
            ("MUG 1", "may only contain A-Z, 0-9 and '-'"),
            (" MUG", "may only contain A-Z, 0-9 and '-'"),
            ("MUG_1", "may only contain A-Z, 0-9 and '-'"),
            ("MÜG", "may only contain A-Z, 0-9 and '-'"),
        ] {
            let err = Sku::parse(raw).unwrap_err();
            assert_eq!(err.field(), "sku", "{raw:?}");
            assert_eq!(err.reason(), reason, "{raw:?}");
        }
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(ProductName::parse("  Mug ").unwrap().as_str(), "Mug");
        assert!(
            ProductName::parse(&"é".repeat(200)).is_ok(),
            "characters, not bytes"
        );
        for raw in ["", "   ", &"n".repeat(201), "Mug\u{7}"] {
            assert_eq!(
                ProductName::parse(raw).unwrap_err().field(),
                "name",
                "{raw:?}"
            );
        }
    }

    #[test]
    fn descriptions_may_be_empty_and_multiline_but_bounded() {
        assert_eq!(Description::parse("").unwrap().as_str(), "");
        assert!(Description::parse("line one\nline two\tindented").is_ok());
        assert!(Description::parse(&"d".repeat(2000)).is_ok());
        assert_eq!(
            Description::parse(&"d".repeat(2001)).unwrap_err().field(),
            "description"
        );
        assert!(Description::parse("bell\u{7}").is_err());
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        for raw in ["", "eur", "EU", "EURO", "E1R", "€UR"] {
            assert!(Currency::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn prices_are_non_negative_minor_units() {
        let price = Price::parse(1299, "EUR").unwrap();
        assert_eq!(price.amount_minor(), 1299);
        assert_eq!(price.currency().as_str(), "EUR");
        assert!(Price::parse(0, "EUR").is_ok(), "free is allowed");
        assert_eq!(
            Price::parse(-1, "EUR").unwrap_err().field(),
            "price.amount_minor"
        );
        assert_eq!(
            Price::parse(100, "euro").unwrap_err().field(),
            "price.currency"
        );
    }

    #[test]
    fn a_draft_reports_its_first_invalid_field() {
        let ok = ProductDraft::parse("MUG-1", "Mug", "", Some((500, "EUR")), true).unwrap();
        assert_eq!(ok.sku.as_str(), "MUG-1");
        let cases = [
            (
                ProductDraft::parse("m", "Mug", "", Some((500, "EUR")), true),
                "sku",
            ),
            (
                ProductDraft::parse("MUG-1", "", "", Some((500, "EUR")), true),
                "name",
            ),
            (
                ProductDraft::parse("MUG-1", "Mug", &"d".repeat(2001), Some((1, "EUR")), true),
                "description",
            ),
            (ProductDraft::parse("MUG-1", "Mug", "", None, true), "price"),
            (
                ProductDraft::parse("MUG-1", "Mug", "", Some((-5, "EUR")), true),
                "price.amount_minor",
            ),
            (
                ProductDraft::parse("MUG-1", "Mug", "", Some((5, "")), true),
                "price.currency",
            ),
        ];
        for (result, field) in cases {
            assert_eq!(result.unwrap_err().field(), field);
        }
    }
}
