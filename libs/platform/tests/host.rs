//! The host serving an HTTP API (an axum router, as the gateway does): the same admin port,
//! readiness, drain and workers as a gRPC service gets.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::ConnectInfo, routing::get};
use platform::{
    Shutdown,
    admin::Readiness,
    host::{Api, HostConfig, ServiceHost, Worker},
    tls::TlsMode,
};
use reqwest::StatusCode;
use tokio::sync::Notify;

const DEADLINE: Duration = Duration::from_secs(10);

fn config() -> HostConfig {
    HostConfig {
        api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_grace: Duration::from_secs(30),
        tls: TlsMode::Plaintext { explicit: true },
    }
}

async fn status(url: &str) -> Option<StatusCode> {
    reqwest::get(url)
        .await
        .ok()
        .map(|response| response.status())
}

#[tokio::test]
async fn an_http_api_drains_its_in_flight_requests_then_stops_its_workers() {
    // `/slow` says it has started, then waits until the test lets it answer.
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let router = Router::new()
        .route(
            "/slow",
            get({
                let (started, release) = (Arc::clone(&started), Arc::clone(&release));
                move || async move {
                    started.notify_one();
                    release.notified().await;
                    "done"
                }
            }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
    let worker_stopped = Arc::new(AtomicBool::new(false));
    let host = ServiceHost::bind(&config(), Api::Http(router), Readiness::new())
        .await
        .unwrap()
        .with_workers([Worker::new({
            let worker_stopped = Arc::clone(&worker_stopped);
            move |shutdown: Shutdown| async move {
                shutdown.wait().await;
                worker_stopped.store(true, Ordering::SeqCst);
            }
        })]);
    let (api, admin) = (host.api_addr(), host.admin_addr());
    let shutdown = Shutdown::new();
    let running = tokio::spawn(host.run(shutdown.clone()));

    let readyz = format!("http://{admin}/readyz");
    testkit::poll_until("the admin port is ready", DEADLINE, || async {
        (status(&readyz).await == Some(StatusCode::OK)).then_some(())
    })
    .await
    .unwrap();
    let peer = reqwest::get(format!("http://{api}/peer")).await.unwrap();
    assert_eq!(
        peer.text().await.unwrap(),
        "127.0.0.1",
        "the peer address reaches handlers"
    );

    let in_flight = tokio::spawn(reqwest::get(format!("http://{api}/slow")));
    started.notified().await;
    shutdown.trigger();
    testkit::poll_until("/readyz says 503 while draining", DEADLINE, || async {
        (status(&readyz).await == Some(StatusCode::SERVICE_UNAVAILABLE)).then_some(())
    })
    .await
    .unwrap();
    assert!(
        !running.is_finished(),
        "the host waits for the request in flight"
    );

    release.notify_one();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "done");
    tokio::time::timeout(DEADLINE, running)
        .await
        .expect("the host stops once drained")
        .unwrap()
        .unwrap();
    assert!(
        worker_stopped.load(Ordering::SeqCst),
        "the worker was stopped"
    );
    assert!(
        status(&format!("http://{api}/peer")).await.is_none(),
        "the API port is closed"
    );
}
