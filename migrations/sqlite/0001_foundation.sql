-- Foundation: departments, schools, students, the fee-item catalog, invoices, tokens, audit log.
-- Times are fixed-width UTC RFC 3339 text (2026-01-02T03:04:05.000006Z): sortable, readable in a
-- dump, and the same on SQLite. Money is BIGINT whole đồng.

CREATE TABLE departments (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE schools (
    id              INTEGER PRIMARY KEY,
    department_id   BIGINT NOT NULL REFERENCES departments(id),
    code            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    payment_prefix  TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL
);
CREATE INDEX schools_department ON schools(department_id, id);

-- Per-school sequences (invoice numbers now, receipt numbers later). Incrementing the row takes
-- its lock, which also serialises the checks that must not race within one school.
CREATE TABLE counters (
    school_id  BIGINT NOT NULL REFERENCES schools(id),
    name       TEXT NOT NULL,
    value      BIGINT NOT NULL,
    PRIMARY KEY (school_id, name)
);

CREATE TABLE students (
    id            INTEGER PRIMARY KEY,
    school_id     BIGINT NOT NULL REFERENCES schools(id),
    student_code  TEXT NOT NULL,
    full_name     TEXT NOT NULL,
    class_name    TEXT NOT NULL,
    family_key    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (school_id, student_code)
);
CREATE INDEX students_school ON students(school_id, id);
CREATE INDEX students_family ON students(school_id, family_key);

CREATE TABLE fee_items (
    id              INTEGER PRIMARY KEY,
    department_id   BIGINT REFERENCES departments(id),
    school_id       BIGINT REFERENCES schools(id),
    code            TEXT NOT NULL,
    name            TEXT NOT NULL,
    category        TEXT NOT NULL,
    legal_basis     TEXT,
    mandatory       INTEGER NOT NULL,
    cadence         TEXT NOT NULL,
    cap_per_period  BIGINT CHECK (cap_per_period IS NULL OR cap_per_period > 0),
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    CHECK ((department_id IS NULL) != (school_id IS NULL))
);
CREATE UNIQUE INDEX fee_items_department_code ON fee_items(department_id, code) WHERE department_id IS NOT NULL;
CREATE UNIQUE INDEX fee_items_school_code ON fee_items(school_id, code) WHERE school_id IS NOT NULL;

CREATE TABLE import_batches (
    id                INTEGER PRIMARY KEY,
    school_id         BIGINT NOT NULL REFERENCES schools(id),
    file_sha256       TEXT NOT NULL,
    rows_read         BIGINT NOT NULL,
    invoices_created  BIGINT NOT NULL,
    invoices_unchanged BIGINT NOT NULL,
    students_written  BIGINT NOT NULL,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL
);

CREATE TABLE invoices (
    id                   INTEGER PRIMARY KEY,
    school_id            BIGINT NOT NULL REFERENCES schools(id),
    student_id           BIGINT NOT NULL REFERENCES students(id),
    payment_code         TEXT NOT NULL UNIQUE,
    external_ref         TEXT,
    period               TEXT NOT NULL,
    due_date             TEXT NOT NULL,
    total                BIGINT NOT NULL CHECK (total >= 0),
    content_digest       TEXT NOT NULL,
    replaces_invoice_id  BIGINT REFERENCES invoices(id),
    import_batch_id      BIGINT REFERENCES import_batches(id),
    issued_at            TEXT NOT NULL,
    issued_by            TEXT NOT NULL,
    voided_at            TEXT,
    voided_by            TEXT,
    void_reason          TEXT,
    UNIQUE (school_id, external_ref)
);
CREATE INDEX invoices_school ON invoices(school_id, id);
CREATE INDEX invoices_student ON invoices(student_id, id);
CREATE INDEX invoices_school_period ON invoices(school_id, period, id);

CREATE TABLE invoice_lines (
    id                   INTEGER PRIMARY KEY,
    invoice_id           BIGINT NOT NULL REFERENCES invoices(id),
    school_id            BIGINT NOT NULL REFERENCES schools(id),
    line_no              BIGINT NOT NULL,
    kind                 TEXT NOT NULL,
    fee_item_id          BIGINT NOT NULL REFERENCES fee_items(id),
    description          TEXT NOT NULL,
    amount               BIGINT NOT NULL,
    cap_per_period       BIGINT,
    above_cap            INTEGER NOT NULL,
    cap_override_reason  TEXT,
    reduction_percent    TEXT,
    policy_group         TEXT,
    evidence_ref         TEXT,
    reduces_line_no      BIGINT,
    UNIQUE (invoice_id, line_no)
);
CREATE INDEX invoice_lines_item ON invoice_lines(fee_item_id);
CREATE INDEX invoice_lines_above_cap ON invoice_lines(school_id) WHERE above_cap = 1;

CREATE TABLE api_tokens (
    id             INTEGER PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    school_id      BIGINT REFERENCES schools(id),
    department_id  BIGINT REFERENCES departments(id),
    label          TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    revoked_at     TEXT
);

-- Hash-chained audit log: one chain per school (so it shards with the school and schools never
-- queue on each other) and one `system` chain for installation-wide changes.
CREATE TABLE audit_chains (
    chain  TEXT PRIMARY KEY,
    seq    BIGINT NOT NULL,
    head   TEXT NOT NULL
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    chain      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    school_id  BIGINT,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  BIGINT,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    UNIQUE (chain, seq)
);

-- What is issued or recorded is never rewritten in place.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log rows are append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log rows are append-only'); END;
CREATE TRIGGER invoice_lines_no_update BEFORE UPDATE ON invoice_lines
BEGIN SELECT RAISE(ABORT, 'invoice_lines rows are append-only'); END;
CREATE TRIGGER invoice_lines_no_delete BEFORE DELETE ON invoice_lines
BEGIN SELECT RAISE(ABORT, 'invoice_lines rows are append-only'); END;
CREATE TRIGGER invoices_only_voids BEFORE UPDATE ON invoices
WHEN OLD.voided_at IS NOT NULL
  OR NEW.total != OLD.total OR NEW.student_id != OLD.student_id OR NEW.period != OLD.period
  OR NEW.payment_code != OLD.payment_code OR NEW.due_date != OLD.due_date
  OR NEW.content_digest != OLD.content_digest
BEGIN SELECT RAISE(ABORT, 'an issued invoice is never edited; void it and reissue'); END;
CREATE TRIGGER invoices_never_deleted BEFORE DELETE ON invoices
BEGIN SELECT RAISE(ABORT, 'invoices rows are append-only'); END;
