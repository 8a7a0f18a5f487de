//! Service discovery: where each upstream's replicas are.
//!
//! * **Static** (`http://a:50052,http://b:50052`, e.g. `GATEWAY_INVENTORY_URLS` or
//!   `ORDERS_INVENTORY_URL`): the list is fixed at start. Good for local runs and for tests with
//!   several in-process replicas.
//! * **DNS** (`dns://inventory-headless:50052`): the name is resolved every refresh interval
//!   (`GATEWAY_DNS_REFRESH`, `ORDERS_DNS_REFRESH`), and each address becomes an endpoint. Point it at a Kubernetes
//!   **headless** Service (`clusterIP: None`), whose DNS answer lists every ready pod: pods that
//!   scale in or out, or fail their readiness probe, join or leave the rotation within one
//!   refresh. (A normal Service would answer with one virtual IP, and all calls would ride one
//!   HTTP/2 connection to one pod — see `resilience::balance`.)
//!
//! Endpoints that stay keep their connection and their health record across refreshes; a failed
//! lookup keeps the last known list rather than emptying the pool.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tonic::transport::Channel;

use super::Backend;
use crate::{Shutdown, grpc::client::connect_lazy, tls::ClientTls};

/// Where an upstream's endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    /// A fixed list of `http://host:port` URLs.
    Static(Vec<String>),
    /// A DNS name resolved again and again; every address is an endpoint (`http://ip:port`).
    Dns { host: String, port: u16 },
}

impl EndpointSource {
    /// Parses a setting: `dns://host:port`, or one or more comma-separated `http://host:port`
    /// URLs. The error says what is wrong, for the setting's error message.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("dns://") {
            let (host, port) = rest
                .trim_end_matches('/')
                .rsplit_once(':')
                .ok_or("expected dns://host:port")?;
            let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
            if host.is_empty() || host.contains(['/', ',', ' ']) {
                return Err(format!("bad host {host:?}"));
            }
            return Ok(Self::Dns {
                host: host.to_owned(),
                port,
            });
        }
        let urls: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err("expected at least one URL".to_owned());
        }
        for url in &urls {
            let Some(authority) = url.strip_prefix("http://") else {
                return Err(format!(
                    "{url:?} is not an http:// URL (or use dns://host:port)"
                ));
            };
            if authority.trim_end_matches('/').rsplit_once(':').is_none() {
                return Err(format!("{url:?} has no port"));
            }
        }
        Ok(Self::Static(urls))
    }
}

/// A lazily connecting channel to one endpoint URL (`None`, logged, if the URL is unusable).
fn channel(url: &str, tls: Option<&ClientTls>) -> Option<Channel> {
    connect_lazy(url, tls)
        .inspect_err(|error| tracing::error!(url, %error, "cannot use endpoint"))
        .ok()
}

/// The endpoint URL of a resolved address.
pub fn endpoint_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Fills the backend's pool from a static source now. For a DNS source this does one lookup
/// (best effort); [`keep_resolving`] does the rest.
pub async fn initial(backend: &Backend, source: &EndpointSource) {
    match source {
        EndpointSource::Static(urls) => {
            let names: Vec<Arc<str>> = urls.iter().map(|url| Arc::from(url.as_str())).collect();
            backend
                .balancer()
                .update(&names, |url| channel(url, backend.tls()));
        }
        EndpointSource::Dns { host, port } => resolve(backend, host, *port).await,
    }
}

async fn resolve(backend: &Backend, host: &str, port: u16) {
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => {
            let names: Vec<Arc<str>> = addrs.map(|addr| Arc::from(endpoint_url(addr))).collect();
            if names.is_empty() {
                tracing::warn!(
                    upstream = backend.name(),
                    host,
                    "DNS answered with no address; keeping the last list"
                );
                return;
            }
            backend
                .balancer()
                .update(&names, |url| channel(url, backend.tls()));
        }
        Err(error) => {
            tracing::warn!(upstream = backend.name(), host, %error, "DNS lookup failed; keeping the last list");
        }
    }
}

/// Re-resolves a DNS source every `every` until shutdown; returns at once for static sources.
pub async fn keep_resolving(
    backend: Backend,
    source: EndpointSource,
    every: Duration,
    shutdown: Shutdown,
) {
    let EndpointSource::Dns { host, port } = source else {
        return;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            _ = ticks.tick() => resolve(&backend, &host, port).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::upstream::BackendConfig;

    fn backend() -> Backend {
        Backend::new("inventory", &BackendConfig::default())
            .unwrap_or_else(|error| panic!("{error}"))
    }

    #[tokio::test]
    async fn a_dns_name_becomes_one_endpoint_per_address() {
        let backend = backend();
        initial(
            &backend,
            &EndpointSource::Dns {
                host: "localhost".into(),
                port: 50052,
            },
        )
        .await;
        let names: Vec<String> = backend
            .balancer()
            .endpoints()
            .iter()
            .map(|status| status.name.to_string())
            .collect();
        assert!(
            names.contains(&"http://127.0.0.1:50052".to_owned()),
            "{names:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_lookup_keeps_the_last_list() {
        let backend = backend();
        initial(
            &backend,
            &EndpointSource::Static(vec!["http://10.9.9.9:1".into()]),
        )
        .await;
        resolve(&backend, "no-such-host.invalid", 1).await;
        assert_eq!(backend.balancer().endpoints().len(), 1);
    }
}
