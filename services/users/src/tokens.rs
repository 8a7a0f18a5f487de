//! JWT access tokens: an Ed25519 signing key with a key id, issuing, and the public JWKS.
//!
//! Tokens are signed with an **asymmetric** key (EdDSA over Ed25519): only this service holds the
//! private half, and everyone else (the gateway) verifies with the public half published by
//! `GetJwks`. The key id (`kid`) in every token header is the key's RFC 7638 thumbprint, which lets
//! verifiers pick the right key during a rotation and refetch the set when they meet a new one.
//!
//! The key comes from `USERS_JWT_PRIVATE_KEY` (PKCS#8 PEM) or the file named by
//! `USERS_JWT_PRIVATE_KEY_FILE`; without either, a fresh development key is generated at start.
//! A generated key dies with the process, so every running replica must be given the same key in
//! any real deployment.
//!
//! **Rotation without logouts.** A token stays valid until it expires (`USERS_JWT_TTL`), so a
//! new key must not make the old one unknown at once. To rotate: generate a new key, move the
//! current one into `USERS_JWT_PREVIOUS_KEYS` (its private PEM, or only its public SPKI PEM:
//! `openssl pkey -in old.pem -pubout`), set the new one as `USERS_JWT_PRIVATE_KEY`, and roll
//! the replicas. The JWKS then lists both keys, so tokens signed with either verify; once the
//! longest token lifetime has passed, drop the previous key. The gateway, for its part, merges
//! every key set it fetches instead of replacing it (see its `auth::jwks`), so replicas that
//! disagree during the roll-out do not log anyone out either.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, EncodePrivateKey as _, spki::der::pem::LineEnding,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::domain::User;

/// The only algorithm this project signs or accepts. Verifiers must allow-list it: accepting
/// whatever `alg` a token claims is how `alg: none` and key-confusion attacks work.
pub const ALGORITHM: Algorithm = Algorithm::EdDSA;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the JWT private key is not a PKCS#8 Ed25519 PEM: {0}")]
    InvalidPem(String),
    #[error("cannot encode the generated key: {0}")]
    Encode(String),
    #[error("a previous JWT key is neither a PKCS#8 private nor an SPKI public Ed25519 PEM: {0}")]
    InvalidPreviousKey(String),
}

/// A public key as published in the JWKS (RFC 7517, OKP keys per RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub key_use: String,
}

/// The private signing key with its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    public: PublicJwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl PublicJwk {
    /// The JWK of an Ed25519 public key.
    fn ed25519(key: &ed25519_dalek::VerifyingKey) -> Self {
        let x = URL_SAFE_NO_PAD.encode(key.to_bytes());
        Self {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            kid: thumbprint(&x),
            x,
            alg: "EdDSA".to_owned(),
            key_use: "sig".to_owned(),
        }
    }

    /// The public keys in `pems`: one or more PEM blocks, each an Ed25519 public key (SPKI,
    /// `-----BEGIN PUBLIC KEY-----`) or a private one (PKCS#8), of which only the public half is
    /// kept. Used for `USERS_JWT_PREVIOUS_KEYS`.
    pub fn from_pems(pems: &str) -> Result<Vec<Self>, KeyError> {
        use ed25519_dalek::pkcs8::DecodePublicKey as _;

        let mut keys = Vec::new();
        for block in pem_blocks(pems) {
            let key = if block.contains("PRIVATE KEY") {
                ed25519_dalek::SigningKey::from_pkcs8_pem(&block)
                    .map(|key| key.verifying_key())
                    .map_err(|err| KeyError::InvalidPreviousKey(err.to_string()))?
            } else {
                ed25519_dalek::VerifyingKey::from_public_key_pem(&block)
                    .map_err(|err| KeyError::InvalidPreviousKey(err.to_string()))?
            };
            keys.push(Self::ed25519(&key));
        }
        Ok(keys)
    }
}

/// The PEM blocks of `text`, each from its `-----BEGIN` line to its `-----END …-----` line.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("-----BEGIN ") {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                blocks.extend(current.take());
            }
        }
    }
    blocks
}

