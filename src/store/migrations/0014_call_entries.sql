-- Call started / call ended entries in a room's timeline (module `chat::call_log`). They are
-- messages, so they page, sync and count like messages; their body is empty, so search never
-- finds them, and only `kind` and the columns below say what they mean.

-- 'text': a person's message. 'call_started': `author_id` started a call. 'call_ended': the
-- call whose `call_sid` matches ended, `call_secs` after it started; no author.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text'
    CHECK (kind IN ('text', 'call_started', 'call_ended'));
-- LiveKit's id of the room's session the entry is about: a webhook LiveKit repeats, or one
-- that arrives after a restart, cannot post the same entry twice.
ALTER TABLE messages ADD COLUMN call_sid TEXT;
ALTER TABLE messages ADD COLUMN call_secs INTEGER;
CREATE UNIQUE INDEX messages_call_entry ON messages (room_id, call_sid, kind)
    WHERE call_sid IS NOT NULL;
