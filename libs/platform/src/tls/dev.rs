//! Development credentials: a CA made on the spot and one certificate per service, each with
//! its SPIFFE identity ([`super::spiffe_id`]) as its URI SAN (and the service's name as a DNS
//! SAN, for tools such as grpcurl), usable for both sides of a connection. `cargo xtask up` keeps a set in `target/dev-certs/`; tests make their own.
//! Never for production: the CA's key sits next to the certificates.

use std::{
    fs,
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, string::Ia5String,
};

use super::{TlsFiles, spiffe_id};

/// A certificate authority that issues service certificates.
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// One service's certificate and key, PEM.
pub struct DevCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl DevCa {
    /// A new CA with a fresh key; `name` is its common name.
    pub fn generate(name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    /// The CA certificate, PEM: the bundle every service trusts.
    pub fn pem(&self) -> String {
        pem("CERTIFICATE", self.issuer.der())
    }

    /// A certificate for `service`, with a fresh key.
    pub fn issue(&self, service: &str) -> Result<DevCert, rcgen::Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, service);
        // The URI is the identity every Ferroshop peer checks; the DNS name is only for tools
        // that insist on one (`grpcurl -servername <service>`).
        params.subject_alt_names = vec![
            SanType::URI(Ia5String::try_from(spiffe_id(service))?),
            SanType::DnsName(Ia5String::try_from(service)?),
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(DevCert {
            cert_pem: pem("CERTIFICATE", cert.der()),
            key_pem: pem("PRIVATE KEY", &key.serialize_der()),
        })
    }

    /// Writes `ca.pem` once and, for each service, `<service>.pem` and `<service>-key.pem`
    /// into `dir` (created if needed): the files each service's settings name.
    pub fn write(
        &self,
        dir: &Path,
        services: &[&str],
    ) -> Result<Vec<(String, TlsFiles)>, DevError> {
        fs::create_dir_all(dir).map_err(|err| DevError::io(dir, err))?;
        let ca = dir.join("ca.pem");
        write(&ca, &self.pem())?;
        let mut written = Vec::new();
        for service in services {
            let cert = self.issue(service)?;
            let files = TlsFiles {
                ca: ca.clone(),
                cert: dir.join(format!("{service}.pem")),
                key: dir.join(format!("{service}-key.pem")),
            };
            write(&files.key, &cert.key_pem)?;
            write(&files.cert, &cert.cert_pem)?;
            written.push(((*service).to_owned(), files));
        }
        Ok(written)
    }
}

impl DevCert {
    /// Replaces the certificate and key at `files` (key first, then the certificate), as a
    /// rotation does.
    pub fn write_to(&self, files: &TlsFiles) -> Result<(), DevError> {
        write(&files.key, &self.key_pem)?;
        write(&files.cert, &self.cert_pem)
    }
}

/// The settings that give service `prefix` (`orders`, `gateway`) these credentials:
/// `<PREFIX>_TLS_CA`, `<PREFIX>_TLS_CERT`, `<PREFIX>_TLS_KEY`.
pub fn settings(prefix: &str, files: &TlsFiles) -> Vec<(String, String)> {
    let prefix = prefix.to_ascii_uppercase();
    [
        ("TLS_CA", &files.ca),
        ("TLS_CERT", &files.cert),
        ("TLS_KEY", &files.key),
    ]
    .into_iter()
    .map(|(setting, path)| (format!("{prefix}_{setting}"), path.display().to_string()))
    .collect()
}

/// RFC 7468 text: the DER in base64, 64 characters a line, between BEGIN and END lines.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// Writes `contents` to a temporary file next to `path` and renames it over `path`, so that a
/// reader sees the old file or the new one, never half of one.
fn write(path: &Path, contents: &str) -> Result<(), DevError> {
    let mut temporary = PathBuf::from(path);
    temporary.as_mut_os_string().push(".tmp");
    fs::write(&temporary, contents).map_err(|err| DevError::io(&temporary, err))?;
    fs::rename(&temporary, path).map_err(|err| DevError::io(path, err))
}

/// Development credentials could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl DevError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};

    use super::*;

    #[test]
    fn an_issued_certificate_carries_the_service_identity() {
        let ca = DevCa::generate("test CA").unwrap();
        let cert = ca.issue("orders").unwrap();
        let der = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
        assert_eq!(super::super::peer_identity(&der).as_deref(), Some("orders"));
        rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
        let ca = CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap();
        assert_eq!(super::super::peer_identity(&ca), None, "the CA is nobody");
    }
}
