//! A TCP proxy that a test can cut and restore: a broker or database "outage" without stopping
//! the shared server other tests are using. It can also hold every chunk it forwards for a
//! while ([`TcpProxy::set_delay`]): a slow network or a slow peer, without changing the peer.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// Forwards connections on a local port to `upstream` until cut.
pub struct TcpProxy {
    addr: SocketAddr,
    upstream: String,
    enabled: Arc<AtomicBool>,
    /// Connections refused while cut: proof that a client noticed the outage and tried again.
    refused: Arc<AtomicU64>,
    /// Milliseconds every forwarded chunk waits before it is passed on (0: none).
    delay_ms: Arc<AtomicU64>,
    /// Bumped on every cut; live connections watch it and close.
    generation: watch::Sender<u64>,
}

impl TcpProxy {
    /// Starts proxying `upstream` (`host:port`) on a free loopback port.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("cannot bind the proxy: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("proxy address: {err}"));
        let enabled = Arc::new(AtomicBool::new(true));
        let refused = Arc::new(AtomicU64::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (generation, _) = watch::channel(0_u64);
        let proxy = Self {
            addr,
            upstream: upstream.to_owned(),
            enabled: Arc::clone(&enabled),
            refused: Arc::clone(&refused),
            delay_ms: Arc::clone(&delay_ms),
            generation,
        };
        let upstream = upstream.to_owned();
        let cuts = proxy.generation.subscribe();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !enabled.load(Ordering::SeqCst) {
                    refused.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                let delay_ms = Arc::clone(&delay_ms);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let both = async {
                        tokio::join!(
                            pump(client_read, server_write, &delay_ms),
                            pump(server_read, client_write, &delay_ms),
                        )
                    };
                    tokio::select! {
                        _ = both => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        proxy
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with its `host:port` replaced by the proxy's address.
    pub fn rewrite_url(&self, url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let credentials = authority
            .rsplit_once('@')
            .map(|(credentials, _)| format!("{credentials}@"))
            .unwrap_or_default();
        format!("{scheme}://{credentials}{}{path}", self.addr)
    }

    /// Drops every open connection and refuses new ones: the upstream looks down.
    pub fn cut(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }

    /// Holds every chunk forwarded from now on, in both directions, for `delay` before passing
    /// it on (`Duration::ZERO`: forward at once again). Open connections are affected too: the
    /// peer seems slow rather than gone.
    pub fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// How many connections were refused because the proxy was cut.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    pub fn upstream(&self) -> &str {
        &self.upstream
    }
}

/// Copies `from` to `to` until either side closes, holding each chunk for the current delay.
/// Each direction has its own pump, so a held chunk delays only what follows it on that side.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    delay_ms: &AtomicU64,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let delay = delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
