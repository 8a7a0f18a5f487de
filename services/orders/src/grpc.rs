//! The gRPC API: decode → domain → store → encode, nothing else.

use std::time::Duration;

use contracts::{
    Money,
    orders::{
        self as api, CancelOrderRequest, CancelOrderResponse, GetOrderRequest, GetOrderResponse,
        ListOrdersRequest, ListOrdersResponse, PlaceOrderRequest, PlaceOrderResponse,
    },
};
use messaging::envelope::timestamp;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{InvalidInput, OrderRequest, OrderStatus},
    error::OrdersError,
    participants::Participants,
    store::{OrderStore, OrderView, Placement, SummaryCursor},
};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

pub struct OrdersApi {
    store: OrderStore,
    participants: Participants,
    saga_deadline: Duration,
}

impl OrdersApi {
    pub fn new(store: OrderStore, participants: Participants, saga_deadline: Duration) -> Self {
        Self {
            store,
            participants,
            saga_deadline,
        }
    }

    async fn place(&self, request: PlaceOrderRequest) -> Result<OrderView, OrdersError> {
        let lines = request
            .lines
            .into_iter()
            .map(|line| (line.sku, line.quantity))
            .collect();
        let order = OrderRequest::parse(
            &request.customer_id,
            lines,
            &request.payment_method,
            &request.idempotency_key,
        )?;
        // Idempotency: the same key returns the first order, without pricing again.
        if let Some((existing, lines)) = self
            .store
            .find_by_key(order.customer_id, order.idempotency_key.as_str())
            .await?
        {
            if !order.same_lines(&lines) {
                return Err(OrdersError::KeyReused(
                    "this idempotency key was used for a different order".to_owned(),
                ));
            }
            return self.view(existing).await;
        }
        // Prices come from inventory, never from the client.
        let lookups = order
            .lines
            .iter()
            .map(|line| self.participants.price(&line.sku));
        let prices = futures::future::try_join_all(lookups)
            .await
            .map_err(OrdersError::Upstream)?;
        let catalog: std::collections::HashMap<&str, _> = order
            .lines
            .iter()
            .zip(prices)
            .filter_map(|(line, price)| price.map(|price| (line.sku.as_str(), price)))
            .collect();
        let priced = order.price(|sku| catalog.get(sku).cloned())?;
        let deadline = crate::store::now() + self.saga_deadline;
        let id = match self.store.place(&priced, deadline).await? {
            Placement::Created(id) => {
                tracing::info!(order_id = %id, total = priced.total_minor, "order placed");
                metrics::counter!("orders_placed_total").increment(1);
                id
            }
            Placement::Existing(id) => id,
        };
        self.view(id).await
    }

    async fn view(&self, order_id: Uuid) -> Result<OrderView, OrdersError> {
        self.store.get(order_id).await?.ok_or(OrdersError::NotFound)
    }

    /// Object-level authorization: with a customer id, another customer's order is NOT_FOUND
    /// (not PERMISSION_DENIED, which would confirm that the order exists).
    async fn owned(&self, order_id: &str, customer_id: &str) -> Result<OrderView, OrdersError> {
        let order_id = Uuid::parse_str(order_id.trim())
            .map_err(|_| InvalidInput::new("order_id", "must be a UUID"))?;
        let order = self.view(order_id).await?;
        if !customer_id.trim().is_empty() {
            let customer = Uuid::parse_str(customer_id.trim())
                .map_err(|_| InvalidInput::new("customer_id", "must be a UUID"))?;
            if order.customer_id != customer {
                return Err(OrdersError::NotFound);
            }
        }
        Ok(order)
    }

    async fn cancel(&self, request: CancelOrderRequest) -> Result<OrderView, OrdersError> {
        let order = self.owned(&request.order_id, &request.customer_id).await?;
        match order.status {
            OrderStatus::Cancelled => Ok(order),
            OrderStatus::Pending => Err(OrdersError::NotCancellable(
                "checkout is still in progress; cancel once the order is confirmed".to_owned(),
            )),
            OrderStatus::Confirmed => {
                self.store.cancel_confirmed(order.id).await?;
                tracing::info!(order_id = %order.id, "confirmed order cancelled by the customer");
                self.view(order.id).await
            }
        }
    }

    async fn list(&self, request: ListOrdersRequest) -> Result<ListOrdersResponse, OrdersError> {
        let customer = Uuid::parse_str(request.customer_id.trim())
            .map_err(|_| InvalidInput::new("customer_id", "must be a UUID"))?;
        let size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(
                    InvalidInput::new("page_size", format!("at most {MAX_PAGE_SIZE}")).into(),
                );
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
        let mut rows = self
            .store
            .list_summaries(customer, after, i64::from(size) + 1)
            .await?;
        let next_page_token = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| {
                    SummaryCursor {
                        created_at: last.created_at,
                        order_id: last.order_id,
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListOrdersResponse {
            orders: rows
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
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl api::OrdersService for OrdersApi {
    async fn place_order(
        &self,
        request: Request<PlaceOrderRequest>,
    ) -> Result<Response<PlaceOrderResponse>, Status> {
        let order = self.place(request.into_inner()).await?;
        Ok(Response::new(PlaceOrderResponse {
            order: Some(encode(&order)),
        }))
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<GetOrderResponse>, Status> {
        let request = request.into_inner();
        let order = self.owned(&request.order_id, &request.customer_id).await?;
        Ok(Response::new(GetOrderResponse {
            order: Some(encode(&order)),
        }))
    }

    async fn list_orders(
        &self,
        request: Request<ListOrdersRequest>,
    ) -> Result<Response<ListOrdersResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn cancel_order(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Result<Response<CancelOrderResponse>, Status> {
        let order = self.cancel(request.into_inner()).await?;
        Ok(Response::new(CancelOrderResponse {
            order: Some(encode(&order)),
        }))
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
        timeline: order
            .timeline
            .iter()
            .map(|entry| api::SagaStep {
                step: entry.step.clone(),
                outcome: entry.outcome.clone(),
                detail: entry.detail.clone(),
                at: Some(timestamp(entry.at)),
            })
            .collect(),
        payment_status: order.payment_status.clone(),
        stock_status: order.stock_status.clone(),
        created_at: Some(timestamp(order.created_at)),
        updated_at: Some(timestamp(order.updated_at)),
    }
}
