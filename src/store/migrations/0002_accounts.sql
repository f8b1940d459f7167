-- Accounts, sessions, invites and API keys (module `auth`). Times are Unix seconds (UTC).
-- Secrets never appear here in the clear: passwords are argon2id PHC strings, and refresh
-- tokens, invite codes, API key secrets and rotation tokens are stored as SHA-256 hashes.

-- `username` is already normalized (lowercase ASCII) by `auth`, so UNIQUE is case-insensitive.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member', 'guest')),
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- A session is one sign-in and the family of refresh tokens rotated from it; its id is the
-- `sid` claim of every access token issued for it. Revoking it ends them all at once.
CREATE TABLE sessions (
    id             TEXT NOT NULL PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    -- When the newest refresh token of the family expires.
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Every refresh token ever issued for a live session. `rotated_at` is set when it was
-- exchanged; presenting it again is reuse and revokes the session.
CREATE TABLE refresh_tokens (
    token_hash BLOB NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE invites (
    id         INTEGER PRIMARY KEY,
    code_hash  BLOB NOT NULL UNIQUE,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    max_uses   INTEGER NOT NULL CHECK (max_uses > 0),
    uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses <= max_uses),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- A key is presented as roost_<prefix>_<secret>; `prefix` finds the row, the hash checks it.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    secret_hash  BLOB NOT NULL,
    last_four    TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    replaced_by  INTEGER REFERENCES api_keys (id)
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Step one of a two-step key rotation; single use, short-lived.
CREATE TABLE api_key_rotations (
    token_hash BLOB NOT NULL PRIMARY KEY,
    api_key_id INTEGER NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
