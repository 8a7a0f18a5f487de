//! Password hashing with Argon2id, with admission control.
//!
//! Argon2id is memory-hard, which makes guessing with GPUs expensive; the default parameters are
//! OWASP's recommendation (19 MiB, 2 passes). Hashing takes tens of milliseconds of pure CPU, so
//! it runs on tokio's blocking pool: on an async worker thread it would stall every other request
//! that thread serves.
//!
//! **Bounded.** The blocking pool itself is not a bound: it grows to 512 threads, and 512
//! concurrent hashes need 9.5 GiB. A burst of logins (or an attacker's) would push the service
//! past its memory limit and take every account's sign-in down with it. So the [`Hasher`]
//! admits work in two stages:
//!
//! ```text
//! request ─► queue slot? ── no ──► Busy (RESOURCE_EXHAUSTED: the gateway answers 503 + Retry-After)
//!               │ yes
//!               ▼
//!            wait for a running slot (at most `concurrency`, sized to the CPUs)
//!               ▼
//!            hash on the blocking pool
//! ```
//!
//! At most `concurrency` hashes run (memory ≤ `concurrency` × 19 MiB) and at most `queue` more
//! wait; beyond that a request is shed at once, cheaply, instead of waiting for a deadline it
//! will miss. Shed requests are counted in `users_password_hashes_shed_total`.
//!
//! When an email is unknown, [`Hasher::verify`] still checks the password against a dummy hash,
//! so a login attempt takes as long whether or not the account exists (no user enumeration by
//! timing).

use std::sync::{Arc, OnceLock};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher as _, PasswordVerifier as _},
};
use tokio::sync::Semaphore;

use crate::domain::Password;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2 failed: {0}")]
    Argon2(String),
    #[error("the hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Every running and waiting slot is taken: the caller should retry shortly.
    #[error("too many password checks in progress; retry shortly")]
    Busy,
}

/// Runs Argon2id with at most `concurrency` hashes at once and `queue` waiting.
#[derive(Clone, Debug)]
pub struct Hasher {
    /// Held while a hash runs.
    running: Arc<Semaphore>,
    /// Held from admission to the end: running plus waiting.
    admitted: Arc<Semaphore>,
}

impl Hasher {
    /// `concurrency` ≥ 1 hashes at once (one per CPU is the useful maximum: hashing is pure CPU),
    /// and `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
        }
    }

    /// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`),
    /// with a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.run(move || hash_blocking(password.expose())).await?
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown account) the answer is
    /// `false`, after the same amount of work.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        self.run(move || {
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

    /// Admits `job` (or sheds it), waits for a running slot, runs it on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let Ok(_admitted) = Arc::clone(&self.admitted).try_acquire_owned() else {
            metrics::counter!("users_password_hashes_shed_total").increment(1);
            return Err(HashError::Busy);
        };
        // The semaphore is never closed, so acquiring only waits.
        let _running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| HashError::Busy)?;
        Ok(tokio::task::spawn_blocking(job).await?)
    }
}

fn hash_blocking(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| HashError::Argon2(err.to_string()))
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
        let hasher = Hasher::new(2, 2);
        let stored = hasher
            .hash(password("correct horse battery"))
            .await
            .unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(
            hasher
                .verify("correct horse battery".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse battery".into(), Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn salts_differ_between_hashes() {
        let hasher = Hasher::new(1, 0);
        let a = hasher
            .hash(password("correct horse battery"))
            .await
            .unwrap();
        let b = hasher
            .hash(password("correct horse battery"))
            .await
            .unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn an_unknown_account_never_matches() {
        let hasher = Hasher::new(1, 0);
        assert!(
            !hasher
                .verify("dummy password, never matches".into(), None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn beyond_the_running_and_waiting_slots_work_is_shed_at_once() {
        let hasher = Hasher::new(1, 1);
        let burst: Vec<_> = (0..6)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.verify("some password".into(), None).await })
            })
            .collect();
        let mut done = 0;
        let mut shed = 0;
        for outcome in futures::future::join_all(burst).await {
            match outcome.unwrap() {
                Ok(_) => done += 1,
                Err(HashError::Busy) => shed += 1,
                Err(other) => panic!("{other}"),
            }
        }
        // One runs, one waits; the rest arrive while both slots are held.
        assert!(done >= 2, "{done} done");
        assert!(shed >= 1, "{shed} shed");
        assert_eq!(done + shed, 6);
        // Once the burst is over, there is room again.
        assert!(hasher.verify("again".into(), None).await.is_ok());
    }
}
