//! Fencing tokens: a participant refuses the calls of a saga runner that has been superseded.
//!
//! A saga is driven by whichever runner holds its lease, and every claim of the lease increments
//! the saga's epoch. A runner that stalls (a GC-like pause, a SIGSTOP, a slow network) can wake
//! up after its lease expired and another runner took the saga over. Its own writes are refused
//! by the saga store, which checks the epoch; but its calls to the participants would still act:
//! a stale `ReleaseStock` could give back the units its successor has just reserved, a stale
//! `VoidOrderPayment` could void the authorization its successor obtained.
//!
//! So the caller sends its epoch as a **fencing token** in the `x-fencing-token` metadata of
//! every participant call, and the participant keeps, per key (the order id), the highest token
//! it has seen:
//!
//! ```text
//!   runner A (epoch 1) ── ReserveStock ──────────────►  fencing_tokens[order] = 1   admitted
//!   runner A stalls; its lease expires
//!   runner B (epoch 2) ── ReserveStock ──────────────►  fencing_tokens[order] = 2   admitted
//!   runner A wakes    ── ReleaseStock (token 1) ─────►  1 < 2: FAILED_PRECONDITION, nothing done
//! ```
//!
//! * Two steps, so that a call is refused both when it arrives late and when it was already
//!   under way as its successor arrived:
//!   1. [`admit`], when the call arrives and before anything else (before a payment provider is
//!      asked): checks and raises the key's token in one statement
//!      (`INSERT … ON CONFLICT DO UPDATE … GREATEST`), committed at once, so that the raise
//!      stands whatever the call's outcome, and two calls racing cannot both think they are the
//!      newest;
//!   2. [`hold`], inside the transaction of the call's own writes: checks the token again under a
//!      share lock. A successor's `admit` needs that row exclusively, so it waits until this
//!      transaction ends and then finds its effect; or it came first, and `hold` refuses.
//! * An equal token is admitted: that is the same drive retrying its call.
//! * A call without the metadata is not fenced. Only the saga has epochs; a person calling a
//!   participant by hand (or a test) has none.
//! * A refusal is the caller's own condition, FAILED_PRECONDITION, not an upstream failure: it
//!   opens no breaker and ejects no replica.
//!
//! The table comes with this module's [`migrator`]; a service whose calls are fenced adds it to
//! its migrations.

use sqlx::PgConnection;
use tonic::{Request, metadata::MetadataValue};
use uuid::Uuid;

use crate::ServiceError;

/// The metadata key the token travels in.
pub const METADATA_KEY: &str = "x-fencing-token";

/// A saga lease epoch, as sent to the participants: higher is newer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FencingToken(i64);

impl FencingToken {
    pub fn new(epoch: i64) -> Self {
        Self(epoch)
    }

    pub fn value(self) -> i64 {
        self.0
    }

    /// Puts the token into the metadata of an outgoing call.
    pub fn attach<T>(self, request: &mut Request<T>) {
        request
            .metadata_mut()
            .insert(METADATA_KEY, MetadataValue::from(self.0));
    }

    /// The token of an incoming call, if it carries one. A value that is not a non-negative
    /// integer is the caller's mistake and is refused, naming the key.
    pub fn from_request<T>(request: &Request<T>) -> Result<Option<Self>, ServiceError> {
        let Some(value) = request.metadata().get(METADATA_KEY) else {
            return Ok(None);
        };
        value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .filter(|token| *token >= 0)
            .map(|token| Some(Self(token)))
            .ok_or_else(|| ServiceError::invalid(METADATA_KEY, "must be a non-negative integer"))
    }
}

/// A call refused because a newer runner has acted on the same key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "superseded: the call carries fencing token {presented} for {key}, a newer runner holds {current}"
)]
pub struct Superseded {
    pub key: Uuid,
    pub presented: i64,
    pub current: i64,
}

impl From<Superseded> for ServiceError {
    fn from(superseded: Superseded) -> Self {
        ServiceError::FailedPrecondition(superseded.to_string())
    }
}

/// Step 1: admits a call carrying `token` for `key`, or refuses it when a higher token was
/// seen, and records `token` as the highest so far when it is. Run it outside the call's
/// transaction (it must stand even if the call then fails). Without a token there is nothing to
/// check.
pub async fn admit(
    conn: &mut PgConnection,
    key: Uuid,
    token: Option<FencingToken>,
) -> Result<Result<(), Superseded>, sqlx::Error> {
    let Some(FencingToken(presented)) = token else {
        return Ok(Ok(()));
    };
    let current: i64 = sqlx::query_scalar(
        "INSERT INTO fencing_tokens (key, token) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE \
           SET token = GREATEST(fencing_tokens.token, EXCLUDED.token), updated_at = now() \
         RETURNING token",
    )
    .bind(key)
    .bind(presented)
    .fetch_one(conn)
    .await?;
    Ok(judge(key, presented, current))
}

/// Step 2: inside the transaction of the call's writes, checks that no newer token has been
/// admitted since [`admit`], and keeps it so (a share lock on the key's row) until the
/// transaction ends.
pub async fn hold(
    conn: &mut PgConnection,
    key: Uuid,
    token: Option<FencingToken>,
) -> Result<Result<(), Superseded>, sqlx::Error> {
    let Some(FencingToken(presented)) = token else {
        return Ok(Ok(()));
    };
    let current: Option<i64> =
        sqlx::query_scalar("SELECT token FROM fencing_tokens WHERE key = $1 FOR SHARE")
            .bind(key)
            .fetch_optional(conn)
            .await?;
    Ok(judge(key, presented, current.unwrap_or(presented)))
}

fn judge(key: Uuid, presented: i64, current: i64) -> Result<(), Superseded> {
    if current > presented {
        tracing::warn!(%key, presented, current, "call from a superseded saga runner refused");
        metrics::counter!("fencing_refusals_total").increment(1);
        return Err(Superseded {
            key,
            presented,
            current,
        });
    }
    Ok(())
}

/// Migrations of the `fencing_tokens` table, recorded in a ledger of their own.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name("_fencing_migrations");
    migrator
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_travels_in_metadata_and_bad_values_name_the_key() {
        let mut request = Request::new(());
        assert_eq!(FencingToken::from_request(&request).ok(), Some(None));
        FencingToken::new(7).attach(&mut request);
        assert_eq!(
            FencingToken::from_request(&request).ok(),
            Some(Some(FencingToken::new(7)))
        );
        for bad in ["-1", "seven", "1.5", ""] {
            let mut request = Request::new(());
            request
                .metadata_mut()
                .insert(METADATA_KEY, bad.parse().expect("ascii"));
            match FencingToken::from_request(&request) {
                Err(ServiceError::InvalidArgument { field, .. }) => {
                    assert_eq!(field, METADATA_KEY, "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
