//! Mutual-TLS credentials for tests: a CA of the test's own and a certificate per service
//! (`platform::tls::dev`), written to a directory removed when the [`TestCerts`] is dropped.

use std::path::PathBuf;

use anyhow::Context as _;
use platform::tls::{
    ClientTls, TlsFiles,
    dev::{self, DevCa},
};
use tonic::transport::Channel;

/// A CA and the files of every service it issued a certificate to.
pub struct TestCerts {
    ca: DevCa,
    dir: PathBuf,
    files: Vec<(String, TlsFiles)>,
}

impl TestCerts {
    /// A new CA (`name` is its common name) and a certificate for each of `services`, in a
    /// directory of their own under the system's temporary directory.
    pub fn generate(name: &str, services: &[&str]) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(crate::unique_name("ferroshop-certs"));
        let ca = DevCa::generate(name).context("cannot make a test CA")?;
        let files = ca.write(&dir, services)?;
        Ok(Self { ca, dir, files })
    }

    /// The files of `service`.
    ///
    /// # Panics
    /// When no certificate was issued to `service`.
    pub fn files(&self, service: &str) -> &TlsFiles {
        self.files
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, files)| files)
            .unwrap_or_else(|| panic!("no certificate was issued to {service}"))
    }

    /// `<PREFIX>_TLS_CA`, `_TLS_CERT`, `_TLS_KEY` giving `service` its credentials.
    pub fn settings(&self, service: &str) -> Vec<(String, String)> {
        dev::settings(service, self.files(service))
    }

    /// A lazily connecting channel to `endpoint` (`http://…`) that presents `caller`'s
    /// certificate and expects the server to be `peer`.
    pub fn channel(&self, caller: &str, peer: &str, endpoint: &str) -> Channel {
        let tls = ClientTls::new(self.files(caller), peer);
        platform::grpc::client::connect_lazy(endpoint, Some(&tls))
            .unwrap_or_else(|err| panic!("cannot use {endpoint}: {err}"))
    }

    /// Issues `service` a new certificate and key of the same CA and writes them over the old
    /// ones (each file replaced whole, by a rename), as a certificate rotation does.
    pub fn rotate(&self, service: &str) -> anyhow::Result<()> {
        let cert = self
            .ca
            .issue(service)
            .context("cannot issue a certificate")?;
        cert.write_to(self.files(service))?;
        Ok(())
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
