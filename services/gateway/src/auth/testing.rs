//! Tokens for the gateway's unit tests, signed by the users service's own code.
//!
//! Every Ferroshop test that needs a JWT signs it with `users::tokens::SigningKey::sign`, the
//! function the users service issues real tokens with, so a test token differs from a real one
//! only in the claims the test chose. Tokens no key would sign (another algorithm, no signature,
//! a swapped header) are made from such a token by the test that needs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use contracts::users::JsonWebKey;
use serde_json::{Value, json};
use users::tokens::SigningKey;

pub const ISSUER: &str = "ferroshop-users";
pub const AUDIENCE: &str = "ferroshop";

/// A fresh signing key, as the users service would hold it.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    pub fn new() -> Self {
        Self {
            key: SigningKey::generate().unwrap(),
        }
    }

    /// The key id tokens carry in their header: the key's RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// The key as the users service publishes it in `GetPublicKeys`.
    pub fn jwk(&self) -> JsonWebKey {
        let public = self.key.public_jwk();
        JsonWebKey {
            kty: public.kty.clone(),
            crv: public.crv.clone(),
            x: public.x.clone(),
            kid: public.kid.clone(),
            alg: public.alg.clone(),
            r#use: public.key_use.clone(),
        }
    }

    /// Claims of a valid customer token, to be tweaked by tests.
    pub fn claims(&self) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": uuid::Uuid::now_v7().to_string(),
            "email": "ada@example.com", "role": "customer",
            "iat": now, "nbf": now, "exp": now + 900, "jti": "t1",
        })
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign(claims).unwrap()
    }

    /// The public key, as an attacker trying key confusion would use it.
    pub fn public_bytes(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(&self.key.public_jwk().x).unwrap()
    }
}

/// Replaces a token's header with `header` (JSON), keeping payload and signature.
pub fn with_header(token: &str, header: &Value) -> String {
    let mut parts = token.splitn(2, '.');
    let _ = parts.next();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        parts.next().unwrap()
    )
}
