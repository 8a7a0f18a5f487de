//! Service identity: mutual TLS on every gRPC port and every gRPC client, rustls only.
//!
//! Each service holds a certificate whose only name is a SPIFFE-style URI SAN,
//! `spiffe://ferroshop.local/ns/ferroshop/sa/<service>` ([`spiffe_id`]), issued by a CA every
//! service trusts. Three PEM files, named by settings read with the service's prefix:
//!
//! | variable | meaning |
//! |---|---|
//! | `<PREFIX>_TLS_CA` | the CA bundle peers' certificates must chain to |
//! | `<PREFIX>_TLS_CERT` | this service's certificate chain (leaf first) |
//! | `<PREFIX>_TLS_KEY` | its private key (PKCS#8, SEC1 or PKCS#1) |
//! | `<PREFIX>_TLS` | `off`: plaintext, no identities, no authorization (the one explicit switch) |
//!
//! With the three files set ([`TlsMode::Mutual`]):
//! * a **server** ([`ServerTls`]) requires a client certificate, verifies that it chains to the
//!   CA, and hands the verified chain to the handlers (`Request::peer_certs`), where
//!   [`peer_identity`] reads the caller's service name for `grpc::authz`;
//! * a **client** ([`ClientTls`], the connector of every upstream channel) presents its own
//!   certificate and accepts the server only if its chain verifies *and* its URI SAN is the
//!   identity of the service it meant to call: a certificate of another service of the same CA
//!   is refused. (Endpoint URLs stay `http://host:port`; the TLS comes from these settings, not
//!   from the scheme.)
//!
//! Rotation needs no restart: every handshake reads the three files again and, when any of
//! them changed, builds new rustls configurations from them. Connections already open keep the
//! credentials they were made with; a half-written rotation (a certificate that does not match
//! its key yet) is logged and the last good credentials stay in use.
//!
//! With none of them set, the port is plaintext and answers anyone, and the service says so
//! loudly at start ([`TlsMode::Plaintext`]); some but not all of them, or `<PREFIX>_TLS=on`
//! without them, stops the service at start with an error naming the missing variable.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
    client::{
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        verify_server_cert_signed_by_trust_anchor,
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject as _},
    server::{ParsedCertificate, WebPkiClientVerifier},
};
use tokio::net::{TcpListener, TcpStream};

use crate::{
    Shutdown,
    config::{ConfigError, Env},
};

#[cfg(feature = "dev-certs")]
pub mod dev;

/// The trust domain of every Ferroshop identity.
pub const TRUST_DOMAIN: &str = "ferroshop.local";
const IDENTITY_PREFIX: &str = "spiffe://ferroshop.local/ns/ferroshop/sa/";

/// How long a client may take to complete its TLS handshake before the server drops it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The identity of `service`: `spiffe://ferroshop.local/ns/ferroshop/sa/<service>`.
pub fn spiffe_id(service: &str) -> String {
    format!("{IDENTITY_PREFIX}{service}")
}

/// The service a verified certificate speaks for: the `<service>` of its first URI SAN of the
/// form [`spiffe_id`]; `None` for a certificate without one.
pub fn peer_identity(certificate: &CertificateDer<'_>) -> Option<String> {
    let parsed = webpki::EndEntityCert::try_from(certificate).ok()?;
    parsed.valid_uri_names().find_map(|uri| {
        let service = uri.strip_prefix(IDENTITY_PREFIX)?;
        let valid = !service.is_empty()
            && service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then(|| service.to_owned())
    })
}

/// The three PEM files of a service's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Whether a service speaks mutual TLS: `<PREFIX>_TLS`, `<PREFIX>_TLS_CA|CERT|KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Mutual TLS with these credentials; calls are authorized by the caller's identity.
    Mutual(TlsFiles),
    /// Plaintext and unauthenticated. `explicit` when `<PREFIX>_TLS=off` asked for it; otherwise
    /// nothing was configured, and the service warns at start.
    Plaintext { explicit: bool },
}

