//! A customer's orders: place (with an idempotency key), read with the saga timeline, list,
//! cancel, and the payment of an order.
//!
//! **Object-level authorization.** Every call passes the caller's id to orders, which answers
//! NOT_FOUND for an order of another customer — the same answer as for an order that does not
//! exist, so ids cannot be probed. Payments has no notion of ownership, so the payment route
//! first reads the order *as the caller* and asks payments only if that succeeds.
//!
//! **Idempotency.** `POST /orders` requires `Idempotency-Key`: a client that lost the response
//! (timeout, dropped connection) sends the same request with the same key and gets the same
//! order back instead of a second one. The gateway does not retry the call itself.
//!
//! **Input.** The body and the `Idempotency-Key` are parsed with the shared input rules
//! (`libs/inputs`) — the same types orders and payments parse them with — so a request this
//! route accepts is one no later layer refuses for its shape, and a malformed one is a 400
//! naming the field before any upstream is called.

use actix_web::{HttpRequest, HttpResponse, get, http::header, post, web};
use contracts::{
    orders::{
        CancelOrderRequest, GetOrderRequest, ListOrdersRequest, OrdersServiceClient,
        PlaceOrderLine, PlaceOrderRequest,
    },
    payments::{GetPaymentRequest, PaymentsServiceClient, get_payment_request::Key},
};
use inputs::{CancelReason, IdempotencyKey, OrderLines, PaymentMethod};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{
    catalog::page_size,
    wire::{Cancellation, NewOrder, Order, OrderPage, Payment},
};
use crate::{
    auth::Caller,
    problem::{ApiError, Problem},
    state::Gateway,
};

/// The `Idempotency-Key` header, under the shared rule (`inputs::IdempotencyKey`).
fn idempotency_key(req: &HttpRequest) -> Result<IdempotencyKey, ApiError> {
    let field = "Idempotency-Key";
    let value = req
        .headers()
        .get("idempotency-key")
        .ok_or_else(|| ApiError::invalid(field, "this header is required (e.g. a UUID)"))?;
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid(field, "must be printable ASCII"))?;
    Ok(IdempotencyKey::parse(key).map_err(|err| err.renamed(field))?)
}

/// The PlaceOrder call for `customer_id`'s `body` and `key`, every field under the shared rules:
/// what this returns, orders accepts (`tests/e2e/tests/input_layers.rs` checks it on arbitrary
/// input).
pub fn place_order_request(
    customer_id: &str,
    body: NewOrder,
    key: &IdempotencyKey,
) -> Result<PlaceOrderRequest, ApiError> {
    let lines = OrderLines::parse(
        body.lines
            .iter()
            .map(|line| (line.sku.as_str(), line.quantity)),
    )?
    .lines()
    .iter()
    .map(|(sku, quantity)| PlaceOrderLine {
        sku: sku.as_str().to_owned(),
        quantity: quantity.get(),
    })
    .collect();
    let payment_method = PaymentMethod::parse(&body.payment_method)?;
    Ok(PlaceOrderRequest {
        customer_id: customer_id.to_owned(),
        lines,
        payment_method: payment_method.as_str().to_owned(),
        idempotency_key: key.as_str().to_owned(),
    })
}

/// Order ids are UUIDs; anything else cannot name an order.
pub fn order_id(raw: &str) -> Result<String, ApiError> {
    Uuid::parse_str(raw)
        .map(|id| id.to_string())
        .map_err(|_| ApiError::invalid("order_id", "must be a UUID"))
}

/// Reads one order as `caller` (NOT_FOUND if it is someone else's).
pub async fn fetch_order(gateway: &Gateway, caller: &Caller, id: &str) -> Result<Order, ApiError> {
    let customer_id = caller.owner_filter();
    let response = gateway
        .upstreams
        .orders
        .call(true, |endpoint| {
            let request = GetOrderRequest {
                order_id: id.to_owned(),
                customer_id: customer_id.clone(),
            };
            let request = caller.orders_request(request);
            async move { OrdersServiceClient::new(endpoint).get_order(request).await }
        })
        .await
        .map_err(ApiError::upstream("orders"))?;
    Ok(Order::from(response.order.unwrap_or_default()))
}

