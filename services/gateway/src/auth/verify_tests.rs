#![allow(clippy::unwrap_used)]

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::auth::testing::{AUDIENCE, ISSUER, Signer, with_header};

fn expect() -> Expectations {
    Expectations {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
    }
}

fn setup() -> (Signer, KeySet) {
    let signer = Signer::new();
    let keys = KeySet::from_jwks(&[signer.jwk()]);
    (signer, keys)
}

#[test]
fn a_valid_token_yields_the_user_and_role() {
    let (signer, keys) = setup();
    let mut claims = signer.claims();
    let principal = verify(&signer.sign(&claims), &keys, &expect()).unwrap();
    assert_eq!(principal.role, Role::Customer);
    assert_eq!(principal.user_id.to_string(), claims["sub"]);
    claims["role"] = json!("admin");
    let admin = verify(&signer.sign(&claims), &keys, &expect()).unwrap();
    assert_eq!(admin.role, Role::Admin);
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
    let (signer, keys) = setup();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = signer.claims();
    claims["exp"] = json!(now - 3600);
    assert_eq!(
        verify(&signer.sign(&claims), &keys, &expect()),
        Err(TokenError::Expired)
    );
    claims["exp"] = json!(now - 10); // within the leeway: clock skew, accepted
    assert!(verify(&signer.sign(&claims), &keys, &expect()).is_ok());
    let mut claims = signer.claims();
    claims["nbf"] = json!(now + 3600);
    assert_eq!(
        verify(&signer.sign(&claims), &keys, &expect()),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn issuer_and_audience_must_match() {
    let (signer, keys) = setup();
    let mut claims = signer.claims();
    claims["aud"] = json!("another-app");
    assert_eq!(
        verify(&signer.sign(&claims), &keys, &expect()),
        Err(TokenError::WrongAudience)
    );
    let mut claims = signer.claims();
    claims["iss"] = json!("someone-else");
    assert_eq!(
        verify(&signer.sign(&claims), &keys, &expect()),
        Err(TokenError::WrongIssuer)
    );
}

#[test]
fn required_claims_must_be_present() {
    let (signer, keys) = setup();
    for missing in ["exp", "iss", "aud", "sub"] {
        let mut claims = signer.claims();
        claims.as_object_mut().unwrap().remove(missing);
        assert!(
            verify(&signer.sign(&claims), &keys, &expect()).is_err(),
            "{missing}"
        );
    }
    let mut claims = signer.claims();
    claims["sub"] = json!("not-a-uuid");
    assert!(matches!(
        verify(&signer.sign(&claims), &keys, &expect()),
        Err(TokenError::Invalid(_))
    ));
    let mut claims = signer.claims();
    claims["role"] = json!("root");
    assert!(matches!(
        verify(&signer.sign(&claims), &keys, &expect()),
        Err(TokenError::Invalid(_))
    ));
}

#[test]
fn alg_none_is_refused_by_the_allow_list() {
    let (signer, keys) = setup();
    let token = signer.sign(&signer.claims());
    let forged = with_header(&token, &json!({"alg": "none", "kid": signer.kid()}));
    let unsigned = format!("{}.", forged.rsplit_once('.').unwrap().0);
    for token in [forged, unsigned] {
        assert_eq!(
            verify(&token, &keys, &expect()),
            Err(TokenError::AlgorithmNotAllowed("none".into()))
        );
    }
}

#[test]
fn key_confusion_with_hs256_and_the_public_key_is_refused() {
    let (signer, keys) = setup();
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(signer.kid().into());
    let forged = jsonwebtoken::encode(
        &header,
        &signer.claims(),
        &EncodingKey::from_secret(&signer.public_bytes()),
    )
    .unwrap();
    assert_eq!(
        verify(&forged, &keys, &expect()),
        Err(TokenError::AlgorithmNotAllowed("HS256".into()))
    );
}

#[test]
fn a_tampered_payload_or_a_foreign_signature_fails_the_signature_check() {
    let (signer, keys) = setup();
    let token = signer.sign(&signer.claims());
    let (header, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut claims = signer.claims();
    claims["role"] = json!("admin");
    let payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims.to_string(),
    );
    let tampered = format!("{header}.{payload}.{signature}");
    assert_eq!(
        verify(&tampered, &keys, &expect()),
        Err(TokenError::BadSignature)
    );

    // Another key that claims our kid.
    let impostor = Signer::new();
    let foreign = with_header(
        &impostor.sign(&impostor.claims()),
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": signer.kid()}),
    );
    assert_eq!(
        verify(&foreign, &keys, &expect()),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn unknown_or_missing_key_ids_are_reported_for_a_refresh() {
    let (_, keys) = setup();
    let other = Signer::new();
    let token = other.sign(&other.claims());
    assert_eq!(
        verify(&token, &keys, &expect()),
        Err(TokenError::UnknownKey(other.kid().into()))
    );
    let no_kid = with_header(&token, &json!({"alg": "EdDSA"}));
    assert_eq!(
        verify(&no_kid, &keys, &expect()),
        Err(TokenError::MissingKeyId)
    );
}

#[test]
fn garbage_is_malformed() {
    let (_, keys) = setup();
    for garbage in ["", "abc", "a.b.c", "!!!.???.###"] {
        assert_eq!(
            verify(garbage, &keys, &expect()),
            Err(TokenError::Malformed),
            "{garbage}"
        );
    }
}

#[test]
fn unusable_jwks_entries_are_skipped() {
    let signer = Signer::new();
    let mut rsa = signer.jwk();
    rsa.kty = "RSA".into();
    rsa.kid = "rsa".into();
    let mut hmac = signer.jwk();
    hmac.alg = "HS256".into();
    hmac.kid = "hs".into();
    let mut broken = signer.jwk();
    broken.x = "%%%".into();
    broken.kid = "broken".into();
    let keys = KeySet::from_jwks(&[rsa, hmac, broken, signer.jwk()]);
    assert!(keys.contains(signer.kid()));
    assert!(!keys.contains("rsa") && !keys.contains("hs") && !keys.contains("broken"));
}
