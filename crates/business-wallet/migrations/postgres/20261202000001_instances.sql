-- Dispatcher instances and who holds each lease.
--
-- Every running dispatcher keeps a row here with the last time it said it was alive, and each
-- DELIVERING delivery names the instance that claimed it. When an instance stops saying so,
-- any other one gives its deliveries back at once, instead of waiting for their leases to end.

CREATE TABLE integration_dispatcher (
    instance_id  TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

ALTER TABLE integration_delivery ADD COLUMN lease_owner TEXT;

-- Claims read PENDING rows only; leased rows are found by their owner. A lease's end time no
-- longer puts an entry into the index that every claim walks.
DROP INDEX integration_delivery_due;
CREATE INDEX integration_delivery_due ON integration_delivery (due_at) WHERE state = 'PENDING';
CREATE INDEX integration_delivery_leased ON integration_delivery (lease_owner, due_at) WHERE state = 'DELIVERING';
