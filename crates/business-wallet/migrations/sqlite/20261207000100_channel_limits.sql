-- Rate and concurrency limits per channel, kept in the database so that every dispatcher
-- instance sharing it enforces the same limit.
--
-- rate_per_sec, rate_burst: at most rate_per_sec deliveries a second, with up to rate_burst
-- at once (a generic cell rate algorithm: rate_tat_us is the theoretical arrival time of the
-- next delivery, in microseconds of the database clock; a claim takes only what conforms and
-- moves it on, under the channel row's lock).
-- max_in_flight: at most this many deliveries of the channel DELIVERING at once, on all
-- instances together.
-- throttled_until: the receiver asked for a pause (429 or 503 with Retry-After): nothing of
-- the channel is claimed before this time, epoch milliseconds. Cleared by the first claim
-- after it.
-- A channel with any of these set is "limited": its deliveries are never leased at publish
-- and are claimed one channel at a time, found through the partial index below.
ALTER TABLE integration_channel ADD COLUMN rate_per_sec REAL;
ALTER TABLE integration_channel ADD COLUMN rate_burst INTEGER;
ALTER TABLE integration_channel ADD COLUMN max_in_flight INTEGER;
ALTER TABLE integration_channel ADD COLUMN rate_tat_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE integration_channel ADD COLUMN throttled_until BIGINT;
CREATE INDEX integration_channel_limited ON integration_channel (id)
    WHERE rate_per_sec IS NOT NULL OR max_in_flight IS NOT NULL OR throttled_until IS NOT NULL;
