//! Development secrets for `cargo xtask up`, kept under `target/dev-keys/`.
//!
//! Without a configured key, users generates a signing key at start and the gateway a
//! stream-ticket key: fine for one process, wrong for a local system that is restarted (every
//! session is logged out) or run with `--replicas users=2` (each replica signs with a key the
//! other's tokens do not match). So `up` creates each key once, in `target/` (never committed,
//! removed by `cargo clean`), and gives every instance the same file.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, spki::der::pem::LineEnding};

/// The keys every instance of a local system shares.
pub struct DevKeys {
    /// PKCS#8 PEM Ed25519 key: `USERS_JWT_PRIVATE_KEY_FILE`.
    pub users_jwt: PathBuf,
    /// 32 random bytes as hex: `GATEWAY_STREAM_TICKET_KEY_FILE`.
    pub gateway_stream_ticket: PathBuf,
}

impl DevKeys {
    /// The keys in `target_dir/dev-keys`, created on first use.
    pub fn ensure(target_dir: &Path) -> anyhow::Result<Self> {
        let dir = target_dir.join("dev-keys");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let keys = Self {
            users_jwt: dir.join("users-jwt.pem"),
            gateway_stream_ticket: dir.join("gateway-stream-ticket.key"),
        };
        create_once(&keys.users_jwt, || {
            let secret: [u8; 32] = rand::random();
            ed25519_dalek::SigningKey::from_bytes(&secret)
                .to_pkcs8_pem(LineEnding::LF)
                .map(|pem| pem.to_string())
                .map_err(|err| anyhow::anyhow!("cannot encode the development key: {err}"))
        })?;
        create_once(&keys.gateway_stream_ticket, || {
            let secret: [u8; 32] = rand::random();
            Ok(secret.iter().map(|byte| format!("{byte:02x}")).collect())
        })?;
        Ok(keys)
    }

    /// The variables that point each service at its key.
    pub fn env(&self, service: &str) -> Vec<(String, String)> {
        let file =
            |setting: &str, path: &Path| vec![(setting.to_owned(), path.display().to_string())];
        match service {
            "users" => file("USERS_JWT_PRIVATE_KEY_FILE", &self.users_jwt),
            "gateway" => file(
                "GATEWAY_STREAM_TICKET_KEY_FILE",
                &self.gateway_stream_ticket,
            ),
            _ => Vec::new(),
        }
    }
}

fn create_once(path: &Path, make: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    fs::write(path, make()?).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_once_and_then_kept() {
        let dir = std::env::temp_dir().join(format!("xtask-dev-keys-{}", std::process::id()));
        let first = DevKeys::ensure(&dir).unwrap();
        let pem = fs::read_to_string(&first.users_jwt).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let again = DevKeys::ensure(&dir).unwrap();
        assert_eq!(
            fs::read_to_string(&again.users_jwt).unwrap(),
            pem,
            "kept across runs"
        );
        assert_eq!(
            fs::read_to_string(&again.gateway_stream_ticket)
                .unwrap()
                .len(),
            64
        );
        assert_eq!(first.env("users")[0].0, "USERS_JWT_PRIVATE_KEY_FILE");
        assert!(first.env("orders").is_empty());
        fs::remove_dir_all(dir).unwrap();
    }
}
