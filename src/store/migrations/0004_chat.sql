-- Rooms, members, messages and the per-room event log (module `chat`). Times are Unix
-- milliseconds (UTC).

-- `last_seq` is the sequence number of the room's newest event; every change to the room
-- (message created/updated/deleted, member joined/updated/left, room updated) takes the next
-- one in the same transaction as the change.
CREATE TABLE rooms (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL,
    topic              TEXT NOT NULL DEFAULT '',
    visibility         TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    -- Call policy: guests may publish camera and microphone, not only watch.
    guests_may_publish INTEGER NOT NULL DEFAULT 0 CHECK (guests_may_publish IN (0, 1)),
    created_by         INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    last_seq           INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE room_members (
    room_id   INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX room_members_user ON room_members (user_id, room_id);

-- A deleted message stays as a tombstone: `deleted_at` set, `body` emptied.
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    author_id  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    deleted_at INTEGER
);
CREATE INDEX messages_room ON messages (room_id, id);
CREATE INDEX messages_created ON messages (created_at);

-- `Idempotency-Key` of a post, per author: a repeat returns `message_id` instead of posting
-- again. Purged after a day by retention.
CREATE TABLE idempotency_keys (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- The events the realtime gateway replays on resume: `data` is the event's JSON payload as
-- clients receive it. Only the newest `[gateway] resume_events_per_room` per room are kept.
CREATE TABLE events (
    room_id INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    type    TEXT NOT NULL,
    at      INTEGER NOT NULL,
    data    TEXT NOT NULL,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
