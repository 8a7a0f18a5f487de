//! All SQL of the {{name}} service: the `records` table (see the migration) and, in the same
//! transactions, the outbox.
//!
//! **Once per reference.** [`create_in`] inserts with `ON CONFLICT (reference) DO NOTHING`: a
//! concurrent creator of the same reference waits for the first one's commit and then inserts
//! nothing, and the record the first one created is returned instead. The integration event is
//! enqueued only when the row was really inserted, so a retry never announces a record twice.
//!
//! **On the caller's connection.** [`create_in`] works on a connection the caller passes in, so
//! that the inbox consumer can commit the record, its event and the "seen this message" row in
//! one transaction; [`RecordStore::create`] runs the same SQL in a transaction of its own.
//! Events are handed in built (`crate::events`): the store writes them, it does not make them.

use messaging::{Envelope, outbox};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    domain::{Record, Reference},
    error::{{Pascal}}Error,
};

/// What [`create_in`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The record is new; its event is in the outbox.
    New(Record),
    /// The reference already had this record; nothing was written.
    Existing(Record),
}

impl Created {
    pub fn record(&self) -> &Record {
        match self {
            Self::New(record) | Self::Existing(record) => record,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RecordStore {
    pool: PgPool,
}

type RecordRow = (Uuid, String, OffsetDateTime);

impl RecordStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// [`create_in`], in a transaction of its own.
    pub async fn create(
        &self,
        record: &Record,
        event: &Envelope,
    ) -> Result<Created, {{Pascal}}Error> {
        let mut tx = self.pool.begin().await?;
        let created = create_in(&mut tx, record, event).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Record>, {{Pascal}}Error> {
        let row: Option<RecordRow> =
            sqlx::query_as("SELECT id, reference, created_at FROM records WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(record).transpose()
    }
}

/// Inserts `record` and enqueues `event`, unless its reference already has a record, which is
/// then returned as it is.
pub async fn create_in(
    conn: &mut PgConnection,
    record: &Record,
    event: &Envelope,
) -> Result<Created, {{Pascal}}Error> {
    let inserted = sqlx::query(
        "INSERT INTO records (id, reference, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (reference) DO NOTHING",
    )
    .bind(record.id)
    .bind(record.reference.as_str())
    .bind(record.created_at)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        outbox::enqueue(conn, event).await?;
        return Ok(Created::New(record.clone()));
    }
    let row: RecordRow =
        sqlx::query_as("SELECT id, reference, created_at FROM records WHERE reference = $1")
            .bind(record.reference.as_str())
            .fetch_one(&mut *conn)
            .await?;
    Ok(Created::Existing(self::record(row)?))
}

/// The current time at the precision the database keeps (microseconds), so that a record
/// answered on creation equals the same record read back.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

fn record((id, reference, created_at): RecordRow) -> Result<Record, {{Pascal}}Error> {
    let reference = Reference::parse(&reference)
        .map_err(|err| {{Pascal}}Error::Corrupt(format!("record {id}: {err}")))?;
    Ok(Record::new(id, reference, created_at))
}
