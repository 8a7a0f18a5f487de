-- The payment event store becomes a table partitioned by day (libs/partitions). The ledger is a
-- record, not a cache: nothing is dropped by default (`PAYMENTS_EVENTS_RETENTION` unset), and when
-- a retention is set, a day past it is DETACHED, not dropped: it leaves the ledger as a table of
-- its own for an operator to archive (`pg_dump -t`) and drop. What partitioning buys here is that
-- archiving a day is one DDL statement instead of a DELETE the append-only trigger forbids, and
-- that the indexes of the days still written are small.
--
-- The partition key: the payment's opening time, not each event's. The primary key
-- (payment_id, seq) is the ledger's optimistic-concurrency check — two writers appending the same
-- seq of one payment must collide — and a partitioned table's primary key must contain the
-- partition column. Partitioned by `occurred_at`, the key would become (payment_id, seq,
-- occurred_at), and two appends of the same seq at different instants would both succeed: the
-- check would be gone. Partitioned by `opened_at`, a copy of `payments.created_at` held to it by
-- a foreign key on (payment_id, opened_at), the extra column is a function of `payment_id`: every
-- event of a payment lands in the partition of its opening day, and (payment_id, seq, opened_at)
-- is exactly as unique as (payment_id, seq) was. A stream is never split across partitions, so a
-- payment is read (and archived) from one of them.
--
-- `payment_events_default` takes an event whose day has no partition (the worker stopped for
-- longer than its lookahead), so an append never fails; the worker moves such rows into the day's
-- partition when it creates it (the append-only trigger does not follow a detached partition,
-- which is how the move is allowed). The first range runs from the oldest payment's day to a week
-- past today; the worker continues from its end.
--
-- One transaction: build the new table, move the rows, swap the names.
ALTER TABLE payments ADD CONSTRAINT payments_id_created_at_key UNIQUE (id, created_at);

ALTER TABLE payment_events RENAME TO payment_events_unpartitioned;
DROP TRIGGER payment_events_append_only ON payment_events_unpartitioned;
ALTER TABLE payment_events_unpartitioned DROP CONSTRAINT payment_events_pkey;

CREATE TABLE payment_events (
    payment_id   UUID        NOT NULL,
    -- The payment's `created_at`, so that its whole stream shares one partition; the partition
    -- key.
    opened_at    TIMESTAMPTZ NOT NULL,
    seq          BIGINT      NOT NULL CHECK (seq > 0),
    kind         TEXT        NOT NULL
                             CHECK (kind IN ('authorized', 'declined', 'captured', 'refunded', 'voided')),
    -- Set for the kinds that move money, NULL for the others.
    amount_minor BIGINT      CHECK (amount_minor > 0),
    currency     TEXT        CHECK (currency ~ '^[A-Z]{3}$'),
    -- The decline, refund or void reason; empty for the others.
    detail       TEXT        NOT NULL DEFAULT '',
    occurred_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (payment_id, seq, opened_at),
    FOREIGN KEY (payment_id, opened_at) REFERENCES payments (id, created_at),
    CHECK ((amount_minor IS NULL) = (currency IS NULL)),
    CHECK ((kind IN ('authorized', 'captured', 'refunded')) = (amount_minor IS NOT NULL))
) PARTITION BY RANGE (opened_at);

CREATE TABLE payment_events_default PARTITION OF payment_events DEFAULT;

DO $$
DECLARE
    first_day TIMESTAMPTZ := date_trunc(
        'day', coalesce((SELECT min(created_at) FROM payments), now()), 'UTC');
BEGIN
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF payment_events FOR VALUES FROM (%L) TO (%L)',
        'payment_events_p' || to_char(first_day AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MI'),
        first_day,
        date_trunc('day', now(), 'UTC') + interval '8 days');
END
$$;

INSERT INTO payment_events
    (payment_id, opened_at, seq, kind, amount_minor, currency, detail, occurred_at)
SELECT e.payment_id, p.created_at, e.seq, e.kind, e.amount_minor, e.currency, e.detail,
       e.occurred_at
FROM payment_events_unpartitioned e
JOIN payments p ON p.id = e.payment_id;

DROP TABLE payment_events_unpartitioned;

-- Append-only, as before: a row trigger on a partitioned table guards the rows of every
-- partition.
CREATE TRIGGER payment_events_append_only
    BEFORE UPDATE OR DELETE ON payment_events
    FOR EACH ROW EXECUTE FUNCTION payment_events_are_append_only();
