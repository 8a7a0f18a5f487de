//! The public catalog: product pages (cursor pagination) and product details.
//!
//! Both are idempotent reads: retried on transient failures, spread over inventory's replicas,
//! and backed by the stale fallback (`crate::stale`) when inventory cannot answer.

use actix_web::{HttpResponse, get, web};
use contracts::inventory::{GetProductRequest, InventoryServiceClient, ListProductsRequest};
use resilience::grpc::{effective_code, is_upstream_failure};
use serde::Deserialize;
use tonic::Status;
use utoipa::IntoParams;

use super::wire::{Product, ProductPage};
use crate::{
    config::MAX_PAGE_SIZE,
    problem::{ApiError, Problem},
    stale::mark_stale,
    state::Gateway,
};

#[derive(Debug, Deserialize, IntoParams)]
pub struct CatalogQuery {
    /// 1 to 100; default 20.
    pub page_size: Option<u32>,
    /// The `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Case-insensitive text filter over name and description.
    pub q: Option<String>,
}

/// Page sizes are bounded at the edge: a client cannot ask for the whole catalog at once.
pub fn page_size(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested {
        Some(size) if size > MAX_PAGE_SIZE => Err(ApiError::invalid(
            "page_size",
            format!("at most {MAX_PAGE_SIZE}"),
        )),
        Some(size) => Ok(size),
        None => Ok(0),
    }
}

/// Whether a failure is the upstream's (serve stale) rather than an answer about the request.
fn worth_a_fallback(status: &Status) -> bool {
    is_upstream_failure(effective_code(status))
}

/// List products
///
/// Pages through active products. While inventory is unavailable, the last good copy of the
/// page may be served, marked `X-Ferroshop-Stale: true` and `Warning: 110`.
#[utoipa::path(
    tag = "catalog",
    params(CatalogQuery),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        (status = 400, description = "Bad page size or token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Inventory unavailable and nothing cached", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/products")]
pub async fn list_products(
    gateway: web::Data<Gateway>,
    query: web::Query<CatalogQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let request = ListProductsRequest {
        page_size: page_size(query.page_size)?,
        page_token: inputs::PAGE_TOKEN
            .parse(query.page_token.as_deref().unwrap_or_default())?
            .to_owned(),
        query: inputs::SearchText::parse(query.q.as_deref().unwrap_or_default())?
            .as_str()
            .to_owned(),
    };
    let key = format!(
        "{}|{}|{}",
        request.page_size, request.page_token, request.query
    );
    let result = gateway
        .upstreams
        .inventory
        .call(true, |endpoint| {
            let request = request.clone();
            async move {
                InventoryServiceClient::new(endpoint)
                    .list_products(request)
                    .await
            }
        })
        .await;
    match result {
        Ok(page) => {
            let page = ProductPage {
                products: page.products.into_iter().map(Product::from).collect(),
                next_page_token: Some(page.next_page_token).filter(|t| !t.is_empty()),
            };
            gateway.catalog_pages.remember(key, page.clone());
            Ok(HttpResponse::Ok().json(page))
        }
        Err(status) if worth_a_fallback(&status) => match gateway.catalog_pages.recall(&key) {
            Some((page, age)) => {
                tracing::warn!(code = ?status.code(), age_secs = age.as_secs(), "inventory unavailable; serving a stale catalog page");
                let mut response = HttpResponse::Ok();
                mark_stale(&mut response, age);
                Ok(response.json(page))
            }
            None => Err(ApiError::upstream("inventory")(status)),
        },
        Err(status) => Err(ApiError::upstream("inventory")(status)),
    }
}

/// Get a product
#[utoipa::path(
    tag = "catalog",
    params(("sku" = String, Path, description = "Stock keeping unit")),
    responses(
        (status = 200, description = "The product", body = Product),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/products/{sku}")]
pub async fn get_product(
    gateway: web::Data<Gateway>,
    sku: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // A malformed SKU names no product: 400 here rather than a call (and a fallback-cache key).
    let sku = inputs::Sku::parse(&sku)?.as_str().to_owned();
    let result = gateway
        .upstreams
        .inventory
        .call(true, |endpoint| {
            let request = GetProductRequest { sku: sku.clone() };
            async move {
                InventoryServiceClient::new(endpoint)
                    .get_product(request)
                    .await
            }
        })
        .await;
    match result {
        Ok(response) => {
            let product = Product::from(response.product.unwrap_or_default());
            gateway.products.remember(sku, product.clone());
            Ok(HttpResponse::Ok().json(product))
        }
        Err(status) if worth_a_fallback(&status) => match gateway.products.recall(&sku) {
            Some((product, age)) => {
                let mut response = HttpResponse::Ok();
                mark_stale(&mut response, age);
                Ok(response.json(product))
            }
            None => Err(ApiError::upstream("inventory")(status)),
        },
        Err(status) => Err(ApiError::upstream("inventory")(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None).ok(), Some(0));
        assert_eq!(page_size(Some(100)).ok(), Some(100));
        let problem = page_size(Some(101)).err().map(|e| e.problem());
        assert_eq!(problem.as_ref().map(|p| p.status), Some(400));
        assert_eq!(problem.and_then(|p| p.field).as_deref(), Some("page_size"));
    }
}
