-- The transactional outbox (ARCHITECTURE.md §2).
--
-- A service writes its state change and the event describing it in ONE transaction: the event row
-- lands here, and the relay publishes it to RabbitMQ afterwards. Either both happen or neither
-- does, which is what a direct "write then publish" cannot guarantee.
CREATE TABLE outbox (
    -- Publication order. Per aggregate it is also commit order of the rows' transactions only if
    -- the writer serialises them (services lock the aggregate row before enqueueing), which is
    -- what keeps one aggregate's events in order on the bus.
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- UUIDv7 of the event; AMQP message-id and the consumers' idempotency key.
    event_id       UUID        NOT NULL UNIQUE,
    -- Fully qualified protobuf type of the payload, e.g. shop.events.v1.OrderPlaced.
    event_type     TEXT        NOT NULL,
    -- <service>.<aggregate>.<event>, e.g. orders.order.placed.
    routing_key    TEXT        NOT NULL,
    aggregate_type TEXT        NOT NULL,
    aggregate_id   TEXT        NOT NULL,
    -- The encoded shop.events.v1.EventEnvelope, exactly the bytes that go on the wire.
    envelope       BYTEA       NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL until the broker confirmed the publish.
    published_at   TIMESTAMPTZ,
    -- Failed publish attempts and the last error, for the runbook and the lag metric.
    attempts       INTEGER     NOT NULL DEFAULT 0,
    last_error     TEXT
);

-- The relay's work queue: only unpublished rows, in order.
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
