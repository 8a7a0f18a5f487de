-- The inbox of idempotent consumers (ARCHITECTURE.md §2).
--
-- RabbitMQ delivers at least once: after a consumer crash, a lost ack or a relay retry, the same
-- event can arrive twice. A consumer inserts (consumer, message_id) in the SAME transaction as
-- the handler's effects; a second delivery finds the row and changes nothing.
CREATE TABLE inbox (
    -- The consuming queue, e.g. inventory.orders: one service may consume an event in several
    -- ways, each deduplicated on its own.
    consumer    TEXT        NOT NULL,
    -- The event id of the envelope (UUIDv7).
    message_id  UUID        NOT NULL,
    event_type  TEXT        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