/// Place an order
///
/// Starts checkout. The order is `PENDING` until the saga reserves stock and authorizes payment
/// (`CONFIRMED`) or fails (`CANCELLED`); follow it with `GET /orders/{id}` or the event stream.
/// Prices come from the catalog, never from the request.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Client-chosen key; the same key returns the same order")),
    request_body = NewOrder,
    responses(
        (status = 201, description = "Order placed (or the order this key placed before)", body = Order),
        (status = 400, description = "Invalid lines or missing key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Key reused for a different order", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders")]
pub async fn place_order(
    gateway: web::Data<Gateway>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<NewOrder>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let customer_id = caller.0.user_id.to_string();
    let request = place_order_request(&customer_id, body.into_inner(), &key)?;
    let response = gateway
        .upstreams
        .orders
        .call(false, |endpoint| {
            let request = request.clone();
            async move {
                OrdersServiceClient::new(endpoint)
                    .place_order(request)
                    .await
            }
        })
        .await
        .map_err(ApiError::upstream("orders"))?;
    let order = Order::from(response.order.unwrap_or_default());
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/orders/{}", order.id)))
        .json(order))
}

/// Get an order
///
/// The order with its lines, totals and the checkout saga's timeline. Another customer's order
/// is 404.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id (UUID)")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 404, description = "No such order for this customer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/orders/{id}")]
pub async fn get_order(
    gateway: web::Data<Gateway>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order = fetch_order(&gateway, &caller, &order_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(order))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OrdersQuery {
    /// 1 to 100; default 20.
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

/// List my orders
///
/// Served by orders' CQRS read model, which follows the write side by events: an order placed a
/// moment ago may take a moment to appear.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(OrdersQuery),
    responses((status = 200, description = "A page of the caller's orders, newest first", body = OrderPage))
)]
#[get("/orders")]
pub async fn list_orders(
    gateway: web::Data<Gateway>,
    caller: Caller,
    query: web::Query<OrdersQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let customer_id = caller.0.user_id.to_string();
    let request = ListOrdersRequest {
        customer_id: customer_id.clone(),
        page_size: page_size(query.page_size)?,
        page_token: inputs::PAGE_TOKEN
            .parse(query.page_token.as_deref().unwrap_or_default())?
            .to_owned(),
    };
    let response = gateway
        .upstreams
        .orders
        .call(true, |endpoint| {
            let request = request.clone();
            async move {
                OrdersServiceClient::new(endpoint)
                    .list_orders(request)
                    .await
            }
        })
        .await
        .map_err(ApiError::upstream("orders"))?;
    Ok(HttpResponse::Ok().json(OrderPage::from(response)))
}

/// Cancel an order
///
/// Cancels a confirmed order (the payment is refunded and the stock restocked, by events). 409
/// while checkout is still running.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id (UUID)")),
    request_body(content = Cancellation, description = "Optional"),
    responses(
        (status = 200, description = "The cancelled order", body = Order),
        (status = 404, description = "No such order for this customer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not cancellable in its current state", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders/{id}/cancel")]
pub async fn cancel_order(
    gateway: web::Data<Gateway>,
    caller: Caller,
    id: web::Path<String>,
    body: Option<web::Json<Cancellation>>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&id)?;
    let reason = match body.and_then(|body| body.into_inner().reason) {
        Some(reason) => CancelReason::parse(&reason)?,
        None => CancelReason::default(),
    };
    let reason = match reason.as_str() {
        "" => "customer_request".to_owned(),
        given => given.to_owned(),
    };
    let request = CancelOrderRequest {
        order_id: id.clone(),
        customer_id: caller.owner_filter(),
        reason,
    };
    let response = gateway
        .upstreams
        .orders
        .call(false, |endpoint| {
            let request = caller.orders_request(request.clone());
            async move {
                OrdersServiceClient::new(endpoint)
                    .cancel_order(request)
                    .await
            }
        })
        .await
        .map_err(ApiError::upstream("orders"))?;
    Ok(HttpResponse::Ok().json(Order::from(response.order.unwrap_or_default())))
}

/// The payment of my order
///
/// The payment (an event-sourced ledger: status plus the events it is folded from). 404 if the
/// order is not the caller's or has no payment yet.
#[utoipa::path(
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Order id (UUID)")),
    responses(
        (status = 200, description = "The payment", body = Payment),
        (status = 404, description = "No such order for this customer, or no payment yet", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/orders/{id}/payment")]
pub async fn order_payment(
    gateway: web::Data<Gateway>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&id)?;
    // Ownership first: payments would answer for any order id.
    fetch_order(&gateway, &caller, &id).await?;
    let response = gateway
        .upstreams
        .payments
        .call(true, |endpoint| {
            let request = GetPaymentRequest {
                key: Some(Key::OrderId(id.clone())),
            };
            async move {
                PaymentsServiceClient::new(endpoint)
                    .get_payment(request)
                    .await
            }
        })
        .await
        .map_err(ApiError::upstream("payments"))?;
    Ok(HttpResponse::Ok().json(Payment::from(response.payment.unwrap_or_default())))
}
