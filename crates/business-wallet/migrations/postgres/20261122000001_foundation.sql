-- Wallets, identifiers, the integration outbox (events and deliveries), channels and history.
-- Timestamps are milliseconds since the Unix epoch (BIGINT) on both backends.

CREATE TABLE wallet (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wallet_external_key TEXT NOT NULL UNIQUE,
    display_name        TEXT NOT NULL,
    email               TEXT,
    website             TEXT,
    phone_number        TEXT,
    address             TEXT,
    created_at          BIGINT NOT NULL,
    created_by          TEXT NOT NULL
);

CREATE TABLE identifier (
    id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    identifier_external_key TEXT NOT NULL UNIQUE,
    wallet_id               BIGINT NOT NULL REFERENCES wallet (id),
    identifier_type         TEXT NOT NULL,
    identifier              TEXT NOT NULL,
    display_name            TEXT NOT NULL,
    did_type                TEXT,
    did_environment         TEXT,
    key_type                TEXT,
    public_jwk              TEXT,
    certificate_pem         TEXT,
    private_key             BYTEA,
    created_at              BIGINT NOT NULL,
    created_by              TEXT NOT NULL
);
CREATE INDEX identifier_wallet ON identifier (wallet_id, id);

CREATE TABLE integration_channel (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_external_key TEXT NOT NULL UNIQUE,
    wallet_external_key  TEXT,
    name                 TEXT NOT NULL,
    description          TEXT,
    channel_type         TEXT NOT NULL,
    enabled              BOOLEAN NOT NULL,
    config               TEXT NOT NULL,
    secrets              BYTEA,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    created_by           TEXT NOT NULL,
    updated_by           TEXT NOT NULL
);
CREATE UNIQUE INDEX integration_channel_name ON integration_channel ((COALESCE(wallet_external_key, '')), name);

CREATE TABLE integration_channel_subscription (
    channel_id BIGINT NOT NULL REFERENCES integration_channel (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    PRIMARY KEY (channel_id, event_type)
);
CREATE INDEX integration_channel_subscription_type ON integration_channel_subscription (event_type);

CREATE TABLE integration_event (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id            TEXT NOT NULL UNIQUE,
    event_type          TEXT NOT NULL,
    source              TEXT NOT NULL,
    subject             TEXT NOT NULL,
    wallet_external_key TEXT NOT NULL,
    time                BIGINT NOT NULL,
    dataschema          TEXT NOT NULL,
    correlation_id      TEXT NOT NULL,
    data                TEXT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX integration_event_wallet ON integration_event (wallet_external_key, id);

CREATE TABLE integration_delivery (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_external_key TEXT NOT NULL UNIQUE,
    event_id              BIGINT NOT NULL REFERENCES integration_event (id),
    channel_id            BIGINT NOT NULL REFERENCES integration_channel (id) ON DELETE CASCADE,
    wallet_external_key   TEXT,
    state                 TEXT NOT NULL,
    attempts              BIGINT NOT NULL DEFAULT 0,
    max_attempts          BIGINT NOT NULL,
    due_at                BIGINT NOT NULL,
    lease_token           TEXT,
    last_status           BIGINT,
    last_error            TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    delivered_at          BIGINT
);
-- The hot index: only rows a dispatcher may claim (due, or an expired lease).
CREATE INDEX integration_delivery_due ON integration_delivery (due_at) WHERE state IN ('PENDING', 'DELIVERING');
CREATE INDEX integration_delivery_channel ON integration_delivery (channel_id, state);
CREATE INDEX integration_delivery_wallet ON integration_delivery (wallet_external_key, id);
CREATE INDEX integration_delivery_event ON integration_delivery (event_id);

CREATE TABLE history (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wallet_external_key TEXT,
    event               TEXT NOT NULL,
    action              TEXT NOT NULL,
    actor               TEXT NOT NULL,
    details             TEXT,
    created_at          BIGINT NOT NULL
);
CREATE INDEX history_wallet ON history (wallet_external_key, event, id);
