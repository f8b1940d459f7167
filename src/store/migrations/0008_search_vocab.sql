-- The search index's vocabulary (module `chat::search`): one row per indexed word, read to
-- turn the last word of a query into the words that start with it. FTS5's own prefix
-- queries (`"word"*`) merge the postings of every matching word into one buffer that grows
-- with the history (the soak on a grown database: about two thirds of SQLite's peak heap);
-- a bounded list of whole words is read one posting at a time instead. The table stores
-- nothing: it reads `messages_fts`.
CREATE VIRTUAL TABLE messages_fts_vocab USING fts5vocab(messages_fts, row);
