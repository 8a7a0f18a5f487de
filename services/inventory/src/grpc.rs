//! The gRPC API: decode → service → encode, nothing else. What each call does is in
//! [`crate::service`].
//!
//! Authorization (admin-only `UpsertProduct`/`AdjustStock`) is enforced by the gateway, the only
//! public entry point; inside the cluster a NetworkPolicy limits who reaches this port.

use contracts::inventory::{
    self as api, AdjustStockRequest, AdjustStockResponse, CommitReservationRequest,
    CommitReservationResponse, GetProductRequest, GetProductResponse, GetReservationRequest,
    GetReservationResponse, ListProductsRequest, ListProductsResponse, ReleaseStockRequest,
    ReleaseStockResponse, ReserveStockRequest, ReserveStockResponse, UpsertProductRequest,
    UpsertProductResponse,
};
use platform::{fencing::FencingToken, grpc::authz::Callers};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        AdjustmentReason, ListQuery, OrderId, ProductDraft, ReleaseReason, Reservation,
        ReservationRequest, Sku, StockDelta,
    },
    error::InventoryError,
    service::{Catalog, Reservations},
    wire,
};

/// Who may call what (`platform::grpc::authz`, enforced with mutual TLS): the catalog is read
/// by the gateway and by orders (prices); only the gateway's admin API changes it; only the
/// saga in orders reserves, commits and releases stock.
pub const CALLERS: Callers = &[
    ("ListProducts", &["gateway", "orders"]),
    ("GetProduct", &["gateway", "orders"]),
    ("UpsertProduct", &["gateway"]),
    ("AdjustStock", &["gateway"]),
    ("ReserveStock", &["orders"]),
    ("ReleaseStock", &["orders"]),
    ("CommitReservation", &["orders"]),
    ("GetReservation", &["orders"]),
];

pub struct InventoryApi {
    catalog: Catalog,
    reservations: Reservations,
}

impl InventoryApi {
    pub fn new(catalog: Catalog, reservations: Reservations) -> Self {
        Self {
            catalog,
            reservations,
        }
    }

    async fn upsert(&self, request: UpsertProductRequest) -> Result<api::Product, InventoryError> {
        let price = request
            .price
            .as_ref()
            .map(|money| (money.amount_minor, money.currency.as_str()));
        let draft = ProductDraft::parse(
            &request.sku,
            &request.name,
            &request.description,
            price,
            request.active,
        )?;
        let item = self.catalog.upsert(&draft).await?;
        Ok(wire::product(&item))
    }

    async fn adjust(&self, request: AdjustStockRequest) -> Result<api::StockLevel, InventoryError> {
        let sku = Sku::parse(&request.sku)?;
        let delta = StockDelta::parse(request.delta)?;
        let reason = AdjustmentReason::parse(&request.reason)?;
        let level = self.catalog.adjust(&sku, delta, &reason).await?;
        Ok(wire::stock(&level))
    }

    async fn reserve(
        &self,
        request: ReserveStockRequest,
        fence: Option<FencingToken>,
    ) -> Result<Reservation, InventoryError> {
        let request = ReservationRequest::parse(
            &request.order_id,
            request
                .lines
                .iter()
                .map(|line| (line.sku.as_str(), line.quantity)),
        )?;
        self.reservations.reserve(&request, fence).await
    }

    async fn release(
        &self,
        request: ReleaseStockRequest,
        fence: Option<FencingToken>,
    ) -> Result<Reservation, InventoryError> {
        let order_id = OrderId::parse(&request.order_id)?;
        let reason = ReleaseReason::parse(&request.reason)?;
        self.reservations.release(order_id, &reason, fence).await
    }

    async fn commit(
        &self,
        request: CommitReservationRequest,
        fence: Option<FencingToken>,
    ) -> Result<Reservation, InventoryError> {
        self.reservations
            .commit(OrderId::parse(&request.order_id)?, fence)
            .await
    }

    async fn get_reservation(
        &self,
        request: GetReservationRequest,
    ) -> Result<Reservation, InventoryError> {
        self.reservations
            .find(OrderId::parse(&request.order_id)?)
            .await
    }
}

#[tonic::async_trait]
impl api::InventoryService for InventoryApi {
    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ListProductsResponse>, Status> {
        let request = request.into_inner();
        let query = ListQuery::parse(request.page_size, &request.page_token, &request.query)
            .map_err(InventoryError::from)?;
        let page = self.catalog.list(query).await?;
        Ok(Response::new(wire::page(&page)))
    }

    async fn get_product(
        &self,
        request: Request<GetProductRequest>,
    ) -> Result<Response<GetProductResponse>, Status> {
        let sku = Sku::parse(&request.get_ref().sku).map_err(InventoryError::from)?;
        let item = self.catalog.product(sku).await?;
        Ok(Response::new(GetProductResponse {
            product: Some(wire::product(&item)),
        }))
    }

    async fn upsert_product(
        &self,
        request: Request<UpsertProductRequest>,
    ) -> Result<Response<UpsertProductResponse>, Status> {
        let product = self.upsert(request.into_inner()).await?;
        Ok(Response::new(UpsertProductResponse {
            product: Some(product),
        }))
    }

    async fn adjust_stock(
        &self,
        request: Request<AdjustStockRequest>,
    ) -> Result<Response<AdjustStockResponse>, Status> {
        let stock = self.adjust(request.into_inner()).await?;
        Ok(Response::new(AdjustStockResponse { stock: Some(stock) }))
    }

    async fn reserve_stock(
        &self,
        request: Request<ReserveStockRequest>,
    ) -> Result<Response<ReserveStockResponse>, Status> {
        let fence = FencingToken::from_request(&request)?;
        let reservation = self.reserve(request.into_inner(), fence).await?;
        Ok(Response::new(ReserveStockResponse {
            reservation: Some(wire::reservation(&reservation)),
        }))
    }

    async fn release_stock(
        &self,
        request: Request<ReleaseStockRequest>,
    ) -> Result<Response<ReleaseStockResponse>, Status> {
        let fence = FencingToken::from_request(&request)?;
        let reservation = self.release(request.into_inner(), fence).await?;
        Ok(Response::new(ReleaseStockResponse {
            reservation: Some(wire::reservation(&reservation)),
        }))
    }

    async fn commit_reservation(
        &self,
        request: Request<CommitReservationRequest>,
    ) -> Result<Response<CommitReservationResponse>, Status> {
        let fence = FencingToken::from_request(&request)?;
        let reservation = self.commit(request.into_inner(), fence).await?;
        Ok(Response::new(CommitReservationResponse {
            reservation: Some(wire::reservation(&reservation)),
        }))
    }

    async fn get_reservation(
        &self,
        request: Request<GetReservationRequest>,
    ) -> Result<Response<GetReservationResponse>, Status> {
        let reservation = self.get_reservation(request.into_inner()).await?;
        Ok(Response::new(GetReservationResponse {
            reservation: Some(wire::reservation(&reservation)),
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_callers_table_admits_exactly_the_declared_callers() {
        platform::grpc::authz::check_declared(super::CALLERS, &declarations::inventory::INVENTORY)
            .unwrap();
    }
}
