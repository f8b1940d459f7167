-- Attachments (module `files`): one row per upload; the bytes live once per content at
-- <data_dir>/attachments/<sha[0..2]>/<sha[2..4]>/<sha256>, shared by every row with that hash.
-- A file is deleted when no row names its hash any more. `name` is display metadata only.
CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY,
    uploader_id  INTEGER REFERENCES users (id) ON DELETE SET NULL,
    sha256       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX attachments_sha256 ON attachments (sha256);
CREATE INDEX attachments_uploader ON attachments (uploader_id);

-- Which messages show which attachments; a tombstoned message loses its rows.
CREATE TABLE message_attachments (
    message_id    INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    attachment_id INTEGER NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    PRIMARY KEY (message_id, attachment_id)
) WITHOUT ROWID;
CREATE INDEX message_attachments_attachment ON message_attachments (attachment_id);
