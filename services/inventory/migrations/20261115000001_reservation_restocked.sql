-- RESTOCKED: a committed (sold) reservation whose order the customer cancelled after
-- confirmation. Its units went back from `sold` to `available`; `on_hand` did not change, so the
-- conservation law of `stock` still holds.
--
-- Dropping and re-adding the CHECK happens in this migration's transaction, so no row is ever
-- unguarded. Postgres validates the new constraint against the existing rows (all of which use
-- the old, smaller set of statuses).
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('pending', 'reserved', 'rejected', 'released', 'committed', 'expired',
                      'restocked'));
