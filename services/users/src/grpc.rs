//! The gRPC API: decode → service → encode, nothing else. What each call does is in
//! [`crate::service`].

use contracts::users::{
    self as api, AuthenticateRequest, AuthenticateResponse, GetJwksRequest, GetJwksResponse,
    GetUserRequest, GetUserResponse, JsonWebKey, RegisterRequest, RegisterResponse,
};
use messaging::envelope::timestamp;
use platform::grpc::authz::Callers;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{InvalidInput, Role, User},
    error::UsersError,
    service::Accounts,
};

/// Who may call what (`platform::grpc::authz`, enforced with mutual TLS): the gateway, which
/// also fetches the key set (JWKS) it verifies tokens with.
pub const CALLERS: Callers = &[
    ("Register", &["gateway"]),
    ("Authenticate", &["gateway"]),
    ("GetUser", &["gateway"]),
    ("GetJwks", &["gateway"]),
];

pub struct UsersApi {
    accounts: Accounts,
}

impl UsersApi {
    pub fn new(accounts: Accounts) -> Self {
        Self { accounts }
    }
}

#[tonic::async_trait]
impl api::UsersService for UsersApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let request = request.into_inner();
        let user = self
            .accounts
            .register(
                &request.email,
                &request.password,
                &request.display_name,
                Role::Customer,
            )
            .await?;
        Ok(Response::new(RegisterResponse {
            user: Some(encode_user(&user)),
        }))
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let request = request.into_inner();
        let (user, token) = self
            .accounts
            .sign_in(&request.email, request.password)
            .await?;
        Ok(Response::new(AuthenticateResponse {
            access_token: token.token,
            token_type: "Bearer".to_owned(),
            expires_in_seconds: token.expires_in.whole_seconds(),
            user: Some(encode_user(&user)),
        }))
    }

    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        let id = Uuid::parse_str(request.into_inner().user_id.trim())
            .map_err(|_| UsersError::from(InvalidInput::new("user_id", "must be a UUID")))?;
        let user = self.accounts.user(id).await?;
        Ok(Response::new(GetUserResponse {
            user: Some(encode_user(&user)),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        let keys = self
            .accounts
            .public_keys()
            .into_iter()
            .map(|key| JsonWebKey {
                kty: key.kty,
                crv: key.crv,
                x: key.x,
                kid: key.kid,
                alg: key.alg,
                r#use: key.key_use,
            })
            .collect();
        Ok(Response::new(GetJwksResponse { keys }))
    }
}

fn encode_user(user: &User) -> api::User {
    api::User {
        id: user.id.to_string(),
        email: user.email.to_string(),
        display_name: user.display_name.as_str().to_owned(),
        role: match user.role {
            Role::Customer => api::Role::Customer,
            Role::Admin => api::Role::Admin,
        }
        .into(),
        created_at: Some(timestamp(user.created_at)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_callers_table_admits_exactly_the_declared_callers() {
        platform::grpc::authz::check_declared(super::CALLERS, &declarations::users::USERS).unwrap();
    }
}
