-- How each member came into a room (module `chat::rooms`): `invited` is 1 when someone else
-- added them (a moderator, the room's owner, an admin), 0 when the account joined a public
-- room or created the room itself. An account made a guest leaves every room it was not
-- invited to, in the same transaction: guests read and post only where someone added them.
ALTER TABLE room_members ADD COLUMN invited INTEGER NOT NULL DEFAULT 0 CHECK (invited IN (0, 1));

-- Memberships from before this column did not record it. They are set so that a later
-- demotion errs on the side of closing: 0 in public rooms (the member may have joined alone)
-- and for a room's creator; 1 in private rooms, which nobody enters alone. Accounts that are
-- guests already keep every room they are in (1): which of them they were added to cannot be
-- told apart, and removing a guest from a room they were invited to would lose it silently.
UPDATE room_members SET invited = 1
 WHERE user_id IN (SELECT id FROM users WHERE role = 'guest')
    OR room_id IN (SELECT id FROM rooms
                    WHERE visibility = 'private'
                      AND created_by IS NOT room_members.user_id);
