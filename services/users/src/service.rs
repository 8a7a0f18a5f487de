//! The users service layer: what each call of the API does, between the gRPC translation
//! (`grpc.rs`) and the SQL (`store`).
//!
//! * **Registration** parses the address, the password (against the policy and the address) and
//!   the display name, hashes the password (bounded, see [`crate::passwords`]), and stores the
//!   account with its `UserRegistered` event. Nobody becomes an administrator by registering.
//! * **Sign-in** answers a malformed address, an unknown account and a wrong password the same
//!   way, after the same work (a dummy hash for unknown accounts), so the answer does not tell
//!   which addresses have accounts; then it signs an access token.
//! * **Roles** change only by an operator's command (`crate::admin`).

use platform::StartError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Config,
    domain::{self, Email, Password, Role, User, password},
    error::UsersError,
    events,
    passwords::Hasher,
    store::UserStore,
    tokens::{AccessToken, PublicJwk, SigningKey, TokenIssuer},
};

pub struct Accounts {
    store: UserStore,
    hasher: Hasher,
    tokens: TokenIssuer,
}

impl Accounts {
    pub fn new(store: UserStore, hasher: Hasher, tokens: TokenIssuer) -> Self {
        Self {
            store,
            hasher,
            tokens,
        }
    }

    /// The accounts of `store`, with the signing key, token lifetime and hashing bounds of
    /// `config`: what the API serves and what the operator commands of `crate::admin` use.
    pub fn configured(config: &Config, store: UserStore) -> Result<Self, StartError> {
        let key = match &config.jwt_key {
            Some(key) => key.clone(),
            None => {
                tracing::warn!(
                    "no USERS_JWT_PRIVATE_KEY set: generated a development signing key; tokens \
                     will not survive a restart and replicas will not share it"
                );
                SigningKey::generate().map_err(|err| StartError::setup("a signing key", err))?
            }
        };
        tracing::info!(kid = key.kid(), "JWT signing key loaded");
        let ttl = time::Duration::try_from(config.jwt_ttl)
            .map_err(|err| StartError::setup("the token lifetime", err))?;
        let tokens = TokenIssuer::new(
            key,
            config.jwt_issuer.clone(),
            config.jwt_audience.clone(),
            ttl,
        )
        .with_previous_keys(config.jwt_previous_keys.clone());
        let hasher = Hasher::new(config.hash_concurrency, config.hash_queue);
        Ok(Self::new(store, hasher, tokens))
    }

    /// Registers a customer (or, for an operator, an account with `role`).
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        role: Role,
    ) -> Result<User, UsersError> {
        let email = Email::parse(email)?;
        let password = Password::parse(password, &email)?;
        let display_name = domain::display_name(display_name, &email)?;
        let mut user = User::register(email, display_name, OffsetDateTime::now_utc());
        user.role = role;
        let hash = self.hasher.hash(password).await?;
        self.store
            .register(&user, &hash, &events::user_registered(&user))
            .await?;
        tracing::info!(user_id = %user.id, role = user.role.as_str(), "user registered");
        Ok(user)
    }

    /// Checks the credentials and signs an access token for the account.
    pub async fn sign_in(
        &self,
        email: &str,
        password: String,
    ) -> Result<(User, AccessToken), UsersError> {
        // A malformed address cannot belong to an account: same answer as a wrong password.
        let Ok(email) = Email::parse(email) else {
            return Err(UsersError::InvalidCredentials);
        };
        // No account has a longer password, and hashing a megabyte is not free.
        if password.len() > password::MAX_BYTES {
            return Err(UsersError::InvalidCredentials);
        }
        let (user, hash) = match self.store.find_credentials(&email).await? {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let matches = self.hasher.verify(password, hash).await?;
        let user = match (matches, user) {
            (true, Some(user)) => user,
            _ => return Err(UsersError::InvalidCredentials),
        };
        let token = self.tokens.issue(&user, OffsetDateTime::now_utc())?;
        Ok((user, token))
    }

    pub async fn user(&self, id: Uuid) -> Result<User, UsersError> {
        self.store.find(id).await?.ok_or(UsersError::NotFound)
    }

    /// Gives the account registered as `email` the `role` (an operator's decision).
    pub async fn set_role(&self, email: &Email, role: Role) -> Result<Option<User>, UsersError> {
        let user = self.store.set_role(email, role).await?;
        if let Some(user) = &user {
            tracing::info!(user_id = %user.id, role = role.as_str(), "role changed by an operator");
        }
        Ok(user)
    }

    /// The JWKS: the keys that verify the tokens this service signs.
    pub fn public_keys(&self) -> Vec<PublicJwk> {
        self.tokens.public_keys()
    }
}
