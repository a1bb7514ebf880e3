-- Reconciliation: the review queue of payments the engine could not allocate on its own, and the
-- invoice suggestions an accountant dismissed (never suggested again for that payment).

CREATE TABLE exceptions (
    id           INTEGER PRIMARY KEY,
    school_id    BIGINT NOT NULL REFERENCES schools(id),
    payment_id   BIGINT NOT NULL REFERENCES payments(id),
    -- unmatched | ambiguous | wrong_check_character | amount_mismatch | …
    kind         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    -- JSON: ranked suggestions with the evidence behind each, in words.
    suggestions  TEXT NOT NULL,
    -- open | matched | dismissed
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    resolved_at  TEXT,
    resolved_by  TEXT,
    resolution   TEXT
);
CREATE INDEX exceptions_school_status ON exceptions(school_id, status, id);
CREATE UNIQUE INDEX exceptions_one_open ON exceptions(payment_id) WHERE status = 'open';

CREATE TABLE dismissed_pairs (
    payment_id    BIGINT NOT NULL REFERENCES payments(id),
    invoice_id    BIGINT NOT NULL REFERENCES invoices(id),
    school_id     BIGINT NOT NULL REFERENCES schools(id),
    reason        TEXT NOT NULL,
    dismissed_at  TEXT NOT NULL,
    dismissed_by  TEXT NOT NULL,
    PRIMARY KEY (payment_id, invoice_id)
);
