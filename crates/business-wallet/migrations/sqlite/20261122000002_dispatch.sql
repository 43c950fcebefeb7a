-- One row per delivery attempt: what was sent (secrets redacted), what came back, how long it
-- took and how it ended. Written by the dispatcher together with the delivery's new state.

CREATE TABLE integration_delivery_attempt (
    id               INTEGER PRIMARY KEY,
    delivery_id      BIGINT NOT NULL REFERENCES integration_delivery (id) ON DELETE CASCADE,
    attempt          BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    outcome          TEXT NOT NULL,
    request          TEXT,
    response_status  BIGINT,
    response_headers TEXT,
    response_body    TEXT,
    error            TEXT
);
CREATE INDEX integration_delivery_attempt_delivery ON integration_delivery_attempt (delivery_id, attempt);
