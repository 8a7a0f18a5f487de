-- The trace context of the PlaceOrder call that started each saga (W3C `traceparent` and
-- `tracestate`). The runner drives the saga later, in another task or another replica; it makes
-- this context the parent of its spans, so the participants' calls and the events the saga emits
-- stay in the customer's trace. Empty for sagas started before this column existed.
ALTER TABLE sagas
    ADD COLUMN traceparent TEXT NOT NULL DEFAULT '',
    ADD COLUMN tracestate  TEXT NOT NULL DEFAULT '';
