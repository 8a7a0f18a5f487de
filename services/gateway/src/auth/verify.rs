//! The rules an access token must pass, as pure functions over a token and a key set.
//!
//! 1. **Algorithm allow-list.** The header's `alg` must be `EdDSA`, the only algorithm users
//!    signs with. The token never chooses how it is checked: accepting its `alg` is how `none`
//!    (no signature at all) and key confusion (an `HS256` token "signed" with the *public* key
//!    as an HMAC secret) get through naive verifiers.
//! 2. **Key id.** `kid` picks the key from the JWKS; a kid we do not know may mean the signer
//!    rotated keys, so the caller refreshes the set (rate-limited) and tries once more.
//! 3. **Signature**, then the claims: `exp` (expired) and `nbf` (not yet valid) with a small
//!    leeway for clock skew, `iss` (signed by our users service) and `aud` (meant for us, not a
//!    token another application accepted).
//! 4. **Subject and role.** `sub` must be a user id (UUID) and `role` `customer` or `admin`.

use std::collections::HashMap;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use contracts::users::JsonWebKey;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use uuid::Uuid;

/// The only algorithm accepted.
pub const ALGORITHM: &str = "EdDSA";

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// Why a token was refused. Every variant is a 401 for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    #[error("token has no key id")]
    MissingKeyId,
    #[error("unknown signing key")]
    UnknownKey(String),
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issued by someone else")]
    WrongIssuer,
    #[error("token meant for another audience")]
    WrongAudience,
    #[error("bad signature")]
    BadSignature,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// A customer or an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Admin,
}

/// Who is calling, as established by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
}

/// The verification keys by key id, built from the users service's JWKS.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySet {
    /// Keeps only keys that can verify our tokens (OKP / Ed25519 / EdDSA, for signing); others
    /// are skipped with a warning rather than failing the whole set.
    pub fn from_jwks(jwks: &[JsonWebKey]) -> Self {
        let mut keys = HashMap::new();
        for jwk in jwks {
            let usable = jwk.kty == "OKP"
                && jwk.crv == "Ed25519"
                && (jwk.alg.is_empty() || jwk.alg == ALGORITHM)
                && (jwk.r#use.is_empty() || jwk.r#use == "sig")
                && !jwk.kid.is_empty();
            match usable.then(|| DecodingKey::from_ed_components(&jwk.x)) {
                Some(Ok(key)) => {
                    keys.insert(jwk.kid.clone(), key);
                }
                _ => tracing::warn!(kid = %jwk.kid, kty = %jwk.kty, "unusable JWK skipped"),
            }
        }
        Self { keys }
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The key ids in the set.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// This set with every key of `other` added (a key id in both keeps `other`'s key).
    #[must_use]
    pub fn merged(&self, other: &KeySet) -> KeySet {
        let mut keys = self.keys.clone();
        keys.extend(
            other
                .keys
                .iter()
                .map(|(kid, key)| (kid.clone(), key.clone())),
        );
        Self { keys }
    }

    /// This set without the keys `drop` names.
    #[must_use]
    pub fn without(&self, drop: impl Fn(&str) -> bool) -> KeySet {
        let keys = self
            .keys
            .iter()
            .filter(|(kid, _)| !drop(kid))
            .map(|(kid, key)| (kid.clone(), key.clone()))
            .collect();
        Self { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What a token must say about who issued it and for whom.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: String,
    pub audience: String,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    role: String,
}

/// Checks the header (rule 1) and returns the key id (rule 2), without touching any key.
pub fn key_id(token: &str) -> Result<String, TokenError> {
    let encoded = token.split('.').next().ok_or(TokenError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Malformed)?;
    let header: Header = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if header.alg != ALGORITHM {
        return Err(TokenError::AlgorithmNotAllowed(header.alg));
    }
    header
        .kid
        .filter(|kid| !kid.is_empty())
        .ok_or(TokenError::MissingKeyId)
}

/// Verifies `token` against `keys` (all four rules).
pub fn verify(token: &str, keys: &KeySet, expect: &Expectations) -> Result<Principal, TokenError> {
    let kid = key_id(token)?;
    let key = keys.keys.get(&kid).ok_or(TokenError::UnknownKey(kid))?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[&expect.issuer]);
    validation.set_audience(&[&expect.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map_err(|error| match error.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) => {
                TokenError::Malformed
            }
            other => TokenError::Invalid(format!("{other:?}")),
        })?
        .claims;
    let user_id = Uuid::parse_str(&claims.sub)
        .map_err(|_| TokenError::Invalid("subject is not a user id".to_owned()))?;
    let role = match claims.role.as_str() {
        "customer" => Role::Customer,
        "admin" => Role::Admin,
        other => return Err(TokenError::Invalid(format!("unknown role {other:?}"))),
    };
    Ok(Principal { user_id, role })
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
