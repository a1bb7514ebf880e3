-- Subject requests: a student's personal data erased on request. The student's name and code
-- become their pseudonym (`HS-` and eight Crockford base32 characters, see
-- src/domain/pseudonym.rs), and so do the payer names and memos of the payments, the bodies of
-- the archived deliveries and the memos and counterparties of the statement lines that are
-- theirs or mention them. Amounts, receipts, allocations and audit records stay: the coverage
-- digests of the audit chain leave these columns out, so every record still verifies.
--
-- Redaction is the one change these rows allow, and the database says so (an update that
-- changes nothing is refused too, as before): a payment's payer
-- name or memo, or a statement line's memo or counterparty, may only become a pseudonym; an
-- archived delivery may only be redacted once, its body becoming its pseudonym and its query
-- emptied. Everything else is refused, as before.

ALTER TABLE students ADD COLUMN erased_at TEXT;
ALTER TABLE provider_events ADD COLUMN redacted_at TEXT;
ALTER TABLE provider_events ADD COLUMN redacted_as TEXT;

DROP TRIGGER payments_no_update;
CREATE TRIGGER payments_only_redacted BEFORE UPDATE ON payments
WHEN (NEW.payer_name IS OLD.payer_name AND NEW.memo IS OLD.memo)
  OR NEW.id IS NOT OLD.id OR NEW.school_id IS NOT OLD.school_id OR NEW.channel IS NOT OLD.channel OR NEW.provider IS NOT OLD.provider
  OR NEW.provider_ref IS NOT OLD.provider_ref OR NEW.amount IS NOT OLD.amount OR NEW.received_at IS NOT OLD.received_at OR NEW.recorded_at IS NOT OLD.recorded_at
  OR NEW.recorded_by IS NOT OLD.recorded_by OR NEW.receipt_no IS NOT OLD.receipt_no OR NEW.receipt_year IS NOT OLD.receipt_year OR NEW.receipt_seq IS NOT OLD.receipt_seq
  OR NEW.reverses_payment_id IS NOT OLD.reverses_payment_id OR NEW.reversal_reason IS NOT OLD.reversal_reason OR NEW.bank_ref IS NOT OLD.bank_ref
  OR (NEW.payer_name IS NOT OLD.payer_name AND NOT COALESCE(NEW.payer_name GLOB 'HS-[0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z]', 0))
  OR (NEW.memo IS NOT OLD.memo AND NOT COALESCE(NEW.memo GLOB 'HS-[0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z]', 0))
BEGIN SELECT RAISE(ABORT, 'payments rows are append-only; only a payer name or memo is redacted, to a pseudonym'); END;

DROP TRIGGER provider_events_no_update;
CREATE TRIGGER provider_events_only_redacted BEFORE UPDATE ON provider_events
WHEN NEW.id IS NOT OLD.id OR NEW.provider IS NOT OLD.provider OR NEW.provider_account_id IS NOT OLD.provider_account_id OR NEW.school_id IS NOT OLD.school_id
  OR NEW.received_at IS NOT OLD.received_at OR NEW.method IS NOT OLD.method OR NEW.headers IS NOT OLD.headers OR NEW.body_size IS NOT OLD.body_size
  OR NEW.verified IS NOT OLD.verified OR NEW.txn_id IS NOT OLD.txn_id OR NEW.outcome IS NOT OLD.outcome OR NEW.detail IS NOT OLD.detail
  OR NEW.payment_id IS NOT OLD.payment_id OR NEW.ack_status IS NOT OLD.ack_status OR NEW.request_sha256 IS NOT OLD.request_sha256 OR NEW.request_size IS NOT OLD.request_size
  OR OLD.redacted_at IS NOT NULL OR NEW.redacted_at IS NULL
  OR NEW.redacted_as IS NULL OR NOT COALESCE(NEW.redacted_as GLOB 'HS-[0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z]', 0)
  OR NEW.body IS NOT CAST(NEW.redacted_as AS BLOB) OR NEW.query IS NOT ''
BEGIN SELECT RAISE(ABORT, 'provider_events rows are append-only; only redacted once, the body to its pseudonym'); END;

DROP TRIGGER statement_lines_no_update;
CREATE TRIGGER statement_lines_only_redacted BEFORE UPDATE ON statement_lines
WHEN (NEW.memo IS OLD.memo AND NEW.counterparty IS OLD.counterparty)
  OR NEW.id IS NOT OLD.id OR NEW.statement_id IS NOT OLD.statement_id OR NEW.school_id IS NOT OLD.school_id OR NEW.account_id IS NOT OLD.account_id
  OR NEW.line_key IS NOT OLD.line_key OR NEW.booked_at IS NOT OLD.booked_at OR NEW.amount IS NOT OLD.amount OR NEW.direction IS NOT OLD.direction
  OR NEW.bank_ref IS NOT OLD.bank_ref OR NEW.payment_id IS NOT OLD.payment_id OR NEW.matched_by IS NOT OLD.matched_by
  OR (NEW.memo IS NOT OLD.memo AND NOT COALESCE(NEW.memo GLOB 'HS-[0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z]', 0))
  OR (NEW.counterparty IS NOT OLD.counterparty AND NOT COALESCE(NEW.counterparty GLOB 'HS-[0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z]', 0))
BEGIN SELECT RAISE(ABORT, 'statement_lines rows are append-only; only a memo or counterparty is redacted, to a pseudonym'); END;
