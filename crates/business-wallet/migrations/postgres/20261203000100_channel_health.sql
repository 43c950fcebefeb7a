-- Channel health and the deliveries chart: a rollup of attempt outcomes, kept by the dispatcher
-- in the statements that record each outcome (`store::health`), so that the Channels list, a
-- channel's page and the Deliveries page read a few hundred small rows instead of the
-- deliveries log, however large that grows.
--
-- integration_channel_activity: per channel and five-minute interval (`bucket`, its start in
-- epoch milliseconds), how many attempts ended delivered, to be retried, or failed. The
-- retention job removes intervals older than two days.
CREATE TABLE integration_channel_activity (
    channel_id BIGINT NOT NULL REFERENCES integration_channel (id) ON DELETE CASCADE,
    bucket     BIGINT NOT NULL,
    delivered  BIGINT NOT NULL DEFAULT 0,
    retrying   BIGINT NOT NULL DEFAULT 0,
    failed     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, bucket)
);

-- integration_channel_health: per channel, the last successful and the last failed attempt
-- (with its error), and how many attempts in a row have failed since the last success.
CREATE TABLE integration_channel_health (
    channel_id           BIGINT PRIMARY KEY REFERENCES integration_channel (id) ON DELETE CASCADE,
    last_success_at      BIGINT,
    last_failure_at      BIGINT,
    last_error           TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0
);

-- Filled from the attempts already stored: the intervals of the last day, and each channel's
-- last success and failure. An attempt that did not deliver counts as failed when it was
-- rejected or the last one allowed, and as to be retried otherwise (the retry policy's rule).
INSERT INTO integration_channel_activity (channel_id, bucket, delivered, retrying, failed)
SELECT d.channel_id, a.started_at - a.started_at % 300000,
       SUM(CASE WHEN a.outcome = 'DELIVERED' THEN 1 ELSE 0 END),
       SUM(CASE WHEN a.outcome = 'RETRYABLE' AND a.attempt < d.max_attempts THEN 1 ELSE 0 END),
       SUM(CASE WHEN a.outcome = 'REJECTED' OR (a.outcome = 'RETRYABLE' AND a.attempt >= d.max_attempts) THEN 1 ELSE 0 END)
FROM integration_delivery_attempt a JOIN integration_delivery d ON d.id = a.delivery_id
WHERE a.started_at >= (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT - 86400000
GROUP BY d.channel_id, a.started_at - a.started_at % 300000;

INSERT INTO integration_channel_health (channel_id, last_success_at, last_failure_at, last_error, consecutive_failures)
SELECT s.channel_id, s.last_success_at, s.last_failure_at,
       (SELECT a.error FROM integration_delivery_attempt a JOIN integration_delivery d ON d.id = a.delivery_id
        WHERE d.channel_id = s.channel_id AND a.outcome <> 'DELIVERED' ORDER BY a.started_at DESC, a.id DESC LIMIT 1),
       (SELECT COUNT(*) FROM integration_delivery_attempt a JOIN integration_delivery d ON d.id = a.delivery_id
        WHERE d.channel_id = s.channel_id AND a.outcome <> 'DELIVERED' AND a.started_at > COALESCE(s.last_success_at, -1))
FROM (SELECT d.channel_id,
             MAX(CASE WHEN a.outcome = 'DELIVERED' THEN a.started_at END) AS last_success_at,
             MAX(CASE WHEN a.outcome <> 'DELIVERED' THEN a.started_at END) AS last_failure_at
      FROM integration_delivery_attempt a JOIN integration_delivery d ON d.id = a.delivery_id
      GROUP BY d.channel_id) s;
