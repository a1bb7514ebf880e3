-- The processing log: every answer that gave a person personal data (names, codes, payer
-- names, memos, archived bodies, guardians' contacts), with who asked, when, by which route
-- (the route's template, never its values or query) and which students' data it held.
-- Written by the HTTP layer, one group commit for the requests in flight; never by the
-- webhook intake, which reads no personal data for anyone.
--
-- Who: the API token, or the cookie session and what it came from (an API token, a parent
-- link). Never a token or cookie value. No foreign keys to sessions: a session is purged long
-- before the reads it made.
CREATE TABLE processing_log (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    session_id      BIGINT,
    api_token_id    BIGINT,
    parent_link_id  BIGINT,
    role            TEXT NOT NULL,
    method          TEXT NOT NULL,
    route           TEXT NOT NULL,
    status          BIGINT NOT NULL,
    -- How many students' data the answer held (the ids are in processing_log_students).
    students        BIGINT NOT NULL,
    -- Why an auditor opened a record in the clear.
    reason          TEXT,
    request_id      TEXT,
    CHECK (session_id IS NOT NULL OR api_token_id IS NOT NULL)
);
CREATE INDEX processing_log_at ON processing_log(at);
CREATE INDEX processing_log_token ON processing_log(api_token_id, at);
CREATE INDEX processing_log_session ON processing_log(session_id, at);
CREATE INDEX processing_log_link ON processing_log(parent_link_id, at);

CREATE TABLE processing_log_students (
    log_id      BIGINT NOT NULL REFERENCES processing_log(id),
    student_id  BIGINT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (log_id, student_id)
);
CREATE INDEX processing_log_students_student ON processing_log_students(student_id, at);

-- Append-only; the one deletion allowed is the retention job's, of rows older than a year.
CREATE TRIGGER processing_log_no_update BEFORE UPDATE ON processing_log
BEGIN SELECT RAISE(ABORT, 'processing_log rows are append-only'); END;
CREATE TRIGGER processing_log_students_no_update BEFORE UPDATE ON processing_log_students
BEGIN SELECT RAISE(ABORT, 'processing_log_students rows are append-only'); END;
CREATE TRIGGER processing_log_purge_only BEFORE DELETE ON processing_log
WHEN NOT (OLD.at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-365 days'))
BEGIN SELECT RAISE(ABORT, 'processing_log rows are deleted only a year after they were written'); END;
CREATE TRIGGER processing_log_students_purge_only BEFORE DELETE ON processing_log_students
WHEN NOT (OLD.at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-365 days'))
BEGIN SELECT RAISE(ABORT, 'processing_log_students rows are deleted only a year after they were written'); END;
