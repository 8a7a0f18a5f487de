//! Service identity against the real binaries: mutual TLS on every gRPC port, callers
//! authorized per method by the SPIFFE identity in their certificate, and certificates rotated
//! on disk without a restart or a failed call.
//!
//! Run with `cargo nextest run -p e2e --test identity` (after `cargo build --bins`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{sync::Arc, time::Duration};

use contracts::{
    inventory::{GetProductRequest, InventoryServiceClient},
    orders::{GetOrderRequest, OrdersServiceClient},
    payments::{
        CapturePaymentRequest, GetPaymentRequest, PaymentsServiceClient, get_payment_request::Key,
    },
    users::{GetJwksRequest, UsersServiceClient},
};
use platform::tls::{ClientTls, TlsFiles};
use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use support::system::{Options, System};
use testkit::TestCerts;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

const EVENTUALLY: Duration = Duration::from_secs(10);

fn get_payment() -> GetPaymentRequest {
    GetPaymentRequest {
        key: Some(Key::OrderId(uuid_text())),
    }
}

fn uuid_text() -> String {
    "0190f5b8-0000-7000-8000-000000000000".to_owned()
}

/// `tls_handshake_failures_total` of `name`'s process.
async fn handshake_failures(system: &System, name: &str) -> f64 {
    system
        .process(name, 0)
        .scrape()
        .await
        .value("tls_handshake_failures_total", &[])
        .unwrap_or(0.0)
}

/// Accepts any server certificate and keeps the last one it was shown: a client that only
/// wants to see what the server does.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>, std::sync::Mutex<Option<Vec<u8>>>);

impl AnyServer {
    fn new() -> Arc<Self> {
        Arc::new(Self(
            Arc::new(rustls::crypto::ring::default_provider()),
            std::sync::Mutex::new(None),
        ))
    }

    fn seen(&self) -> Option<Vec<u8>> {
        self.1.lock().unwrap().clone()
    }
}

/// The certificate the server at `endpoint` presents to a client with `files`' credentials.
async fn presented(endpoint: &str, files: &TlsFiles) -> Vec<u8> {
    use rustls::pki_types::{PrivateKeyDer, pem::PemObject as _};
    let verifier = AnyServer::new();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&files.key).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::clone(&verifier.0))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(endpoint.trim_start_matches("http://"))
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("inventory").unwrap(), tcp)
        .await
        .unwrap();
    verifier.seen().expect("the server presented a certificate")
}

