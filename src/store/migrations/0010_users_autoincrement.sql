-- `users.id` never names two accounts, even if accounts are ever deleted: AUTOINCREMENT keeps
-- SQLite from handing out an id that was used before (the largest ever used is kept in
-- `sqlite_sequence`), so an old audit entry, message author or token claim cannot come to name
-- someone else.
--
-- SQLite cannot change a column's definition in place; the table is rebuilt by SQLite's own
-- procedure for other schema changes (its ALTER TABLE documentation): with foreign keys off
-- (`store::migrations` turns them off around every migration and runs `foreign_key_check`
-- before COMMIT), make the new table, copy every row with its id, drop the old table and
-- rename the new one. Other
-- tables' foreign keys name `users` and keep doing so. `users` has no indexes, triggers or
-- views of its own beyond its UNIQUE username (part of the table definition below).
CREATE TABLE users_rebuilt (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member', 'guest')),
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

INSERT INTO users_rebuilt (id, username, display_name, role, password_hash, disabled,
                           created_at, updated_at)
SELECT id, username, display_name, role, password_hash, disabled, created_at, updated_at
  FROM users ORDER BY id;

DROP TABLE users;
ALTER TABLE users_rebuilt RENAME TO users;
