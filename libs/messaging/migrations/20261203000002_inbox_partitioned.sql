-- The inbox becomes a table partitioned by day (libs/partitions), so that rows past the
-- retention window go by dropping a whole day's partition instead of the pruner's batched
-- `DELETE`s.
--
-- The partition key is `event_at`, the time encoded in the event's id (a UUIDv7 carries its
-- creation time in milliseconds in its first 48 bits), not `received_at`. The dedup key
-- (consumer, message_id) must gain the partition column to stay a primary key, and with
-- `event_at` it loses nothing: `event_at` is a function of `message_id`, so every copy of one
-- event — a redelivery, a retry, a replay from the parking queue days later — computes the same
-- `event_at`, lands in the same partition and meets the first copy's row there.
-- `PRIMARY KEY (consumer, message_id, event_at)` is therefore as global as the old key, for as
-- long as the event's partition exists: the retention window, counted from when the event
-- happened. (Partitioned by `received_at`, a copy received the next day would land in the next
-- day's partition, where the unique index cannot see the first copy.)
--
-- `inbox_event_time(id)` is that function, in one place: this migration uses it for the rows it
-- moves and the consumer for every row it inserts. An id that is not a UUIDv7 has no time: it
-- gets the epoch, the same for every copy, and lands in `inbox_default`, which also takes a copy
-- of an event older than every partition (a replay past the window), so that such an insert
-- never fails. The partition worker deletes default rows past the window at each round, the
-- epoch rows with them: only UUIDv7 ids, which every `Envelope::new` mints, are deduplicated for
-- the whole window; a foreign id only until the worker's next round (at most an hour).
ALTER TABLE inbox RENAME TO inbox_unpartitioned;
DROP INDEX inbox_received_at;
ALTER TABLE inbox_unpartitioned DROP CONSTRAINT inbox_pkey;

CREATE FUNCTION inbox_event_time(id UUID) RETURNS TIMESTAMPTZ
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN substr(id::text, 15, 1) = '7'
            THEN to_timestamp(('x' || lpad(substr(replace(id::text, '-', ''), 1, 12), 16, '0'))::bit(64)::bigint / 1000.0)
        ELSE 'epoch'::timestamptz
    END
$$;

CREATE TABLE inbox (
    -- The consuming queue, e.g. inventory.orders: one service may consume an event in several
    -- ways, each deduplicated on its own.
    consumer    TEXT        NOT NULL,
    -- The event id of the envelope (UUIDv7).
    message_id  UUID        NOT NULL,
    event_type  TEXT        NOT NULL,
    -- inbox_event_time(message_id): when the event happened; the partition key.
    event_at    TIMESTAMPTZ NOT NULL CHECK (event_at = inbox_event_time(message_id)),
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id, event_at)
) PARTITION BY RANGE (event_at);

CREATE TABLE inbox_default PARTITION OF inbox DEFAULT;

DO $$
DECLARE
    first_day TIMESTAMPTZ := date_trunc(
        'day',
        coalesce((SELECT min(inbox_event_time(message_id)) FROM inbox_unpartitioned
                  WHERE inbox_event_time(message_id) > 'epoch'), now()),
        'UTC');
BEGIN
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF inbox FOR VALUES FROM (%L) TO (%L)',
        'inbox_p' || to_char(first_day AT TIME ZONE 'UTC', 'YYYYMMDD_HH24MI'),
        first_day,
        date_trunc('day', now(), 'UTC') + interval '8 days');
END
$$;

INSERT INTO inbox (consumer, message_id, event_type, event_at, received_at)
SELECT consumer, message_id, event_type, inbox_event_time(message_id), received_at
FROM inbox_unpartitioned;

DROP TABLE inbox_unpartitioned;
