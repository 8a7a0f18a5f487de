//! The REST API (`/api/v1`) and its OpenAPI description.
//!
//! | module | routes |
//! |---|---|
//! | [`accounts`] | register, login, me |
//! | [`catalog`] | products: list (cursor pages), detail |
//! | [`orders`] | place (Idempotency-Key), get with saga timeline, list mine, cancel, payment |
//! | [`events`] | the order's status as Server-Sent Events, and the tickets that open them |
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
    components(schemas(Problem, wire::OrderStepEvent)),
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
        .service(events::stream_ticket)
        .service(events::order_events)
        .service(admin::upsert_product)
        .service(admin::adjust_stock);
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(utoipa_actix_web::scope("/api/v1").configure(routes))
        .split_for_parts();
    EdgeResponses.modify(&mut document);
    document
}

/// The answers the edge gives before (or instead of) a handler, added to every operation they
/// can happen on, so the document lists every status a client can receive and contract tests can
/// hold the gateway to it. Each handler documents only its own outcomes.
///
/// | status | on | from |
/// |---|---|---|
/// | 400 | operations with parameters or a body | `edge::extract`: a value that does not parse, naming the field |
/// | 401 | operations with a security requirement | `auth`: no token, or one that does not verify |
/// | 408 | operations with a body | `edge::limits`: the body did not arrive within `GATEWAY_BODY_TIMEOUT` |
/// | 413, 415 | operations with a body | `edge::extract`: body over the limit, not `application/json` |
/// | 429 | every operation | `ratelimit`, with `Retry-After` |
/// | 503 | every operation | an upstream that is down, shedding load or whose breaker is open, with `Retry-After` |
/// | 504 | every operation | an upstream that missed the request's deadline |
struct EdgeResponses;

impl EdgeResponses {
    fn problem(
        description: &str,
        retry_after: bool,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
        let mut response = utoipa::openapi::ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                utoipa::openapi::Content::new(Some(utoipa::openapi::Ref::from_schema_name(
                    "Problem",
                ))),
            );
        if retry_after {
            response = response.header(
                "Retry-After",
                utoipa::openapi::HeaderBuilder::new()
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::Integer),
                    ))
                    .description(Some("Seconds to wait before trying again"))
                    .build(),
            );
        }
        response.build().into()
    }
}

impl Modify for EdgeResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let has_body = operation.request_body.is_some();
                let has_input = has_body
                    || operation
                        .parameters
                        .as_ref()
                        .is_some_and(|parameters| !parameters.is_empty());
                let secured = operation
                    .security
                    .as_ref()
                    .is_some_and(|security| !security.is_empty());
                // (applies, status, description, carries Retry-After)
                let edge = [
                    (
                        has_input,
                        "400",
                        "Malformed input; the problem names the field",
                        false,
                    ),
                    (
                        secured,
                        "401",
                        "Missing, expired or otherwise invalid bearer token",
                        false,
                    ),
                    (
                        has_body,
                        "408",
                        "The request body did not arrive in time",
                        false,
                    ),
                    (has_body, "413", "Request body over the size limit", false),
                    (
                        has_body,
                        "415",
                        "Request body not sent as application/json",
                        false,
                    ),
                    (true, "429", "Rate limit exceeded; see Retry-After", true),
                    (
                        true,
                        "503",
                        "An upstream service is unavailable or shedding load; retry after Retry-After",
                        true,
                    ),
                    (
                        true,
                        "504",
                        "An upstream service did not answer within the deadline",
                        false,
                    ),
                ];
                let responses = &mut operation.responses.responses;
                for (applies, status, description, retry_after) in edge {
                    if applies {
                        responses
                            .entry(status.to_owned())
                            .or_insert_with(|| Self::problem(description, retry_after));
                    }
                }
            }
        }
    }
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
            "/api/v1/orders/{id}/stream-tickets",
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

    fn statuses(json: &serde_json::Value, path: &str, method: &str) -> Vec<String> {
        json["paths"][path][method]["responses"]
            .as_object()
            .map(|responses| responses.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn every_operation_documents_the_edge_answers_it_can_get() {
        let json: serde_json::Value =
            serde_json::from_str(&document().to_json().unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            statuses(&json, "/api/v1/orders", "post"),
            [
                "201", "400", "401", "408", "409", "413", "415", "429", "503", "504"
            ]
        );
        assert_eq!(
            json["paths"]["/api/v1/orders"]["post"]["responses"]["503"]["headers"]["Retry-After"]["schema"]
                ["type"],
            "integer"
        );
        // Public, no body: no 401, 413 or 415.
        assert_eq!(
            statuses(&json, "/api/v1/products", "get"),
            ["200", "400", "429", "503", "504"]
        );
        // A handler's own description wins over the edge's generic one.
        assert_eq!(
            json["paths"]["/api/v1/auth/login"]["post"]["responses"]["401"]["description"],
            "Email and password do not match"
        );
        assert_eq!(
            json["paths"]["/api/v1/orders"]["post"]["responses"]["415"]["content"]["application/problem+json"]
                ["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }
}
