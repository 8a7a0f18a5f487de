//! The catalog's service layer: reads through the cache with a stampede guard, writes with
//! invalidation.
//!
//! ```text
//! GetProduct ─► single-flight(key) ─► Redis GET ── hit ──────────────────────► answer
//!                                         │ miss: note generation, read Postgres,
//!                                         └────── fill Redis if generation unchanged ─► answer
//! UpsertProduct / AdjustStock / ReserveStock / … ─► Postgres transaction (+ outbox)
//!                                                   ─► commit ─► invalidate (DEL + generation++)
//! ```
//!
//! The pieces, each in its module: [`crate::cache`] (cache-aside, keys, TTL, outage handling),
//! [`crate::single_flight`] (one load per key per process), [`crate::store::CatalogStore`]
//! (SQL). This module only wires them together and counts Postgres reads ([`CatalogReads`]),
//! which is how the tests prove that a hit or a stampede does not reach the database.
//!
//! **Read-your-writes in one replica.** A read that joins a load already in flight gets that
//! load's result. So that a client never reads, from the replica that just served its write,
//! a value loaded before that write, every write here also bumps a local epoch that is part of
//! the single-flight key: reads after the write start a new load.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use prost::Message as _;

use crate::{
    cache::{self, CatalogCache, Lookup},
    domain::{
        AdjustmentReason, CatalogItem, CatalogPage, ListQuery, ProductDraft, Sku, StockDelta,
        StockLevel,
    },
    error::InventoryError,
    single_flight::SingleFlight,
    store::CatalogStore,
    wire,
};
use contracts::inventory as api;

type Shared<T> = Result<T, Arc<InventoryError>>;

/// How many catalog reads reached Postgres since start (`GetProduct` and `ListProducts`
/// loads). Also exported as `inventory_catalog_db_reads_total`.
#[derive(Clone, Debug, Default)]
pub struct CatalogReads(Arc<AtomicU64>);

impl CatalogReads {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("inventory_catalog_db_reads_total").increment(1);
    }
}

#[derive(Clone)]
pub struct Catalog {
    store: CatalogStore,
    cache: CatalogCache,
    products: Arc<SingleFlight<Shared<Option<CatalogItem>>>>,
    pages: Arc<SingleFlight<Shared<CatalogPage>>>,
    reads: CatalogReads,
    epoch: Arc<AtomicU64>,
}

impl Catalog {
    pub fn new(store: CatalogStore, cache: CatalogCache) -> Self {
        Self {
            store,
            cache,
            products: Arc::default(),
            pages: Arc::default(),
            reads: CatalogReads::default(),
            epoch: Arc::default(),
        }
    }

    pub fn reads(&self) -> CatalogReads {
        self.reads.clone()
    }

    /// Adds the demo products that are missing (`INVENTORY_SEED_DEMO`), and invalidates what it
    /// added.
    pub async fn seed_demo(&self) -> Result<(), InventoryError> {
        let added = crate::seed::apply(&self.store).await?;
        if added > 0 {
            let skus: Vec<_> = crate::seed::drafts()?
                .into_iter()
                .map(|(draft, _)| draft.sku)
                .collect();
            self.changed(&skus).await;
        }
        tracing::info!(added, "demo catalog checked");
        Ok(())
    }

    /// `GetProduct`: cache-aside behind single-flight.
    pub async fn product(&self, sku: Sku) -> Result<CatalogItem, InventoryError> {
        let flight = format!("{}|{}", self.epoch(), sku);
        let this = self.clone();
        let loaded = self
            .products
            .run(flight, {
                let sku = sku.clone();
                move || async move { this.load_product(sku).await.map_err(Arc::new) }
            })
            .await;
        match loaded {
            Some(Ok(Some(item))) => Ok(item),
            Some(Ok(None)) => Err(InventoryError::ProductNotFound(sku)),
            Some(Err(shared)) => Err(InventoryError::Shared(shared)),
            None => Err(InventoryError::Corrupt(
                "the product load did not finish".into(),
            )),
        }
    }

