//! Development secrets for `cargo xtask up`, kept under `target/dev-keys/`.
//!
//! Without a configured key, users generates a signing key at start and the gateway a
//! stream-ticket key: fine for one process, wrong for a local system that is restarted (every
//! session is logged out) or run with `--replicas users=2` (each replica signs with a key the
//! other's tokens do not match). So `up` creates each key once, in `target/` (never committed,
//! removed by `cargo clean`), and gives every instance the same file.
//!
//! The same goes for the services' mutual-TLS identities: `target/dev-certs/` holds a
//! development CA's certificate (`ca.pem`; its key is never written) and, for each service,
//! `<service>.pem` and `<service>-key.pem` (`platform::tls::dev`), made together when any of
//! them is missing. Each instance gets `<SERVICE>_TLS_CA`, `_TLS_CERT` and `_TLS_KEY`; with them
//! `grpcurl` reaches a service as, say, the gateway (README).

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, spki::der::pem::LineEnding};
use platform::tls::{TlsFiles, dev};

use crate::services;

/// The keys every instance of a local system shares.
pub struct DevKeys {
    /// PKCS#8 PEM Ed25519 key: `USERS_JWT_PRIVATE_KEY_FILE`.
    pub users_jwt: PathBuf,
    /// 32 random bytes as hex: `GATEWAY_STREAM_TICKET_KEY_FILE`.
    pub gateway_stream_ticket: PathBuf,
    /// Each service's mutual-TLS files: `<SERVICE>_TLS_CA`, `_TLS_CERT`, `_TLS_KEY`.
    pub certs: Vec<(String, TlsFiles)>,
}

impl DevKeys {
    /// The keys in `target_dir/dev-keys` and the certificates in `target_dir/dev-certs`,
    /// created on first use.
    pub fn ensure(target_dir: &Path) -> anyhow::Result<Self> {
        let dir = target_dir.join("dev-keys");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let names: Vec<&str> = services::SERVICES
            .iter()
            .map(|service| service.name)
            .collect();
        let keys = Self {
            users_jwt: dir.join("users-jwt.pem"),
            gateway_stream_ticket: dir.join("gateway-stream-ticket.key"),
            certs: dev_certs(&target_dir.join("dev-certs"), &names)?,
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

    /// The variables that point each service at its key and its certificate.
    pub fn env(&self, service: &str) -> Vec<(String, String)> {
        let mut env = self
            .certs
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, files)| dev::settings(service, files))
            .unwrap_or_default();
        env.extend(self.keys(service));
        env
    }

    fn keys(&self, service: &str) -> Vec<(String, String)> {
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

/// The CA certificate and each service's certificate and key in `dir`: the ones there, or a
/// new set when any is missing (the CA's key is not kept, so no certificate can be added to a set).
fn dev_certs(dir: &Path, services: &[&str]) -> anyhow::Result<Vec<(String, TlsFiles)>> {
    let existing: Vec<(String, TlsFiles)> = services
        .iter()
        .map(|service| {
            let files = TlsFiles {
                ca: dir.join("ca.pem"),
                cert: dir.join(format!("{service}.pem")),
                key: dir.join(format!("{service}-key.pem")),
            };
            ((*service).to_owned(), files)
        })
        .collect();
    let complete = existing
        .iter()
        .all(|(_, files)| files.ca.exists() && files.cert.exists() && files.key.exists());
    if complete {
        return Ok(existing);
    }
    let ca = dev::DevCa::generate("Ferroshop development CA")
        .context("cannot make the development CA")?;
    Ok(ca.write(dir, services)?)
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
        assert!(
            first
                .env("users")
                .iter()
                .any(|(name, _)| name == "USERS_JWT_PRIVATE_KEY_FILE")
        );
        assert_eq!(
            first.env("orders"),
            dev::settings("orders", &first.certs[2].1),
            "orders gets its certificate and no key"
        );
        let ca = fs::read_to_string(dir.join("dev-certs/ca.pem")).unwrap();
        assert_eq!(
            fs::read_to_string(&again.certs[0].1.ca).unwrap(),
            ca,
            "certificates kept across runs"
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
