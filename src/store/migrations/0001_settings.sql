-- Instance-wide settings as key/value text; `updated_at` is Unix seconds (UTC).
-- NOT NULL on the key: SQLite otherwise lets a TEXT PRIMARY KEY hold NULLs.
CREATE TABLE settings (
    key        TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
