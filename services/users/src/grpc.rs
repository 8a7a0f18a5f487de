//! The gRPC API: decode → domain → store → encode, nothing else.

use contracts::users::{
    self as api, AuthenticateRequest, AuthenticateResponse, GetJwksRequest, GetJwksResponse,
    GetUserRequest, GetUserResponse, JsonWebKey, RegisterRequest, RegisterResponse,
};
use messaging::envelope::timestamp;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{self, Email, InvalidInput, Password, Role, User, password},
    error::UsersError,
    events,
    passwords::Hasher,
    store::UserStore,
    tokens::TokenIssuer,
};

pub struct UsersApi {
    store: UserStore,
    tokens: TokenIssuer,
    hasher: Hasher,
}

impl UsersApi {
    pub fn new(store: UserStore, tokens: TokenIssuer, hasher: Hasher) -> Self {
        Self {
            store,
            tokens,
            hasher,
        }
    }

    async fn register(&self, request: RegisterRequest) -> Result<User, UsersError> {
        let email = Email::parse(&request.email)?;
        let password = Password::parse(&request.password, &email)?;
        let display_name = domain::display_name(&request.display_name, &email)?;
        let user = User::register(email, display_name, OffsetDateTime::now_utc());
        let hash = self.hasher.hash(password).await?;
        self.store
            .register(&user, &hash, &events::user_registered(&user))
            .await?;
        tracing::info!(user_id = %user.id, role = user.role.as_str(), "user registered");
        Ok(user)
    }

    async fn authenticate(
        &self,
        request: AuthenticateRequest,
    ) -> Result<AuthenticateResponse, UsersError> {
        // A malformed address cannot belong to an account: same answer as a wrong password.
        let Ok(email) = Email::parse(&request.email) else {
            return Err(UsersError::InvalidCredentials);
        };
        // No account has a longer password, and hashing a megabyte is not free.
        if request.password.len() > password::MAX_BYTES {
            return Err(UsersError::InvalidCredentials);
        }
        let found = self.store.find_credentials(&email).await?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let matches = self.hasher.verify(request.password, hash).await?;
        let user = match (matches, user) {
            (true, Some(user)) => user,
            _ => return Err(UsersError::InvalidCredentials),
        };
        let token = self.tokens.issue(&user, OffsetDateTime::now_utc())?;
        Ok(AuthenticateResponse {
            access_token: token.token,
            token_type: "Bearer".to_owned(),
            expires_in_seconds: token.expires_in.whole_seconds(),
            user: Some(encode_user(&user)),
        })
    }

    async fn get_user(&self, request: GetUserRequest) -> Result<User, UsersError> {
        let id = Uuid::parse_str(request.user_id.trim())
            .map_err(|_| InvalidInput::new("user_id", "must be a UUID"))?;
        self.store.find(id).await?.ok_or(UsersError::NotFound)
    }
}

#[tonic::async_trait]
impl api::UsersService for UsersApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let user = self.register(request.into_inner()).await?;
        Ok(Response::new(RegisterResponse {
            user: Some(encode_user(&user)),
        }))
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        Ok(Response::new(
            self.authenticate(request.into_inner()).await?,
        ))
    }

    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        let user = self.get_user(request.into_inner()).await?;
        Ok(Response::new(GetUserResponse {
            user: Some(encode_user(&user)),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        let keys = self
            .tokens
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
