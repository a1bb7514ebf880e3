-- A school's closed days: what the day's books said when the accountant closed it. Money that
-- arrives or is corrected later is recorded on the day it is recorded (always an open day), so
-- a closed day never changes.
CREATE TABLE day_closes (
    school_id  BIGINT NOT NULL REFERENCES schools(id),
    day        TEXT NOT NULL,
    summary    TEXT NOT NULL,
    closed_at  TEXT NOT NULL,
    closed_by  TEXT NOT NULL,
    PRIMARY KEY (school_id, day)
);
CREATE TRIGGER day_closes_append_only BEFORE UPDATE OR DELETE ON day_closes
    FOR EACH ROW EXECUTE FUNCTION feerecon_refuse_change();
