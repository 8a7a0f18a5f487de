//! Products: what the shop sells and at what price.
//!
//! The value types (SKU, name, description, price, currency) are the shared input rules of
//! `libs/inputs`: the gateway checks an admin's product with the same rules before the request
//! reaches this service.

use time::OffsetDateTime;

use super::InvalidInput;

pub use inputs::{Currency, Description, Price, ProductName, Sku};

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
                ProductDraft::parse("MUG-1", "Mug", "", Some((0, "EUR")), true),
                "price.amount_minor",
            ),
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
