-- The payment ledger, event-sourced (ARCHITECTURE.md §3).
--
-- A payment has no mutable "status" column anywhere. Its state is the fold of its events, which
-- are only ever appended: the stream is the source of truth, and any state can be rebuilt (and
-- audited) from it.

-- The stream header: the immutable facts fixed when the payment was opened by AuthorizePayment.
-- `order_id` is UNIQUE: it is the idempotency key of AuthorizePayment, and this constraint is
-- what makes concurrent duplicate authorizations of one order yield a single payment.
CREATE TABLE payments (
    id           UUID        PRIMARY KEY,
    order_id     UUID        NOT NULL UNIQUE,
    customer_id  UUID        NOT NULL,
    -- The amount the authorization asked for, so that a retry can be compared with the first
    -- call whatever its outcome (a declined payment has no authorized amount).
    amount_minor BIGINT      NOT NULL CHECK (amount_minor > 0),
    currency     TEXT        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at   TIMESTAMPTZ NOT NULL
);

-- The events of every payment. The primary key (payment_id, seq) is the optimistic-concurrency
-- check: a writer appends seq = (last seq it read) + 1, and if another writer appended that seq
-- first, the insert fails with a unique violation and the loser reloads and decides again.
CREATE TABLE payment_events (
    payment_id   UUID        NOT NULL REFERENCES payments (id),
    seq          BIGINT      NOT NULL CHECK (seq > 0),
    kind         TEXT        NOT NULL
                             CHECK (kind IN ('authorized', 'declined', 'captured', 'refunded', 'voided')),
    -- Set for the kinds that move money, NULL for the others.
    amount_minor BIGINT      CHECK (amount_minor > 0),
    currency     TEXT        CHECK (currency ~ '^[A-Z]{3}$'),
    -- The decline, refund or void reason; empty for the others.
    detail       TEXT        NOT NULL DEFAULT '',
    occurred_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (payment_id, seq),
    CHECK ((amount_minor IS NULL) = (currency IS NULL)),
    CHECK ((kind IN ('authorized', 'captured', 'refunded')) = (amount_minor IS NOT NULL))
);

-- Append-only is enforced by the database, not only by convention: history is never rewritten.
-- A correction is a new event (a refund), never an UPDATE of an old one.
CREATE FUNCTION payment_events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payment_events is append-only: % is not allowed', TG_OP;
END;
$$;

CREATE TRIGGER payment_events_append_only
    BEFORE UPDATE OR DELETE ON payment_events
    FOR EACH ROW EXECUTE FUNCTION payment_events_are_append_only();
