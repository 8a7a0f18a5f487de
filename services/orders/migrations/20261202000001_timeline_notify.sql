-- Every timeline entry announces itself when its transaction commits: NOTIFY on the channel
-- `order_timeline` with the payload `<order id>:<entry id>`. Orders' `WatchOrder` streams
-- (services/orders/src/service/watch.rs) listen on one connection per process and read the new
-- entries when woken, instead of polling the table. A trigger, rather than a `pg_notify` beside
-- each INSERT, so that no code path that records a step can forget to announce it.
--
-- The entry id is the step's sequence. Ids are taken from one identity, so they increase in the
-- order the INSERTs ran, not necessarily the order their transactions committed; a watcher that
-- resumes "after the last id it saw" would skip an entry that got a smaller id but committed
-- later. `add_timeline` (services/orders/src/store/orders.rs) therefore locks the order's row
-- before inserting, so the entries of one order are numbered in the order they commit.
CREATE FUNCTION order_timeline_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('order_timeline', NEW.order_id::text || ':' || NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER order_timeline_notify
    AFTER INSERT ON order_timeline
    FOR EACH ROW EXECUTE FUNCTION order_timeline_notify();
