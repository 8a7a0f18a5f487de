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
//! At most `concurrency` hashes run and at most `queue` more wait; beyond that a request is shed
//! at once, cheaply, instead of waiting for a deadline it will miss. Shed requests are counted in
//! `users_password_hashes_shed_total`.
//!
//! **Memory that stays bounded.** Each hash needs 19 MiB of Argon2 blocks. Allocated per hash
//! and freed after, those blocks do not go back to the system: the allocator keeps them in the
//! arena of the blocking-pool thread that ran the hash, and with tokio's many blocking threads
//! the process grew to 30 × its idle size after a few hundred sign-ins (docs/benchmarks.md,
//! B5). So the [`Hasher`] owns a pool of block buffers, at most one per running slot, allocated
//! once and reused for every hash (`Argon2::hash_password_into_with_memory`): memory for hashing
//! is at most `concurrency` × 19 MiB, for the life of the process. The PHC strings are the
//! ones `argon2`'s own `PasswordHasher` writes, and verification reads the parameters from the
//! stored string, so existing hashes verify unchanged (a stored hash with more memory than the
//! pool's buffers borrows a one-off buffer).
//!
//! When an email is unknown, [`Hasher::verify`] still checks the password against a dummy hash,
//! so a login attempt takes as long whether or not the account exists (no user enumeration by
//! timing).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{
        self,
        phc::{Output, ParamsString, Salt},
    },
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
    /// The running hashes' memory, reused.
    blocks: Arc<BlockPool>,
}

/// Argon2 block buffers of the default parameters' size, kept between hashes. The running
/// slots bound how many exist: a hash takes one (or allocates it, the first `concurrency`
/// times) and puts it back.
#[derive(Debug)]
struct BlockPool {
    free: Mutex<Vec<Box<[Block]>>>,
    /// Blocks per buffer.
    size: usize,
}

impl BlockPool {
    fn new() -> Self {
        Self {
            free: Mutex::new(Vec::new()),
            size: Params::default().block_count(),
        }
    }

    /// Runs `hash` with at least `needed` blocks of memory.
    fn with_blocks<T>(&self, needed: usize, hash: impl FnOnce(&mut [Block]) -> T) -> T {
        if needed > self.size {
            // Parameters stronger than ours (a hash from elsewhere): a one-off buffer.
            return hash(&mut vec![Block::new(); needed]);
        }
        let reused = self.lock().pop();
        let mut buffer = reused.unwrap_or_else(|| vec![Block::new(); self.size].into_boxed_slice());
        let result = hash(&mut buffer);
        self.lock().push(buffer);
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Box<[Block]>>> {
        // A list of buffers is valid whatever a panicking holder left.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Hasher {
    /// `concurrency` ≥ 1 hashes at once (one per CPU is the useful maximum: hashing is pure CPU),
    /// and `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            blocks: Arc::new(BlockPool::new()),
        }
    }

    /// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`),
    /// with a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let blocks = Arc::clone(&self.blocks);
        self.run(move || hash_blocking(&blocks, password.expose()))
            .await?
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown account) the answer is
    /// `false`, after the same amount of work.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let blocks = Arc::clone(&self.blocks);
        self.run(move || {
            let reference = match &stored {
                Some(hash) => hash.as_str(),
                None => dummy_hash(&blocks)?,
            };
            let matches = verify_blocking(&blocks, password.as_bytes(), reference);
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

/// What `argon2`'s `PasswordHasher::hash_password` does, in the pool's memory: the default
/// parameters, a random 16-byte salt, the PHC string.
fn hash_blocking(blocks: &BlockPool, password: &str) -> Result<String, HashError> {
    let failed = |err: &dyn std::fmt::Display| HashError::Argon2(err.to_string());
    let argon2 = Argon2::default();
    let params = argon2.params().clone();
    let salt = password_hash::try_generate_salt().map_err(|err| failed(&err))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    blocks
        .with_blocks(params.block_count(), |memory| {
            argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
        })
        .map_err(|err| failed(&err))?;
    let hash = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(&params).map_err(|err| failed(&err))?,
        salt: Some(Salt::new(&salt).map_err(|err| failed(&err))?),
        hash: Some(Output::new(&out).map_err(|err| failed(&err))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` hashes to `stored` (a PHC string) with the algorithm, version, parameters
/// and salt written in it; a string that cannot be read matches nothing. The comparison is
/// constant-time (`Output`'s equality).
fn verify_blocking(blocks: &BlockPool, password: &[u8], stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        hash.version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let needed = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let hashed = blocks.with_blocks(needed, |memory| {
        argon2.hash_password_into_with_memory(password, salt, &mut out, memory)
    });
    hashed.is_ok() && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

fn dummy_hash(blocks: &BlockPool) -> Result<&'static str, HashError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_blocking(blocks, "dummy password, never matches")?;
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
    async fn hashes_are_argon2s_own_phc_strings_both_ways() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = Hasher::new(1, 0);
        // A hash stored before the pool existed, by argon2's own hasher, verifies.
        let stored = Argon2::default()
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        assert!(
            hasher
                .verify("correct horse battery".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        // And argon2's own verifier accepts ours, with the same parameters written in it.
        let ours = hasher
            .hash(password("correct horse battery"))
            .await
            .unwrap();
        assert_eq!(
            ours.rsplitn(3, '$').nth(2),
            stored.rsplitn(3, '$').nth(2),
            "algorithm, version and parameters"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse battery", &parsed)
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_hash_with_other_parameters_verifies_too() {
        use argon2::PasswordHasher as _;
        let params = Params::new(2 * Params::DEFAULT_M_COST, 1, 1, None).unwrap();
        let stronger = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        let hasher = Hasher::new(1, 0);
        assert!(
            hasher
                .verify("correct horse battery".into(), Some(stronger.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse battery".into(), Some(stronger))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(
                    "correct horse battery".into(),
                    Some("$argon2id$garbage".into())
                )
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_pool_holds_one_buffer_per_running_slot_at_most() {
        let hasher = Hasher::new(2, 8);
        let burst: Vec<_> = (0..8)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.verify("some password".into(), None).await })
            })
            .collect();
        for outcome in futures::future::join_all(burst).await {
            outcome.unwrap().unwrap();
        }
        let buffers = hasher.blocks.lock().len();
        assert!((1..=2).contains(&buffers), "{buffers} buffers");
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
