//! `WatchOrder`: an order's timeline pushed step by step as it is recorded, until the order is
//! settled.
//!
//! **Why push.** Checkout goes on after `PlaceOrder` answers: the saga reserves, authorizes and
//! commits, then payments captures by choreography, seconds later. A client that wants to show
//! each step could poll `GetOrder`, but every poll is a query whether anything changed or not,
//! and a step shows up only at the next poll. Here the database says when something changed.
//!
//! **LISTEN/NOTIFY.** Postgres has a small publish/subscribe built in: a session that ran
//! `LISTEN order_timeline` is sent every `NOTIFY order_timeline, 'payload'` (or
//! `pg_notify('order_timeline', payload)`) that another session commits, as an asynchronous
//! message on its connection. A notification is delivered only when, and only if, its
//! transaction commits, so a listener never hears of a step it cannot read yet. A trigger on
//! `order_timeline` (migration `timeline_notify`) notifies `<order id>:<sequence>` for every new
//! entry, whichever code path recorded it: the saga runner, the fulfilment consumer or a
//! customer's cancellation, in this replica or another.
//!
//! ```text
//!  INSERT INTO order_timeline ──commit──► trigger: pg_notify('order_timeline', 'id:seq')
//!                                                   │
//!  TimelineFeed (one PgListener per process) ◄──────┘  LISTEN order_timeline
//!        │ broadcast::Sender<Notice>
//!        ├──► watch of order A: not mine, ignore
//!        └──► watch of order B: re-read entries after my last sequence, send each
//! ```
//!
//! **One listener, many watchers.** A listening session holds a connection for as long as it
//! listens. One per stream would let the number of open streams exhaust the pool (and
//! Postgres's `max_connections`). So each process has one [`TimelineFeed`]: one connection that
//! listens, fanning every notice out to the open watches over a `tokio::sync::broadcast`
//! channel. Each watch ignores the notices of other orders; for its own, it reads what is new.
//!
//! **Notifications are hints, the table is the truth.** A notice says "read again", never
//! "here is the step": every watch keeps the last sequence it sent and reads the entries after
//! it, in one snapshot with the order's statuses (`OrderStore::get_since`). So nothing depends
//! on a notice arriving exactly once:
//!
//! * the watch subscribes *before* it reads its first snapshot, so a step recorded between the
//!   two wakes it, and the re-read finds it (or finds nothing new, if the snapshot had it);
//! * while the listener's connection is down, notifications are simply lost. When the feed is
//!   listening again (at start and after every reconnect) it broadcasts [`Notice::Resync`], and
//!   every watch re-reads after its last sequence; a watch that fell so far behind that the
//!   broadcast channel overwrote notices it had not read does the same;
//! * a second notice for a step already read finds nothing new and sends nothing.
//!
//! Each step is sent once and in order because the sequence is the entry's id and the entries
//! of one order are numbered in commit order (`add_timeline` locks the order's row first).
//!
//! **The end.** A watch ends after the step that settles the order (`domain::is_settled`:
//! captured and committed, or cancelled with the money and the stock back), at the caller's
//! deadline (DEADLINE_EXCEEDED), or when this replica stops (UNAVAILABLE: the caller watches
//! again, from its last sequence, on another replica). The stream never ends the process's
//! shutdown waiting for an order.
//!
//! **The cost.** One connection per process held by the listener; a notification per timeline
//! entry (a few per order), delivered to every orders replica; per notice, every watch in the
//! replica compares an id, and the watches of that order run one small read. Postgres queues
//! notifications of committed transactions in a shared, bounded queue (8 GB by default): a
//! listener that stopped reading would, in the end, make `NOTIFY` fail; ours reads continuously
//! and drops what no watch wants.

use std::{collections::VecDeque, time::Duration};

use futures::Stream;
use platform::Shutdown;
use sqlx::{PgPool, postgres::PgListener};
use tokio::{
    sync::broadcast::{self, error::RecvError},
    time::Instant,
};
use uuid::Uuid;

use super::Viewer;
use crate::{
    domain::OrderStatus,
    error::OrdersError,
    store::{OrderStore, OrderView, TIMELINE_CHANNEL, TimelineEntry},
};

