//! Conversions between the domain and its protobuf form.
//!
//! The same protobuf messages serve two readers: gRPC callers and the Redis cache, which stores
//! catalog entries exactly as `GetProduct`/`ListProducts` return them (compact, versioned by
//! the cache prefix, and decodable by anyone with the contracts). Decoding a cached entry parses
//! it again, so a corrupt or foreign entry is noticed instead of served.

use contracts::{Money, inventory as api};
use messaging::envelope::timestamp;
use time::OffsetDateTime;

use crate::domain::{
    CatalogItem, CatalogPage, Description, InvalidInput, PageToken, Price, Product, ProductName,
    Reservation, ReservationLine, ReservationStatus, Sku, StockLevel,
};

pub fn product(item: &CatalogItem) -> api::Product {
    let product = &item.product;
    api::Product {
        sku: product.sku.to_string(),
        name: product.name.as_str().to_owned(),
        description: product.description.as_str().to_owned(),
        price: Some(money(&product.price)),
        active: product.active,
        available: item.available,
        updated_at: Some(timestamp(product.updated_at)),
    }
}

pub fn money(price: &Price) -> Money {
    Money {
        amount_minor: price.amount_minor(),
        currency: price.currency().to_string(),
    }
}

pub fn page(page: &CatalogPage) -> api::ListProductsResponse {
    api::ListProductsResponse {
        products: page.items.iter().map(product).collect(),
        next_page_token: page
            .next
            .as_ref()
            .map(PageToken::encode)
            .unwrap_or_default(),
    }
}

pub fn stock(level: &StockLevel) -> api::StockLevel {
    api::StockLevel {
        sku: level.sku.to_string(),
        on_hand: level.on_hand,
        available: level.available,
        reserved: level.reserved,
        sold: level.sold,
    }
}

pub fn reservation(reservation: &Reservation) -> api::Reservation {
    let status = match reservation.status {
        ReservationStatus::Reserved => api::ReservationStatus::Reserved,
        ReservationStatus::Rejected => api::ReservationStatus::Rejected,
        ReservationStatus::Released => api::ReservationStatus::Released,
        ReservationStatus::Committed => api::ReservationStatus::Committed,
        ReservationStatus::Expired => api::ReservationStatus::Expired,
        ReservationStatus::Restocked => api::ReservationStatus::Restocked,
    };
    api::Reservation {
        order_id: reservation.order_id.to_string(),
        status: status.into(),
        lines: reservation.lines.iter().map(line).collect(),
        shortages: reservation
            .shortages
            .iter()
            .map(|shortage| api::ReservationLine {
                sku: shortage.sku.to_string(),
                quantity: shortage.available,
            })
            .collect(),
        expires_at: reservation.expires_at.map(timestamp),
    }
}

fn line(line: &ReservationLine) -> api::ReservationLine {
    api::ReservationLine {
        sku: line.sku.to_string(),
        quantity: line.quantity.get(),
    }
}

/// Reads a cached product back.
pub fn decode_product(message: api::Product) -> Result<CatalogItem, InvalidInput> {
    let price = message
        .price
        .ok_or_else(|| InvalidInput::new("price", "is missing"))?;
    let updated_at = message
        .updated_at
        .and_then(|at| {
            OffsetDateTime::from_unix_timestamp(at.seconds)
                .ok()?
                .replace_nanosecond(u32::try_from(at.nanos).ok()?)
                .ok()
        })
        .ok_or_else(|| InvalidInput::new("updated_at", "is missing or out of range"))?;
    Ok(CatalogItem {
        product: Product {
            sku: Sku::parse(&message.sku)?,
            name: ProductName::parse(&message.name)?,
            description: Description::parse(&message.description)?,
            price: Price::parse(price.amount_minor, &price.currency)?,
            active: message.active,
            updated_at,
        },
        available: message.available,
    })
}

/// Reads a cached page back.
pub fn decode_page(message: api::ListProductsResponse) -> Result<CatalogPage, InvalidInput> {
    Ok(CatalogPage {
        items: message
            .products
            .into_iter()
            .map(decode_product)
            .collect::<Result<_, _>>()?,
        next: PageToken::decode(&message.next_page_token)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> CatalogItem {
        CatalogItem {
            product: Product {
                sku: Sku::parse("MUG-1").unwrap(),
                name: ProductName::parse("Mug").unwrap(),
                description: Description::parse("A mug.\nDishwasher safe.").unwrap(),
                price: Price::parse(1299, "EUR").unwrap(),
                active: true,
                updated_at: OffsetDateTime::from_unix_timestamp(1_800_000_000)
                    .unwrap()
                    .replace_microsecond(123_456)
                    .unwrap(),
            },
            available: 7,
        }
    }

    #[test]
    fn products_round_trip_through_protobuf() {
        let encoded = product(&item());
        assert_eq!(encoded.price.as_ref().unwrap().currency, "EUR");
        assert_eq!(decode_product(encoded).unwrap(), item());
    }

    #[test]
    fn pages_round_trip_through_protobuf() {
        let page = CatalogPage {
            items: vec![item()],
            next: Some(PageToken::after(Sku::parse("MUG-1").unwrap())),
        };
        assert_eq!(decode_page(super::page(&page)).unwrap(), page);
        let last = CatalogPage {
            items: Vec::new(),
            next: None,
        };
        assert_eq!(super::page(&last).next_page_token, "");
        assert_eq!(decode_page(super::page(&last)).unwrap(), last);
    }

    #[test]
    fn corrupt_entries_are_refused() {
        let mut bad = product(&item());
        bad.sku = "not a sku".into();
        assert!(decode_product(bad).is_err());
        let mut no_price = product(&item());
        no_price.price = None;
        assert!(decode_product(no_price).is_err());
    }
}
