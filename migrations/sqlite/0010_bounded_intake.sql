-- Bounded intake: refused deliveries are archived cut short, with a digest and the size of
-- what arrived, and purged after the retention period; a sender's secret may say how it
-- authenticates (SePay: an API key or an HMAC signing key).

ALTER TABLE provider_events ADD COLUMN request_sha256 TEXT;
ALTER TABLE provider_events ADD COLUMN request_size BIGINT;
ALTER TABLE provider_secrets ADD COLUMN scheme TEXT;

CREATE INDEX provider_events_purge ON provider_events(received_at) WHERE payment_id IS NULL;

-- The one deletion the archive allows: a refused delivery (nothing booked from it) older than
-- 30 days. Everything else stays as received.
DROP TRIGGER provider_events_no_delete;
CREATE TRIGGER provider_events_no_delete BEFORE DELETE ON provider_events
WHEN NOT (
    OLD.payment_id IS NULL
    AND OLD.outcome IN ('bad_signature', 'unknown_account', 'account_mismatch', 'invalid_amount',
                        'rejected', 'too_large', 'error')
    AND OLD.received_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days')
)
BEGIN SELECT RAISE(ABORT, 'provider_events rows are append-only'); END;
