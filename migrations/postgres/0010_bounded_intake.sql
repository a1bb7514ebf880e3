-- Bounded intake: refused deliveries are archived cut short, with a digest and the size of
-- what arrived, and purged after the retention period; a sender's secret may say how it
-- authenticates (SePay: an API key or an HMAC signing key).

ALTER TABLE provider_events ADD COLUMN request_sha256 TEXT;
ALTER TABLE provider_events ADD COLUMN request_size BIGINT;
ALTER TABLE provider_secrets ADD COLUMN scheme TEXT;

CREATE INDEX provider_events_purge ON provider_events(received_at) WHERE payment_id IS NULL;

-- The one deletion the archive allows: a refused delivery (nothing booked from it) older than
-- 30 days. Everything else stays as received.
CREATE FUNCTION feerecon_archive_purge_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND OLD.payment_id IS NULL
       AND OLD.outcome IN ('bad_signature', 'unknown_account', 'account_mismatch', 'invalid_amount',
                           'rejected', 'too_large', 'error')
       AND OLD.received_at < to_char((now() AT TIME ZONE 'UTC') - interval '30 days',
                                     'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME;
END $$;
DROP TRIGGER provider_events_append_only ON provider_events;
CREATE TRIGGER provider_events_append_only BEFORE UPDATE OR DELETE ON provider_events
    FOR EACH ROW EXECUTE FUNCTION feerecon_archive_purge_only();
