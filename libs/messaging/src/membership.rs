//! Which replica consumes which partitions: membership in the service's own database.
//!
//! Every replica of a consumer is a **member** with a random id. On each heartbeat it
//!
//! ```text
//! INSERT … ON CONFLICT DO UPDATE SET heartbeat_at = now()     -- I am alive
//! DELETE the members whose heartbeat is older than the lease  -- the dead are forgotten
//! SELECT the live members ORDER BY member_id                  -- everyone sees the same list
//! ```
//!
//! and takes partition `p` when `p mod members` is its own index in that list ([`share`]). Every
//! member computes the same assignment from the same list, with no coordinator and no election:
//! a replica that joins (scale up) appears in the list and the others give up its share at their
//! next heartbeat; one that stops deletes its row ([`leave`]) and the others take its partitions
//! at their next heartbeat; one that is killed stops heartbeating and the others take over once
//! its lease has expired.
//!
//! **The assignment only balances; it does not protect.** Two members may disagree for a moment
//! (one has seen a newcomer, the other not yet), or a member whose database is unreachable may
//! keep what it had. Both then subscribe to the same partition, and the broker's single active
//! consumer makes one of them the active one and the other a standby that receives nothing until
//! the active one cancels or dies: the order within a partition never depends on the table being
//! right. When a member gives a partition up it finishes the message in hand and closes the
//! partition's channel; its unacknowledged messages go back to the head of the queue, the standby
//! becomes active, and the inbox recognises anything that had already been handled.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

/// How often a member heartbeats, and after how long without one it is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub heartbeat: Duration,
    /// Longer than several heartbeats, so that a slow round does not look like a death.
    pub expiry: Duration,
}

impl Default for Lease {
    /// A heartbeat every 2 s; a member silent for 10 s is gone. A killed replica's partitions
    /// move within about 12 s.
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(2),
            expiry: Duration::from_secs(10),
        }
    }
}

/// Records `member`'s heartbeat for `consumer`, forgets expired members, and returns the live
/// members sorted by id.
pub async fn heartbeat(
    pool: &PgPool,
    consumer: &str,
    member: Uuid,
    lease: Lease,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let expiry = lease.expiry.as_secs_f64();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO consumer_members (consumer, member_id) VALUES ($1, $2)
         ON CONFLICT (consumer, member_id) DO UPDATE SET heartbeat_at = now()",
    )
    .bind(consumer)
    .bind(member)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM consumer_members
         WHERE consumer = $1 AND heartbeat_at < now() - make_interval(secs => $2)",
    )
    .bind(consumer)
    .bind(expiry)
    .execute(&mut *tx)
    .await?;
    let members: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT member_id FROM consumer_members WHERE consumer = $1 ORDER BY member_id",
    )
    .bind(consumer)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(members.into_iter().map(|(id,)| id).collect())
}

/// Removes `member`, so the others take its partitions at their next heartbeat instead of after
/// the lease.
pub async fn leave(pool: &PgPool, consumer: &str, member: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM consumer_members WHERE consumer = $1 AND member_id = $2")
        .bind(consumer)
        .bind(member)
        .execute(pool)
        .await?;
    Ok(())
}

/// The partitions of `0..partitions` that `member` takes among `members` (sorted, as
/// [`heartbeat`] returns them): `p` such that `p mod members.len()` is its index. A member not in
/// the list takes nothing.
pub fn share(partitions: u16, members: &[Uuid], member: Uuid) -> Vec<u16> {
    let Some(index) = members.iter().position(|id| *id == member) else {
        return Vec::new();
    };
    (0..partitions)
        .filter(|partition| usize::from(*partition) % members.len() == index)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_has_exactly_one_owner() {
        let mut members: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        members.sort();
        let mut owned: Vec<u16> = members
            .iter()
            .flat_map(|member| share(8, &members, *member))
            .collect();
        owned.sort_unstable();
        assert_eq!(owned, (0..8).collect::<Vec<_>>());
        assert_eq!(share(8, &members, members[1]), [1, 4, 7]);
        assert!(share(8, &members, Uuid::now_v7()).is_empty());
        // More members than partitions: the extra ones stand by with nothing.
        assert!(share(2, &members, members[2]).is_empty());
    }
}
