-- Direct messages (module `chat::dms`): a room of kind 'dm' between exactly two accounts.
-- Every room before this migration is a plain room.
ALTER TABLE rooms ADD COLUMN kind TEXT NOT NULL DEFAULT 'room' CHECK (kind IN ('room', 'dm'));

-- The two accounts of a DM as "<lower id>:<higher id>": one pair has at most one DM. Account
-- ids are never reused (migration 10), so a key whose account was deleted cannot be taken
-- over by a new account. Only DMs have one.
ALTER TABLE rooms ADD COLUMN dm_pair TEXT CHECK ((kind = 'dm') = (dm_pair IS NOT NULL));
CREATE UNIQUE INDEX rooms_dm_pair ON rooms (dm_pair) WHERE dm_pair IS NOT NULL;
