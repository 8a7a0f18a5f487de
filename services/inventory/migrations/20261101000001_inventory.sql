-- The inventory schema: catalog, stock per SKU, reservations per order.
--
-- The CHECK constraints restate the domain rules so that a bug in the code cannot corrupt the
-- data: the database refuses a negative stock level or a broken conservation law outright.

-- The catalog. The SKU is the business key every other service refers to.
--
-- SKUs use the "C" collation everywhere: byte order, the same order Rust's `Ord` gives them.
-- Lock ordering and the comparison of stored reservation lines with a retried request both
-- rely on the database sorting SKUs exactly as the code does (a locale collation would, for
-- instance, ignore the '-' and sort "A-B" after "AA").
CREATE TABLE products (
    sku          TEXT        COLLATE "C" PRIMARY KEY CHECK (sku ~ '^[A-Z0-9-]{3,64}$'),
    name         TEXT        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description  TEXT        NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    -- Money: integer minor units plus an ISO 4217 code; never a float.
    price_minor  BIGINT      NOT NULL CHECK (price_minor >= 0),
    currency     TEXT        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Inactive products are hidden from ListProducts and cannot be reserved.
    active       BOOLEAN     NOT NULL DEFAULT TRUE,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Stock of one SKU. Every unit is in exactly one bucket:
--   available  can be reserved;
--   reserved   held for an order until it is committed, released or expires;
--   sold       committed to a confirmed order.
-- on_hand is every unit received net of write-offs, so on_hand = available + reserved + sold.
CREATE TABLE stock (
    sku        TEXT        COLLATE "C" PRIMARY KEY REFERENCES products (sku),
    on_hand    BIGINT      NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    available  BIGINT      NOT NULL DEFAULT 0 CHECK (available >= 0),
    reserved   BIGINT      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    sold       BIGINT      NOT NULL DEFAULT 0 CHECK (sold >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT stock_is_conserved CHECK (on_hand = available + reserved + sold)
);

-- The audit trail of AdjustStock: who changed on_hand, by how much and why.
CREATE TABLE stock_adjustments (
    id            BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku           TEXT        COLLATE "C" NOT NULL REFERENCES products (sku),
    delta         BIGINT      NOT NULL CHECK (delta <> 0),
    reason        TEXT        NOT NULL,
    on_hand_after BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One reservation per order: the order id is the idempotency key of ReserveStock.
--
-- 'pending' only ever exists inside the ReserveStock transaction that inserted the row (it is
-- updated to its outcome before that transaction commits), so no other transaction sees it.
-- A 'released' row without lines is a tombstone: ReleaseStock arrived before ReserveStock.
CREATE TABLE reservations (
    order_id   UUID        PRIMARY KEY,
    status     TEXT        NOT NULL
               CHECK (status IN ('pending', 'reserved', 'rejected', 'released', 'committed', 'expired')),
    expires_at TIMESTAMPTZ,
    -- Why it was released (ReleaseStock's reason), for the audit trail.
    reason     TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (status <> 'reserved' OR expires_at IS NOT NULL)
);

-- The sweeper's work queue: only live reservations, oldest deadline first.
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'reserved';

-- The requested lines. No foreign key to products: an unknown SKU is a legitimate request that
-- is rejected (and remembered, so a retry gets the same answer).
CREATE TABLE reservation_lines (
    order_id        UUID   NOT NULL REFERENCES reservations (order_id),
    sku             TEXT   COLLATE "C" NOT NULL,
    quantity        BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    -- Only for rejected reservations: the units that were available when this line fell short.
    short_available BIGINT CHECK (short_available >= 0),
    PRIMARY KEY (order_id, sku)
);