/// Notices buffered per watch before a slow one is told it lagged (and re-reads).
const NOTICE_BUFFER: usize = 1024;

/// How long the feed waits before listening again after its connection failed, at first; the
/// wait doubles up to [`RECONNECT_CAP`] while reconnecting keeps failing.
const RECONNECT_BASE: Duration = Duration::from_millis(100);
const RECONNECT_CAP: Duration = Duration::from_secs(5);

/// What the feed tells every watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A timeline entry of `order_id` committed.
    Recorded { order_id: Uuid, sequence: i64 },
    /// The feed is listening (again): notifications may have been lost before, so read again.
    Resync,
}

impl Notice {
    /// A notification's payload, `<order id>:<sequence>`; `None` for anything else.
    fn parse(payload: &str) -> Option<Self> {
        let (order_id, sequence) = payload.split_once(':')?;
        Some(Self::Recorded {
            order_id: Uuid::parse_str(order_id).ok()?,
            sequence: sequence.parse().ok()?,
        })
    }
}

/// The process's one listener on [`TIMELINE_CHANNEL`], shared by every watch.
#[derive(Clone, Debug)]
pub struct TimelineFeed {
    notices: broadcast::Sender<Notice>,
    /// Fires when the feed stops (the process is shutting down): open watches end.
    stopping: Shutdown,
}

