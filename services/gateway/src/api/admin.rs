//! Catalog and stock writes, for administrators only (`role: "admin"` in the token; 403 for
//! customers). Every field is parsed with the shared input rules (`libs/inputs`) that inventory
//! applies too, so a bad one is a 400 naming it before inventory is called. Inventory trusts its callers, so this check at the edge is what stands between a
//! customer and the price list; a NetworkPolicy keeps everyone else away from inventory's port.

use actix_web::{HttpResponse, post, put, web};
use contracts::inventory::{AdjustStockRequest, InventoryServiceClient, UpsertProductRequest};
use inputs::{AdjustmentReason, Description, Price, ProductName, Sku, StockDelta};

use super::wire::{Product, ProductDraft, StockAdjustment, StockLevel};
use crate::{
    auth::AdminCaller,
    problem::{ApiError, Problem},
    state::Gateway,
};

/// The UpsertProduct call for `sku` and `body`, every field under the shared rules: what this
/// returns, inventory accepts (`tests/e2e/tests/input_layers.rs` checks it on arbitrary input).
pub fn upsert_product_request(
    sku: &str,
    body: ProductDraft,
) -> Result<UpsertProductRequest, ApiError> {
    let sku = Sku::parse(sku)?;
    let name = ProductName::parse(&body.name)?;
    let description = Description::parse(&body.description)?;
    let price = Price::parse(body.price.amount_minor, &body.price.currency)?;
    Ok(UpsertProductRequest {
        sku: sku.as_str().to_owned(),
        name: name.as_str().to_owned(),
        description: description.as_str().to_owned(),
        price: Some(contracts::Money {
            amount_minor: price.amount_minor(),
            currency: price.currency().as_str().to_owned(),
        }),
        active: body.active,
    })
}

/// Create or update a product
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("sku" = String, Path, description = "Stock keeping unit, e.g. MUG-CERAMIC-350")),
    request_body = ProductDraft,
    responses(
        (status = 200, description = "The product as stored", body = Product),
        (status = 400, description = "Invalid product", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/admin/products/{sku}")]
pub async fn upsert_product(
    gateway: web::Data<Gateway>,
    admin: AdminCaller,
    sku: web::Path<String>,
    body: web::Json<ProductDraft>,
) -> Result<HttpResponse, ApiError> {
    let request = upsert_product_request(&sku, body.into_inner())?;
    let response = gateway
        .upstreams
        .inventory
        .call(false, |endpoint| {
            let request = request.clone();
            async move {
                InventoryServiceClient::new(endpoint)
                    .upsert_product(request)
                    .await
            }
        })
        .await
        .map_err(ApiError::upstream("inventory"))?;
    tracing::info!(admin = %admin.0.user_id, sku = %request.sku, "product upserted");
    Ok(HttpResponse::Ok().json(Product::from(response.product.unwrap_or_default())))
}

/// Adjust stock
///
/// Adds units (a delivery) or writes them off (negative `delta`); stock never goes below zero.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("sku" = String, Path, description = "Stock keeping unit")),
    request_body = StockAdjustment,
    responses(
        (status = 200, description = "The new stock level", body = StockLevel),
        (status = 403, description = "Not an administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would go below zero", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/admin/products/{sku}/stock-adjustments")]
pub async fn adjust_stock(
    gateway: web::Data<Gateway>,
    admin: AdminCaller,
    sku: web::Path<String>,
    body: web::Json<StockAdjustment>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request = AdjustStockRequest {
        sku: Sku::parse(&sku)?.as_str().to_owned(),
        delta: StockDelta::parse(body.delta)?.get(),
        reason: AdjustmentReason::parse(&body.reason)?.as_str().to_owned(),
    };
    let response = gateway
        .upstreams
        .inventory
        .call(false, |endpoint| {
            let request = request.clone();
            async move {
                InventoryServiceClient::new(endpoint)
                    .adjust_stock(request)
                    .await
            }
        })
        .await
        .map_err(ApiError::upstream("inventory"))?;
    tracing::info!(admin = %admin.0.user_id, sku = %request.sku, delta = request.delta, "stock adjusted");
    Ok(HttpResponse::Ok().json(StockLevel::from(response.stock.unwrap_or_default())))
}
