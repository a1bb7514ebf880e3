-- An audit trail that proves itself: each record carries a MAC under a key that is not in the
-- database, and the service keeps the checkpoints it signed (each chain's size and head, in
-- C2SP signed-note form) so that a verifier can compare the chain with them. Records written
-- before this migration carry no MAC; verification says so and checks their hashes only.

ALTER TABLE audit_log ADD COLUMN mac TEXT;

CREATE TABLE audit_checkpoints (
    id         INTEGER PRIMARY KEY,
    chain      TEXT NOT NULL,
    size       BIGINT NOT NULL CHECK (size > 0),
    head       TEXT NOT NULL,
    -- The signed note, exactly as signed: what auditors download and keep.
    note       TEXT NOT NULL,
    signed_at  TEXT NOT NULL,
    UNIQUE (chain, size)
);
CREATE INDEX audit_checkpoints_chain ON audit_checkpoints(chain, size);

-- SQLite has no TRUNCATE: `DELETE FROM t` runs these row triggers.
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints rows are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints rows are append-only'); END;

-- Verification reads a statement's lines together (they are one unit of its coverage).
CREATE INDEX statement_lines_statement ON statement_lines(statement_id);
