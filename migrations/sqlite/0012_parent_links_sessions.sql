-- Parents without passwords, and sessions.
--
-- A parent link is a read capability for the students of one family: one student, or every
-- student of the school sharing a family_key. Only a SHA-256 hash of its token is kept (the
-- token is 256 random bits, so a plain hash is as strong as a slow one), with a short prefix of
-- it that is no secret: the accountant's list shows it, and failed attempts are counted by it.
-- A link is never deleted nor edited: it is revoked, once, with who and when.
CREATE TABLE parent_links (
    id                INTEGER PRIMARY KEY,
    school_id         BIGINT NOT NULL REFERENCES schools(id),
    -- Exactly one of the two: a link for one student, or for a family.
    student_id        BIGINT REFERENCES students(id),
    family_key        TEXT,
    -- Whose link it is, e.g. "Mẹ" (several per student: one leaked link is revoked alone).
    label             TEXT NOT NULL,
    token_prefix      TEXT NOT NULL,
    token_hash        TEXT NOT NULL UNIQUE,
    -- Shown with a 410 once the link is expired or revoked.
    contact           TEXT,
    expires_at        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    replaces_link_id  BIGINT REFERENCES parent_links(id),
    revoked_at        TEXT,
    revoked_by        TEXT,
    CHECK ((student_id IS NULL) != (family_key IS NULL)),
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX parent_links_school ON parent_links(school_id, id);

CREATE TRIGGER parent_links_never_deleted BEFORE DELETE ON parent_links
BEGIN SELECT RAISE(ABORT, 'parent_links rows are never deleted; revoke the link'); END;
CREATE TRIGGER parent_links_only_revoked BEFORE UPDATE ON parent_links
WHEN OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
  OR NEW.id IS NOT OLD.id OR NEW.school_id IS NOT OLD.school_id OR NEW.student_id IS NOT OLD.student_id
  OR NEW.family_key IS NOT OLD.family_key OR NEW.label IS NOT OLD.label
  OR NEW.token_prefix IS NOT OLD.token_prefix OR NEW.token_hash IS NOT OLD.token_hash
  OR NEW.contact IS NOT OLD.contact OR NEW.expires_at IS NOT OLD.expires_at
  OR NEW.created_at IS NOT OLD.created_at OR NEW.created_by IS NOT OLD.created_by
  OR NEW.replaces_link_id IS NOT OLD.replaces_link_id
BEGIN SELECT RAISE(ABORT, 'a parent link is never edited; it is revoked once'); END;

-- A session behind a cookie, whoever signed in and however: a parent link exchanged, an API
-- token exchanged, later an OpenID Connect sign-in. `subject` says who in the audit log's words
-- (`parent_link:12`, `token:3:accountant`, `oidc:<issuer>#<sub>`); role and scope are fixed when
-- the session starts, and what it came from is checked again on every request (a revoked token
-- or link ends its sessions). Only a SHA-256 hash of the cookie's value is kept.
CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('parent_link', 'api_token', 'oidc')),
    subject         TEXT NOT NULL,
    role            TEXT NOT NULL,
    school_id       BIGINT REFERENCES schools(id),
    department_id   BIGINT REFERENCES departments(id),
    api_token_id    BIGINT REFERENCES api_tokens(id),
    parent_link_id  BIGINT REFERENCES parent_links(id),
    created_at      TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    ended_at        TEXT,
    end_reason      TEXT,
    CHECK ((kind = 'parent_link') = (parent_link_id IS NOT NULL)),
    CHECK ((kind = 'api_token') = (api_token_id IS NOT NULL))
);
CREATE INDEX sessions_purge ON sessions(expires_at);

-- The one deletion sessions allow: one over (expired or ended) for more than 30 days, by the
-- retention job.
CREATE TRIGGER sessions_purge_only BEFORE DELETE ON sessions
WHEN NOT (
    COALESCE(MIN(OLD.ended_at, OLD.expires_at), OLD.expires_at) < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days')
)
BEGIN SELECT RAISE(ABORT, 'sessions rows are deleted only 30 days after they are over'); END;
