//! What the checkout saga sends: order ids, reservation lines, release reasons.
//!
//! A [`ReservationRequest`] is validated as a whole — 1 to 50 lines, quantities of 1 to 100,
//! no SKU twice — and stored in a canonical form (lines sorted by SKU), which is both the order
//! in which stock rows are locked and the form in which a retry is compared with the original.

use std::{collections::BTreeMap, fmt};

use uuid::Uuid;

use super::{InvalidInput, Sku};

/// The order a reservation belongs to; its idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderId(Uuid);

impl OrderId {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        Uuid::parse_str(raw.trim())
            .map(Self)
            .map_err(|_| InvalidInput::new("order_id", "must be a UUID"))
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Units of one line: the shared rule of an order line (1 to 100), so that every reservation
/// orders can make, inventory can take.
pub use inputs::Quantity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationLine {
    pub sku: Sku,
    pub quantity: Quantity,
}

/// A validated `ReserveStock` request. Lines are sorted by SKU: that is the order in which the
/// store locks stock rows (ordered locks cannot deadlock) and the canonical form that replays
/// are compared in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    pub order_id: OrderId,
    lines: Vec<ReservationLine>,
}

impl ReservationRequest {
    pub const MAX_LINES: usize = inputs::MAX_LINES;

    /// Validates the order id and 1 to 50 lines with distinct SKUs. Errors name the field,
    /// e.g. `lines[3].quantity` (indexes are those of the request).
    pub fn parse<'a>(
        order_id: &str,
        lines: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Result<Self, InvalidInput> {
        let order_id = OrderId::parse(order_id)?;
        let mut parsed: Vec<ReservationLine> = Vec::new();
        let mut seen: BTreeMap<Sku, usize> = BTreeMap::new();
        for (index, (sku, quantity)) in lines.into_iter().enumerate() {
            let at = format!("lines[{index}]");
            if index >= Self::MAX_LINES {
                return Err(InvalidInput::new("lines", "at most 50 lines per order"));
            }
            let sku = Sku::parse(sku).map_err(|err| err.within(&at))?;
            let quantity = Quantity::parse(quantity).map_err(|err| err.within(&at))?;
            if let Some(first) = seen.insert(sku.clone(), index) {
                return Err(InvalidInput::new(
                    format!("{at}.sku"),
                    format!("{sku} already appears in lines[{first}]; merge the lines"),
                ));
            }
            parsed.push(ReservationLine { sku, quantity });
        }
        if parsed.is_empty() {
            return Err(InvalidInput::new("lines", "at least one line is required"));
        }
        parsed.sort_by(|a, b| a.sku.cmp(&b.sku));
        Ok(Self {
            order_id,
            lines: parsed,
        })
    }

    /// The lines, sorted by SKU.
    pub fn lines(&self) -> &[ReservationLine] {
        &self.lines
    }
}

/// Why a reservation was released, for the audit trail: at most 200 characters, may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseReason(String);

impl ReleaseReason {
    /// The reason recorded when an `OrderCancelled` (of a confirmed order) releases units that
    /// were still only reserved. A late `OrderConfirmed` recognises it and commits nothing.
    pub const ORDER_CANCELLED: &'static str = "order_cancelled";

    /// [`ReleaseReason::ORDER_CANCELLED`].
    pub fn order_cancelled() -> Self {
        Self(Self::ORDER_CANCELLED.to_owned())
    }

    /// Bounded like every text input (`libs/inputs`).
    pub const RULE: inputs::TextRule = inputs::TextRule::required("reason", 200).optional();

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        Self::RULE.parse(raw).map(|reason| Self(reason.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = "0190f5a4-7c1e-7b9a-8c2d-3e4f5a6b7c8d";

    fn request(lines: &[(&str, i64)]) -> ReservationRequest {
        ReservationRequest::parse(ORDER, lines.iter().copied()).unwrap()
    }

    #[test]
    fn order_ids_are_uuids() {
        assert_eq!(OrderId::parse(ORDER).unwrap().to_string(), ORDER);
        for raw in ["", "42", "order-1"] {
            assert_eq!(OrderId::parse(raw).unwrap_err().field(), "order_id");
        }
    }

    #[test]
    fn quantities_are_between_1_and_100() {
        assert!(Quantity::parse(1).is_ok());
        assert!(Quantity::parse(100).is_ok());
        for raw in [0, -1, 101] {
            assert_eq!(Quantity::parse(raw).unwrap_err().field(), "quantity");
        }
    }

    #[test]
    fn requests_are_sorted_by_sku() {
        let request = request(&[("TEE-M", 1), ("MUG-1", 2), ("CAP-1", 3)]);
        let skus: Vec<&str> = request.lines().iter().map(|l| l.sku.as_str()).collect();
        assert_eq!(skus, ["CAP-1", "MUG-1", "TEE-M"]);
    }

    #[test]
    fn invalid_requests_name_the_field() {
        type Case<'a> = (&'a str, Vec<(&'a str, i64)>, &'a str);
        let cases: [Case; 6] = [
            ("nope", vec![("MUG-1", 1)], "order_id"),
            (ORDER, vec![], "lines"),
            (ORDER, vec![("MUG-1", 1), ("bad", 1)], "lines[1].sku"),
            (ORDER, vec![("MUG-1", 0)], "lines[0].quantity"),
            (ORDER, vec![("MUG-1", 101)], "lines[0].quantity"),
            (
                ORDER,
                vec![("MUG-1", 1), ("CAP-1", 1), ("MUG-1", 2)],
                "lines[2].sku",
            ),
        ];
        for (order, lines, field) in cases {
            let err = ReservationRequest::parse(order, lines).unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        }
        let dup = ReservationRequest::parse(ORDER, [("MUG-1", 1), ("MUG-1", 1)]).unwrap_err();
        assert!(dup.reason().contains("lines[0]"), "{dup}");
    }

    #[test]
    fn at_most_50_lines() {
        let skus: Vec<String> = (0..51).map(|i| format!("SKU-{i:03}")).collect();
        let fifty = skus.iter().take(50).map(|s| (s.as_str(), 1));
        assert_eq!(
            ReservationRequest::parse(ORDER, fifty)
                .unwrap()
                .lines()
                .len(),
            50
        );
        let fifty_one = skus.iter().map(|s| (s.as_str(), 1));
        assert_eq!(
            ReservationRequest::parse(ORDER, fifty_one)
                .unwrap_err()
                .field(),
            "lines"
        );
    }

    #[test]
    fn release_reasons_are_bounded() {
        assert_eq!(
            ReleaseReason::parse(" payment_declined ").unwrap().as_str(),
            "payment_declined"
        );
        assert_eq!(ReleaseReason::parse("").unwrap().as_str(), "");
        assert_eq!(
            ReleaseReason::order_cancelled(),
            ReleaseReason::parse(ReleaseReason::ORDER_CANCELLED).unwrap(),
            "the built-in reason is a valid one"
        );
        assert_eq!(
            ReleaseReason::parse(&"r".repeat(201)).unwrap_err().field(),
            "reason"
        );
    }
}
