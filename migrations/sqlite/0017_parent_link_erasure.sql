-- A student's erasure reaches the links issued for them: a link for that student alone, or for
-- their family when no other student of the school is left in it, is revoked and its label
-- (whose link it is, often a guardian's name) becomes the student's pseudonym and its contact
-- (a guardian's phone or address) is removed. A family link that still serves a brother or
-- sister keeps its guardian's details: they are still needed for that child.
--
-- A link still changes only by being revoked, once; or by being redacted, once, which also
-- revokes it if it was not already.

ALTER TABLE parent_links ADD COLUMN redacted_at TEXT;

DROP TRIGGER parent_links_only_revoked;
CREATE TRIGGER parent_links_only_revoked_or_redacted BEFORE UPDATE ON parent_links
WHEN NEW.id IS NOT OLD.id OR NEW.school_id IS NOT OLD.school_id OR NEW.student_id IS NOT OLD.student_id
  OR NEW.family_key IS NOT OLD.family_key
  OR NEW.token_prefix IS NOT OLD.token_prefix OR NEW.token_hash IS NOT OLD.token_hash
  OR NEW.expires_at IS NOT OLD.expires_at
  OR NEW.created_at IS NOT OLD.created_at OR NEW.created_by IS NOT OLD.created_by
  OR NEW.replaces_link_id IS NOT OLD.replaces_link_id
  OR NEW.revoked_at IS NULL
  OR (OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS NOT OLD.revoked_at OR NEW.revoked_by IS NOT OLD.revoked_by))
  OR (NEW.redacted_at IS OLD.redacted_at
      AND (OLD.revoked_at IS NOT NULL OR NEW.label IS NOT OLD.label OR NEW.contact IS NOT OLD.contact))
  OR (NEW.redacted_at IS NOT OLD.redacted_at
      AND (OLD.redacted_at IS NOT NULL OR NEW.redacted_at IS NULL OR NEW.contact IS NOT NULL
           OR NOT COALESCE(NEW.label GLOB 'HS-[0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z][0-9A-HJKMNP-TV-Z]', 0)))
BEGIN SELECT RAISE(ABORT, 'a parent link is never edited; it is revoked once, or redacted once on erasure'); END;
