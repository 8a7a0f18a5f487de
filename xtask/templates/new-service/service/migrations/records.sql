-- The {{name}} service's records: one per reference.
--
-- `reference` is UNIQUE: it is the idempotency key of CreateRecord and of every consumed event
-- that creates a record, so a retried call or a redelivered event finds the record the first
-- one created instead of making a second.
CREATE TABLE records (
    id         UUID        PRIMARY KEY,
    reference  TEXT        NOT NULL UNIQUE CHECK (length(reference) BETWEEN 1 AND 128),
    created_at TIMESTAMPTZ NOT NULL
);
