//! Password hashing with Argon2id.
//!
//! Argon2id is memory-hard, which makes guessing with GPUs expensive; the default parameters are
//! OWASP's recommendation (19 MiB, 2 passes). Hashing takes tens of milliseconds of pure CPU, so
//! it runs on tokio's blocking pool: on an async worker thread it would stall every other request
//! that thread serves.
//!
//! When an email is unknown, [`verify`] still checks the password against a dummy hash, so a
//! login attempt takes as long whether or not the account exists (no user enumeration by timing).

use std::sync::OnceLock;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher as _, PasswordVerifier as _},
};

use crate::domain::Password;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2 failed: {0}")]
    Argon2(String),
    #[error("the hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), with a
/// fresh random salt.
pub async fn hash(password: Password) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_blocking(password.expose())).await?
}

fn hash_blocking(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| HashError::Argon2(err.to_string()))
}

/// Whether `password` matches `stored`. With no stored hash (unknown account) the answer is
/// `false`, after the same amount of work.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, HashError> {
    tokio::task::spawn_blocking(move || {
        let reference = match &stored {
            Some(hash) => hash.as_str(),
            None => dummy_hash()?,
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), reference)
            .is_ok();
        Ok(matches && stored.is_some())
    })
    .await?
}

fn dummy_hash() -> Result<&'static str, HashError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_blocking("dummy password, never matches")?;
    Ok(DUMMY.get_or_init(|| hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Email;

    fn password(raw: &str) -> Password {
        Password::parse(raw, &Email::parse("ada@example.com").unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let stored = hash(password("correct horse battery")).await.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(
            verify("correct horse battery".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("wrong horse battery".into(), Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn salts_differ_between_hashes() {
        let a = hash(password("correct horse battery")).await.unwrap();
        let b = hash(password("correct horse battery")).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn an_unknown_account_never_matches() {
        assert!(
            !verify("dummy password, never matches".into(), None)
                .await
                .unwrap()
        );
    }
}
