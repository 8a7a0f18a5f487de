//! A signer for unit tests: an Ed25519 key, its JWK, and tokens with any claims or header.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use contracts::users::JsonWebKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, spki::der::pem::LineEnding};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER: &str = "ferroshop-users";
pub const AUDIENCE: &str = "ferroshop";

pub struct Signer {
    pub kid: String,
    encoding: EncodingKey,
    x: String,
}

impl Signer {
    pub fn new(kid: &str) -> Self {
        let secret: [u8; 32] = rand::random();
        let key = ed25519_dalek::SigningKey::from_bytes(&secret);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            x: URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
        }
    }

    pub fn jwk(&self) -> JsonWebKey {
        JsonWebKey {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: self.x.clone(),
            kid: self.kid.clone(),
            alg: "EdDSA".into(),
            r#use: "sig".into(),
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
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// The public key, as an attacker trying key confusion would use it.
    pub fn public_bytes(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(&self.x).unwrap()
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
