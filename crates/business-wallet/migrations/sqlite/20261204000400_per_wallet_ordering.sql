-- Per-wallet ordering, opt-in per channel, and the CloudEvents `sequence` extension.
--
-- integration_channel.ordering: BEST_EFFORT (the default: deliveries go out as they come) or
-- PER_WALLET (a channel's deliveries of one wallet go out one at a time, in event order).
-- integration_delivery.ordering_key: for a delivery of a PER_WALLET channel, the wallet of its
-- event (NULL otherwise); the claim takes such a delivery only when no earlier delivery of the
-- same channel and key is PENDING, DELIVERING or FAILED, looked up in the partial index below.
-- wallet.event_sequence: the last `sequence` given to an event of the wallet; each event takes
-- the next one in its own transaction, so a wallet's events are numbered without gaps
-- (integration_event.sequence; NULL on events stored before this migration).
ALTER TABLE integration_channel ADD COLUMN ordering TEXT NOT NULL DEFAULT 'BEST_EFFORT';
ALTER TABLE integration_delivery ADD COLUMN ordering_key TEXT;
ALTER TABLE integration_event ADD COLUMN sequence BIGINT;
ALTER TABLE wallet ADD COLUMN event_sequence BIGINT NOT NULL DEFAULT 0;
CREATE INDEX integration_delivery_ordered ON integration_delivery (channel_id, ordering_key, id)
    WHERE ordering_key IS NOT NULL AND state IN ('PENDING', 'DELIVERING', 'FAILED');
