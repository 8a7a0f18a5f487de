//! The CQRS read model, `order_summaries`: written only by the projection (`events.rs`), from
//! events, inside the consumer's inbox transaction; read by `ListOrders`.

use contracts::Money;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::OrderStore;
use crate::{domain::Track, error::OrdersError};

/// The statuses `change` may replace in a column; none when the change leaves it alone.
fn behind(track: Track, change: Option<&str>) -> Vec<&'static str> {
    change
        .map(|status| track.behind(status))
        .unwrap_or_default()
}

/// What one event changes in an order's summary (`None`: that column stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryChange {
    pub status: Option<&'static str>,
    pub payment: Option<&'static str>,
    pub stock: Option<&'static str>,
}

/// One row of the read model.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SummaryRow {
    pub order_id: Uuid,
    pub status: String,
    pub currency: String,
    pub total_minor: i64,
    pub item_count: i64,
    pub payment_status: String,
    pub stock_status: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Keyset position in a customer's list: newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryCursor {
    pub created_at: OffsetDateTime,
    pub order_id: Uuid,
}

impl SummaryCursor {
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.unix_timestamp_nanos(),
            self.order_id.simple()
        )
    }

    pub fn decode(token: &str) -> Option<Self> {
        let (nanos, id) = token.split_once('.')?;
        Some(Self {
            created_at: OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?,
            order_id: Uuid::parse_str(id).ok()?,
        })
    }
}

impl OrderStore {
    /// The summary of a placed order, PENDING; a second `OrderPlaced` changes nothing.
    pub async fn create_summary_in(
        conn: &mut PgConnection,
        order_id: Uuid,
        customer_id: Uuid,
        total: &Money,
        item_count: i64,
        at: OffsetDateTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO order_summaries
                 (order_id, customer_id, status, currency, total_minor, item_count,
                  created_at, updated_at)
             VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $6)
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order_id)
        .bind(customer_id)
        .bind(&total.currency)
        .bind(total.amount_minor)
        .bind(item_count)
        .bind(at)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Applies `change` to the order's summary, column by column, only where it moves the
    /// column forward (`domain::progress`): events of different queues overtake each other, and
    /// a late one must not undo a later state. False if there is no summary (yet).
    pub async fn update_summary_in(
        conn: &mut PgConnection,
        order_id: Uuid,
        change: &SummaryChange,
        at: OffsetDateTime,
    ) -> Result<bool, sqlx::Error> {
        let updated = sqlx::query(
            "UPDATE order_summaries
             SET status = CASE WHEN status = ANY($6) THEN $2 ELSE status END,
                 payment_status = CASE WHEN payment_status = ANY($7) THEN $3 ELSE payment_status END,
                 stock_status = CASE WHEN stock_status = ANY($8) THEN $4 ELSE stock_status END,
                 updated_at = greatest(updated_at, $5)
             WHERE order_id = $1",
        )
        .bind(order_id)
        .bind(change.status)
        .bind(change.payment)
        .bind(change.stock)
        .bind(at)
        .bind(behind(Track::Order, change.status))
        .bind(behind(Track::Payment, change.payment))
        .bind(behind(Track::Stock, change.stock))
        .execute(conn)
        .await?;
        Ok(updated.rows_affected() > 0)
    }

    /// Rebuilds the whole read model from the write model, in one transaction: every summary
    /// deleted and written again from `orders` and `order_lines`. For a projection that a bug
    /// or a lost event left wrong, or a new column to fill. The table is locked against the
    /// projection meanwhile (EXCLUSIVE still lets `ListOrders` read the old rows until the
    /// commit); events the projection applies afterwards only move columns forward, so nothing
    /// it does next can undo the rebuild. Returns how many summaries were written.
    pub async fn rebuild_summaries(&self) -> Result<u64, OrdersError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("LOCK TABLE order_summaries IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM order_summaries")
            .execute(&mut *tx)
            .await?;
        let written = sqlx::query(
            "INSERT INTO order_summaries
                 (order_id, customer_id, status, currency, total_minor, item_count,
                  payment_status, stock_status, created_at, updated_at)
             SELECT o.id, o.customer_id, o.status, o.currency, o.total_minor,
                    coalesce((SELECT sum(l.quantity) FROM order_lines l WHERE l.order_id = o.id), 0),
                    o.payment_status, o.stock_status, o.created_at, o.updated_at
             FROM orders o",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(written)
    }

    /// A page of the customer's orders from the read model, newest first.
    pub async fn list_summaries(
        &self,
        customer_id: Uuid,
        after: Option<SummaryCursor>,
        limit: i64,
    ) -> Result<Vec<SummaryRow>, OrdersError> {
        let rows =
            match after {
                None => sqlx::query_as(
                    "SELECT order_id, status, currency, total_minor, item_count, payment_status,
                            stock_status, created_at, updated_at
                     FROM order_summaries WHERE customer_id = $1
                     ORDER BY created_at DESC, order_id DESC LIMIT $2",
                )
                .bind(customer_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
                Some(cursor) => sqlx::query_as(
                    "SELECT order_id, status, currency, total_minor, item_count, payment_status,
                            stock_status, created_at, updated_at
                     FROM order_summaries
                     WHERE customer_id = $1 AND (created_at, order_id) < ($2, $3)
                     ORDER BY created_at DESC, order_id DESC LIMIT $4",
                )
                .bind(customer_id)
                .bind(cursor.created_at)
                .bind(cursor.order_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
            };
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = SummaryCursor {
            created_at: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            order_id: Uuid::now_v7(),
        };
        assert_eq!(SummaryCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(SummaryCursor::decode("nonsense"), None);
        assert_eq!(SummaryCursor::decode("12.not-a-uuid"), None);
    }
}
