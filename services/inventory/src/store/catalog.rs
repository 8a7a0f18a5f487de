//! Products and stock levels.

use sqlx::{PgConnection, PgPool};

use super::{Announce, ItemRow};
use crate::{
    domain::{
        AdjustmentReason, CatalogItem, CatalogPage, ListQuery, PageToken, ProductDraft, Sku,
        StockDelta, StockLevel,
    },
    error::InventoryError,
};
use messaging::outbox;

#[derive(Clone, Debug)]
pub struct CatalogStore {
    pool: PgPool,
    announce: Announce,
}

impl CatalogStore {
    pub fn new(pool: PgPool, announce: Announce) -> Self {
        Self { pool, announce }
    }

    /// One product with its available units, active or not.
    pub async fn find_item(&self, sku: &Sku) -> Result<Option<CatalogItem>, InventoryError> {
        let mut conn = self.pool.acquire().await?;
        find_item_in(&mut conn, sku).await
    }

    /// One page of active products, by SKU (keyset pagination, see `domain::listing`). One row
    /// more than the page is fetched to learn whether another page follows.
    pub async fn list(&self, query: &ListQuery) -> Result<CatalogPage, InventoryError> {
        let size = usize::try_from(query.size.get()).unwrap_or(usize::MAX);
        let after = query
            .after
            .as_ref()
            .map_or("", |token| token.last_sku().as_str());
        let pattern = query.text.as_ref().map(|text| text.like_pattern());
        let rows = sqlx::query_as::<_, ItemRow>(
            r"SELECT p.sku, p.name, p.description, p.price_minor, p.currency, p.active,
                     p.updated_at, s.available
              FROM products p JOIN stock s ON s.sku = p.sku
              WHERE p.active
                AND p.sku > $1
                AND ($2::text IS NULL
                     OR p.name ILIKE $2 ESCAPE '\'
                     OR p.description ILIKE $2 ESCAPE '\')
              ORDER BY p.sku
              LIMIT $3",
        )
        .bind(after)
        .bind(pattern)
        .bind(i64::from(query.size.get()) + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows
            .into_iter()
            .map(CatalogItem::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > size {
            items.truncate(size);
            items
                .last()
                .map(|item| PageToken::after(item.product.sku.clone()))
        } else {
            None
        };
        Ok(CatalogPage { items, next })
    }

    /// Creates or replaces a product; a new SKU gets an empty stock row. Records
    /// `ProductUpdated` in the same transaction.
    pub async fn upsert(&self, draft: &ProductDraft) -> Result<CatalogItem, InventoryError> {
        let mut tx = self.pool.begin().await?;
        let item = upsert_in(&mut tx, draft).await?;
        outbox::enqueue(&mut tx, &(self.announce.product_updated)(&item)).await?;
        tx.commit().await?;
        Ok(item)
    }

    /// Adds or writes off units: `on_hand` and `available` move together and never go below
    /// zero. The product and stock rows are locked first, so the arithmetic in
    /// [`StockLevel::adjust`] works on the current values and concurrent adjustments queue up.
    pub async fn adjust(
        &self,
        sku: &Sku,
        delta: StockDelta,
        reason: &AdjustmentReason,
    ) -> Result<(StockLevel, CatalogItem), InventoryError> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT s.on_hand, s.available, s.reserved, s.sold
             FROM products p JOIN stock s ON s.sku = p.sku
             WHERE p.sku = $1
             FOR UPDATE",
        )
        .bind(sku.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((on_hand, available, reserved, sold)) = row else {
            return Err(InventoryError::ProductNotFound(sku.clone()));
        };
        let current = StockLevel {
            sku: sku.clone(),
            on_hand,
            available,
            reserved,
            sold,
        };
        let next = current.adjust(delta)?;
        sqlx::query(
            "UPDATE stock SET on_hand = $2, available = $3, updated_at = now() WHERE sku = $1",
        )
        .bind(sku.as_str())
        .bind(next.on_hand)
        .bind(next.available)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO stock_adjustments (sku, delta, reason, on_hand_after)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(sku.as_str())
        .bind(delta.get())
        .bind(reason.as_str())
        .bind(next.on_hand)
        .execute(&mut *tx)
        .await?;
        let item = find_item_in(&mut tx, sku)
            .await?
            .ok_or_else(|| InventoryError::ProductNotFound(sku.clone()))?;
        outbox::enqueue(&mut tx, &(self.announce.product_updated)(&item)).await?;
        tx.commit().await?;
        Ok((next, item))
    }

    /// Fills an **empty** catalog with `products` (and their initial stock); does nothing when
    /// any product exists. Replicas starting together serialise on an advisory lock, so the
    /// catalog is seeded once and its events are recorded once. Returns how many were added.
    pub async fn seed(&self, products: &[(ProductDraft, i64)]) -> Result<usize, InventoryError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('inventory.seed'))")
            .execute(&mut *tx)
            .await?;
        let (exists,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM products)")
            .fetch_one(&mut *tx)
            .await?;
        if exists {
            return Ok(0);
        }
        for (draft, units) in products {
            upsert_in(&mut tx, draft).await?;
            sqlx::query(
                "UPDATE stock SET on_hand = $2, available = $2, updated_at = now() WHERE sku = $1",
            )
            .bind(draft.sku.as_str())
            .bind(units)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO stock_adjustments (sku, delta, reason, on_hand_after)
                 VALUES ($1, $2, 'demo catalog seed', $2)",
            )
            .bind(draft.sku.as_str())
            .bind(units)
            .execute(&mut *tx)
            .await?;
            let item = find_item_in(&mut tx, &draft.sku)
                .await?
                .ok_or_else(|| InventoryError::ProductNotFound(draft.sku.clone()))?;
            outbox::enqueue(&mut tx, &(self.announce.product_updated)(&item)).await?;
        }
        tx.commit().await?;
        Ok(products.len())
    }
}

async fn upsert_in(
    conn: &mut PgConnection,
    draft: &ProductDraft,
) -> Result<CatalogItem, InventoryError> {
    sqlx::query(
        "INSERT INTO products (sku, name, description, price_minor, currency, active, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (sku) DO UPDATE SET
             name = EXCLUDED.name,
             description = EXCLUDED.description,
             price_minor = EXCLUDED.price_minor,
             currency = EXCLUDED.currency,
             active = EXCLUDED.active,
             updated_at = EXCLUDED.updated_at",
    )
    .bind(draft.sku.as_str())
    .bind(draft.name.as_str())
    .bind(draft.description.as_str())
    .bind(draft.price.amount_minor())
    .bind(draft.price.currency().as_str())
    .bind(draft.active)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO stock (sku) VALUES ($1) ON CONFLICT (sku) DO NOTHING")
        .bind(draft.sku.as_str())
        .execute(&mut *conn)
        .await?;
    find_item_in(conn, &draft.sku)
        .await?
        .ok_or_else(|| InventoryError::ProductNotFound(draft.sku.clone()))
}

async fn find_item_in(
    conn: &mut PgConnection,
    sku: &Sku,
) -> Result<Option<CatalogItem>, InventoryError> {
    sqlx::query_as::<_, ItemRow>(
        "SELECT p.sku, p.name, p.description, p.price_minor, p.currency, p.active,
                p.updated_at, s.available
         FROM products p JOIN stock s ON s.sku = p.sku
         WHERE p.sku = $1",
    )
    .bind(sku.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .map(CatalogItem::try_from)
    .transpose()
}