impl Default for TimelineFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl TimelineFeed {
    /// A feed that hears nothing until [`TimelineFeed::run`] listens.
    pub fn new() -> Self {
        Self {
            notices: broadcast::channel(NOTICE_BUFFER).0,
            stopping: Shutdown::new(),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Listens until `shutdown`, broadcasting every notification, and [`Notice::Resync`] each
    /// time listening starts. A lost connection is re-established (`PgListener` reconnects and
    /// listens again by itself; a failure to do so is retried here, with a growing pause).
    pub async fn run(self, pool: PgPool, shutdown: Shutdown) {
        let mut pause = RECONNECT_BASE;
        while !shutdown.is_triggered() {
            let listened = tokio::select! {
                () = shutdown.wait() => break,
                listened = self.listen(&pool) => listened,
            };
            match listened {
                Ok(()) => pause = RECONNECT_BASE,
                Err(error) => {
                    tracing::warn!(%error, ?pause, "the timeline listener failed; listening again");
                    tokio::select! {
                        () = shutdown.wait() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(RECONNECT_CAP);
                }
            }
        }
        self.stopping.trigger();
        tracing::info!("timeline feed stopped");
    }

    /// One listening session: returns `Ok` when its connection was lost but re-established,
    /// `Err` when it could not be.
    async fn listen(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(TIMELINE_CHANNEL).await?;
        loop {
            // Listening now: whatever was committed while we were not, the watches re-read.
            // (A send error only means no watch is open.)
            let _ = self.notices.send(Notice::Resync);
            while let Some(notification) = listener.try_recv().await? {
                match Notice::parse(notification.payload()) {
                    Some(notice) => {
                        let _ = self.notices.send(notice);
                    }
                    None => tracing::warn!(
                        payload = notification.payload(),
                        "an unexpected timeline notification"
                    ),
                }
            }
            // `try_recv` answered None: the connection was lost, and the listener has already
            // reconnected and listens again (`eager_reconnect`).
            tracing::warn!("the timeline listener lost its connection and reconnected");
        }
    }
}

/// One step as a watch sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedStep {
    pub entry: TimelineEntry,
    /// The order when the step was read (with several new steps read at once, the state after
    /// the last of them).
    pub status: OrderStatus,
    pub cancellation_reason: Option<String>,
    pub payment_status: String,
    pub stock_status: String,
    /// This step settled the order; it is the watch's last.
    pub settled: bool,
}

/// Opens watches on orders.
#[derive(Clone, Debug)]
pub struct Watcher {
    store: OrderStore,
    feed: TimelineFeed,
}

impl Watcher {
    pub fn new(store: OrderStore, feed: TimelineFeed) -> Self {
        Self { store, feed }
    }

    /// The steps of `order_id` after sequence `after`, if `viewer` may see the order: those
    /// already recorded at once, then each new one as it is recorded, until the order is
    /// settled, `deadline` passes, or the feed stops. NOT_FOUND (before the stream starts) for
    /// an order the viewer may not see.
    pub async fn watch(
        &self,
        order_id: Uuid,
        viewer: Viewer,
        after: i64,
        deadline: Option<Instant>,
    ) -> Result<impl Stream<Item = Result<WatchedStep, OrdersError>> + Send + 'static, OrdersError>
    {
        // Subscribe first: a step recorded after this point wakes the watch, whether or not
        // the snapshot below already has it.
        let notices = self.feed.subscribe();
        let snapshot = self
            .store
            .get_since(order_id, after.max(0))
            .await?
            .filter(|order| match viewer {
                Viewer::Customer(customer) => order.customer_id == customer,
                Viewer::Anyone => true,
            })
            .ok_or(OrdersError::NotFound)?;
        let mut watch = Watch {
            store: self.store.clone(),
            notices,
            stopping: self.feed.stopping.clone(),
            order_id,
            last: after.max(0),
            pending: VecDeque::new(),
            deadline,
            done: false,
        };
        watch.take(snapshot);
        Ok(futures::stream::unfold(watch, |mut watch| async move {
            let next = watch.next().await?;
            Some((next, watch))
        }))
    }
}

/// The state of one open watch.
struct Watch {
    store: OrderStore,
    notices: broadcast::Receiver<Notice>,
    stopping: Shutdown,
    order_id: Uuid,
    /// The sequence of the last step queued: the next read starts after it.
    last: i64,
    /// Read, not yet sent.
    pending: VecDeque<WatchedStep>,
    deadline: Option<Instant>,
    /// Nothing more to read: the order is settled (or the watch failed).
    done: bool,
}

impl Watch {
    /// Queues the new entries of a read, the last one marked settled if the order is.
    fn take(&mut self, order: OrderView) {
        let settled = order.is_settled();
        let count = order.timeline.len();
        for (index, entry) in order.timeline.into_iter().enumerate() {
            self.last = entry.sequence;
            self.pending.push_back(WatchedStep {
                entry,
                status: order.status,
                cancellation_reason: order.cancellation_reason.clone(),
                payment_status: order.payment_status.clone(),
                stock_status: order.stock_status.clone(),
                settled: settled && index + 1 == count,
            });
        }
        self.done = settled;
    }

    /// The next step to send, waiting for one; `None` once the stream is over.
    async fn next(&mut self) -> Option<Result<WatchedStep, OrdersError>> {
        loop {
            if let Some(step) = self.pending.pop_front() {
                return Some(Ok(step));
            }
            if self.done {
                return None;
            }
            let deadline = async {
                match self.deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            let notice = tokio::select! {
                () = self.stopping.wait() => {
                    self.done = true;
                    return Some(Err(OrdersError::Stopping(
                        "this replica is stopping; watch again after the last sequence".into(),
                    )));
                }
                () = deadline => {
                    self.done = true;
                    return Some(Err(OrdersError::DeadlineExceeded(
                        "the order did not settle before the deadline".into(),
                    )));
                }
                notice = self.notices.recv() => notice,
            };
            let read_again = match notice {
                Ok(Notice::Recorded { order_id, sequence }) => {
                    order_id == self.order_id && sequence > self.last
                }
                Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => {
                    self.done = true;
                    return Some(Err(OrdersError::Stopping(
                        "the timeline feed closed".into(),
                    )));
                }
            };
            if !read_again {
                continue;
            }
            match self.store.get_since(self.order_id, self.last).await {
                Ok(Some(order)) => self.take(order),
                Ok(None) => {
                    self.done = true;
                    return Some(Err(OrdersError::NotFound));
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_carry_the_order_and_the_sequence() {
        let order_id = Uuid::now_v7();
        assert_eq!(
            Notice::parse(&format!("{order_id}:42")),
            Some(Notice::Recorded {
                order_id,
                sequence: 42
            })
        );
        assert_eq!(Notice::parse("nonsense"), None);
        assert_eq!(Notice::parse(&format!("{order_id}:x")), None);
    }
}
