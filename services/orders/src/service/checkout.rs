//! The customer's side of checkout: placing an order, reading it, cancelling it, listing them.
//!
//! **PlaceOrder** is an idempotent command: the customer's idempotency key returns the first
//! order placed with it (after checking the retry asks for the same lines), so a client that
//! lost the answer may send it again. Otherwise the lines are priced with inventory's current
//! prices — never the client's — and the order, its saga and `OrderPlaced` are stored in one
//! transaction; the saga runner (`saga.rs`) takes it from there.
//!
//! **Object-level authorization**: with a customer id, another customer's order is NOT_FOUND
//! (not PERMISSION_DENIED, which would confirm that the order exists).

use std::{collections::HashMap, time::Duration};

use uuid::Uuid;

use crate::{
    domain::{CancelReason, OrderRequest, OrderStatus},
    error::OrdersError,
    events,
    participants::Participants,
    store::{OrderStore, OrderView, Placement, SummaryCursor, SummaryRow},
};

/// Who is asking: a customer sees only their orders; `Anyone` is for the edge's administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Customer(Uuid),
    Anyone,
}

/// A page of the read model and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryPage {
    pub rows: Vec<SummaryRow>,
    pub next: Option<SummaryCursor>,
}

pub struct Checkout {
    store: OrderStore,
    participants: Participants,
    saga_deadline: Duration,
}

impl Checkout {
    pub fn new(store: OrderStore, participants: Participants, saga_deadline: Duration) -> Self {
        Self {
            store,
            participants,
            saga_deadline,
        }
    }

    /// Places the order (or returns the one this idempotency key placed before).
    pub async fn place(&self, order: OrderRequest) -> Result<OrderView, OrdersError> {
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
        let catalog: HashMap<&str, _> = order
            .lines
            .iter()
            .zip(prices)
            .filter_map(|(line, price)| price.map(|price| (line.sku.as_str(), price)))
            .collect();
        let priced = order.price(|sku| catalog.get(sku).cloned())?;
        let deadline = crate::store::now() + self.saga_deadline;
        let placed = events::order_placed(&priced);
        let id = match self.store.place(&priced, deadline, &placed).await? {
            Placement::Created(id) => {
                tracing::info!(order_id = %id, total = priced.total_minor, "order placed");
                metrics::counter!("orders_placed_total").increment(1);
                id
            }
            Placement::Existing(id) => id,
        };
        self.view(id).await
    }

    /// The order, if `viewer` may see it.
    pub async fn order(&self, order_id: Uuid, viewer: Viewer) -> Result<OrderView, OrdersError> {
        let order = self.view(order_id).await?;
        match viewer {
            Viewer::Customer(customer) if order.customer_id != customer => {
                Err(OrdersError::NotFound)
            }
            _ => Ok(order),
        }
    }

    /// Cancels a confirmed order (payments refunds and inventory restocks, by events); a
    /// cancelled one stays as it is; one whose checkout is running cannot be cancelled yet.
    pub async fn cancel(&self, order_id: Uuid, viewer: Viewer) -> Result<OrderView, OrdersError> {
        let order = self.order(order_id, viewer).await?;
        match order.status {
            OrderStatus::Cancelled => Ok(order),
            OrderStatus::Pending => Err(OrdersError::NotCancellable(
                "checkout is still in progress; cancel once the order is confirmed".to_owned(),
            )),
            OrderStatus::Confirmed => {
                self.store
                    .cancel_confirmed(order.id, |customer, payment| {
                        events::order_cancelled(
                            order.id,
                            customer,
                            CancelReason::CustomerRequest,
                            true,
                            payment,
                        )
                    })
                    .await?;
                tracing::info!(order_id = %order.id, "confirmed order cancelled by the customer");
                self.view(order.id).await
            }
        }
    }

    /// A page of the customer's orders from the read model, newest first.
    pub async fn list(
        &self,
        customer: Uuid,
        size: u32,
        after: Option<SummaryCursor>,
    ) -> Result<SummaryPage, OrdersError> {
        let mut rows = self
            .store
            .list_summaries(customer, after, i64::from(size) + 1)
            .await?;
        let next = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last().map(|last| SummaryCursor {
                created_at: last.created_at,
                order_id: last.order_id,
            })
        } else {
            None
        };
        Ok(SummaryPage { rows, next })
    }

    async fn view(&self, order_id: Uuid) -> Result<OrderView, OrdersError> {
        self.store.get(order_id).await?.ok_or(OrdersError::NotFound)
    }
}
