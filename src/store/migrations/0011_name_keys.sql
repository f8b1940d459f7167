-- Names that look alike (module `names`, `auth::users`). Each account holds the look-alike
-- key (`names::key`: NFKC, case-folded, UTS #39 confusable skeleton) of its username and of
-- its display name; the primary key keeps one account per key, so no display name or username
-- can pass for another account's. `roost_name_key` and `roost_clean_name` are `names::key`
-- and `names::clean` (NULL where it refuses), registered by `store::migrations`.
CREATE TABLE name_keys (
    key     TEXT NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX name_keys_user ON name_keys (user_id);

-- Display names stored before the rules (a control or invisible character, a word mixing
-- scripts, more than 64 characters once in NFKC) become the account's username; the others
-- are stored in NFKC.
UPDATE users SET display_name = CASE
        WHEN length(roost_clean_name(display_name)) BETWEEN 1 AND 64
        THEN roost_clean_name(display_name)
        ELSE username
    END;

-- Existing look-alikes: usernames first, then display names, each time the oldest account
-- (lowest id) keeps its claim. An account whose display name looks like a name another
-- account kept shows its username instead. An account whose username looks like an older
-- account's keeps it (usernames are how people sign in) but holds no key for it; it may still
-- show it as its display name.
INSERT OR IGNORE INTO name_keys (key, user_id)
    SELECT roost_name_key(username), id FROM users ORDER BY id;
INSERT OR IGNORE INTO name_keys (key, user_id)
    SELECT roost_name_key(display_name), id FROM users ORDER BY id;
UPDATE users SET display_name = username
 WHERE NOT EXISTS (SELECT 1 FROM name_keys k
                    WHERE k.key = roost_name_key(users.display_name) AND k.user_id = users.id);

-- Guests never moderate (module `chat::rooms`): a guest's room role above member, from before
-- that rule, becomes member. No room events are written for it here; clients see the role
-- when they next read the members.
UPDATE room_members SET role = 'member'
 WHERE role != 'member' AND user_id IN (SELECT id FROM users WHERE role = 'guest');
