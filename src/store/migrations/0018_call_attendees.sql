-- Who took part in each call (module `chat::call_log`): one row per account that joined the
-- call whose `call_started` entry is `message_id`. A call entry after a person's read position
-- that they did not take part in (nor start) is a missed call in their room list
-- (`chat::reads`). A row goes with its entry (retention) or its account.
CREATE TABLE call_attendees (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (message_id, user_id)
) WITHOUT ROWID;
CREATE INDEX call_attendees_user ON call_attendees (user_id);
-- The room list looks for the newest call entry after a read position: only call entries
-- are in this index, so the search skips every message in between.
CREATE INDEX messages_call_started ON messages (room_id, seq) WHERE kind = 'call_started';
