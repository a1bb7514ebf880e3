-- Receiving accounts under four eyes: an account is proposed (pending) and offered to parents
-- only once a second person approved it; a change is a new proposal that replaces the old account
-- on approval. States move forward only (pending -> approved | rejected, approved -> retired) and
-- a row is never deleted. Accounts from before this migration were in force: they are approved,
-- by "migration", as of when they were added.
--
-- A change of name keeps the bank and number, so the UNIQUE (school_id, bank_bin, account_number)
-- of 0002 must give way to "one approved and one pending per number". SQLite cannot drop a table
-- constraint, so the table is rebuilt, inside the migration's transaction: with foreign keys
-- deferred, the old table is dropped (its children's references dangle for a moment), the new one
-- takes its name, and the rows go in last, which settles every reference before commit.

-- Rebuilding drops the table's own triggers and indexes: refuse to run over any not known here
-- rather than lose them without a word.
CREATE TEMP TABLE school_accounts_rebuild_guard (
    unknown INTEGER CONSTRAINT school_accounts_has_triggers_or_indexes_a_rebuild_would_drop CHECK (unknown = 0)
);
INSERT INTO school_accounts_rebuild_guard
    SELECT COUNT(*) FROM sqlite_master
    WHERE tbl_name = 'school_accounts' AND type IN ('trigger', 'index') AND name NOT LIKE 'sqlite_autoindex_%';
DROP TABLE school_accounts_rebuild_guard;

PRAGMA defer_foreign_keys = ON;

-- Who added each account, from its audit record.
CREATE TEMP TABLE school_accounts_proposers AS
    SELECT entity_id AS account_id, MIN(actor) AS actor FROM audit_log
    WHERE entity = 'school_account' AND action = 'school_account.add' GROUP BY entity_id;
CREATE TEMP TABLE school_accounts_before AS SELECT * FROM school_accounts;

CREATE TABLE school_accounts_new (
    -- The columns of 0002, in their order (the copy below relies on it).
    id                   INTEGER PRIMARY KEY,
    school_id            BIGINT NOT NULL REFERENCES schools(id),
    bank_bin             TEXT NOT NULL,
    account_number       TEXT NOT NULL,
    account_name         TEXT NOT NULL,
    -- When it was proposed.
    created_at           TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'retired')),
    -- The approved account this one replaces when it is approved (a new name or number).
    replaces_account_id  BIGINT REFERENCES school_accounts(id),
    proposed_by          TEXT NOT NULL,
    approved_by          TEXT,
    approved_at          TEXT,
    rejected_by          TEXT,
    rejected_at          TEXT,
    reject_reason        TEXT,
    retired_by           TEXT,
    retired_at           TEXT,
    retire_reason        TEXT,
    -- Each state carries exactly the decisions that led to it.
    CONSTRAINT school_accounts_state_decisions CHECK (
        (state = 'pending' AND approved_by IS NULL AND approved_at IS NULL AND rejected_by IS NULL
            AND rejected_at IS NULL AND reject_reason IS NULL AND retired_by IS NULL AND retired_at IS NULL AND retire_reason IS NULL)
        OR (state = 'approved' AND approved_by IS NOT NULL AND approved_at IS NOT NULL AND rejected_by IS NULL
            AND rejected_at IS NULL AND reject_reason IS NULL AND retired_by IS NULL AND retired_at IS NULL AND retire_reason IS NULL)
        OR (state = 'rejected' AND approved_by IS NULL AND approved_at IS NULL AND rejected_by IS NOT NULL
            AND rejected_at IS NOT NULL AND reject_reason IS NOT NULL AND retired_by IS NULL AND retired_at IS NULL AND retire_reason IS NULL)
        OR (state = 'retired' AND approved_by IS NOT NULL AND approved_at IS NOT NULL AND rejected_by IS NULL
            AND rejected_at IS NULL AND reject_reason IS NULL AND retired_by IS NOT NULL AND retired_at IS NOT NULL AND retire_reason IS NOT NULL)
    ),
    -- The second person is never the first.
    CONSTRAINT school_accounts_four_eyes CHECK (approved_by IS NULL OR approved_by <> proposed_by)
);

DROP TABLE school_accounts;
ALTER TABLE school_accounts_new RENAME TO school_accounts;

-- `b.*` and no column list: should another migration have added a column, this fails instead of
-- dropping it.
INSERT INTO school_accounts
    SELECT b.*, 'approved', NULL, COALESCE(p.actor, 'unrecorded'), 'migration', b.created_at,
        NULL, NULL, NULL, NULL, NULL, NULL
    FROM school_accounts_before b LEFT JOIN school_accounts_proposers p ON p.account_id = b.id;
DROP TABLE school_accounts_before;
DROP TABLE school_accounts_proposers;

CREATE UNIQUE INDEX school_accounts_one_approved ON school_accounts(school_id, bank_bin, account_number) WHERE state = 'approved';
CREATE UNIQUE INDEX school_accounts_one_pending ON school_accounts(school_id, bank_bin, account_number) WHERE state = 'pending';
CREATE INDEX school_accounts_school ON school_accounts(school_id, id);

CREATE TRIGGER school_accounts_never_deleted BEFORE DELETE ON school_accounts
BEGIN SELECT RAISE(ABORT, 'school_accounts rows are never deleted; retire the account'); END;
-- What was proposed, and every decision once taken, stays; only the state moves, and forward.
CREATE TRIGGER school_accounts_forward_only BEFORE UPDATE ON school_accounts
WHEN NEW.id IS NOT OLD.id OR NEW.school_id IS NOT OLD.school_id OR NEW.bank_bin IS NOT OLD.bank_bin
  OR NEW.account_number IS NOT OLD.account_number OR NEW.account_name IS NOT OLD.account_name
  OR NEW.created_at IS NOT OLD.created_at OR NEW.proposed_by IS NOT OLD.proposed_by
  OR NEW.replaces_account_id IS NOT OLD.replaces_account_id
  OR (OLD.approved_by IS NOT NULL AND (NEW.approved_by IS NOT OLD.approved_by OR NEW.approved_at IS NOT OLD.approved_at))
  OR NOT ((OLD.state = 'pending' AND NEW.state IN ('approved', 'rejected'))
          OR (OLD.state = 'approved' AND NEW.state = 'retired'))
BEGIN SELECT RAISE(ABORT, 'a receiving account is never edited; its state only moves forward'); END;
