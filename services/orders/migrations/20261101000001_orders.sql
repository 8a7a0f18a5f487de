-- The write model: orders as the checkout saga leaves them.
CREATE TABLE orders (
    id                  UUID        PRIMARY KEY,
    customer_id         UUID        NOT NULL,
    status              TEXT        NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
    cancellation_reason TEXT,
    payment_method      TEXT        NOT NULL,
    currency            TEXT        NOT NULL,
    total_minor         BIGINT      NOT NULL CHECK (total_minor >= 0),
    -- Set once payments authorized; the choreographed steps after confirmation key on it.
    payment_id          UUID,
    -- What the choreographed steps reported back: none, authorized, captured, refund_pending,
    -- refunded, voided, declined / none, reserved, committed, released, restock_pending, restocked.
    payment_status      TEXT        NOT NULL DEFAULT 'none',
    stock_status        TEXT        NOT NULL DEFAULT 'none',
    -- The client's Idempotency-Key: one order per (customer, key).
    idempotency_key     TEXT        NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (customer_id, idempotency_key)
);

CREATE TABLE order_lines (
    order_id         UUID   NOT NULL REFERENCES orders (id),
    line_no          INT    NOT NULL,
    sku              TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT NOT NULL CHECK (unit_price_minor >= 0),
    PRIMARY KEY (order_id, line_no)
);

-- The durable state of each checkout saga. A runner claims due rows with a lease (several
-- replicas share the work; a crashed runner's lease expires and another resumes the saga).
CREATE TABLE sagas (
    order_id        UUID        PRIMARY KEY REFERENCES orders (id),
    step            TEXT        NOT NULL,
    cancel_reason   TEXT,
    payment_id      UUID,
    attempts        INT         NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    deadline        TIMESTAMPTZ NOT NULL,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX sagas_due ON sagas (next_attempt_at) WHERE step <> 'done';

-- The timeline the storefront shows: one row per saga step outcome or choreographed report.
CREATE TABLE order_timeline (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id UUID        NOT NULL REFERENCES orders (id),
    step     TEXT        NOT NULL,
    outcome  TEXT        NOT NULL,
    detail   TEXT        NOT NULL DEFAULT '',
    at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX order_timeline_by_order ON order_timeline (order_id, id);

-- The CQRS read model behind ListOrders. Written ONLY by the projection, from events (our own,
-- payments' and inventory's), never by the command side: it is eventually consistent.
CREATE TABLE order_summaries (
    order_id       UUID        PRIMARY KEY,
    customer_id    UUID        NOT NULL,
    status         TEXT        NOT NULL,
    currency       TEXT        NOT NULL,
    total_minor    BIGINT      NOT NULL,
    item_count     BIGINT      NOT NULL,
    payment_status TEXT        NOT NULL DEFAULT 'none',
    stock_status   TEXT        NOT NULL DEFAULT 'none',
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX order_summaries_by_customer ON order_summaries (customer_id, created_at DESC, order_id DESC);
