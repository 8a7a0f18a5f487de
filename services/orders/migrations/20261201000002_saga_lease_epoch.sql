-- The fencing token of saga claims (services/orders/src/store/sagas.rs, `Lease`): every claim
-- increments it, and every write a runner makes while driving the saga requires the epoch of
-- its own claim. A drive that outlived its lease (a step that hung, a process that was frozen)
-- cannot overwrite the progress of the claim that replaced it, even when the same runner made
-- both claims.
ALTER TABLE sagas ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
