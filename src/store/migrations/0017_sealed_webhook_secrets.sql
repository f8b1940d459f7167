-- Outgoing webhook secrets are stored sealed (module `integrations::sealing`): ChaCha20-Poly1305
-- under a key derived from <data_dir>/secrets/webhook_secrets.key, a file outside the database
-- and so out of its backups. `secret_sealed` holds the sealed secret and `secret` is '' once a
-- row is sealed. SQL cannot seal (the key is not in the database): the rows stored in the clear
-- before this migration are sealed by the daemon when it starts, before it serves or sends, and
-- by `roost webhook` (`integrations::sealing::seal_clear_secrets`), with secure_delete on so the
-- clear text is overwritten in the file.
ALTER TABLE webhooks ADD COLUMN secret_sealed BLOB;

-- Retention deletes deliveries older than [retention] message_days by their creation time.
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
