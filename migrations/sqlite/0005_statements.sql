-- Bank statements of the school's receiving accounts, line by line, each linked to the payment it
-- settles: the third leg of the check between invoices, notifications and the bank.

ALTER TABLE payments ADD COLUMN bank_ref TEXT;
CREATE INDEX payments_bank_ref ON payments(school_id, bank_ref);

CREATE TABLE statements (
    id            INTEGER PRIMARY KEY,
    school_id     BIGINT NOT NULL REFERENCES schools(id),
    account_id    BIGINT NOT NULL REFERENCES school_accounts(id),
    format        TEXT NOT NULL,
    file_sha256   TEXT NOT NULL,
    lines         BIGINT NOT NULL,
    imported_at   TEXT NOT NULL,
    imported_by   TEXT NOT NULL
);
CREATE INDEX statements_account ON statements(account_id, id);

CREATE TABLE statement_lines (
    id            INTEGER PRIMARY KEY,
    statement_id  BIGINT NOT NULL REFERENCES statements(id),
    school_id     BIGINT NOT NULL REFERENCES schools(id),
    account_id    BIGINT NOT NULL REFERENCES school_accounts(id),
    -- The bank's reference, or a digest of the line when the bank gives none: the same line in
    -- a later, overlapping export is recognised and not booked twice.
    line_key      TEXT NOT NULL,
    booked_at     TEXT NOT NULL,
    amount        BIGINT NOT NULL,
    direction     TEXT NOT NULL,
    bank_ref      TEXT,
    memo          TEXT NOT NULL,
    counterparty  TEXT,
    -- The payment this credit settles; NULL for debits.
    payment_id    BIGINT REFERENCES payments(id),
    -- matched_reference | matched_amount | created (the notification never came) | debit
    matched_by    TEXT NOT NULL,
    UNIQUE (account_id, line_key)
);
CREATE INDEX statement_lines_payment ON statement_lines(payment_id);
CREATE TRIGGER statement_lines_no_update BEFORE UPDATE ON statement_lines
BEGIN SELECT RAISE(ABORT, 'statement_lines rows are append-only'); END;
CREATE TRIGGER statement_lines_no_delete BEFORE DELETE ON statement_lines
BEGIN SELECT RAISE(ABORT, 'statement_lines rows are append-only'); END;
