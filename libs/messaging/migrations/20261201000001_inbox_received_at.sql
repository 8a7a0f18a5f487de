-- The inbox pruner deletes rows older than the retention window (libs/messaging/src/inbox.rs);
-- this index lets it find them without reading the whole table.
CREATE INDEX inbox_received_at ON inbox (received_at);
