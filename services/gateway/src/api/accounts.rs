//! Accounts: registration and login (both anonymous), and the caller's own profile.

use actix_web::{HttpResponse, get, post, web};
use contracts::users::{AuthenticateRequest, GetUserRequest, RegisterRequest, UsersServiceClient};

use super::wire::{Credentials, Registration, Session, User};
use crate::{
    auth::Caller,
    problem::{ApiError, Problem},
    ratelimit,
    state::Gateway,
};

/// Register
///
/// Creates a customer account. The email is normalised; 409 if it is taken, 400 naming the
/// field if the email or password is unacceptable.
#[utoipa::path(
    tag = "accounts",
    request_body = Registration,
    responses(
        (status = 201, description = "Registered", body = User),
        (status = 400, description = "Invalid email or password", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email already registered", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/register")]
pub async fn register(
    gateway: web::Data<Gateway>,
    body: web::Json<Registration>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    // The email and password are users' alone to judge; the display name follows the shared
    // rule (an empty one lets users default it to the email's local part).
    let display_name = match body.display_name.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(given) => inputs::DisplayName::parse(given)?.as_str().to_owned(),
    };
    let request = RegisterRequest {
        email: body.email,
        password: body.password,
        display_name,
    };
    let response = gateway
        .upstreams
        .users
        .call(false, |endpoint| {
            let request = request.clone();
            async move { UsersServiceClient::new(endpoint).register(request).await }
        })
        .await
        .map_err(ApiError::upstream("users"))?;
    let user = response.user.map(User::from);
    Ok(HttpResponse::Created().json(user))
}

/// Log in
///
/// Exchanges email and password for a short-lived access token (`Authorization: Bearer …`).
/// A wrong password and an unknown email get the same 401. Attempts are limited per account
/// (429 with `Retry-After` beyond), however many addresses they come from.
#[utoipa::path(
    tag = "accounts",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "Email and password do not match", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/login")]
pub async fn login(
    gateway: web::Data<Gateway>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    ratelimit::check_login(&gateway, &body.email).await?;
    let request = AuthenticateRequest {
        email: body.email,
        password: body.password,
    };
    let response = gateway
        .upstreams
        .users
        .call(false, |endpoint| {
            let request = request.clone();
            async move {
                UsersServiceClient::new(endpoint)
                    .authenticate(request)
                    .await
            }
        })
        .await
        .map_err(ApiError::upstream("users"))?;
    Ok(HttpResponse::Ok().json(Session {
        access_token: response.access_token,
        token_type: response.token_type,
        expires_in: response.expires_in_seconds,
        user: response.user.map(User::from),
    }))
}

/// Who am I
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = User),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/me")]
pub async fn me(gateway: web::Data<Gateway>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let user_id = caller.0.user_id.to_string();
    let response = gateway
        .upstreams
        .users
        .call(true, |endpoint| {
            let request = GetUserRequest {
                user_id: user_id.clone(),
            };
            async move { UsersServiceClient::new(endpoint).get_user(request).await }
        })
        .await
        .map_err(ApiError::upstream("users"))?;
    Ok(HttpResponse::Ok().json(response.user.map(User::from)))
}
