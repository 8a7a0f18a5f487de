use time::OffsetDateTime;
use uuid::Uuid;

use super::OrderStore;
use crate::error::OrdersError;

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
