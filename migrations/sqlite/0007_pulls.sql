-- Pulling a watched account's transactions from the watcher's API (SePay, Casso), so a
-- notification that never came does not mean a payment that is never booked.

CREATE TABLE pull_sources (
    provider_account_id  INTEGER PRIMARY KEY REFERENCES provider_accounts(id),
    school_id            BIGINT NOT NULL REFERENCES schools(id),
    -- The school's receiving account whose statement lines the pulled transactions become.
    account_id           BIGINT NOT NULL REFERENCES school_accounts(id),
    -- The API key, sealed like the webhook secrets: base64(nonce || ciphertext).
    sealed_key           TEXT NOT NULL,
    base_url             TEXT NOT NULL,
    interval_seconds     BIGINT NOT NULL,
    enabled              BIGINT NOT NULL,
    -- Where the next run starts: SePay's next transaction id, Casso's day.
    cursor               TEXT,
    -- Due when this is past; a running instance sets it ahead as its lease.
    next_run_at          TEXT NOT NULL,
    last_run_at          TEXT,
    last_success_at      TEXT,
    last_error           TEXT,
    last_result          TEXT,
    failures             BIGINT NOT NULL,
    updated_at           TEXT NOT NULL,
    updated_by           TEXT NOT NULL
);
CREATE INDEX pull_sources_due ON pull_sources(next_run_at);

-- The same transaction seen through the bank's export and through the watcher's API.
CREATE INDEX statement_lines_bank_ref ON statement_lines(account_id, UPPER(bank_ref));

-- Payments allocated from their memo or by hand, recent first: the transfers a repeat is
-- compared with (a repeat of a payment allocated by its code names the same code).
CREATE INDEX allocations_not_by_code ON allocations(school_id, created_at) WHERE method <> 'payment_code';
