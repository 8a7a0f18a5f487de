-- The outbox becomes a table partitioned by day on `occurred_at` (libs/partitions), so that
-- published events age out by dropping a whole day's partition instead of `DELETE`ing rows.
--
-- Keys. A primary key or unique constraint of a partitioned table must contain the partition
-- column, so the two constraints gain `occurred_at`:
-- * `PRIMARY KEY (seq, occurred_at)`: `seq` is still unique on its own — it is GENERATED ALWAYS by
--   one identity, which no insert can override — the key only names it; the relay still claims,
--   orders and marks rows by `seq`.
-- * `UNIQUE (event_id, occurred_at)`: the id and the time come from the same `Envelope::new`, so
--   enqueueing one envelope twice is still refused; two envelopes never share a UUIDv7 anyway.
--
-- `outbox_default` takes a row whose day has no partition (the worker stopped for longer than its
-- lookahead), so an enqueue never fails; the worker moves such rows into the day's partition
-- when it creates it. The first range runs from the oldest row's day to a week past today, so the
-- service does not depend on the worker having run; the worker continues from its end.
--
-- One transaction: build the new table, move the rows, swap the names.
ALTER TABLE outbox RENAME TO outbox_unpartitioned;
DROP INDEX outbox_pending;
ALTER TABLE outbox_unpartitioned DROP CONSTRAINT outbox_pkey;
ALTER TABLE outbox_unpartitioned DROP CONSTRAINT outbox_event_id_key;

CREATE TABLE outbox (
    -- Publication order (see the first outbox migration for what it guarantees).
    seq            BIGINT GENERATED ALWAYS AS IDENTITY,
    -- UUIDv7 of the event; AMQP message-id and the consumers' idempotency key.
    event_id       UUID        NOT NULL,
    -- Fully qualified protobuf type of the payload, e.g. shop.events.v1.OrderPlaced.
    event_type     TEXT        NOT NULL,
    -- <service>.<aggregate>.<event>, e.g. orders.order.placed.
    routing_key    TEXT        NOT NULL,
    aggregate_type TEXT        NOT NULL,
    aggregate_id   TEXT        NOT NULL,
    -- The encoded shop.events.v1.EventEnvelope, exactly the bytes that go on the wire.
    envelope       BYTEA       NOT NULL,
    -- When the event happened; the partition key.
    occurred_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL until the broker confirmed the publish.
    published_at   TIMESTAMPTZ,
    -- Failed publish attempts and the last error, for the runbook and the lag metric.
    attempts       INTEGER     NOT NULL DEFAULT 0,
    last_error     TEXT,
    PRIMARY KEY (seq, occurred_at),
    UNIQUE (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- The relay's work queue: only unpublished rows, in order (one small index per partition).
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;

CREATE TABLE outbox_default PARTITION OF outbox DEFAULT;

DO $$
DECLARE
    first_day TIMESTAMPTZ := date_trunc(
        'day', coalesce((SELECT min(occurred_at) FROM outbox_unpartitioned), now()), 'UTC');
BEGIN
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF outbox FOR VALUES FROM (%L) TO (%L)',
        'outbox_p' || to_char(first_day AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MI'),
        first_day,
        date_trunc('day', now(), 'UTC') + interval '8 days');
END
$$;

INSERT INTO outbox OVERRIDING SYSTEM VALUE
SELECT seq, event_id, event_type, routing_key, aggregate_type, aggregate_id, envelope,
       occurred_at, published_at, attempts, last_error
FROM outbox_unpartitioned;
SELECT setval(pg_get_serial_sequence('outbox', 'seq'), max(seq)) FROM outbox;

DROP TABLE outbox_unpartitioned;
