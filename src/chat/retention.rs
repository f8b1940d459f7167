//! Retention: the in-process purge that keeps the database and the attachment store as small
//! as the configuration says (`[retention]`, `[attachments] orphan_grace_secs`).
//!
//! Each run deletes, in short write transactions: messages older than `message_days` (0 keeps
//! them), room events older than `event_days` (the oldest ones of each room only, so every
//! room's log stays contiguous and resume can tell what it lacks), audit events older than
//! `audit_days`, ended sessions with their refresh tokens,
//! expired invites, used or expired API key rotation tokens, idempotency keys older than a
//! day, sent outgoing webhook deliveries older than `[webhooks] delivery_log_days` and every
//! delivery, sent or queued, older than `message_days` (its body carries the event's
//! content, a message's text among them, which must not outlive the message), and
//! attachments no message references that are older than the grace period — then the
//! files no attachment row names any more (under the file store's publish lock, so an upload
//! of the same content cannot lose its file). What was removed is logged.
//!
//! [`run_once`] takes the time as an argument, so tests drive it with any clock;
//! [`run`] is the schedule (every `interval_secs`, selecting on shutdown).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::params;
use tokio_util::sync::CancellationToken;

use super::ChatError;
use crate::config::Config;
use crate::files::{self, Files};
use crate::store::Store;

/// Rows deleted per transaction, so a large purge never holds the writer for long.
const BATCH: i64 = 2000;
/// Idempotency keys are kept this long (a client retrying later than this posts again).
const IDEMPOTENCY_KEEP_MS: i64 = 24 * 3600 * 1000;
const DAY_MS: i64 = 86_400_000;

/// What one run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub messages: usize,
    pub room_events: usize,
    pub audit_events: usize,
    pub sessions: usize,
    pub invites: usize,
    pub rotation_tokens: usize,
    pub idempotency_keys: usize,
    pub attachments: usize,
    pub files: usize,
    /// Sent outgoing webhook deliveries older than `[webhooks] delivery_log_days`, and any
    /// delivery older than `message_days`.
    pub webhook_deliveries: usize,
}

impl Report {
    pub fn total(&self) -> usize {
        self.messages
            + self.room_events
            + self.audit_events
            + self.sessions
            + self.invites
            + self.rotation_tokens
            + self.idempotency_keys
            + self.attachments
            + self.files
            + self.webhook_deliveries
    }
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Deletes with `sql` (which takes the cutoff as ?1 and the batch size as ?2) until a batch
/// deletes nothing.
async fn in_batches(store: &Store, sql: &'static str, cutoff: i64) -> Result<usize, ChatError> {
    let mut total = 0;
    loop {
        let n = store
            .write(move |conn| Ok::<_, ChatError>(conn.execute(sql, params![cutoff, BATCH])?))
            .await?;
        total += n;
        if n < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            return Ok(total);
        }
    }
}