impl TlsMode {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let switch = env.raw("TLS").map(|raw| raw.trim().to_ascii_lowercase());
        let files = [
            ("TLS_CA", env.raw("TLS_CA")),
            ("TLS_CERT", env.raw("TLS_CERT")),
            ("TLS_KEY", env.raw("TLS_KEY")),
        ];
        let configured = files.iter().filter(|(_, value)| value.is_some()).count();
        match switch.as_deref() {
            Some("off") => return Ok(Self::Plaintext { explicit: true }),
            None if configured == 0 => return Ok(Self::Plaintext { explicit: false }),
            None | Some("on") => {}
            Some(_) => {
                return Err(ConfigError {
                    variable: env.name("TLS"),
                    value: env.raw("TLS").unwrap_or_default(),
                    reason: "expected on or off".to_owned(),
                });
            }
        }
        if let Some((missing, _)) = files.iter().find(|(_, value)| value.is_none()) {
            return Err(ConfigError {
                variable: env.name(missing),
                value: String::new(),
                reason: format!(
                    "mutual TLS needs {}, {} and {} (or {}=off for plaintext)",
                    env.name("TLS_CA"),
                    env.name("TLS_CERT"),
                    env.name("TLS_KEY"),
                    env.name("TLS"),
                ),
            });
        }
        let [ca, cert, key] =
            files.map(|(_, value)| PathBuf::from(value.unwrap_or_default().trim()));
        Ok(Self::Mutual(TlsFiles { ca, cert, key }))
    }

    pub fn files(&self) -> Option<&TlsFiles> {
        match self {
            Self::Mutual(files) => Some(files),
            Self::Plaintext { .. } => None,
        }
    }

    /// Says at start what `what` (`"the gRPC API"`, `"gRPC clients"`) runs with: a warning for
    /// plaintext nobody asked for.
    pub fn log(&self, what: &str) {
        match self {
            Self::Mutual(files) => {
                tracing::info!(what, cert = %files.cert.display(), "mutual TLS with SPIFFE identities");
            }
            Self::Plaintext { explicit: true } => {
                tracing::warn!(
                    what,
                    "plaintext gRPC (TLS=off): no peer is authenticated and calls are not authorized"
                );
            }
            Self::Plaintext { explicit: false } => {
                tracing::warn!(
                    what,
                    "PLAINTEXT gRPC: no TLS files are configured (set <SERVICE>_TLS_CA, _TLS_CERT and _TLS_KEY, or <SERVICE>_TLS=off to say plaintext is meant); anyone who reaches the port can call every method"
                );
            }
        }
    }
}

/// Credentials that could not be used: which file, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct TlsError {
    pub what: String,
    pub reason: String,
}

impl TlsError {
    fn new(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// The bytes of the three files, as last read.
#[derive(PartialEq, Eq)]
struct Pem {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl Pem {
    async fn read(files: &TlsFiles) -> Result<Self, TlsError> {
        async fn one(path: &Path) -> Result<Vec<u8>, TlsError> {
            tokio::fs::read(path)
                .await
                .map_err(|err| TlsError::new(path.display().to_string(), err))
        }
        Ok(Self {
            ca: one(&files.ca).await?,
            cert: one(&files.cert).await?,
            key: one(&files.key).await?,
        })
    }

    fn roots(&self, files: &TlsFiles) -> Result<Arc<RootCertStore>, TlsError> {
        let what = || files.ca.display().to_string();
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca) {
            let cert = cert.map_err(|err| TlsError::new(what(), err))?;
            roots.add(cert).map_err(|err| TlsError::new(what(), err))?;
        }
        if roots.is_empty() {
            return Err(TlsError::new(what(), "no CA certificate in the file"));
        }
        Ok(Arc::new(roots))
    }

    fn chain(&self, files: &TlsFiles) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let what = || files.cert.display().to_string();
        let chain = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| TlsError::new(what(), err))?;
        if chain.is_empty() {
            return Err(TlsError::new(what(), "no certificate in the file"));
        }
        Ok(chain)
    }