/// The leaf certificate of a PEM chain file, DER.
fn leaf(path: &std::path::Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.1.lock().unwrap() = Some(end_entity.to_vec());
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_certificate_of_the_cluster_ca_gets_a_connection() {
    let system = System::start(Options::default()).await;
    let certs = system.certs.as_ref().expect("mutual TLS is the default");
    let endpoint = system.grpc_endpoint("payments");

    // A trusted caller gets through (NOT_FOUND: there is no such payment).
    let mut trusted = PaymentsServiceClient::new(system.grpc_channel("gateway", "payments"));
    let status = trusted.get_payment(get_payment()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // No certificate at all: a plaintext client gets no answer.
    let before = handshake_failures(&system, "payments").await;
    let mut plaintext =
        PaymentsServiceClient::new(platform::grpc::client::connect_lazy(&endpoint, None).unwrap());
    let status = plaintext.get_payment(get_payment()).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
        ),
        "{status:?}"
    );
    testkit::poll_until(
        "the plaintext handshake to be counted",
        EVENTUALLY,
        || async { (handshake_failures(&system, "payments").await > before).then_some(()) },
    )
    .await
    .unwrap();

    // TLS, but no client certificate: the handshake is refused. (In TLS 1.3 the server's
    // verdict arrives after the client has finished, so it shows on the first read.) The
    // client here trusts any server, to be sure it is the server that says no.
    let before = handshake_failures(&system, "payments").await;
    let verifier = AnyServer::new();
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&verifier.0))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(endpoint.trim_start_matches("http://"))
        .await
        .unwrap();
    let answer = async {
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("payments").unwrap(), tcp)
            .await?;
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
        let mut buffer = [0_u8; 64];
        tls.read(&mut buffer).await
    }
    .await;
    assert!(matches!(answer, Err(_) | Ok(0)), "{answer:?}");
    testkit::poll_until(
        "the certificate-less handshake to be counted",
        EVENTUALLY,
        || async { (handshake_failures(&system, "payments").await > before).then_some(()) },
    )
    .await
    .unwrap();

    // A certificate of another CA, with the right name: refused by the server, although this
    // client trusts the server.
    let rogue = TestCerts::generate("rogue CA", &["orders"]).unwrap();
    let before = handshake_failures(&system, "payments").await;
    let mixed = TlsFiles {
        ca: certs.files("orders").ca.clone(),
        ..rogue.files("orders").clone()
    };
    let tls = ClientTls::new(&mixed, "payments");
    let mut impostor = PaymentsServiceClient::new(
        platform::grpc::client::connect_lazy(&endpoint, Some(&tls)).unwrap(),
    );
    let status = impostor
        .capture_payment(CapturePaymentRequest {
            payment_id: uuid_text(),
        })
        .await
        .unwrap_err();
    assert_ne!(status.code(), Code::NotFound, "{status:?}");
    assert_ne!(status.code(), Code::PermissionDenied, "{status:?}");
    testkit::poll_until("the rogue handshake to be counted", EVENTUALLY, || async {
        (handshake_failures(&system, "payments").await > before).then_some(())
    })
    .await
    .unwrap();

    // And a client refuses a server that is not the service it meant to call: the users port
    // asked for by a client expecting payments.
    let mut confused = PaymentsServiceClient::new(certs.channel(
        "gateway",
        "payments",
        &system.grpc_endpoint("users"),
    ));
    let status = confused.get_payment(get_payment()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_method_answers_only_the_callers_its_table_names() {
    let system = System::start(Options::default()).await;

    // The gateway may read a payment, but only orders may capture one.
    let mut as_gateway = PaymentsServiceClient::new(system.grpc_channel("gateway", "payments"));
    let status = as_gateway.get_payment(get_payment()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "allowed: {status:?}");
    let status = as_gateway
        .capture_payment(CapturePaymentRequest {
            payment_id: uuid_text(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("gateway"), "{status:?}");
    assert!(status.message().contains("CapturePayment"), "{status:?}");

    // Orders may capture (the payment does not exist: NOT_FOUND or INVALID_ARGUMENT, but not a
    // refusal), and may not read users' key set.
    let mut as_orders = PaymentsServiceClient::new(system.grpc_channel("orders", "payments"));
    let status = as_orders
        .capture_payment(CapturePaymentRequest {
            payment_id: uuid_text(),
        })
        .await
        .unwrap_err();
    assert_ne!(status.code(), Code::PermissionDenied, "{status:?}");
    let mut users = UsersServiceClient::new(system.grpc_channel("orders", "users"));
    let status = users.get_jwks(GetJwksRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let mut users = UsersServiceClient::new(system.grpc_channel("gateway", "users"));
    assert!(
        !users
            .get_jwks(GetJwksRequest {})
            .await
            .unwrap()
            .into_inner()
            .keys
            .is_empty()
    );

    // Health stays open to any authenticated peer.
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(system.grpc_channel("orders", "users"));
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(
        serving,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    // Each refusal is counted by method and caller.
    let scrape = system.process("payments", 0).scrape().await;
    assert_eq!(
        scrape.value(
            "grpc_authz_denied_total",
            &[
                ("method", "/shop.payments.v1.PaymentsService/CapturePayment"),
                ("caller", "gateway"),
            ],
        ),
        Some(1.0),
        "{}",
        scrape.text()
    );
    system.stop().await;
}

/// `message` with the admin scope in its metadata.
fn scoped<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    platform::grpc::authz::grant_admin(&mut request);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_gateway_may_present_the_admin_scope() {
    let system = System::start(Options::default()).await;
    let anyones = || GetOrderRequest {
        order_id: uuid_text(),
        customer_id: String::new(),
    };

    // From the gateway, an empty customer id needs the scope: without it the call names the
    // field; with it the administrator may look up anyone's order (there is none here).
    let mut as_gateway = OrdersServiceClient::new(system.grpc_channel("gateway", "orders"));
    let status = as_gateway.get_order(anyones()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("customer_id"), "{status:?}");
    let status = as_gateway.get_order(scoped(anyones())).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Any other service presenting it is refused, even on a method it may call.
    let mut as_orders = PaymentsServiceClient::new(system.grpc_channel("orders", "payments"));
    let status = as_orders
        .capture_payment(scoped(CapturePaymentRequest {
            payment_id: uuid_text(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("scope"), "{status:?}");
    let mut as_payments = OrdersServiceClient::new(system.grpc_channel("payments", "orders"));
    let status = as_payments.get_order(scoped(anyones())).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("scope"), "{status:?}");
    let scrape = system.process("payments", 0).scrape().await;
    assert_eq!(
        scrape.value(
            "grpc_authz_denied_total",
            &[
                ("method", "/shop.payments.v1.PaymentsService/CapturePayment"),
                ("caller", "orders"),
            ],
        ),
        Some(1.0),
        "{}",
        scrape.text()
    );

    // Through the edge, an administrator still reads a customer's order (the gateway presents
    // the scope for them), and the customer their own.
    let admin = system.admin().await;
    system.api.seed(&admin, "SCOPE-1", 700, 3).await;
    let (customer, _) = system.api.sign_up("ada@example.com").await;
    let order: serde_json::Value = system
        .api
        .place(&customer, "scoped", &[("SCOPE-1", 1)])
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    for token in [&admin, &customer] {
        let response = system.api.get(&path, Some(token)).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
    }
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_rotated_on_disk_is_used_with_no_failed_call() {
    let system = System::start(Options::default()).await;
    let certs = system.certs.as_ref().expect("mutual TLS is the default");
    let endpoint = system.grpc_endpoint("inventory");
    // Each call on a new connection, so each is a new handshake on both sides.
    let call = || async {
        let mut client =
            InventoryServiceClient::new(certs.channel("orders", "inventory", &endpoint));
        client
            .get_product(GetProductRequest {
                sku: "NO-SUCH-SKU".to_owned(),
            })
            .await
    };
    let served = certs.files("inventory");
    let original = leaf(&served.cert);
    assert_eq!(presented(&endpoint, certs.files("orders")).await, original);
    let mut failures = Vec::new();
    for round in 0..30 {
        if round == 10 {
            // The server's certificate, then the client's.
            certs.rotate("inventory").unwrap();
        }
        if round == 20 {
            certs.rotate("orders").unwrap();
        }
        match call().await {
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => failures.push(status),
            Ok(_) => panic!("NO-SUCH-SKU exists"),
        }
    }
    assert!(
        failures.is_empty(),
        "calls failed around the rotation: {failures:?}"
    );
    let logs = system.process("inventory", 0).process.logs();
    assert!(
        logs.iter().any(|line| line.contains("reloaded")),
        "inventory did not reload its certificate"
    );
    // The system's own connections (gateway → inventory) keep working throughout.
    let admin = system.admin().await;
    system.api.seed(&admin, "ROTATED-1", 500, 3).await;
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_tls_off_there_are_no_identities_and_no_authorization() {
    let system = System::start(Options {
        plaintext: true,
        ..Options::default()
    })
    .await;
    assert!(system.certs.is_none());
    // Any client reaches any method: here a capture, which only orders may ask for with TLS.
    let mut anyone = PaymentsServiceClient::new(system.grpc_channel("gateway", "payments"));
    let status = anyone
        .capture_payment(CapturePaymentRequest {
            payment_id: uuid_text(),
        })
        .await
        .unwrap_err();
    assert_ne!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        system
            .process("payments", 0)
            .process
            .logs()
            .iter()
            .any(|line| line.contains("plaintext gRPC (TLS=off)")),
        "payments says it runs without identities"
    );
    system.stop().await;
}
