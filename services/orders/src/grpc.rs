//! The gRPC API: decode → service → encode, nothing else. What each call does is in
//! [`crate::service`].

use contracts::{
    Money,
    orders::{
        self as api, CancelOrderRequest, CancelOrderResponse, GetOrderRequest, GetOrderResponse,
        ListOrdersRequest, ListOrdersResponse, PlaceOrderRequest, PlaceOrderResponse,
        WatchOrderRequest, WatchOrderResponse,
    },
};
use futures::{Stream, StreamExt as _};
use messaging::envelope::timestamp;
use platform::grpc::authz::{self, Callers};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{InvalidInput, OrderRequest, OrderStatus},
    error::OrdersError,
    service::{Checkout, SummaryPage, Viewer, WatchedStep, Watcher},
    store::{OrderView, SummaryCursor, TimelineEntry},
};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

/// Who may call what (`platform::grpc::authz`, enforced with mutual TLS): the gateway, for the
/// customers and admins it has authenticated (an admin's calls carry the admin scope).
pub const CALLERS: Callers = &[
    ("PlaceOrder", &["gateway"]),
    ("GetOrder", &["gateway"]),
    ("ListOrders", &["gateway"]),
    ("CancelOrder", &["gateway"]),
    ("WatchOrder", &["gateway"]),
];

pub struct OrdersApi {
    checkout: Checkout,
    watcher: Watcher,
}

impl OrdersApi {
    pub fn new(checkout: Checkout, watcher: Watcher) -> Self {
        Self { checkout, watcher }
    }
}

/// The stream `WatchOrder` answers with.
pub type WatchStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<WatchOrderResponse, Status>> + Send + 'static>>;

fn uuid(field: &str, raw: &str) -> Result<Uuid, InvalidInput> {
    Uuid::parse_str(raw.trim()).map_err(|_| InvalidInput::new(field, "must be a UUID"))
}

/// Whose orders the caller may see. A customer id limits the call to that customer's orders;
/// leaving it empty asks for anyone's, which only an administrator may: the call must carry the
/// admin scope, which only the gateway may present (`platform::grpc::authz`, checked before any
/// handler runs).
fn viewer(customer_id: &str, admin: bool) -> Result<Viewer, InvalidInput> {
    match (customer_id.trim().is_empty(), admin) {
        (true, true) => Ok(Viewer::Anyone),
        (true, false) => Err(InvalidInput::new(
            "customer_id",
            "required: only a call with the admin scope may leave it empty",
        )),
        (false, _) => uuid("customer_id", customer_id).map(Viewer::Customer),
    }
}

fn decode_place(request: PlaceOrderRequest) -> Result<OrderRequest, InvalidInput> {
    let lines = request
        .lines
        .into_iter()
        .map(|line| (line.sku, line.quantity))
        .collect();
    OrderRequest::parse(
        &request.customer_id,
        lines,
        &request.payment_method,
        &request.idempotency_key,
    )
}

fn decode_page(request: &ListOrdersRequest) -> Result<(u32, Option<SummaryCursor>), InvalidInput> {
    let size = match request.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n > MAX_PAGE_SIZE => {
            return Err(InvalidInput::new(
                "page_size",
                format!("at most {MAX_PAGE_SIZE}"),
            ));
        }
        n => n,
    };
    let after = match request.page_token.trim() {
        "" => None,
        token => Some(
            SummaryCursor::decode(token)
                .ok_or_else(|| InvalidInput::new("page_token", "not a token we issued"))?,
        ),
    };
    Ok((size, after))
}

