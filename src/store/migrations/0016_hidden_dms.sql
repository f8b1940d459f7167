-- Direct messages a person closed (module `chat::dms`): hidden from that person's room list
-- only; the other person still lists it. `seq` is the room event sequence number the DM was
-- hidden at: a message after it (`messages.seq > seq`) brings the DM back to the list, and
-- opening the DM again (`POST /api/v1/dms`) deletes the row. A row goes with its room or
-- account.
CREATE TABLE hidden_dms (
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id   INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL CHECK (seq >= 0),
    hidden_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
CREATE INDEX hidden_dms_room ON hidden_dms (room_id);
