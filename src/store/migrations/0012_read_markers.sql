-- Read positions kept on the server (module `chat::reads`), so unread counts follow a person
-- across devices.

-- The room event sequence number of each message's `message.created` event: unread counts
-- compare it with a read position. NULL for a message whose event was already pruned when
-- this column was added; such a message never counts as unread.
ALTER TABLE messages ADD COLUMN seq INTEGER;
UPDATE messages SET seq = e.seq
  FROM (SELECT room_id, seq, json_extract(data, '$.id') AS message_id
          FROM events WHERE type = 'message.created') AS e
 WHERE messages.id = e.message_id AND messages.room_id = e.room_id;
CREATE INDEX messages_room_seq ON messages (room_id, seq);

-- How far each member has read each room: the room event sequence number read up to. Only
-- ever moves forward. A row goes with its room or account.
CREATE TABLE room_reads (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
CREATE INDEX room_reads_room ON room_reads (room_id);

-- Everything said before this upgrade counts as read: without it every member would find
-- every old message unread.
INSERT INTO room_reads (user_id, room_id, seq, updated_at)
SELECT m.user_id, m.room_id, r.last_seq, r.updated_at
  FROM room_members m JOIN rooms r ON r.id = m.room_id;
