//! Full-text search over messages (SQLite FTS5, migration 0005) and `roost search rebuild`.
//!
//! The index is kept in step with `messages` inside the same transaction as every insert,
//! edit, tombstone and delete: triggers queue each change (migration 0007) and the writer
//! applies the queue at the end of each batch, before COMMIT (`store::migrations::BEFORE_COMMIT`). A query only ever returns messages of rooms the caller
//! is a member of (admins: every room), and never tombstones. The caller's words are turned
//! into quoted FTS5 terms, so no input can be read as FTS5 syntax (`AND`, `NEAR`, `col:`...);
//! the last word also matches as a prefix, for search-as-you-type.

use axum::extract::State;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::messages::MessageView;
use super::ChatError;
use crate::api::{ApiError, AppState, Json, Query};
use crate::auth::{Principal, Role};

pub const MAX_RESULTS: usize = 100;
const DEFAULT_RESULTS: usize = 20;
/// Words of a query that are used; the rest are ignored.
const MAX_TERMS: usize = 16;
/// Matches ranked per query at most: the newest this many the caller may read, best first.
/// Ranking every match made a search of a common word cost time and memory in proportion to
/// the whole history (the soak: 36 ms median, 192 ms p99 at 300,000 messages, and the
/// daemon's RSS grew with it); walking the index newest first and stopping here bounds both.
pub const RANK_WINDOW: usize = 1000;

/// The FTS5 expression for what a person typed: every word quoted (AND), the last as prefix.
/// `None` when nothing searchable is left.
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_TERMS)
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    let last = words.len().checked_sub(1)?;
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(w);
        if i == last {
            out.push('*');
        }
    }
    Some(out)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The words to find (all of them; the last also as a prefix).
    #[param(min_length = 1)]
    pub q: String,
    /// Only this room.
    pub room_id: Option<i64>,
    /// 1 to 100 (default 20; other values are clamped).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SearchResults)]
pub struct Results {
    /// Best matches first.
    pub messages: Vec<MessageView>,
}

/// Matching messages the caller may read, best first among the newest [`RANK_WINDOW`].
pub fn search(
    conn: &Connection,
    user_id: i64,
    admin: bool,
    expr: &str,
    room_id: Option<i64>,
    limit: usize,
) -> Result<Vec<MessageView>, ChatError> {
    // The inner query walks the index newest first (FTS5 serves `ORDER BY rowid DESC` itself)
    // and stops after RANK_WINDOW readable matches; only those are ranked.
    let mut stmt = conn.prepare_cached(
        "SELECT id, room_id FROM (
            SELECT m.id AS id, m.room_id AS room_id, f.rank AS rank
              FROM messages_fts f JOIN messages m ON m.id = f.rowid
             WHERE messages_fts MATCH ?1
               AND m.deleted_at IS NULL
               AND (?2 IS NULL OR m.room_id = ?2)
               AND (?4 OR m.room_id IN (SELECT room_id FROM room_members WHERE user_id = ?3))
             ORDER BY f.rowid DESC LIMIT ?6)
          ORDER BY rank LIMIT ?5",
    )?;
    let ids = stmt.query_map(
        params![
            expr,
            room_id,
            user_id,
            admin,
            i64::try_from(limit).unwrap_or(i64::MAX),
            i64::try_from(RANK_WINDOW).unwrap_or(i64::MAX)
        ],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let mut out = Vec::new();
    for row in ids {
        let (id, room) = row?;
        out.push(super::messages::load(conn, room, id)?);
    }
    Ok(out)
}

