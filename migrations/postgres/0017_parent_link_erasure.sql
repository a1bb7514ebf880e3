-- A student's erasure reaches the links issued for them: a link for that student alone, or for
-- their family when no other student of the school is left in it, is revoked and its label
-- (whose link it is, often a guardian's name) becomes the student's pseudonym and its contact
-- (a guardian's phone or address) is removed. A family link that still serves a brother or
-- sister keeps its guardian's details: they are still needed for that child.
--
-- A link still changes only by being revoked, once; or by being redacted, once, which also
-- revokes it if it was not already.

ALTER TABLE parent_links ADD COLUMN redacted_at TEXT;

CREATE OR REPLACE FUNCTION feerecon_parent_link_only_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'revoked_at' - 'revoked_by' - 'label' - 'contact' - 'redacted_at')
         = (to_jsonb(OLD) - 'revoked_at' - 'revoked_by' - 'label' - 'contact' - 'redacted_at')
       AND NEW.revoked_at IS NOT NULL
       AND (OLD.revoked_at IS NULL
            OR (NEW.revoked_at = OLD.revoked_at AND NEW.revoked_by = OLD.revoked_by))
       AND ((NEW.redacted_at IS NOT DISTINCT FROM OLD.redacted_at AND OLD.revoked_at IS NULL
             AND NEW.label = OLD.label AND NEW.contact IS NOT DISTINCT FROM OLD.contact)
            OR (OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL AND NEW.contact IS NULL
                AND NEW.label ~ '^HS-[0-9A-HJKMNP-TV-Z]{8}$')) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a parent link is never edited; it is revoked once, or redacted once on erasure';
END $$;
