//! Authentication (who is calling) and authorization (may they), at the edge.
//!
//! The [`middleware`] looks at every request once: no `Authorization` header means an anonymous
//! caller; a bearer token is verified against the users service's JWKS ([`jwks`], [`verify`])
//! and the outcome is stored as an [`Identity`] in the request's extensions. It never rejects on
//! its own — public routes (the catalog) must work without a token, and the rate limiter wants
//! the identity either way. Handlers state what they need with an extractor:
//!
//! * [`Caller`]: any signed-in user, else 401 (503 if keys could not be loaded at all);
//! * [`AdminCaller`]: a user whose token says `role: "admin"`, else 403.
//!
//! **Object-level authorization** — may *this* customer see *this* order — cannot be decided
//! from the token alone; the handlers pass the caller's id to the orders service, which answers
//! NOT_FOUND for someone else's order (see `api::orders`). 404, not 403: a 403 would confirm that
//! the order exists.
//!
//! Browsers cannot set headers on an `EventSource`, so the order event stream also accepts a
//! **stream ticket** in its URL ([`ticket`]): a credential for that one order's stream, valid
//! for a minute, issued in exchange for the bearer token. No route takes a bearer token in the
//! URL, where proxies, browser history and `Referer` headers would keep it.

pub mod jwks;
#[cfg(test)]
pub(crate) mod testing;
pub mod ticket;
pub mod verify;

use std::future::{Ready, ready};

use actix_web::{
    Error, FromRequest, HttpMessage as _, HttpRequest,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
    web,
};

pub use jwks::{AuthFailure, KeyCache};
pub use verify::{Principal, Role, TokenError};

use crate::{problem::ApiError, state::Gateway};

/// What the request's credentials established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    User(Principal),
    /// A token was sent and is not acceptable.
    Refused(TokenError),
    /// A token was sent but no key set is available to check it.
    Unverifiable(String),
}

/// The bearer token of a request's `Authorization` header, if it has one.
fn bearer(req: &ServiceRequest) -> Option<Result<String, TokenError>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
        .map(|(_, token)| token.trim().to_owned());
    Some(token.ok_or(TokenError::Malformed))
}

pub async fn middleware(
    gateway: web::Data<Gateway>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let identity = match bearer(&req) {
        None => Identity::Anonymous,
        Some(Err(error)) => Identity::Refused(error),
        Some(Ok(token)) => match gateway.keys.verify(&token, &gateway.expectations).await {
            Ok(principal) => Identity::User(principal),
            Err(AuthFailure::Refused(error)) => {
                tracing::info!(%error, "bearer token refused");
                metrics::counter!("gateway_auth_refusals_total").increment(1);
                Identity::Refused(error)
            }
            Err(AuthFailure::Unavailable(reason)) => Identity::Unverifiable(reason),
        },
    };
    req.extensions_mut().insert(identity);
    next.call(req).await
}

/// The identity the middleware stored (anonymous if it did not run).
pub fn identity(req: &HttpRequest) -> Identity {
    req.extensions()
        .get::<Identity>()
        .cloned()
        .unwrap_or(Identity::Anonymous)
}

/// Any signed-in user.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl Caller {
    /// The customer id to pass to orders for object-level checks: empty for an admin, who may
    /// see every order.
    pub fn owner_filter(&self) -> String {
        match self.0.role {
            Role::Admin => String::new(),
            Role::Customer => self.0.user_id.to_string(),
        }
    }

    /// `message` as a call to orders on this caller's behalf: an admin's carries the admin
    /// scope (`platform::grpc::authz`), without which orders refuses an empty
    /// [`Caller::owner_filter`].
    pub fn orders_request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if self.0.role == Role::Admin {
            platform::grpc::authz::grant_admin(&mut request);
        }
        request
    }
}

impl Caller {
    /// The caller an identity establishes, or why there is none (401, or 503 without keys).
    pub fn from_identity(identity: Identity) -> Result<Self, ApiError> {
        match identity {
            Identity::User(principal) => Ok(Self(principal)),
            Identity::Anonymous => Err(ApiError::Unauthenticated(
                "this route needs a bearer token (POST /api/v1/auth/login)".to_owned(),
            )),
            Identity::Refused(error) => Err(ApiError::Unauthenticated(error.to_string())),
            Identity::Unverifiable(reason) => Err(ApiError::Unavailable(reason)),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_identity(identity(req)))
    }
}

/// A signed-in administrator.
#[derive(Clone, Debug)]
pub struct AdminCaller(pub Principal);

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(match Caller::from_request(req, payload).into_inner() {
            Ok(Caller(principal)) if principal.role == Role::Admin => Ok(Self(principal)),
            Ok(_) => Err(ApiError::Forbidden(
                "this route is for administrators".to_owned(),
            )),
            Err(error) => Err(error),
        })
    }
}
