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

-- Deletions stay as they were; updates get the redaction rule. Rows compared whole, less the
-- redactable columns, so a column added later is protected without a change here.
DROP TRIGGER payments_append_only ON payments;
CREATE TRIGGER payments_append_only BEFORE DELETE ON payments
    FOR EACH ROW EXECUTE FUNCTION feerecon_refuse_change();
CREATE FUNCTION feerecon_payment_only_redacted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'payer_name' - 'memo') = (to_jsonb(OLD) - 'payer_name' - 'memo')
       AND (NEW.payer_name IS DISTINCT FROM OLD.payer_name OR NEW.memo IS DISTINCT FROM OLD.memo)
       AND (NEW.payer_name IS NOT DISTINCT FROM OLD.payer_name OR NEW.payer_name ~ '^HS-[0-9A-HJKMNP-TV-Z]{8}$')
       AND (NEW.memo IS NOT DISTINCT FROM OLD.memo OR NEW.memo ~ '^HS-[0-9A-HJKMNP-TV-Z]{8}$') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'payments rows are append-only; only a payer name or memo is redacted, to a pseudonym';
END $$;
CREATE TRIGGER payments_only_redacted BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION feerecon_payment_only_redacted();

DROP TRIGGER provider_events_append_only ON provider_events;
CREATE TRIGGER provider_events_append_only BEFORE DELETE ON provider_events
    FOR EACH ROW EXECUTE FUNCTION feerecon_archive_purge_only();
CREATE FUNCTION feerecon_archive_only_redacted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'body' - 'query' - 'redacted_at' - 'redacted_as')
         = (to_jsonb(OLD) - 'body' - 'query' - 'redacted_at' - 'redacted_as')
       AND OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL
       AND NEW.redacted_as ~ '^HS-[0-9A-HJKMNP-TV-Z]{8}$'
       AND NEW.body = convert_to(NEW.redacted_as, 'UTF8') AND NEW.query = '' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'provider_events rows are append-only; only redacted once, the body to its pseudonym';
END $$;
CREATE TRIGGER provider_events_only_redacted BEFORE UPDATE ON provider_events
    FOR EACH ROW EXECUTE FUNCTION feerecon_archive_only_redacted();

DROP TRIGGER statement_lines_append_only ON statement_lines;
CREATE TRIGGER statement_lines_append_only BEFORE DELETE ON statement_lines
    FOR EACH ROW EXECUTE FUNCTION feerecon_refuse_change();
CREATE FUNCTION feerecon_statement_line_only_redacted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'memo' - 'counterparty') = (to_jsonb(OLD) - 'memo' - 'counterparty')
       AND (NEW.memo IS DISTINCT FROM OLD.memo OR NEW.counterparty IS DISTINCT FROM OLD.counterparty)
       AND (NEW.memo IS NOT DISTINCT FROM OLD.memo OR NEW.memo ~ '^HS-[0-9A-HJKMNP-TV-Z]{8}$')
       AND (NEW.counterparty IS NOT DISTINCT FROM OLD.counterparty OR NEW.counterparty ~ '^HS-[0-9A-HJKMNP-TV-Z]{8}$') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'statement_lines rows are append-only; only a memo or counterparty is redacted, to a pseudonym';
END $$;
CREATE TRIGGER statement_lines_only_redacted BEFORE UPDATE ON statement_lines
    FOR EACH ROW EXECUTE FUNCTION feerecon_statement_line_only_redacted();
