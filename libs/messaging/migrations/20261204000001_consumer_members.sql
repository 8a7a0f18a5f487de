-- The replicas consuming each consumer's partitions (libs/messaging/src/membership.rs): every
-- replica upserts its row on each heartbeat, reads the rows still alive, and subscribes to its
-- share of the partitions. A replica that stops deletes its row; one that dies is forgotten once
-- its heartbeat is older than the lease.
CREATE TABLE consumer_members (
    consumer     TEXT        NOT NULL,
    member_id    UUID        NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, member_id)
);
