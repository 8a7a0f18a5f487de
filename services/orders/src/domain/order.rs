//! Orders: what a customer may place, and how it is priced.
//!
//! Prices never come from the client: [`OrderRequest::price`] takes the catalog's prices,
//! looked up server-side, and the order keeps them as they were at placement time.

use inputs::{IdempotencyKey, OrderLines, PaymentMethod};
use uuid::Uuid;

use super::InvalidInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "PENDING" => Some(Self::Pending),
            "CONFIRMED" => Some(Self::Confirmed),
            "CANCELLED" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// Why an order ended CANCELLED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    OutOfStock,
    PaymentDeclined,
    /// The saga passed its deadline and compensated.
    Timeout,
    /// A participant refused a step for a reason retrying cannot fix.
    Failed,
    /// The customer cancelled a confirmed order.
    CustomerRequest,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfStock => "out_of_stock",
            Self::PaymentDeclined => "payment_declined",
            Self::Timeout => "saga_timeout",
            Self::Failed => "saga_failed",
            Self::CustomerRequest => "customer_request",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::OutOfStock,
            Self::PaymentDeclined,
            Self::Timeout,
            Self::Failed,
            Self::CustomerRequest,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == raw)
    }
}

/// One requested line, before pricing: a SKU and a quantity that passed the shared rules
/// (`inputs::Sku`, `inputs::Quantity`), kept as the plain values the store and the wire use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub sku: String,
    pub quantity: i64,
}

/// A validated PlaceOrder request. Every field follows the shared input rules (`libs/inputs`),
/// the same ones the gateway applies and payments applies to the payment method, so a request
/// accepted here cannot be refused by a later layer for its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub customer_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub payment_method: PaymentMethod,
    pub idempotency_key: IdempotencyKey,
}

impl OrderRequest {
    pub fn parse(
        customer_id: &str,
        lines: Vec<(String, i64)>,
        payment_method: &str,
        idempotency_key: &str,
    ) -> Result<Self, InvalidInput> {
        let customer_id = Uuid::parse_str(customer_id.trim())
            .map_err(|_| InvalidInput::new("customer_id", "must be a UUID"))?;
        let parsed = OrderLines::parse(
            lines
                .iter()
                .map(|(sku, quantity)| (sku.as_str(), *quantity)),
        )?
        .lines()
        .iter()
        .map(|(sku, quantity)| OrderLine {
            sku: sku.as_str().to_owned(),
            quantity: quantity.get(),
        })
        .collect();
        let payment_method = PaymentMethod::parse(payment_method)?;
        let idempotency_key = IdempotencyKey::parse(idempotency_key)?;
        Ok(Self {
            customer_id,
            lines: parsed,
            payment_method,
            idempotency_key,
        })
    }

    /// Prices every line with `catalog` (sku → name, unit price, currency), all in one currency.
    pub fn price(
        &self,
        catalog: impl Fn(&str) -> Option<(String, i64, String)>,
    ) -> Result<NewOrder, InvalidInput> {
        let mut currency: Option<String> = None;
        let mut lines = Vec::with_capacity(self.lines.len());
        let mut total: i64 = 0;
        for (index, line) in self.lines.iter().enumerate() {
            let (name, unit_price_minor, line_currency) = catalog(&line.sku).ok_or_else(|| {
                InvalidInput::new(format!("lines[{index}].sku"), "no such product for sale")
            })?;
            match &currency {
                None => currency = Some(line_currency),
                Some(existing) if *existing != line_currency => {
                    return Err(InvalidInput::new(
                        format!("lines[{index}].sku"),
                        "priced in another currency than the rest of the order",
                    ));
                }
                Some(_) => {}
            }
            let line_total = unit_price_minor
                .checked_mul(line.quantity)
                .ok_or_else(|| InvalidInput::new(format!("lines[{index}]"), "total too large"))?;
            total = total
                .checked_add(line_total)
                .ok_or_else(|| InvalidInput::new("lines", "order total too large"))?;
            lines.push(PricedLine {
                sku: line.sku.clone(),
                name,
                quantity: line.quantity,
                unit_price_minor,
            });
        }
        Ok(NewOrder {
            id: Uuid::now_v7(),
            request: self.clone(),
            lines,
            currency: currency.unwrap_or_default(),
            total_minor: total,
        })
    }

