//! Postgres over TLS, as the Kubernetes manifests connect: `sslmode=verify-full` with the
//! database cluster's CA named by `sslrootcert` in `<SERVICE>_DATABASE_URL`
//! (`platform::db::connect` hands the URL's options to sqlx). Without the right CA the service
//! does not start, and the error says why; it never falls back to an unverified connection.
//! The local Postgres serves TLS with a certificate of its own, which no CA given here signed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

const SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[tokio::test]
async fn verify_full_without_the_servers_ca_is_refused_naming_the_certificate() {
    let err = platform::db::connect(&format!("{SERVER}?sslmode=verify-full"), 1)
        .await
        .expect_err("the server's certificate is not signed by a trusted root");
    let message = err.to_string();
    assert!(message.contains("certificate"), "{message}");
}

#[tokio::test]
async fn a_missing_ca_file_is_refused_naming_the_file() {
    let err = platform::db::connect(
        &format!("{SERVER}?sslmode=verify-full&sslrootcert=/nonexistent/postgres-ca/ca.crt"),
        1,
    )
    .await
    .expect_err("there is no CA file");
    let message = err.to_string();
    assert!(
        message.contains("/nonexistent/postgres-ca/ca.crt"),
        "{message}"
    );
}

#[tokio::test]
async fn without_tls_options_the_same_server_accepts_the_connection() {
    // The refusals above are about the certificate, not about reaching the server.
    let pool = platform::db::connect(SERVER, 1).await.unwrap();
    pool.close().await;
}
