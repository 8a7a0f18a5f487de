//! The rules for every value a client can send, written once and shared by the gateway and the
//! services.
//!
//! A value crosses several layers on its way in: the gateway parses the JSON body, orders parses
//! the PlaceOrder request, payments parses the AuthorizePayment call the saga makes, and
//! Postgres finally stores it. When each layer has its own idea of a valid value, the layers
//! disagree, and a disagreement found deep in a flow is expensive: a payment method with a space
//! in it used to pass the gateway and orders, reserve stock, and only then be refused by
//! payments; a NUL byte in a text field passed every layer and failed in Postgres, as an
//! internal error that counted against the upstream's circuit breaker. So each rule lives here,
//! once, as a type that can only hold a valid value ("parse, don't validate"), and every layer
//! that meets the value parses it with the same type.
//!
//! | module | values |
//! |---|---|
//! | [`invalid`] | [`InvalidInput`]: the one error type, naming the field (`lines[2].quantity`) |
//! | [`text`] | [`TextRule`]: trimmed, bounded in characters *and* bytes, no control characters; [`PAGE_TOKEN`] |
//! | [`catalog`] | [`Sku`], [`Currency`], [`Price`] (greater than zero), [`ProductName`], [`Description`], [`StockDelta`], [`AdjustmentReason`], [`SearchText`] |
//! | [`checkout`] | [`OrderLines`] (of [`Quantity`]), [`PaymentMethod`], [`IdempotencyKey`], [`CancelReason`], [`MAX_LINES`] |
//! | [`account`] | [`DisplayName`] |
//!
//! Every text rule refuses control characters (Unicode category Cc: NUL, ESC, DEL, …; the
//! multi-line ones allow `\n` and `\t`) and bounds both the number of characters, which is what
//! a person reads, and the number of bytes, which is what a database, a log line or a cache key
//! pays for. The property tests in `tests/` check that no input makes a parser panic and that
//! what one layer accepts, the next accepts too.

pub mod account;
pub mod catalog;
pub mod checkout;
pub mod invalid;
pub mod text;

pub use account::DisplayName;
pub use catalog::{
    AdjustmentReason, Currency, Description, Price, ProductName, SearchText, Sku, StockDelta,
};
pub use checkout::{CancelReason, IdempotencyKey, MAX_LINES, OrderLines, PaymentMethod, Quantity};
pub use invalid::InvalidInput;
pub use text::{PAGE_TOKEN, TextRule};