impl SigningKey {
    /// Loads a PKCS#8 PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|err| KeyError::InvalidPem(err.to_string()))?;
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|err| KeyError::InvalidPem(err.to_string()))?;
        Ok(Self {
            encoding,
            public: PublicJwk::ed25519(&key.verifying_key()),
        })
    }

    /// This key as PKCS#8 PEM, to keep a development key across restarts.
    pub fn generate_pem() -> Result<String, KeyError> {
        let mut secret = [0_u8; 32];
        rand::rng().fill_bytes(&mut secret);
        ed25519_dalek::SigningKey::from_bytes(&secret)
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|err| KeyError::Encode(err.to_string()))
    }

    /// A fresh random key, for local development and tests.
    pub fn generate() -> Result<Self, KeyError> {
        Self::from_pem(&Self::generate_pem()?)
    }

    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    /// Signs `claims` as a compact JWS: `alg` EdDSA, `typ` JWT and this key's `kid` in the
    /// header. The one place a Ferroshop token is signed; tests that need a token with claims the
    /// service would never issue (expired, another audience) sign them here too, so what they
    /// send differs from a real token only in the claims.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.kid().to_owned());
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }
}

/// RFC 7638 thumbprint of an OKP key: SHA-256 over its required members in lexicographic order.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: who signed it (`USERS_JWT_ISSUER`).
    pub iss: String,
    /// Audience: who may accept it (`USERS_JWT_AUDIENCE`).
    pub aud: String,
    /// Subject: the user id.
    pub sub: String,
    pub email: String,
    /// `customer` or `admin`.
    pub role: String,
    /// Issued at, not before, expires: seconds since the Unix epoch.
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Token id (UUIDv7), for audit logs and future revocation lists.
    pub jti: String,
}

/// Issues access tokens.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    key: SigningKey,
    /// Keys that signed tokens which may still be alive: published, never used to sign.
    previous: Vec<PublicJwk>,
    issuer: String,
    audience: String,
    ttl: Duration,
}

/// A signed token and its lifetime.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: Duration,
}

impl TokenIssuer {
    pub fn new(key: SigningKey, issuer: String, audience: String, ttl: Duration) -> Self {
        Self {
            key,
            previous: Vec::new(),
            issuer,
            audience,
            ttl,
        }
    }

    /// Also publishes `previous` keys (a rotation in progress); the current key is not repeated.
    #[must_use]
    pub fn with_previous_keys(mut self, previous: Vec<PublicJwk>) -> Self {
        let current = self.key.kid().to_owned();
        self.previous = previous
            .into_iter()
            .filter(|key| key.kid != current)
            .collect();
        self
    }

    /// The JWKS: the current key first, then the previous ones.
    pub fn public_keys(&self) -> Vec<PublicJwk> {
        std::iter::once(self.key.public_jwk().clone())
            .chain(self.previous.iter().cloned())
            .collect()
    }

