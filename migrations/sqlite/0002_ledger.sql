-- The payment ledger: every channel (cash included) in one set of tables, itemised fees,
-- allocations to invoices, refunds of credit, fee schedules, and the settings the transparency
-- reports judge against. Every money row is append-only: a correction is a new row.

ALTER TABLE departments ADD COLUMN parents_must_not_bear_fees INTEGER NOT NULL DEFAULT 0;
ALTER TABLE schools ADD COLUMN accepts_cash INTEGER NOT NULL DEFAULT 1;
-- A voluntary item may not be billed as mandatory; the line says how it was billed.
ALTER TABLE invoice_lines ADD COLUMN billed_as_mandatory INTEGER NOT NULL DEFAULT 0;

-- The school's own receiving accounts (a plain transfer to one is free for the parent).
CREATE TABLE school_accounts (
    id              INTEGER PRIMARY KEY,
    school_id       BIGINT NOT NULL REFERENCES schools(id),
    bank_bin        TEXT NOT NULL,
    account_number  TEXT NOT NULL,
    account_name    TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (school_id, bank_bin, account_number)
);

-- A provider's published terms (school_id NULL) or a school's own agreement with it (school_id
-- set; NULL terms inherit the published ones). effective_to is exclusive; NULL means open-ended.
CREATE TABLE fee_schedules (
    id              INTEGER PRIMARY KEY,
    provider        TEXT NOT NULL,
    channel         TEXT NOT NULL,
    school_id       BIGINT REFERENCES schools(id),
    effective_from  TEXT NOT NULL,
    effective_to    TEXT,
    percent         TEXT,
    fixed_fee       BIGINT,
    min_fee         BIGINT,
    max_fee         BIGINT,
    bearer          TEXT,
    note            TEXT,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE INDEX fee_schedules_lookup ON fee_schedules(provider, channel, school_id, effective_from);

CREATE TABLE payments (
    id                   INTEGER PRIMARY KEY,
    school_id            BIGINT NOT NULL REFERENCES schools(id),
    channel              TEXT NOT NULL,
    provider             TEXT NOT NULL,
    provider_ref         TEXT,
    payer_name           TEXT,
    memo                 TEXT,
    amount               BIGINT NOT NULL CHECK (amount != 0),
    received_at          TEXT NOT NULL,
    recorded_at          TEXT NOT NULL,
    recorded_by          TEXT NOT NULL,
    receipt_no           TEXT NOT NULL UNIQUE,
    receipt_year         BIGINT NOT NULL,
    receipt_seq          BIGINT NOT NULL,
    reverses_payment_id  BIGINT UNIQUE REFERENCES payments(id),
    reversal_reason      TEXT,
    UNIQUE (provider, provider_ref),
    UNIQUE (school_id, receipt_year, receipt_seq)
);
CREATE INDEX payments_school_received ON payments(school_id, received_at);

CREATE TABLE payment_fees (
    id                INTEGER PRIMARY KEY,
    payment_id        BIGINT NOT NULL REFERENCES payments(id),
    school_id         BIGINT NOT NULL REFERENCES schools(id),
    charged_by        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    basis             TEXT NOT NULL,
    amount            BIGINT NOT NULL,
    borne_by          TEXT NOT NULL,
    predicted_amount  BIGINT,
    reported_amount   BIGINT,
    schedule_id       BIGINT REFERENCES fee_schedules(id),
    needs_review      INTEGER NOT NULL
);
CREATE INDEX payment_fees_payment ON payment_fees(payment_id);

CREATE TABLE allocations (
    id                      INTEGER PRIMARY KEY,
    school_id               BIGINT NOT NULL REFERENCES schools(id),
    payment_id              BIGINT NOT NULL REFERENCES payments(id),
    invoice_id              BIGINT NOT NULL REFERENCES invoices(id),
    amount                  BIGINT NOT NULL CHECK (amount != 0),
    method                  TEXT NOT NULL,
    created_at              TEXT NOT NULL,
    created_by              TEXT NOT NULL
);
CREATE INDEX allocations_payment ON allocations(payment_id);
CREATE INDEX allocations_invoice ON allocations(invoice_id);

CREATE TABLE refunds (
    id          INTEGER PRIMARY KEY,
    school_id   BIGINT NOT NULL REFERENCES schools(id),
    payment_id  BIGINT NOT NULL REFERENCES payments(id),
    amount      BIGINT NOT NULL CHECK (amount > 0),
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX refunds_payment ON refunds(payment_id);

CREATE TRIGGER payments_no_update BEFORE UPDATE ON payments
BEGIN SELECT RAISE(ABORT, 'payments rows are append-only'); END;
CREATE TRIGGER payments_no_delete BEFORE DELETE ON payments
BEGIN SELECT RAISE(ABORT, 'payments rows are append-only'); END;
CREATE TRIGGER payment_fees_no_update BEFORE UPDATE ON payment_fees
BEGIN SELECT RAISE(ABORT, 'payment_fees rows are append-only'); END;
CREATE TRIGGER payment_fees_no_delete BEFORE DELETE ON payment_fees
BEGIN SELECT RAISE(ABORT, 'payment_fees rows are append-only'); END;
CREATE TRIGGER allocations_no_update BEFORE UPDATE ON allocations
BEGIN SELECT RAISE(ABORT, 'allocations rows are append-only'); END;
CREATE TRIGGER allocations_no_delete BEFORE DELETE ON allocations
BEGIN SELECT RAISE(ABORT, 'allocations rows are append-only'); END;
CREATE TRIGGER refunds_no_update BEFORE UPDATE ON refunds
BEGIN SELECT RAISE(ABORT, 'refunds rows are append-only'); END;
CREATE TRIGGER refunds_no_delete BEFORE DELETE ON refunds
BEGIN SELECT RAISE(ABORT, 'refunds rows are append-only'); END;