    async fn load_product(&self, sku: Sku) -> Result<Option<CatalogItem>, InventoryError> {
        let key = self.cache.product_key(&sku);
        let generation = match self.cache.lookup(&key, "product").await {
            Lookup::Hit(bytes) => {
                match api::Product::decode(bytes.as_slice()).map(wire::decode_product) {
                    Ok(Ok(item)) if item.product.sku == sku => return Ok(Some(item)),
                    _ => {
                        tracing::warn!(key, "unreadable cache entry; reading Postgres");
                        self.cache.generation().await
                    }
                }
            }
            Lookup::Miss => self.cache.generation().await,
            Lookup::Unavailable => None,
        };
        self.reads.count();
        let item = self.store.find_item(&sku).await?;
        // Unknown SKUs are not cached (no negative caching): single-flight still collapses a
        // burst of them into one query per replica.
        if let (Some(item), Some(generation)) = (&item, generation) {
            let bytes = wire::product(item).encode_to_vec();
            self.cache.fill(generation, &key, &bytes).await;
        }
        Ok(item)
    }

    /// `ListProducts`: pages are cached under the current catalog generation.
    pub async fn list(&self, query: ListQuery) -> Result<CatalogPage, InventoryError> {
        let generation = self.cache.generation().await;
        let flight = format!(
            "{}|{}|{}",
            self.epoch(),
            generation.map_or_else(|| "-".to_owned(), |g| g.to_string()),
            query.cache_key()
        );
        let this = self.clone();
        let loaded = self
            .pages
            .run(flight, move || async move {
                this.load_page(generation, query).await.map_err(Arc::new)
            })
            .await;
        match loaded {
            Some(Ok(page)) => Ok(page),
            Some(Err(shared)) => Err(InventoryError::Shared(shared)),
            None => Err(InventoryError::Corrupt(
                "the page load did not finish".into(),
            )),
        }
    }

    async fn load_page(
        &self,
        generation: Option<u64>,
        query: ListQuery,
    ) -> Result<CatalogPage, InventoryError> {
        let key = match generation {
            None => {
                cache::record("page", &Lookup::Unavailable);
                None
            }
            Some(generation) => {
                let key = self.cache.page_key(generation, &query);
                match self.cache.lookup(&key, "page").await {
                    Lookup::Hit(bytes) => {
                        let decoded = api::ListProductsResponse::decode(bytes.as_slice())
                            .map(wire::decode_page);
                        if let Ok(Ok(page)) = decoded {
                            return Ok(page);
                        }
                        tracing::warn!(key, "unreadable cache entry; reading Postgres");
                        Some(key)
                    }
                    Lookup::Miss => Some(key),
                    Lookup::Unavailable => None,
                }
            }
        };
        self.reads.count();
        let page = self.store.list(&query).await?;
        if let (Some(key), Some(generation)) = (key, generation) {
            let bytes = wire::page(&page).encode_to_vec();
            self.cache.fill(generation, &key, &bytes).await;
        }
        Ok(page)
    }

    /// `UpsertProduct`.
    pub async fn upsert(&self, draft: &ProductDraft) -> Result<CatalogItem, InventoryError> {
        let item = self.store.upsert(draft).await?;
        self.changed(std::slice::from_ref(&draft.sku)).await;
        tracing::info!(sku = %draft.sku, active = draft.active, "product upserted");
        Ok(item)
    }

    /// `AdjustStock`.
    pub async fn adjust(
        &self,
        sku: &Sku,
        delta: StockDelta,
        reason: &AdjustmentReason,
    ) -> Result<StockLevel, InventoryError> {
        let (level, _) = self.store.adjust(sku, delta, reason).await?;
        self.changed(std::slice::from_ref(sku)).await;
        tracing::info!(%sku, delta = delta.get(), reason = reason.as_str(), "stock adjusted");
        Ok(level)
    }

    /// Call after a committed change to these products or their stock (reservations included).
    pub async fn changed(&self, skus: &[Sku]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate(skus).await;
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
}