    /// Whether a retry with the same idempotency key asks for the same thing.
    pub fn same_lines(&self, other: &[OrderLine]) -> bool {
        let mut mine = self.lines.clone();
        let mut theirs = other.to_vec();
        mine.sort_by(|a, b| a.sku.cmp(&b.sku));
        theirs.sort_by(|a, b| a.sku.cmp(&b.sku));
        mine == theirs
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
}

/// An order priced and ready to be stored PENDING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub id: Uuid,
    pub request: OrderRequest,
    pub lines: Vec<PricedLine>,
    pub currency: String,
    pub total_minor: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lines: Vec<(&str, i64)>) -> Result<OrderRequest, InvalidInput> {
        OrderRequest::parse(
            &Uuid::now_v7().to_string(),
            lines.into_iter().map(|(s, q)| (s.to_owned(), q)).collect(),
            "tok_visa_approve",
            "key-1",
        )
    }

    fn catalog(sku: &str) -> Option<(String, i64, String)> {
        match sku {
            "MUG" => Some(("Mug".into(), 1250, "EUR".into())),
            "TEE" => Some(("T-shirt".into(), 2000, "EUR".into())),
            "HAT" => Some(("Hat".into(), 900, "USD".into())),
            _ => None,
        }
    }

    #[test]
    fn lines_are_validated_and_name_their_index() {
        assert_eq!(request(vec![]).unwrap_err().field(), "lines");
        assert_eq!(
            request(vec![("MUG", 1), ("TEE", 0)]).unwrap_err().field(),
            "lines[1].quantity"
        );
        assert_eq!(
            request(vec![("MUG", 101)]).unwrap_err().field(),
            "lines[0].quantity"
        );
        assert_eq!(
            request(vec![("MUG", 1), ("MUG", 2)]).unwrap_err().field(),
            "lines[1].sku"
        );
        assert_eq!(request(vec![(" ", 1)]).unwrap_err().field(), "lines[0].sku");
        let too_many: Vec<(String, i64)> = (0..51).map(|i| (format!("SKU-{i}"), 1)).collect();
        let err =
            OrderRequest::parse(&Uuid::now_v7().to_string(), too_many, "tok", "k").unwrap_err();
        assert_eq!(err.field(), "lines");
    }

    #[test]
    fn customer_payment_method_and_key_are_required() {
        let lines = vec![("MUG".to_owned(), 1)];
        assert_eq!(
            OrderRequest::parse("nope", lines.clone(), "tok", "k")
                .unwrap_err()
                .field(),
            "customer_id"
        );
        let customer = Uuid::now_v7().to_string();
        assert_eq!(
            OrderRequest::parse(&customer, lines.clone(), " ", "k")
                .unwrap_err()
                .field(),
            "payment_method"
        );
        assert_eq!(
            OrderRequest::parse(&customer, lines.clone(), "tok", "")
                .unwrap_err()
                .field(),
            "idempotency_key"
        );
        assert_eq!(
            OrderRequest::parse(&customer, lines.clone(), "tok", &"k".repeat(129))
                .unwrap_err()
                .field(),
            "idempotency_key"
        );
        // The payment method payments would refuse is refused here, before any stock moves.
        assert_eq!(
            OrderRequest::parse(&customer, lines, "tok visa", "k")
                .unwrap_err()
                .field(),
            "payment_method"
        );
    }

    #[test]
    fn prices_come_from_the_catalog() {
        let order = request(vec![("MUG", 2), ("TEE", 1)])
            .unwrap()
            .price(catalog)
            .unwrap();
        assert_eq!(order.total_minor, 2 * 1250 + 2000);
        assert_eq!(order.currency, "EUR");
        assert_eq!(order.lines[0].name, "Mug");
        assert_eq!(order.id.get_version_num(), 7);
    }

    #[test]
    fn unknown_products_and_mixed_currencies_are_refused() {
        let err = request(vec![("MUG", 1), ("NOPE", 1)])
            .unwrap()
            .price(catalog)
            .unwrap_err();
        assert_eq!(err.field(), "lines[1].sku");
        let err = request(vec![("MUG", 1), ("HAT", 1)])
            .unwrap()
            .price(catalog)
            .unwrap_err();
        assert_eq!(err.field(), "lines[1].sku");
    }

    #[test]
    fn overflowing_totals_are_refused() {
        let huge = |_: &str| Some(("Gold".to_owned(), i64::MAX / 2, "EUR".to_owned()));
        assert!(request(vec![("GOLD", 3)]).unwrap().price(huge).is_err());
    }

    #[test]
    fn same_lines_ignores_order() {
        let a = request(vec![("MUG", 1), ("TEE", 2)]).unwrap();
        let b = request(vec![("TEE", 2), ("MUG", 1)]).unwrap();
        let c = request(vec![("TEE", 3), ("MUG", 1)]).unwrap();
        assert!(a.same_lines(&b.lines));
        assert!(!a.same_lines(&c.lines));
    }

    #[test]
    fn statuses_and_reasons_round_trip() {
        for status in [
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            OrderStatus::Cancelled,
        ] {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        for reason in [
            CancelReason::OutOfStock,
            CancelReason::PaymentDeclined,
            CancelReason::Timeout,
            CancelReason::Failed,
            CancelReason::CustomerRequest,
        ] {
            assert_eq!(CancelReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(OrderStatus::parse("SHIPPED"), None);
    }
}
