-- The audit log (module `audit`): append-only. `at` is Unix milliseconds (UTC); `detail` is a
-- JSON object that never holds secrets. Rows are only ever inserted; deleting old rows is left
-- to retention, so only UPDATE is refused here.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    type      TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    actor_id  INTEGER,
    actor     TEXT,
    target    TEXT,
    client_ip TEXT,
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_type ON audit_log (type, id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