    fn key(&self, files: &TlsFiles) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(&self.key)
            .map_err(|err| TlsError::new(files.key.display().to_string(), err))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(files: &TlsFiles, pem: &Pem) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(pem.roots(files)?, Arc::clone(&provider))
            .build()
            .map_err(|err| TlsError::new(files.ca.display().to_string(), err))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| TlsError::new("TLS versions", err))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pem.chain(files)?, pem.key(files)?)
        .map_err(|err| TlsError::new(files.cert.display().to_string(), err))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn client_config(files: &TlsFiles, pem: &Pem, peer: &str) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PeerVerifier {
        roots: pem.roots(files)?,
        provider: Arc::clone(&provider),
        peer: peer.to_owned(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| TlsError::new("TLS versions", err))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(pem.chain(files)?, pem.key(files)?)
        .map_err(|err| TlsError::new(files.cert.display().to_string(), err))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

type Build<T> = Box<dyn Fn(&TlsFiles, &Pem) -> Result<T, TlsError> + Send + Sync>;

/// A rustls configuration built from the files, rebuilt when they change.
struct Reloading<T> {
    files: TlsFiles,
    build: Build<T>,
    current: Mutex<Option<(Pem, Arc<T>)>>,
}

impl<T> Reloading<T> {
    fn new(files: TlsFiles, build: Build<T>) -> Self {
        Self {
            files,
            build,
            current: Mutex::new(None),
        }
    }

    /// The configuration for a new handshake: the files are read again, and a change builds a
    /// new one. A change that does not build (a rotation half done) keeps the last good one.
    async fn get(&self) -> Result<Arc<T>, TlsError> {
        let read = Pem::read(&self.files).await;
        let mut current = self
            .current
            .lock()
            .map_err(|_| TlsError::new("credentials", "poisoned lock"))?;
        let last = current.as_ref().map(|(_, config)| Arc::clone(config));
        let pem = match read {
            Ok(pem) => pem,
            Err(err) => {
                return match last {
                    Some(config) => {
                        tracing::warn!(error = %err, "cannot read the TLS files; keeping the last good credentials");
                        Ok(config)
                    }
                    None => Err(err),
                };
            }
        };
        if let Some((seen, config)) = current.as_ref()
            && *seen == pem
        {
            return Ok(Arc::clone(config));
        }
        match (self.build)(&self.files, &pem) {
            Ok(config) => {
                let config = Arc::new(config);
                if last.is_some() {
                    tracing::info!(cert = %self.files.cert.display(), "TLS credentials changed on disk: reloaded");
                }
                *current = Some((pem, Arc::clone(&config)));
                Ok(config)
            }
            Err(err) => match last {
                Some(config) => {
                    tracing::warn!(error = %err, "the TLS files changed but cannot be used (yet); keeping the last good credentials");
                    Ok(config)
                }
                None => Err(err),
            },
        }
    }
}

/// A server's side of mutual TLS: every accepted connection is a handshake with a client that
/// must present a certificate of the CA.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<Reloading<ServerConfig>>,
}

impl ServerTls {
    /// Reads and checks the credentials now, so that unusable files stop the service at start.
    pub async fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let tls = Self {
            config: Arc::new(Reloading::new(files.clone(), Box::new(server_config))),
        };
        tls.config.get().await?;
        Ok(tls)
    }

    /// The stream of connections `listener` accepts, each through a TLS handshake (on a task
    /// of its own, at most [`HANDSHAKE_TIMEOUT`]), with TCP_NODELAY set. Failed handshakes
    /// (no certificate, an unknown CA) are logged and counted in `tls_handshake_failures_total`,
    /// and never reach the gRPC server. Ends when `shutdown` fires.
    pub fn incoming(
        self,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> impl futures::Stream<Item = Result<tokio_rustls::server::TlsStream<TcpStream>, std::io::Error>>
    {
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = shutdown.wait() => return,
                    () = sender.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "cannot accept a connection");
                        continue;
                    }
                };
                let (tls, sender) = (self.clone(), sender.clone());
                tokio::spawn(async move {
                    if let Err(error) = tcp.set_nodelay(true) {
                        tracing::debug!(%error, "cannot set TCP_NODELAY");
                    }
                    let handshake = async {
                        let config = tls.config.get().await.map_err(std::io::Error::other)?;
                        tokio_rustls::TlsAcceptor::from(config).accept(tcp).await
                    };
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => {
                            // The server may have stopped meanwhile: then the stream is dropped.
                            let _ = sender.send(Ok(stream)).await;
                        }
                        Ok(Err(error)) => {
                            metrics::counter!("tls_handshake_failures_total").increment(1);
                            tracing::warn!(%peer, %error, "TLS handshake refused");
                        }
                        Err(_) => {
                            metrics::counter!("tls_handshake_failures_total").increment(1);
                            tracing::warn!(%peer, "TLS handshake timed out");
                        }
                    }
                });
            }
        });
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        })
    }
}

