-- The failure ladder: whether a channel's deliveries go out (ACTIVE), go out while the channel
-- keeps failing (FAILING), or wait untouched until an operator resumes it (PAUSED), and since
-- when (epoch milliseconds; NULL: ACTIVE since the channel was created). Dispatchers leave the
-- deliveries of a PAUSED channel unclaimed (`store::deliveries::claim`) and the outbox does not
-- lease them (`store::events`); `store::ladder` moves channels along the ladder.
ALTER TABLE integration_channel ADD COLUMN delivery_state TEXT NOT NULL DEFAULT 'ACTIVE';
ALTER TABLE integration_channel ADD COLUMN delivery_state_since BIGINT;
