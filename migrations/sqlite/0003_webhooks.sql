-- Payment notifications: the accounts senders notify for, their secrets (encrypted with a key
-- that is not in the database), and the archive of every delivery, accepted or not.

CREATE TABLE provider_accounts (
    id          INTEGER PRIMARY KEY,
    school_id   BIGINT NOT NULL REFERENCES schools(id),
    provider    TEXT NOT NULL,
    -- The merchant, terminal, app or bank account id the sender puts in its notifications.
    account     TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    UNIQUE (provider, account)
);

CREATE TABLE provider_secrets (
    id                   INTEGER PRIMARY KEY,
    provider_account_id  BIGINT NOT NULL REFERENCES provider_accounts(id),
    -- base64(nonce || ChaCha20-Poly1305 ciphertext) under the service's secret key.
    sealed               TEXT NOT NULL,
    access_key           TEXT,
    created_at           TEXT NOT NULL,
    created_by           TEXT NOT NULL,
    retired_at           TEXT
);
CREATE INDEX provider_secrets_account ON provider_secrets(provider_account_id);

CREATE TABLE provider_events (
    id                   INTEGER PRIMARY KEY,
    provider             TEXT NOT NULL,
    provider_account_id  BIGINT,
    school_id            BIGINT,
    received_at          TEXT NOT NULL,
    method               TEXT NOT NULL,
    query                TEXT NOT NULL,
    headers              TEXT NOT NULL,
    body                 BLOB NOT NULL,
    body_size            BIGINT NOT NULL,
    verified             INTEGER NOT NULL,
    txn_id               TEXT,
    outcome              TEXT NOT NULL,
    detail               TEXT,
    payment_id           BIGINT REFERENCES payments(id),
    ack_status           BIGINT NOT NULL
);
CREATE INDEX provider_events_account ON provider_events(provider_account_id, id);
CREATE INDEX provider_events_txn ON provider_events(provider, txn_id);

CREATE TRIGGER provider_events_no_update BEFORE UPDATE ON provider_events
BEGIN SELECT RAISE(ABORT, 'provider_events rows are append-only'); END;
CREATE TRIGGER provider_events_no_delete BEFORE DELETE ON provider_events
BEGIN SELECT RAISE(ABORT, 'provider_events rows are append-only'); END;
