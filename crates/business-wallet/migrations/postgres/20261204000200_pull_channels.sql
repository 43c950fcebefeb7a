-- Pull channels: where each one's receiver is. A pull channel's deliveries are ordinary rows of
-- integration_delivery (the push dispatcher never claims them); this row only says how far the
-- receiver has fetched and committed, and when, for the channel's page.
--
-- fetched_position / committed_position: the highest delivery id handed out by a fetch and
-- acknowledged by a commit (0: none yet).
CREATE TABLE integration_pull_cursor (
    channel_id         BIGINT PRIMARY KEY REFERENCES integration_channel (id) ON DELETE CASCADE,
    fetched_position   BIGINT NOT NULL DEFAULT 0,
    committed_position BIGINT NOT NULL DEFAULT 0,
    fetches            BIGINT NOT NULL DEFAULT 0,
    commits            BIGINT NOT NULL DEFAULT 0,
    last_fetch_at      BIGINT,
    last_commit_at     BIGINT
);