/// `GET /api/v1/search?q=&room_id=&limit=`.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    operation_id = "searchMessages",
    summary = "Search messages",
    tag = "messages",
    params(SearchQuery),
    responses(
        (status = 200, description = "Matching messages in rooms the caller is in (admins: all), \
         best first", body = Results),
        (status = 400, description = "`q` missing or without words, or a bad value \
         (`invalid_query`)", body = crate::api::ErrorBody),
    )
)]
pub async fn handler(
    State(app): State<AppState>,
    who: Principal,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Results>, ApiError> {
    let Some(expr) = fts_query(&q.q) else {
        return Err(ChatError::invalid("invalid_query", "`q` has no words to search for").into());
    };
    let limit = q.limit.unwrap_or(DEFAULT_RESULTS).clamp(1, MAX_RESULTS);
    let messages = app
        .store
        .read(move |conn| {
            search(
                conn,
                who.user_id,
                who.role == Role::Admin,
                &expr,
                q.room_id,
                limit,
            )
        })
        .await?;
    Ok(Json(Results { messages }))
}

/// Rebuilds the index from `messages` (for `roost search rebuild`); returns indexed rows.
pub fn rebuild(conn: &Connection) -> Result<i64, ChatError> {
    conn.execute(
        "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
        [],
    )?;
    // Changes queued by earlier jobs of this batch are in the rebuilt index already;
    // applying them again at the end of the batch would index those messages twice.
    conn.execute("DELETE FROM search_queue", [])?;
    Ok(conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?)
}

/// `roost search rebuild`: opens the database beside a running daemon (SQLite serialises the
/// two writers) and rebuilds the index. Returns the exit code.
pub fn rebuild_command(config: &crate::config::Config) -> u8 {
    use crate::store::{Store, StoreOptions};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roost: cannot start the async runtime: {e}");
            return crate::cli::EXIT_FAILURE;
        }
    };
    runtime.block_on(async {
        let store = match Store::open(&config.db_path(), StoreOptions::new(config.backups_dir())) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("roost: database {}: {e}", config.db_path().display());
                return crate::cli::EXIT_FAILURE;
            }
        };
        let started = std::time::Instant::now();
        let code = match store.write(rebuild).await {
            Ok(n) => {
                println!(
                    "search index rebuilt: {n} messages in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                crate::cli::EXIT_OK
            }
            Err(e) => {
                eprintln!("roost: rebuilding the search index: {e}");
                crate::cli::EXIT_FAILURE
            }
        };
        if let Err(e) = store.close().await {
            eprintln!("roost: closing the database: {e}");
            return crate::cli::EXIT_FAILURE;
        }
        code
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions};

    /// Found by `scripts/robustness/soak.py`: a common word matched every message and all of
    /// them were ranked. Now the best matches among the newest RANK_WINDOW come first.
    #[tokio::test]
    async fn many_matches_are_ranked_among_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("roost.sqlite3"),
            StoreOptions::new(dir.path().join("backups")),
        )
        .unwrap();
        store
            .write(|conn| {
                conn.execute(
                    "INSERT INTO rooms (id, name, visibility, created_at, updated_at)
                     VALUES (1, 'r', 'public', 0, 0)",
                    [],
                )?;
                let mut post = conn.prepare(
                    "INSERT INTO messages (room_id, body, created_at) VALUES (1, ?1, 0)",
                )?;
                // The best possible match, but older than the window.
                post.execute(["kettle"])?;
                for i in 0..RANK_WINDOW + 10 {
                    post.execute([format!("the kettle is on, and more words to dilute it {i}")])?;
                }
                // The best match inside the window.
                post.execute(["kettle kettle"])?;
                Ok::<_, ChatError>(())
            })
            .await
            .unwrap();
        let hits = store
            .read(|conn| search(conn, 1, true, "\"kettle\"*", None, 5))
            .await
            .unwrap();
        let bodies: Vec<&str> = hits.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies.len(), 5);
        assert_eq!(bodies[0], "kettle kettle", "best first: {bodies:?}");
        assert!(
            !bodies.contains(&"kettle"),
            "ranked beyond the window: {bodies:?}"
        );
        store.close().await.unwrap();
    }

    /// Inserts, edits and deletes spread over concurrent write jobs (so over shared batches):
    /// afterwards the index matches `messages` exactly and the queue is empty.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_index_follows_every_change_made_in_shared_batches() {
        use crate::store::{Store, StoreOptions};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("roost.sqlite3"),
            StoreOptions::new(dir.path().join("backups")),
        )
        .unwrap();
        store
            .write(|conn| {
                conn.execute_batch(
                    "INSERT INTO users (id, username, display_name, role, password_hash, created_at,
                                        updated_at)
                       VALUES (1, 'ada', 'Ada', 'admin', 'x', 0, 0);
                     INSERT INTO rooms (id, name, visibility, created_at, updated_at)
                       VALUES (1, 'r', 'public', 0, 0);",
                )?;
                Ok::<_, ChatError>(())
            })
            .await
            .unwrap();
        let jobs = (1..=60).map(|i: i64| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |conn| {
                        conn.execute(
                            "INSERT INTO messages (id, room_id, author_id, body, created_at)
                             VALUES (?1, 1, 1, ?2, 0)",
                            params![i, format!("apple number{i}")],
                        )?;
                        if i % 3 == 0 {
                            conn.execute(
                                "UPDATE messages SET body = ?2 WHERE id = ?1",
                                params![i, format!("pear number{i}")],
                            )?;
                        }
                        if i % 5 == 0 {
                            conn.execute("DELETE FROM messages WHERE id = ?1", [i])?;
                        }
                        if i % 7 == 0 {
                            // A job that fails after changing a message: its queued index
                            // changes must be rolled back with it.
                            conn.execute("UPDATE messages SET body = 'ghost' WHERE id = ?1", [i])?;
                            return Err(ChatError::NotFound);
                        }
                        Ok(())
                    })
                    .await
            })
        });
        for job in jobs.collect::<Vec<_>>() {
            let _ = job.await.unwrap();
        }
        store
            .write(|conn| {
                conn.execute(
                    "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')",
                    [],
                )?;
                Ok::<_, ChatError>(())
            })
            .await
            .expect("the index matches the messages table");
        let (apples, pears, ghosts, queued) = store
            .read(|conn| {
                let count = |q: &str| -> rusqlite::Result<i64> {
                    conn.query_row(
                        "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?1",
                        [q],
                        |r| r.get(0),
                    )
                };
                let queued: i64 =
                    conn.query_row("SELECT count(*) FROM search_queue", [], |r| r.get(0))?;
                Ok::<_, ChatError>((count("apple")?, count("pear")?, count("ghost")?, queued))
            })
            .await
            .unwrap();
        let kept = |keep: &dyn Fn(i64) -> bool| {
            (1..=60)
                .filter(|i| i % 7 != 0 && i % 5 != 0 && keep(*i))
                .count() as i64
        };
        assert_eq!(apples, kept(&|i| i % 3 != 0));
        assert_eq!(pears, kept(&|i| i % 3 == 0));
        assert_eq!(ghosts, 0);
        assert_eq!(queued, 0);
        store.close().await.unwrap();
    }

    #[test]
    fn queries_are_quoted_terms_never_syntax() {
        assert_eq!(
            fts_query("hello world").as_deref(),
            Some("\"hello\" \"world\"*")
        );
        assert_eq!(
            fts_query("a AND b OR NEAR(c)").as_deref(),
            Some("\"a\" \"AND\" \"b\" \"OR\" \"NEAR\" \"c\"*")
        );
        assert_eq!(
            fts_query("body:x\"y").as_deref(),
            Some("\"body\" \"x\" \"y\"*")
        );
        assert_eq!(fts_query("  ::  "), None);
        assert_eq!(fts_query("grüße").as_deref(), Some("\"grüße\"*"));
    }
}