    /// Signs a token for `user`, valid from `now` for the configured TTL.
    pub fn issue(
        &self,
        user: &User,
        now: OffsetDateTime,
    ) -> Result<AccessToken, jsonwebtoken::errors::Error> {
        let iat = now.unix_timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.id.to_string(),
            email: user.email.to_string(),
            role: user.role.as_str().to_owned(),
            iat,
            nbf: iat,
            exp: iat + self.ttl.whole_seconds(),
            jti: Uuid::now_v7().to_string(),
        };
        Ok(AccessToken {
            token: self.key.sign(&claims)?,
            expires_in: self.ttl,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key id")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verifies `token` against a key set, as a relying party (the gateway) does: the algorithm is
/// allow-listed, the key is chosen by `kid`, and `exp`, `nbf`, `iss` and `aud` are all checked.
pub fn verify(
    token: &str,
    keys: &[PublicJwk],
    issuer: &str,
    audience: &str,
) -> Result<Claims, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if header.alg != ALGORITHM {
        return Err(VerifyError::Invalid(format!(
            "algorithm {:?} is not allowed",
            header.alg
        )));
    }
    let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
    let jwk = keys
        .iter()
        .find(|key| key.kid == kid)
        .ok_or(VerifyError::UnknownKey)?;
    let key = DecodingKey::from_ed_components(&jwk.x)
        .map_err(|err| VerifyError::Invalid(err.to_string()))?;
    let mut validation = Validation::new(ALGORITHM);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = 30;
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|err| VerifyError::Invalid(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Email;

    fn user() -> User {
        let email = Email::parse("ada@example.com").unwrap();
        User::register(
            email.clone(),
            crate::domain::display_name("Ada", &email).unwrap(),
            OffsetDateTime::now_utc(),
        )
    }

    fn issuer(key: SigningKey) -> TokenIssuer {
        TokenIssuer::new(
            key,
            "ferroshop-users".into(),
            "ferroshop".into(),
            Duration::minutes(15),
        )
    }

    #[test]
    fn a_token_verifies_against_the_published_key() {
        let issuer = issuer(SigningKey::generate().unwrap());
        let user = user();
        let token = issuer.issue(&user, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(token.expires_in, Duration::minutes(15));
        let claims = verify(
            &token.token,
            &issuer.public_keys(),
            "ferroshop-users",
            "ferroshop",
        )
        .unwrap();
        assert_eq!(claims.sub, user.id.to_string());
        assert_eq!(claims.email, "ada@example.com");
        assert_eq!(claims.role, "customer");
        assert_eq!(claims.exp - claims.iat, 15 * 60);
    }

    #[test]
    fn the_header_names_the_algorithm_and_the_key() {
        let issuer = issuer(SigningKey::generate().unwrap());
        let token = issuer.issue(&user(), OffsetDateTime::now_utc()).unwrap();
        let header = jsonwebtoken::decode_header(&token.token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(issuer.key.kid()));
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let issuer = issuer(SigningKey::generate().unwrap());
        let long_ago = OffsetDateTime::now_utc() - Duration::hours(2);
        let token = issuer.issue(&user(), long_ago).unwrap();
        let err = verify(
            &token.token,
            &issuer.public_keys(),
            "ferroshop-users",
            "ferroshop",
        )
        .unwrap_err();
        assert!(
            matches!(err, VerifyError::Invalid(ref m) if m.contains("Expired")),
            "{err}"
        );
    }

    #[test]
    fn wrong_audience_or_issuer_is_rejected() {
        let issuer = issuer(SigningKey::generate().unwrap());
        let token = issuer.issue(&user(), OffsetDateTime::now_utc()).unwrap();
        let keys = issuer.public_keys();
        assert!(verify(&token.token, &keys, "ferroshop-users", "another-app").is_err());
        assert!(verify(&token.token, &keys, "someone-else", "ferroshop").is_err());
    }

    #[test]
    fn a_token_signed_by_another_key_is_rejected() {
        let ours = issuer(SigningKey::generate().unwrap());
        let theirs = issuer(SigningKey::generate().unwrap());
        let token = theirs.issue(&user(), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(
            verify(
                &token.token,
                &ours.public_keys(),
                "ferroshop-users",
                "ferroshop"
            ),
            Err(VerifyError::UnknownKey)
        );
        // Same kid, forged signature: re-label their token with our kid.
        let mut keys = theirs.public_keys();
        keys[0].x = ours.public_keys()[0].x.clone();
        assert!(matches!(
            verify(&token.token, &keys, "ferroshop-users", "ferroshop"),
            Err(VerifyError::Invalid(_))
        ));
    }

    #[test]
    fn alg_none_is_rejected() {
        let issuer = issuer(SigningKey::generate().unwrap());
        let token = issuer.issue(&user(), OffsetDateTime::now_utc()).unwrap();
        let mut parts = token.token.split('.');
        let (_, payload) = (parts.next().unwrap(), parts.next().unwrap());
        let header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            issuer.key.kid()
        ));
        let forged = format!("{header}.{payload}.");
        assert!(
            verify(
                &forged,
                &issuer.public_keys(),
                "ferroshop-users",
                "ferroshop"
            )
            .is_err()
        );
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn previous_keys_are_published_beside_the_current_one_and_verify_old_tokens() {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;

        let old_pem = SigningKey::generate_pem().unwrap();
        let old = issuer(SigningKey::from_pem(&old_pem).unwrap());
        let token = old.issue(&user(), OffsetDateTime::now_utc()).unwrap();
        // The previous key may be given as its private PEM or as its public half.
        let public_pem = ed25519_dalek::SigningKey::from_pkcs8_pem(&old_pem)
            .unwrap()
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        for previous in [old_pem.clone(), public_pem, format!("{old_pem}\n{old_pem}")] {
            let keys = PublicJwk::from_pems(&previous).unwrap();
            let rotated = issuer(SigningKey::generate().unwrap()).with_previous_keys(keys);
            let published = rotated.public_keys();
            assert_eq!(published[0].kid, rotated.key.kid(), "the current key first");
            assert!(published.iter().any(|key| key.kid == old.key.kid()));
            verify(&token.token, &published, "ferroshop-users", "ferroshop").unwrap();
        }
        assert!(
            PublicJwk::from_pems("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
        // The current key listed again as a previous one is not published twice.
        let current = SigningKey::from_pem(&old_pem).unwrap();
        let same = issuer(current).with_previous_keys(PublicJwk::from_pems(&old_pem).unwrap());
        assert_eq!(same.public_keys().len(), 1);
    }

    #[test]
    fn pem_keys_round_trip_to_the_same_kid() {
        let mut secret = [7_u8; 32];
        secret[0] = 1;
        let pem = ed25519_dalek::SigningKey::from_bytes(&secret)
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap();
        let a = SigningKey::from_pem(&pem).unwrap();
        let b = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert!(SigningKey::from_pem("not a key").is_err());
    }
}
