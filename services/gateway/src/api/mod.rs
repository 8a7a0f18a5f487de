//! The REST API (`/api/v1`) and its OpenAPI description.
//!
//! | module | routes |
//! |---|---|
//! | [`accounts`] | register, login, me |
//! | [`catalog`] | products: list (cursor pages), detail |
//! | [`orders`] | place (Idempotency-Key), get with saga timeline, list mine, cancel, payment |
//! | [`events`] | the order's status as Server-Sent Events |
//! | [`admin`] | product upsert, stock adjustments (admin role) |
//! | [`docs`] | `/api/openapi.json` and the offline docs page `/api/docs` |
//! | [`wire`] | the JSON types, translated from the gRPC messages |
//!
//! Every handler is a translation, REST → gRPC → REST: parse and bound the input, call one or
//! two upstreams through `crate::upstream`, map the answer to JSON or the status to a problem.
//! The OpenAPI document is collected from the handlers' `#[utoipa::path]` annotations as the
//! routes are registered (`utoipa-actix-web`), so a route cannot exist without being documented.

pub mod accounts;
pub mod admin;
pub mod catalog;
pub mod docs;
pub mod events;
pub mod orders;
pub mod wire;

use actix_web::{App, web};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_actix_web::{AppExt as _, service_config::ServiceConfig};

use crate::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ferroshop API",
        version = env!("CARGO_PKG_VERSION"),
        description = "REST/JSON edge of Ferroshop. Authenticate with POST /api/v1/auth/login and send \
                       `Authorization: Bearer <token>`. Errors are application/problem+json (RFC 9457). \
                       Responses carry x-request-id and RateLimit-* headers."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    tags(
        (name = "accounts", description = "Registration and sign-in"),
        (name = "catalog", description = "Products, public"),
        (name = "orders", description = "A customer's orders; object-level authorization: others' orders are 404"),
        (name = "admin", description = "Catalog and stock writes; admin role required"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Registers every `/api/v1` route (and documents it).
pub fn routes(config: &mut ServiceConfig) {
    config
        .service(accounts::register)
        .service(accounts::login)
        .service(accounts::me)
        .service(catalog::list_products)
        .service(catalog::get_product)
        .service(orders::place_order)
        .service(orders::list_orders)
        .service(orders::get_order)
        .service(orders::cancel_order)
        .service(orders::order_payment)
        .service(events::order_events)
        .service(admin::upsert_product)
        .service(admin::adjust_stock);
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, document) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(utoipa_actix_web::scope("/api/v1").configure(routes))
        .split_for_parts();
    document
}

/// The `/api/v1` scope, with problem+json 404s for unknown routes.
pub fn scope() -> utoipa_actix_web::scope::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    utoipa_actix_web::scope("/api/v1")
        .configure(routes)
        .default_service(web::to(crate::edge::extract::not_found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_route_and_the_bearer_scheme() {
        let json: serde_json::Value =
            serde_json::from_str(&document().to_json().unwrap_or_default()).unwrap_or_default();
        assert!(
            json["openapi"]
                .as_str()
                .unwrap_or_default()
                .starts_with("3.1")
        );
        for path in [
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/me",
            "/api/v1/products",
            "/api/v1/products/{sku}",
            "/api/v1/orders",
            "/api/v1/orders/{id}",
            "/api/v1/orders/{id}/cancel",
            "/api/v1/orders/{id}/events",
            "/api/v1/orders/{id}/payment",
            "/api/v1/admin/products/{sku}",
            "/api/v1/admin/products/{sku}/stock-adjustments",
        ] {
            assert!(json["paths"][path].is_object(), "{path} missing");
        }
        assert_eq!(
            json["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(json["components"]["schemas"]["Problem"].is_object());
        assert!(json["components"]["schemas"]["Order"].is_object());
    }
}