/// A client's side of mutual TLS towards one service (`peer`): the connector of every channel
/// to that service. Cheap to clone; clones share the credentials.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<Reloading<ClientConfig>>,
    peer: Arc<str>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("peer", &self.peer)
            .field("cert", &self.config.files.cert)
            .finish()
    }
}

impl ClientTls {
    /// Connections that present the certificate of `files` and accept only a server whose
    /// identity is [`spiffe_id`]`(peer)`. The files are read at the first connection; see
    /// [`ClientTls::check`] to fail earlier.
    pub fn new(files: &TlsFiles, peer: &str) -> Self {
        let expected = peer.to_owned();
        Self {
            config: Arc::new(Reloading::new(
                files.clone(),
                Box::new(move |files, pem| client_config(files, pem, &expected)),
            )),
            peer: Arc::from(peer),
        }
    }

    /// Reads and checks the credentials now (at start, so unusable files stop the service).
    pub async fn check(&self) -> Result<(), TlsError> {
        self.config.get().await.map(|_| ())
    }

    /// The service this client expects to reach.
    pub fn peer(&self) -> &str {
        &self.peer
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<http::Uri> for ClientTls {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = self.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| format!("{uri} has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().ok_or_else(|| format!("{uri} has no port"))?;
            let config = tls.config.get().await?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            // The name only feeds SNI: the server is checked by its SPIFFE identity instead.
            let name = ServerName::try_from(host)?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}

/// Accepts a server whose chain verifies against the CA and whose identity is `peer`'s.
#[derive(Debug)]
struct PeerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    peer: String,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        match peer_identity(end_entity) {
            Some(identity) if identity == self.peer => Ok(ServerCertVerified::assertion()),
            presented => {
                tracing::warn!(expected = %spiffe_id(&self.peer), ?presented, "the server is not the service this client meant to call");
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs("orders", vars)
    }

    #[test]
    fn nothing_set_is_plaintext_and_off_is_explicit() {
        assert_eq!(
            TlsMode::from_env(&env(&[])).unwrap(),
            TlsMode::Plaintext { explicit: false }
        );
        assert_eq!(
            TlsMode::from_env(&env(&[("ORDERS_TLS", "off"), ("ORDERS_TLS_CA", "/ca.pem")]))
                .unwrap(),
            TlsMode::Plaintext { explicit: true }
        );
    }

    #[test]
    fn all_three_files_make_mutual_tls_and_a_missing_one_is_named() {
        let all = [
            ("ORDERS_TLS_CA", "/ca.pem"),
            ("ORDERS_TLS_CERT", "/c.pem"),
            ("ORDERS_TLS_KEY", "/k.pem"),
        ];
        let TlsMode::Mutual(files) = TlsMode::from_env(&env(&all)).unwrap() else {
            panic!("expected mutual TLS");
        };
        assert_eq!(files.key, PathBuf::from("/k.pem"));
        let err = TlsMode::from_env(&env(&all[..2])).unwrap_err();
        assert_eq!(err.variable, "ORDERS_TLS_KEY");
        let err = TlsMode::from_env(&env(&[("ORDERS_TLS", "on")])).unwrap_err();
        assert_eq!(err.variable, "ORDERS_TLS_CA");
        let err = TlsMode::from_env(&env(&[("ORDERS_TLS", "maybe")])).unwrap_err();
        assert_eq!(err.variable, "ORDERS_TLS");
    }
}
