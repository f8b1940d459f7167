-- Search index updates are queued, then applied once per write batch (module `chat::search`).
--
-- The writer runs every job of a batch in its own savepoint. FTS5 writes its pending changes
-- out as a new index segment whenever a savepoint opens after it was touched, so indexing
-- each message inside its job cost one segment (and the merges that follow) per message.
-- Now the triggers only queue the change; the writer applies the queue after the last job's
-- savepoint and before COMMIT (`store::migrations::BEFORE_COMMIT`), in the same transaction:
-- a committed message is searchable, exactly as before, and the queue is empty after every
-- commit.
CREATE TABLE search_queue (
    id         INTEGER PRIMARY KEY,  -- order of the changes
    message_id INTEGER NOT NULL,
    body       TEXT NOT NULL,
    -- 1: remove `body` of `message_id` from the index (an external-content FTS5 table must
    -- be told the old text); 0: index it.
    remove     INTEGER NOT NULL CHECK (remove IN (0, 1))
);

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO search_queue (message_id, body, remove) VALUES (new.id, new.body, 0);
END;

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO search_queue (message_id, body, remove) VALUES (old.id, old.body, 1);
END;

CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO search_queue (message_id, body, remove) VALUES (old.id, old.body, 1);
    INSERT INTO search_queue (message_id, body, remove) VALUES (new.id, new.body, 0);
END;
