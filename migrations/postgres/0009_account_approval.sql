-- Receiving accounts under four eyes: an account is proposed (pending) and offered to parents
-- only once a second person approved it; a change is a new proposal that replaces the old account
-- on approval. States move forward only (pending -> approved | rejected, approved -> retired) and
-- a row is never deleted. Accounts from before this migration were in force: they are approved,
-- by "migration", as of when they were added.

ALTER TABLE school_accounts
    ADD COLUMN state TEXT,
    -- The approved account this one replaces when it is approved (a new name or number).
    ADD COLUMN replaces_account_id BIGINT REFERENCES school_accounts(id),
    ADD COLUMN proposed_by TEXT,
    ADD COLUMN approved_by TEXT,
    ADD COLUMN approved_at TEXT,
    ADD COLUMN rejected_by TEXT,
    ADD COLUMN rejected_at TEXT,
    ADD COLUMN reject_reason TEXT,
    ADD COLUMN retired_by TEXT,
    ADD COLUMN retired_at TEXT,
    ADD COLUMN retire_reason TEXT;

-- Who added each account, from its audit record (one pass over the log).
UPDATE school_accounts a SET state = 'approved', approved_by = 'migration', approved_at = a.created_at,
    proposed_by = COALESCE(p.actor, 'unrecorded')
FROM school_accounts s LEFT JOIN (
    SELECT entity_id, MIN(actor) AS actor FROM audit_log
    WHERE entity = 'school_account' AND action = 'school_account.add' GROUP BY entity_id
) p ON p.entity_id = s.id
WHERE s.id = a.id;

ALTER TABLE school_accounts
    ALTER COLUMN state SET NOT NULL,
    ALTER COLUMN proposed_by SET NOT NULL,
    ADD CONSTRAINT school_accounts_state CHECK (state IN ('pending', 'approved', 'rejected', 'retired')),
    -- Each state carries exactly the decisions that led to it.
    ADD CONSTRAINT school_accounts_state_decisions CHECK (
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
    ADD CONSTRAINT school_accounts_four_eyes CHECK (approved_by IS NULL OR approved_by <> proposed_by),
    -- A change of name keeps the bank and number: one approved and one pending per number.
    DROP CONSTRAINT school_accounts_school_id_bank_bin_account_number_key;

CREATE UNIQUE INDEX school_accounts_one_approved ON school_accounts(school_id, bank_bin, account_number) WHERE state = 'approved';
CREATE UNIQUE INDEX school_accounts_one_pending ON school_accounts(school_id, bank_bin, account_number) WHERE state = 'pending';
CREATE INDEX school_accounts_school ON school_accounts(school_id, id);

CREATE TRIGGER school_accounts_never_deleted BEFORE DELETE ON school_accounts
    FOR EACH ROW EXECUTE FUNCTION feerecon_refuse_change();

-- What was proposed, and every decision once taken, stays; only the state moves, and forward.
CREATE FUNCTION feerecon_school_account_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.school_id <> OLD.school_id OR NEW.bank_bin <> OLD.bank_bin
       OR NEW.account_number <> OLD.account_number OR NEW.account_name <> OLD.account_name
       OR NEW.created_at <> OLD.created_at OR NEW.proposed_by <> OLD.proposed_by
       OR NEW.replaces_account_id IS DISTINCT FROM OLD.replaces_account_id
       OR (OLD.approved_by IS NOT NULL AND (NEW.approved_by IS DISTINCT FROM OLD.approved_by
                                            OR NEW.approved_at IS DISTINCT FROM OLD.approved_at))
       OR NOT ((OLD.state = 'pending' AND NEW.state IN ('approved', 'rejected'))
               OR (OLD.state = 'approved' AND NEW.state = 'retired')) THEN
        RAISE EXCEPTION 'a receiving account is never edited; its state only moves forward';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER school_accounts_forward_only BEFORE UPDATE ON school_accounts
    FOR EACH ROW EXECUTE FUNCTION feerecon_school_account_forward_only();
