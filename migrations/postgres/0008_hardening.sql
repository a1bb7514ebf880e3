-- The database refuses what the service never does, so a mistaken or hostile statement run by
-- hand (or by a compromised service role) cannot quietly erase or rewrite the books.

-- No table is ever emptied: the service deletes no rows at all. A row trigger does not fire on
-- TRUNCATE, so each table gets a statement trigger too (it also fires for tables reached through
-- TRUNCATE … CASCADE). A retention job that later deletes old provider_events rows does so with
-- DELETE and a rule of its own, never TRUNCATE.
CREATE FUNCTION feerecon_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is never truncated', TG_TABLE_NAME;
END $$;

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'departments', 'schools', 'counters', 'students', 'fee_items', 'import_batches',
        'invoices', 'invoice_lines', 'api_tokens', 'audit_chains', 'audit_log',
        'school_accounts', 'fee_schedules', 'payments', 'payment_fees', 'allocations', 'refunds',
        'provider_accounts', 'provider_secrets', 'provider_events', 'exceptions',
        'dismissed_pairs', 'statements', 'statement_lines', 'day_closes', 'pull_sources'
    ] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION feerecon_refuse_truncate()',
            t || '_no_truncate', t);
    END LOOP;
END $$;

-- An audit chain's head and a school's counters (gapless receipt numbers) only move forward:
-- a deleted row would restart its sequence.
CREATE TRIGGER audit_chains_never_deleted BEFORE DELETE ON audit_chains
    FOR EACH ROW EXECUTE FUNCTION feerecon_refuse_change();
CREATE TRIGGER counters_never_deleted BEFORE DELETE ON counters
    FOR EACH ROW EXECUTE FUNCTION feerecon_refuse_change();

-- An issued invoice changes once: it is voided, with who and why, and only when no money is
-- allocated to it (net of reversals, which are negative allocations to the same invoice). The
-- service checks this first and answers 409; this is the last line. A column added to invoices
-- later is added to the list below, or it is mutable.
CREATE OR REPLACE FUNCTION feerecon_invoice_only_voids() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.voided_at IS NOT NULL THEN
        RAISE EXCEPTION 'invoice % is void; a void invoice is never changed or un-voided', OLD.id;
    END IF;
    IF NEW.voided_at IS NULL OR NEW.voided_by IS NULL OR NEW.void_reason IS NULL OR NEW.void_reason = ''
       OR NEW.id IS DISTINCT FROM OLD.id
       OR NEW.school_id IS DISTINCT FROM OLD.school_id
       OR NEW.student_id IS DISTINCT FROM OLD.student_id
       OR NEW.payment_code IS DISTINCT FROM OLD.payment_code
       OR NEW.external_ref IS DISTINCT FROM OLD.external_ref
       OR NEW.period IS DISTINCT FROM OLD.period
       OR NEW.due_date IS DISTINCT FROM OLD.due_date
       OR NEW.total IS DISTINCT FROM OLD.total
       OR NEW.content_digest IS DISTINCT FROM OLD.content_digest
       OR NEW.replaces_invoice_id IS DISTINCT FROM OLD.replaces_invoice_id
       OR NEW.import_batch_id IS DISTINCT FROM OLD.import_batch_id
       OR NEW.issued_at IS DISTINCT FROM OLD.issued_at
       OR NEW.issued_by IS DISTINCT FROM OLD.issued_by THEN
        RAISE EXCEPTION 'an issued invoice is never edited; void it (with who and why) and reissue';
    END IF;
    IF (SELECT COALESCE(SUM(amount), 0) FROM allocations WHERE invoice_id = OLD.id) > 0 THEN
        RAISE EXCEPTION 'invoice % has money allocated; move it before voiding', OLD.id;
    END IF;
    RETURN NEW;
END $$;

-- The token given in FEERECON_ADMIN_TOKEN: registered at start, not revocable through the API
-- (it is removed by removing the variable).
ALTER TABLE api_tokens ADD COLUMN configured BOOLEAN NOT NULL DEFAULT FALSE;