/// Deletes room events older than `cutoff` (Unix ms): for each room, the events before its
/// first one at or after the cutoff. Only a prefix of a room's log is ever removed, even if
/// the clock once stepped back, so what remains is contiguous: `events::replayable` relies
/// on that to answer "resync" rather than replay with a hole.
async fn prune_room_events(store: &Store, cutoff: i64) -> Result<usize, ChatError> {
    // Each room's boundary: its first event young enough to keep (or, if none, one past its
    // newest; later events only get higher numbers). Rooms whose oldest event is young enough
    // are skipped; each check is one primary-key seek.
    let rooms: Vec<(i64, i64)> = store
        .read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT r.id, coalesce(
                        (SELECT e.seq FROM events e WHERE e.room_id = r.id AND e.at >= ?1
                          ORDER BY e.seq LIMIT 1),
                        r.last_seq + 1)
                   FROM rooms r
                  WHERE (SELECT e.at FROM events e WHERE e.room_id = r.id ORDER BY e.seq LIMIT 1) < ?1",
            )?;
            let rows = stmt.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok::<_, ChatError>(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let mut total = 0;
    for (room_id, keep_from) in rooms {
        loop {
            let n = store
                .write(move |conn| {
                    Ok::<_, ChatError>(conn.execute(
                        "DELETE FROM events WHERE room_id = ?1 AND seq IN
                           (SELECT seq FROM events WHERE room_id = ?1 AND seq < ?2
                             ORDER BY seq LIMIT ?3)",
                        params![room_id, keep_from, BATCH],
                    )?)
                })
                .await?;
            total += n;
            if n < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
    }
    Ok(total)
}

/// One purge at time `now`.
pub async fn run_once(
    store: &Store,
    files: &Files,
    config: &Config,
    now: SystemTime,
) -> Result<Report, ChatError> {
    let now_ms = ms(now);
    let now_secs = now_ms / 1000;
    let r = &config.retention;
    let mut report = Report::default();

    if r.message_days > 0 {
        let cutoff = now_ms - i64::try_from(r.message_days).unwrap_or(i64::MAX / DAY_MS) * DAY_MS;
        report.messages = in_batches(
            store,
            "DELETE FROM messages WHERE id IN
               (SELECT id FROM messages WHERE created_at < ?1 LIMIT ?2)",
            cutoff,
        )
        .await?;
        // A delivery's body is a copy of its event, so a message's text lives on in every
        // hook's delivery log: it goes with the messages of its time, whatever
        // `delivery_log_days` says. Queued ones too (a hook paused for longer than this):
        // sending a message retention already removed would break the same promise.
        report.webhook_deliveries += in_batches(
            store,
            "DELETE FROM webhook_deliveries WHERE id IN
               (SELECT id FROM webhook_deliveries WHERE created_at < ?1 LIMIT ?2)",
            cutoff,
        )
        .await?;
    }
    if r.event_days > 0 {
        let cutoff = now_ms - i64::try_from(r.event_days).unwrap_or(i64::MAX / DAY_MS) * DAY_MS;
        report.room_events = prune_room_events(store, cutoff).await?;
    }
    if r.audit_days > 0 {
        let cutoff = now_ms - i64::try_from(r.audit_days).unwrap_or(i64::MAX / DAY_MS) * DAY_MS;
        report.audit_events = in_batches(
            store,
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ?1 LIMIT ?2)",
            cutoff,
        )
        .await?;
    }
    let log_days = config.webhooks.delivery_log_days;
    if log_days > 0 {
        let cutoff = now_ms - i64::try_from(log_days).unwrap_or(i64::MAX / DAY_MS) * DAY_MS;
        // Only sent ones: a queued delivery is never pruned, however old.
        report.webhook_deliveries += in_batches(
            store,
            "DELETE FROM webhook_deliveries WHERE id IN
               (SELECT id FROM webhook_deliveries
                 WHERE state = 'delivered' AND delivered_at < ?1 LIMIT ?2)",
            cutoff,
        )
        .await?;
    }
    let (sessions, invites, rotation_tokens, idempotency_keys) = store
        .write(move |conn| {
            let sessions = crate::auth::session::prune(conn, now_secs, 0)?;
            let invites = conn.execute("DELETE FROM invites WHERE expires_at < ?1", [now_secs])?;
            let rotations = conn.execute(
                "DELETE FROM api_key_rotations WHERE expires_at < ?1 OR used_at IS NOT NULL",
                [now_secs],
            )?;
            let keys = conn.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?1",
                [now_ms - IDEMPOTENCY_KEEP_MS],
            )?;
            Ok::<_, ChatError>((sessions, invites, rotations, keys))
        })
        .await?;
    report.sessions = sessions;
    report.invites = invites;
    report.rotation_tokens = rotation_tokens;
    report.idempotency_keys = idempotency_keys;

    let grace_ms = i64::try_from(config.attachments.orphan_grace_secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    let cutoff = now_ms.saturating_sub(grace_ms);
    let hashes: Vec<String> = store
        .write(move |conn| {
            let mut stmt = conn.prepare(
                "DELETE FROM attachments WHERE created_at < ?1 AND NOT EXISTS
                   (SELECT 1 FROM message_attachments ma WHERE ma.attachment_id = attachments.id)
                 RETURNING sha256",
            )?;
            let rows = stmt.query_map([cutoff], |r| r.get(0))?;
            Ok::<_, ChatError>(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await?;
    report.attachments = hashes.len();
    if !hashes.is_empty() {
        let _publish = files.publish.lock().await;
        let root = files.root().to_path_buf();
        report.files = store
            .read(move |conn| files::delete_unreferenced_files(conn, &root, &hashes))
            .await
            .map_err(|e| ChatError::Task(format!("deleting attachment files: {e}")))?;
    }
    Ok(report)
}

/// The schedule: a purge every `[retention] interval_secs` (the first one interval after
/// startup), until shutdown. Failures are logged and retried at the next interval.
pub async fn run(
    store: Store,
    files: Arc<Files>,
    config: Arc<Config>,
    clock: Arc<dyn crate::auth::Clock>,
    shutdown: CancellationToken,
) {
    let every = std::time::Duration::from_secs(config.retention.interval_secs);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let started = std::time::Instant::now();
        match run_once(&store, &files, &config, clock.now()).await {
            Ok(r) if r.total() > 0 => tracing::info!(
                messages = r.messages,
                room_events = r.room_events,
                audit_events = r.audit_events,
                sessions = r.sessions,
                invites = r.invites,
                rotation_tokens = r.rotation_tokens,
                idempotency_keys = r.idempotency_keys,
                attachments = r.attachments,
                files = r.files,
                webhook_deliveries = r.webhook_deliveries,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "retention: removed expired data"
            ),
            Ok(_) => tracing::debug!("retention: nothing to remove"),
            Err(e) => {
                tracing::warn!(error = %e, "retention: purge failed; retrying at the next interval")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;
    use std::time::Duration;

    const DAY: u64 = 86_400;

    #[tokio::test]
    async fn old_and_orphaned_data_goes_and_the_rest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.retention.message_days = 30;
        config.retention.audit_days = 90;
        let store =
            Store::open(&config.db_path(), StoreOptions::new(config.backups_dir())).unwrap();
        let files = Files::open(&config, || false).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1000 * DAY);
        let at = |days_ago: u64| ms(now - Duration::from_secs(days_ago * DAY));
        let (old, recent, ancient, queued) = (at(31), at(1), at(100), at(20));

        // Two files: one only an old orphan references, one a kept message shows.
        let gone_sha = "aa".repeat(32);
        let kept_sha = "bb".repeat(32);
        for sha in [&gone_sha, &kept_sha] {
            let p = files.path_of(sha);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"bytes").unwrap();
        }
        let (g, k) = (gone_sha.clone(), kept_sha.clone());
        store
            .write(move |conn| {
                conn.execute_batch(&format!(
                    "INSERT INTO users (id, username, display_name, role, password_hash, created_at, updated_at)
                       VALUES (1, 'a', 'A', 'member', 'x', 0, 0);
                     INSERT INTO rooms (id, name, visibility, created_at, updated_at) VALUES (1, 'r', 'public', 0, 0);
                     INSERT INTO messages (id, room_id, author_id, body, created_at) VALUES
                       (1, 1, 1, 'old', {old}), (2, 1, 1, 'recent', {recent});
                     INSERT INTO attachments (id, uploader_id, sha256, size, content_type, name, created_at) VALUES
                       (1, 1, '{g}', 5, 'text/plain', 'a', {old}),
                       (2, 1, '{k}', 5, 'text/plain', 'b', {old}),
                       (3, 1, '{g}', 5, 'text/plain', 'c', {recent});
                     INSERT INTO message_attachments (message_id, attachment_id, position) VALUES (2, 2, 0);
                     INSERT INTO audit_log (at, type, outcome, detail) VALUES ({ancient}, 'x', 'success', '{{}}'), ({recent}, 'y', 'success', '{{}}');
                     INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES
                       ('ended', 1, 0, {ended}), ('live', 1, 0, {live});
                     INSERT INTO invites (code_hash, max_uses, created_at, expires_at) VALUES
                       (x'01', 1, 0, {ended}), (x'02', 1, 0, {live});
                     INSERT INTO idempotency_keys (user_id, key, message_id, created_at) VALUES
                       (1, 'k1', 2, {old}), (1, 'k2', 2, {recent_key});
                     INSERT INTO webhooks (id, url, events, secret, created_at, updated_at)
                       VALUES (1, 'http://ha.lan/', ',message.created,', 's', 0, 0);
                     -- Sent long ago (pruned), sent lately (kept), queued before the messages'
                     -- horizon (pruned with them), queued past the log's 14 days but within the
                     -- messages' 30 (kept: the log's horizon is for sent ones only).
                     INSERT INTO webhook_deliveries
                       (webhook_id, delivery_id, event, body, state, created_at, next_attempt_at, delivered_at)
                       VALUES (1, 'd1', 'message.created', '{{}}', 'delivered', {ancient}, 0, {old}),
                              (1, 'd2', 'message.created', '{{}}', 'delivered', {recent}, 0, {recent}),
                              (1, 'd3', 'message.created', '{{}}', 'pending', {ancient}, 0, NULL),
                              (1, 'd4', 'message.created', '{{}}', 'pending', {queued}, 0, NULL);",
                    ended = (ms(now) / 1000) - 10,
                    live = (ms(now) / 1000) + 3600,
                    recent_key = ms(now) - 1000,
                ))?;
                Ok::<_, ChatError>(())
            })
            .await
            .unwrap();

        let report = run_once(&store, &files, &config, now).await.unwrap();
        assert_eq!(
            report,
            Report {
                messages: 1,
                room_events: 0,
                audit_events: 1,
                sessions: 1,
                invites: 1,
                rotation_tokens: 0,
                idempotency_keys: 1,
                attachments: 1,
                files: 0,
                webhook_deliveries: 2,
            }
        );
        let kept: Vec<String> = store
            .read(|conn| {
                let mut stmt =
                    conn.prepare("SELECT delivery_id FROM webhook_deliveries ORDER BY id")?;
                let ids = stmt.query_map([], |r| r.get(0))?;
                Ok::<_, ChatError>(ids.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(kept, ["d2", "d4"]);
        // Attachment 3 (recent, same content as 1) keeps the file.
        assert!(files.path_of(&gone_sha).exists());
        assert!(files.path_of(&kept_sha).exists());

        // Past the grace period attachment 3 goes too, and with it the file.
        let later = now + Duration::from_secs(2 * DAY);
        let report = run_once(&store, &files, &config, later).await.unwrap();
        assert_eq!((report.attachments, report.files), (1, 1));
        assert!(!files.path_of(&gone_sha).exists());
        assert!(files.path_of(&kept_sha).exists());
        // The search index followed the deleted message.
        let hits: i64 = store
            .read(|conn| {
                Ok::<_, ChatError>(conn.query_row(
                    "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'old'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(hits, 0);
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn old_room_events_go_from_the_front_of_each_log_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.retention.event_days = 30;
        let store =
            Store::open(&config.db_path(), StoreOptions::new(config.backups_dir())).unwrap();
        let files = Files::open(&config, || false).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1000 * DAY);
        let at = |days_ago: u64| ms(now - Duration::from_secs(days_ago * DAY));
        // Room 1: seq 1-3 old, 4 recent, 5 stamped old by a clock that stepped back (kept:
        // deleting it would leave a hole after 4). Room 2: all old. Room 3: all recent.
        let rows = [
            (1, 1, at(40)),
            (1, 2, at(35)),
            (1, 3, at(31)),
            (1, 4, at(2)),
            (1, 5, at(50)),
            (2, 1, at(60)),
            (2, 2, at(45)),
            (3, 1, at(1)),
        ];
        store
            .write(move |conn| {
                conn.execute_batch(
                    "INSERT INTO rooms (id, name, visibility, created_at, updated_at, last_seq) VALUES
                       (1, 'a', 'public', 0, 0, 5), (2, 'b', 'public', 0, 0, 2), (3, 'c', 'public', 0, 0, 1);",
                )?;
                for (room, seq, at) in rows {
                    conn.execute(
                        "INSERT INTO events (room_id, seq, type, at, data) VALUES (?1, ?2, 'room.updated', ?3, '{}')",
                        params![room, seq, at],
                    )?;
                }
                Ok::<_, ChatError>(())
            })
            .await
            .unwrap();

        let report = run_once(&store, &files, &config, now).await.unwrap();
        assert_eq!(report.room_events, 5);
        let kept: Vec<(i64, i64)> = store
            .read(|conn| {
                let mut stmt =
                    conn.prepare("SELECT room_id, seq FROM events ORDER BY room_id, seq")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok::<_, ChatError>(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(kept, vec![(1, 4), (1, 5), (3, 1)]);
        // What resume sees: room 1 replays from cursor 3 on, not from 2; room 2 only from its
        // newest (nothing missed).
        let (one, two) = store
            .read(|conn| {
                Ok::<_, ChatError>((
                    crate::chat::events::position(conn, 1)?.unwrap(),
                    crate::chat::events::position(conn, 2)?.unwrap(),
                ))
            })
            .await
            .unwrap();
        assert!(crate::chat::events::replayable(3, one));
        assert!(!crate::chat::events::replayable(2, one));
        assert!(crate::chat::events::replayable(2, two));
        assert!(!crate::chat::events::replayable(1, two));

        // 0 prunes by count only.
        config.retention.event_days = 0;
        let later = now + Duration::from_secs(400 * DAY);
        assert_eq!(
            run_once(&store, &files, &config, later)
                .await
                .unwrap()
                .room_events,
            0
        );
        store.close().await.unwrap();
    }
}
