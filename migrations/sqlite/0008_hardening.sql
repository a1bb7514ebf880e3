-- The database refuses what the service never does, so a mistaken or hostile statement run by
-- hand cannot quietly erase or rewrite the books. SQLite has no TRUNCATE: `DELETE FROM t` runs
-- the row triggers (a table with triggers is never emptied by the truncate optimisation), so
-- the append-only tables' *_no_delete triggers already refuse it.

-- An audit chain's head and a school's counters (gapless receipt numbers) only move forward:
-- a deleted row would restart its sequence.
CREATE TRIGGER audit_chains_never_deleted BEFORE DELETE ON audit_chains
BEGIN SELECT RAISE(ABORT, 'audit_chains rows are append-only'); END;
CREATE TRIGGER counters_never_deleted BEFORE DELETE ON counters
BEGIN SELECT RAISE(ABORT, 'counters rows are append-only'); END;

-- An issued invoice changes once: it is voided, with who and why, and only when no money is
-- allocated to it (net of reversals, which are negative allocations to the same invoice). The
-- service checks this first and answers 409; this is the last line. A column added to invoices
-- later is added to the list below, or it is mutable.
DROP TRIGGER invoices_only_voids;
CREATE TRIGGER invoices_void_is_final BEFORE UPDATE ON invoices
WHEN OLD.voided_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a void invoice is never changed or un-voided'); END;
CREATE TRIGGER invoices_only_voids BEFORE UPDATE ON invoices
WHEN NEW.voided_at IS NULL OR NEW.voided_by IS NULL OR NEW.void_reason IS NULL OR NEW.void_reason = ''
  OR NEW.id IS NOT OLD.id
  OR NEW.school_id IS NOT OLD.school_id
  OR NEW.student_id IS NOT OLD.student_id
  OR NEW.payment_code IS NOT OLD.payment_code
  OR NEW.external_ref IS NOT OLD.external_ref
  OR NEW.period IS NOT OLD.period
  OR NEW.due_date IS NOT OLD.due_date
  OR NEW.total IS NOT OLD.total
  OR NEW.content_digest IS NOT OLD.content_digest
  OR NEW.replaces_invoice_id IS NOT OLD.replaces_invoice_id
  OR NEW.import_batch_id IS NOT OLD.import_batch_id
  OR NEW.issued_at IS NOT OLD.issued_at
  OR NEW.issued_by IS NOT OLD.issued_by
BEGIN SELECT RAISE(ABORT, 'an issued invoice is never edited; void it (with who and why) and reissue'); END;
CREATE TRIGGER invoices_void_unpaid BEFORE UPDATE ON invoices
WHEN (SELECT COALESCE(SUM(amount), 0) FROM allocations WHERE invoice_id = OLD.id) > 0
BEGIN SELECT RAISE(ABORT, 'an invoice with money allocated is not voided; move the money first'); END;

-- The token given in FEERECON_ADMIN_TOKEN: registered at start, not revocable through the API
-- (it is removed by removing the variable).
ALTER TABLE api_tokens ADD COLUMN configured INTEGER NOT NULL DEFAULT 0;
