-- Integrations (module `integrations`): bot accounts, outgoing webhooks with their delivery
-- queue and log, and incoming webhook URLs. Times are Unix milliseconds (UTC).

-- What kind of account: a person (signs in with a password) or a bot (API keys only, no
-- password; shown as a bot in member lists and on its messages).
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'bot'));

-- An outgoing webhook. `events` is the list of event names it wants as ",a,b," (so one
-- `instr` finds a name); `room_id` NULL means every room. `secret` is kept in the clear because
-- every delivery is signed with it (HMAC needs the key itself); no API answer shows it except
-- the one that created or rotated it. `failures` counts failed attempts in a row (reset by a
-- success or a resume); at `[webhooks] max_attempts` the hook is paused.
CREATE TABLE webhooks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    url           TEXT NOT NULL,
    events        TEXT NOT NULL,
    room_id       INTEGER REFERENCES rooms (id) ON DELETE CASCADE,
    description   TEXT NOT NULL DEFAULT '',
    secret        TEXT NOT NULL,
    created_by    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    paused_at     INTEGER,
    paused_reason TEXT
);

-- One event for one hook: queued in the transaction that wrote the event, sent by the
-- delivery worker in `id` order per hook, kept as the hook's delivery log once sent (pruned
-- by retention after `[webhooks] delivery_log_days`; pending rows are never pruned).
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- 32 hex digits, the same on every attempt: receivers drop repeats by it.
    delivery_id     TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_attempt_at INTEGER,
    -- The receiver's HTTP status of the last attempt (NULL: no answer).
    last_status     INTEGER,
    -- Why the last attempt failed, in words (never the URL).
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE state = 'delivered';

-- An incoming webhook URL of a room: `POST /hooks/<token>` posts as `bot_id`. Only the token's
-- SHA-256 is stored.
CREATE TABLE incoming_hooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id     INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    bot_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    created_by  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX incoming_hooks_room ON incoming_hooks (room_id);
