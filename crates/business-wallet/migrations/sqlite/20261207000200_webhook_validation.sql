-- The CloudEvents webhook validation handshake (abuse protection), for webhook channels with
-- webhook.validationHandshake.
--
-- validation_state: NULL when the channel does not require the handshake; 'UNVERIFIED' until
-- its receiver has answered it (the channel's deliveries wait: they are never leased at
-- publish nor claimed); 'VERIFIED' once it has.
-- validation_checked_at: when the handshake was last tried, epoch milliseconds (NULL: not yet).
-- validation_error: why the last try did not verify the receiver (NULL once it did).
-- allowed_rate_per_sec: the rate the receiver allowed (WebHook-Allowed-Rate, per minute, / 60):
-- a delivery rate limit of the channel beside its own rate_per_sec (the smaller one holds).
-- NULL: the receiver allowed any rate.
ALTER TABLE integration_channel ADD COLUMN validation_state TEXT;
ALTER TABLE integration_channel ADD COLUMN validation_checked_at BIGINT;
ALTER TABLE integration_channel ADD COLUMN validation_error TEXT;
ALTER TABLE integration_channel ADD COLUMN allowed_rate_per_sec REAL;
-- A channel with an allowed rate is "limited" too.
DROP INDEX integration_channel_limited;
CREATE INDEX integration_channel_limited ON integration_channel (id)
    WHERE rate_per_sec IS NOT NULL OR max_in_flight IS NOT NULL OR throttled_until IS NOT NULL
       OR allowed_rate_per_sec IS NOT NULL;
-- The heartbeat rounds look for the channels still to verify.
CREATE INDEX integration_channel_unverified ON integration_channel (id)
    WHERE validation_state = 'UNVERIFIED';