fn encode_page(page: SummaryPage) -> ListOrdersResponse {
    ListOrdersResponse {
        orders: page
            .rows
            .into_iter()
            .map(|row| api::OrderSummary {
                id: row.order_id.to_string(),
                status: status_of(OrderStatus::parse(&row.status)).into(),
                total: Some(Money {
                    amount_minor: row.total_minor,
                    currency: row.currency,
                }),
                item_count: row.item_count,
                payment_status: row.payment_status,
                stock_status: row.stock_status,
                created_at: Some(timestamp(row.created_at)),
                updated_at: Some(timestamp(row.updated_at)),
            })
            .collect(),
        next_page_token: page.next.map(|cursor| cursor.encode()).unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl api::OrdersService for OrdersApi {
    type WatchOrderStream = WatchStream;

    async fn place_order(
        &self,
        request: Request<PlaceOrderRequest>,
    ) -> Result<Response<PlaceOrderResponse>, Status> {
        let order = decode_place(request.into_inner()).map_err(OrdersError::from)?;
        let order = self.checkout.place(order).await?;
        Ok(Response::new(PlaceOrderResponse {
            order: Some(encode(&order)),
        }))
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<GetOrderResponse>, Status> {
        let admin = authz::has_admin_scope(&request);
        let request = request.into_inner();
        let order_id = uuid("order_id", &request.order_id).map_err(OrdersError::from)?;
        let viewer = viewer(&request.customer_id, admin).map_err(OrdersError::from)?;
        let order = self.checkout.order(order_id, viewer).await?;
        Ok(Response::new(GetOrderResponse {
            order: Some(encode(&order)),
        }))
    }

    async fn list_orders(
        &self,
        request: Request<ListOrdersRequest>,
    ) -> Result<Response<ListOrdersResponse>, Status> {
        let request = request.into_inner();
        let customer = uuid("customer_id", &request.customer_id).map_err(OrdersError::from)?;
        let (size, after) = decode_page(&request).map_err(OrdersError::from)?;
        let page = self.checkout.list(customer, size, after).await?;
        Ok(Response::new(encode_page(page)))
    }

    /// The stream lasts until the order settles, or until the caller's deadline
    /// (`grpc-timeout`), read here because the deadline layer only bounds the call up to its
    /// first answer (the headers), not a stream's body.
    async fn watch_order(
        &self,
        request: Request<WatchOrderRequest>,
    ) -> Result<Response<Self::WatchOrderStream>, Status> {
        let deadline =
            platform::grpc::deadline::remaining().map(|left| tokio::time::Instant::now() + left);
        let admin = authz::has_admin_scope(&request);
        let request = request.into_inner();
        let order_id = uuid("order_id", &request.order_id).map_err(OrdersError::from)?;
        let viewer = viewer(&request.customer_id, admin).map_err(OrdersError::from)?;
        if request.after < 0 {
            return Err(
                OrdersError::from(InvalidInput::new("after", "must not be negative")).into(),
            );
        }
        let steps = self
            .watcher
            .watch(order_id, viewer, request.after, deadline)
            .await?;
        let steps = steps.map(|step| step.map(encode_watched).map_err(Status::from));
        Ok(Response::new(Box::pin(steps)))
    }

    async fn cancel_order(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Result<Response<CancelOrderResponse>, Status> {
        let admin = authz::has_admin_scope(&request);
        let request = request.into_inner();
        let order_id = uuid("order_id", &request.order_id).map_err(OrdersError::from)?;
        let viewer = viewer(&request.customer_id, admin).map_err(OrdersError::from)?;
        let order = self.checkout.cancel(order_id, viewer).await?;
        Ok(Response::new(CancelOrderResponse {
            order: Some(encode(&order)),
        }))
    }
}

fn encode_step(entry: &TimelineEntry) -> api::SagaStep {
    api::SagaStep {
        step: entry.step.clone(),
        outcome: entry.outcome.clone(),
        detail: entry.detail.clone(),
        at: Some(timestamp(entry.at)),
        sequence: entry.sequence,
    }
}

fn encode_watched(step: WatchedStep) -> WatchOrderResponse {
    WatchOrderResponse {
        step: Some(encode_step(&step.entry)),
        status: status_of(Some(step.status)).into(),
        cancellation_reason: step.cancellation_reason.unwrap_or_default(),
        payment_status: step.payment_status,
        stock_status: step.stock_status,
        settled: step.settled,
    }
}

fn status_of(status: Option<OrderStatus>) -> api::OrderStatus {
    match status {
        Some(OrderStatus::Pending) => api::OrderStatus::Pending,
        Some(OrderStatus::Confirmed) => api::OrderStatus::Confirmed,
        Some(OrderStatus::Cancelled) => api::OrderStatus::Cancelled,
        None => api::OrderStatus::Unspecified,
    }
}

fn encode(order: &OrderView) -> api::Order {
    let money = |amount_minor| Money {
        amount_minor,
        currency: order.currency.clone(),
    };
    api::Order {
        id: order.id.to_string(),
        customer_id: order.customer_id.to_string(),
        status: status_of(Some(order.status)).into(),
        cancellation_reason: order.cancellation_reason.clone().unwrap_or_default(),
        lines: order
            .lines
            .iter()
            .map(|line| api::OrderLine {
                sku: line.sku.clone(),
                name: line.name.clone(),
                quantity: line.quantity,
                unit_price: Some(money(line.unit_price_minor)),
                line_total: Some(money(line.unit_price_minor.saturating_mul(line.quantity))),
            })
            .collect(),
        total: Some(money(order.total_minor)),
        timeline: order.timeline.iter().map(encode_step).collect(),
        payment_status: order.payment_status.clone(),
        stock_status: order.stock_status.clone(),
        created_at: Some(timestamp(order.created_at)),
        updated_at: Some(timestamp(order.updated_at)),
        settled: order.is_settled(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_callers_table_admits_exactly_the_declared_callers() {
        platform::grpc::authz::check_declared(super::CALLERS, &declarations::orders::ORDERS)
            .unwrap();
    }
}
