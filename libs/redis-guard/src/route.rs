//! How a command finds its server: a fixed address, or the primary that Sentinel names.
//!
//! A [`redis::aio::ConnectionManager`] reconnects by itself, but always to the address it was
//! built with: it cannot follow a failover (redis-rs has no Sentinel-aware manager). So for
//! Sentinel, [`Route::Sentinel`] keeps one manager for the primary it last found and replaces it
//! when told to: [`Route::connection`] asks the sentinels when no primary is known, and
//! [`Route::forget`] drops the known one after a failure, so the next command asks again.
//! [`Route::moves`] counts the lookups that found a primary at another address than the one
//! before: each is a failover this process has followed.

use std::sync::{
    Mutex, PoisonError,
    atomic::{AtomicU64, Ordering},
};

use redis::{
    Client, RedisResult,
    aio::{ConnectionManager, ConnectionManagerConfig},
    sentinel::{SentinelClient, SentinelServerType},
};

use crate::target::SentinelAddr;

/// Where commands go.
pub(crate) enum Route {
    /// One address: the manager reconnects to it by itself, forever.
    Fixed(ConnectionManager),
    /// The primary the sentinels name, looked up again after a failure.
    Sentinel(Box<SentinelRoute>),
}

/// A connection handed to one command, and which primary it belongs to.
pub(crate) struct Leased {
    pub(crate) connection: ConnectionManager,
    /// The [`Primary::generation`] it came from; `None` on a fixed route.
    pub(crate) generation: Option<u64>,
}

pub(crate) struct SentinelRoute {
    /// Asks the sentinels (in order, first answer wins) and checks with `ROLE` that the server
    /// they name really is a primary. Behind an async mutex: one lookup at a time, and commands
    /// that need the primary while a lookup runs wait for its result instead of asking again.
    sentinels: tokio::sync::Mutex<SentinelClient>,
    /// The primary in use; `None` before the first lookup and after [`Route::forget`].
    primary: Mutex<Option<Primary>>,
    /// How many primaries have been found so far: the next one's generation.
    found: AtomicU64,
    /// The address of the last primary found; kept when that primary is forgotten, so the next
    /// lookup can tell a new primary from the same one asked for again.
    last_address: Mutex<Option<String>>,
    /// How many lookups found a primary at another address than `last_address`.
    moves: AtomicU64,
    /// Settings of every manager built for a primary.
    config: ConnectionManagerConfig,
    /// The master name, for logs.
    master: String,
}

/// One primary the sentinels named.
#[derive(Clone)]
struct Primary {
    /// Counts lookups, so a failure seen on an old primary cannot forget a newer one.
    generation: u64,
    /// `host:port`, for logs.
    address: String,
    connection: ConnectionManager,
}

impl Route {
    /// A route to the server at `url`; nothing is dialled yet.
    pub(crate) fn fixed(url: &str, config: ConnectionManagerConfig) -> RedisResult<Self> {
        let client = Client::open(url)?;
        Ok(Self::Fixed(ConnectionManager::new_lazy_with_config(
            client, config,
        )?))
    }

    /// A route to the primary of `master`, asking `sentinels`; nothing is dialled yet.
    pub(crate) fn sentinel(
        sentinels: &[SentinelAddr],
        master: &str,
        config: ConnectionManagerConfig,
    ) -> RedisResult<Self> {
        let addresses: Vec<_> = sentinels
            .iter()
            .map(SentinelAddr::connection_addr)
            .collect();
        let client = SentinelClient::build(
            addresses,
            master.to_owned(),
            None,
            SentinelServerType::Master,
        )?;
        Ok(Self::Sentinel(Box::new(SentinelRoute {
            sentinels: tokio::sync::Mutex::new(client),
            primary: Mutex::new(None),
            found: AtomicU64::new(0),
            last_address: Mutex::new(None),
            moves: AtomicU64::new(0),
            config,
            master: master.to_owned(),
        })))
    }

    /// A connection for one command: the fixed one, the known primary's, or (asking the
    /// sentinels first) the current primary's. Cheap when nothing has to be looked up.
    pub(crate) async fn connection(&self) -> RedisResult<Leased> {
        match self {
            Self::Fixed(connection) => Ok(Leased {
                connection: connection.clone(),
                generation: None,
            }),
            Self::Sentinel(route) => route.connection().await,
        }
    }

    /// How many times commands moved to a primary at another address (always 0 on a fixed
    /// route). It grows before the first command on the new primary gets its connection, so a
    /// caller that reads it after a command knows whether that command may have run there.
    pub(crate) fn moves(&self) -> u64 {
        match self {
            Self::Fixed(_) => 0,
            Self::Sentinel(route) => route.moves.load(Ordering::SeqCst),
        }
    }

    /// After a failure on `leased`: a fixed route keeps its connection (it reconnects by
    /// itself); a Sentinel route drops that primary, so the next command asks the sentinels.
    pub(crate) fn forget(&self, leased: &Leased) {
        if let (Self::Sentinel(route), Some(generation)) = (self, leased.generation) {
            route.forget(generation);
        }
    }
}

impl SentinelRoute {
    fn known(&self) -> Option<Primary> {
        self.primary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn connection(&self) -> RedisResult<Leased> {
        let leased = |primary: Primary| Leased {
            connection: primary.connection,
            generation: Some(primary.generation),
        };
        if let Some(primary) = self.known() {
            return Ok(leased(primary));
        }
        let mut sentinels = self.sentinels.lock().await;
        // Another command may have found it while this one waited for the lock.
        if let Some(primary) = self.known() {
            return Ok(leased(primary));
        }
        let client = sentinels.async_get_client().await?;
        let address = client.get_connection_info().addr().to_string();
        let connection = ConnectionManager::new_lazy_with_config(client, self.config.clone())?;
        let generation = self.found.fetch_add(1, Ordering::SeqCst) + 1;
        let previous = self
            .last_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(address.clone());
        if previous.is_some_and(|previous| previous != address) {
            self.moves.fetch_add(1, Ordering::SeqCst);
        }
        tracing::info!(master = %self.master, %address, "Sentinel named the Redis primary");
        let primary = Primary {
            generation,
            address,
            connection,
        };
        *self.primary.lock().unwrap_or_else(PoisonError::into_inner) = Some(primary.clone());
        Ok(leased(primary))
    }

    fn forget(&self, generation: u64) {
        let mut primary = self.primary.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = primary
            .as_ref()
            .filter(|known| known.generation == generation)
        {
            tracing::debug!(
                master = %self.master,
                address = %known.address,
                "forgetting the Redis primary after a failure; the sentinels will be asked again"
            );
            *primary = None;
        }
    }
}
