-- The order timeline becomes a table partitioned by day on `at` (libs/partitions), so that
-- entries older than `ORDERS_TIMELINE_RETENTION` go by dropping whole days instead of `DELETE`.
-- The orders themselves stay: past the window an order shows its status without its history.
--
-- Keys. A partitioned table's primary key must contain the partition column: `PRIMARY KEY (id,
-- at)`. `id` is still unique on its own — GENERATED ALWAYS by one identity, which no insert can
-- override — and it is still the sequence watchers resume after (`id > $last`), read through
-- `order_timeline_by_order (order_id, id)` in every partition.
--
-- LISTEN/NOTIFY. The `order_timeline_notify` trigger is created again on the new table: a row
-- trigger on a partitioned table fires for the rows of every partition, so `WatchOrder` is woken
-- exactly as before (see the migration `timeline_notify` for the payload and the ordering).
--
-- `order_timeline_default` takes an entry whose day has no partition (the worker stopped for
-- longer than its lookahead), so recording a step never fails; the worker moves such entries
-- into the day's partition when it creates it. The first range runs from the oldest entry's day
-- to a week past today; the worker continues from its end.
--
-- One transaction: build the new table, move the rows, swap the names.
ALTER TABLE order_timeline RENAME TO order_timeline_unpartitioned;
DROP TRIGGER order_timeline_notify ON order_timeline_unpartitioned;
DROP INDEX order_timeline_by_order;
ALTER TABLE order_timeline_unpartitioned DROP CONSTRAINT order_timeline_pkey;

CREATE TABLE order_timeline (
    -- The entry's sequence: across orders, and per order in commit order (`add_timeline` locks
    -- the order's row first).
    id       BIGINT GENERATED ALWAYS AS IDENTITY,
    order_id UUID        NOT NULL REFERENCES orders (id),
    -- The saga step or choreographed report, and how it went.
    step     TEXT        NOT NULL,
    outcome  TEXT        NOT NULL,
    detail   TEXT        NOT NULL DEFAULT '',
    -- When it happened; the partition key.
    at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE INDEX order_timeline_by_order ON order_timeline (order_id, id);

CREATE TABLE order_timeline_default PARTITION OF order_timeline DEFAULT;

DO $$
DECLARE
    first_day TIMESTAMPTZ := date_trunc(
        'day', coalesce((SELECT min(at) FROM order_timeline_unpartitioned), now()), 'UTC');
BEGIN
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF order_timeline FOR VALUES FROM (%L) TO (%L)',
        'order_timeline_p' || to_char(first_day AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MI'),
        first_day,
        date_trunc('day', now(), 'UTC') + interval '8 days');
END
$$;

INSERT INTO order_timeline OVERRIDING SYSTEM VALUE
SELECT id, order_id, step, outcome, detail, at FROM order_timeline_unpartitioned;
SELECT setval(pg_get_serial_sequence('order_timeline', 'id'), max(id)) FROM order_timeline;

DROP TABLE order_timeline_unpartitioned;

CREATE TRIGGER order_timeline_notify
    AFTER INSERT ON order_timeline
    FOR EACH ROW EXECUTE FUNCTION order_timeline_notify();
