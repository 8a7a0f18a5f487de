-- Accounts. The email is stored normalised (trimmed, lower-case), so the UNIQUE constraint is
-- what enforces "one account per address", even under concurrent registrations.
CREATE TABLE users (
    id            UUID        PRIMARY KEY,
    email         TEXT        NOT NULL UNIQUE,
    display_name  TEXT        NOT NULL,
    -- Argon2id PHC string; never leaves this service.
    password_hash TEXT        NOT NULL,
    role          TEXT        NOT NULL CHECK (role IN ('customer', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
