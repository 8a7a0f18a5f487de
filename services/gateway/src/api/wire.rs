//! The JSON shapes of the REST API and their translation from the gRPC messages.
//!
//! These types are the public contract (they are what the OpenAPI document describes); the
//! protobuf messages are internal and may change without breaking clients. Conventions: money
//! is integer minor units plus an ISO 4217 code, never a float; timestamps are RFC 3339 UTC;
//! statuses are UPPER_CASE words (`CONFIRMED`), without the protobuf enum prefix.

use contracts::{Money as ProtoMoney, inventory, orders, payments, users};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Money {
    /// Integer minor units (cents).
    #[schema(example = 1299)]
    pub amount_minor: i64,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
}

impl From<Option<ProtoMoney>> for Money {
    fn from(money: Option<ProtoMoney>) -> Self {
        let money = money.unwrap_or_default();
        Self {
            amount_minor: money.amount_minor,
            currency: money.currency,
        }
    }
}

impl From<Money> for ProtoMoney {
    fn from(money: Money) -> Self {
        Self {
            amount_minor: money.amount_minor,
            currency: money.currency,
        }
    }
}

/// RFC 3339 text of a protobuf timestamp.
pub fn timestamp(at: Option<prost_types::Timestamp>) -> Option<String> {
    let at = at?;
    let nanos = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

/// `ORDER_STATUS_CONFIRMED` → `CONFIRMED`.
fn status_word(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_owned()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// `customer` or `admin`.
    pub role: String,
    pub created_at: Option<String>,
}

impl From<users::User> for User {
    fn from(user: users::User) -> Self {
        let role = status_word(user.role().as_str_name(), "ROLE_").to_ascii_lowercase();
        Self {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            role,
            created_at: timestamp(user.created_at),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Registration {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "correct horse battery staple")]
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    /// A JWT for `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    pub user: Option<User>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Product {
    #[schema(example = "MUG-CERAMIC-350")]
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub active: bool,
    /// Units that can still be ordered.
    pub available: i64,
    pub updated_at: Option<String>,
}

impl From<inventory::Product> for Product {
    fn from(product: inventory::Product) -> Self {
        Self {
            sku: product.sku,
            name: product.name,
            description: product.description,
            price: product.price.into(),
            active: product.active,
            available: product.available,
            updated_at: timestamp(product.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ProductPage {
    pub products: Vec<Product>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

/// A catalog write (admin).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ProductDraft {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price: Money,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// A stock change (admin): positive for a delivery, negative for a write-off.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct StockAdjustment {
    pub delta: i64,
    #[schema(example = "delivery 2026-11-03")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StockLevel {
    pub sku: String,
    pub on_hand: i64,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
}

impl From<inventory::StockLevel> for StockLevel {
    fn from(level: inventory::StockLevel) -> Self {
        Self {
            sku: level.sku,
            on_hand: level.on_hand,
            available: level.available,
            reserved: level.reserved,
            sold: level.sold,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderLineInput {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewOrder {
    /// 1 to 50 lines.
    pub lines: Vec<OrderLineInput>,
    /// A test card token, e.g. `tok_visa_approve` or `tok_visa_decline`.
    #[schema(example = "tok_visa_approve")]
    pub payment_method: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// One step of the checkout saga, for the order's timeline.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SagaStep {
    /// The step's place in the timeline: increasing, never reused. The event stream's `id:`.
    #[serde(default)]
    pub sequence: i64,
    #[schema(example = "reserve_stock")]
    pub step: String,
    #[schema(example = "succeeded")]
    pub outcome: String,
    pub detail: String,
    pub at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    /// `PENDING`, `CONFIRMED` or `CANCELLED`.
    #[schema(example = "CONFIRMED")]
    pub status: String,
    pub cancellation_reason: Option<String>,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    /// The saga's steps so far: what the storefront shows while checkout runs.
    pub timeline: Vec<SagaStep>,
    pub payment_status: String,
    pub stock_status: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// Nothing more will happen by itself: confirmed with the payment captured and the stock
    /// committed, or cancelled with the money and the stock back. Orders decides.
    #[serde(default)]
    pub settled: bool,
}

impl Order {
    /// Whether checkout is over, as orders decided it: the event stream ends here.
    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// The sequence of the last step of the timeline (0 if there is none).
    pub fn last_sequence(&self) -> i64 {
        self.timeline
            .iter()
            .map(|step| step.sequence)
            .max()
            .unwrap_or(0)
    }
}

impl From<orders::SagaStep> for SagaStep {
    fn from(step: orders::SagaStep) -> Self {
        Self {
            sequence: step.sequence,
            step: step.step,
            outcome: step.outcome,
            detail: step.detail,
            at: timestamp(step.at),
        }
    }
}

/// One event of an order's stream (`event: step`): a timeline step as orders recorded it, with
/// the order's statuses when it was sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct OrderStepEvent {
    #[serde(flatten)]
    pub step: SagaStep,
    /// The order's status: `PENDING`, `CONFIRMED` or `CANCELLED`.
    #[schema(example = "CONFIRMED")]
    pub status: String,
    pub cancellation_reason: Option<String>,
    pub payment_status: String,
    pub stock_status: String,
    /// The step settled the order: it is the stream's last.
    pub settled: bool,
}

impl From<orders::WatchOrderResponse> for OrderStepEvent {
    fn from(event: orders::WatchOrderResponse) -> Self {
        Self {
            status: status_word(event.status().as_str_name(), "ORDER_STATUS_"),
            step: event.step.map(SagaStep::from).unwrap_or_default(),
            cancellation_reason: Some(event.cancellation_reason).filter(|r| !r.is_empty()),
            payment_status: event.payment_status,
            stock_status: event.stock_status,
            settled: event.settled,
        }
    }
}

impl From<orders::Order> for Order {
    fn from(order: orders::Order) -> Self {
        Self {
            status: status_word(order.status().as_str_name(), "ORDER_STATUS_"),
            id: order.id,
            customer_id: order.customer_id,
            cancellation_reason: Some(order.cancellation_reason).filter(|r| !r.is_empty()),
            lines: order
                .lines
                .into_iter()
                .map(|line| OrderLine {
                    sku: line.sku,
                    name: line.name,
                    quantity: line.quantity,
                    unit_price: line.unit_price.into(),
                    line_total: line.line_total.into(),
                })
                .collect(),
            total: order.total.into(),
            timeline: order.timeline.into_iter().map(SagaStep::from).collect(),
            payment_status: order.payment_status,
            stock_status: order.stock_status,
            created_at: timestamp(order.created_at),
            updated_at: timestamp(order.updated_at),
            settled: order.settled,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderSummary {
    pub id: String,
    pub status: String,
    pub total: Money,
    pub item_count: i64,
    pub payment_status: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    pub next_page_token: Option<String>,
}

impl From<orders::ListOrdersResponse> for OrderPage {
    fn from(page: orders::ListOrdersResponse) -> Self {
        Self {
            orders: page
                .orders
                .into_iter()
                .map(|summary| OrderSummary {
                    status: status_word(summary.status().as_str_name(), "ORDER_STATUS_"),
                    id: summary.id,
                    total: summary.total.into(),
                    item_count: summary.item_count,
                    payment_status: summary.payment_status,
                    created_at: timestamp(summary.created_at),
                    updated_at: timestamp(summary.updated_at),
                })
                .collect(),
            next_page_token: Some(page.next_page_token).filter(|t| !t.is_empty()),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema, Default)]
pub struct Cancellation {
    /// Why, for the order's history; defaults to `customer_request`.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentEvent {
    pub seq: i64,
    /// `authorized`, `declined`, `captured`, `refunded`, `voided`.
    pub kind: String,
    pub amount: Money,
    pub detail: String,
    pub occurred_at: Option<String>,
}

/// A payment: the fold of its events (event sourcing), with the events themselves.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Payment {
    pub id: String,
    pub order_id: String,
    /// `AUTHORIZED`, `DECLINED`, `CAPTURED`, `PARTIALLY_REFUNDED`, `REFUNDED`, `VOIDED`.
    pub status: String,
    pub authorized: Money,
    pub captured: Money,
    pub refunded: Money,
    pub decline_reason: Option<String>,
    pub events: Vec<PaymentEvent>,
}

impl From<payments::Payment> for Payment {
    fn from(payment: payments::Payment) -> Self {
        Self {
            status: status_word(payment.status().as_str_name(), "PAYMENT_STATUS_"),
            id: payment.id,
            order_id: payment.order_id,
            authorized: payment.authorized.into(),
            captured: payment.captured.into(),
            refunded: payment.refunded.into(),
            decline_reason: Some(payment.decline_reason).filter(|r| !r.is_empty()),
            events: payment
                .events
                .into_iter()
                .map(|event| PaymentEvent {
                    seq: event.seq,
                    kind: event.kind,
                    amount: event.amount.into(),
                    detail: event.detail,
                    occurred_at: timestamp(event.occurred_at),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_lose_their_enum_prefix_and_timestamps_are_rfc3339() {
        let order = Order::from(orders::Order {
            id: "o1".into(),
            status: orders::OrderStatus::Confirmed.into(),
            settled: true,
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5_000_000,
            }),
            ..Default::default()
        });
        assert_eq!(order.status, "CONFIRMED");
        assert!(order.is_settled());
        assert_eq!(
            order.created_at.as_deref(),
            Some("2023-11-14T22:13:20.005Z")
        );
        assert_eq!(order.cancellation_reason, None);
        let user = User::from(users::User {
            role: users::Role::Admin.into(),
            ..Default::default()
        });
        assert_eq!(user.role, "admin");
        let payment = Payment::from(payments::Payment {
            status: payments::PaymentStatus::PartiallyRefunded.into(),
            ..Default::default()
        });
        assert_eq!(payment.status, "PARTIALLY_REFUNDED");
    }
}
