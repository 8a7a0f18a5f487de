-- The highest fencing token each participant has seen per key (an order id): a call carrying a
-- lower one comes from a saga runner that has been superseded and is refused
-- (platform::fencing).
CREATE TABLE fencing_tokens (
    key        uuid        PRIMARY KEY,
    token      bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
