//! Full-text search over messages (SQLite FTS5, migration 0005) and `roost search rebuild`.
//!
//! The index is kept in step with `messages` inside the same transaction as every insert,
//! edit, tombstone and delete: triggers queue each change (migration 0007) and the writer
//! applies the queue at the end of each batch, before COMMIT
//! (`store::migrations::BEFORE_COMMIT`). A query only ever returns messages of rooms the
//! caller is a member of (admins: every room but direct messages), and never tombstones. The caller's words are
//! turned into quoted FTS5 terms, so no input can be read as FTS5 syntax (`AND`, `NEAR`,
//! `col:`...).
//!
//! The last word also matches longer words that start with it, for search-as-you-type. This
//! never uses FTS5's prefix queries (`"word"*`): those merge the postings of every matching
//! word into one buffer as large as their share of the history. Instead the index's
//! vocabulary (migration 0008) gives at most [`PREFIX_WORDS`] whole words, which FTS5 reads
//! one posting at a time.

use axum::extract::State;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::messages::MessageView;
use super::ChatError;
use crate::api::AppState;
use crate::auth::{Principal, Role};
use crate::http::{ApiError, Json, Query};

pub const MAX_RESULTS: usize = 100;
const DEFAULT_RESULTS: usize = 20;
/// Words of a query that are used; the rest are ignored.
const MAX_TERMS: usize = 16;
/// Matches ranked per query at most: the newest this many the caller may read, best first.
/// Ranking every match made a search of a common word cost time and memory in proportion to
/// the whole history (the soak: 36 ms median, 192 ms p99 at 300,000 messages, and the
/// daemon's RSS grew with it); walking the index newest first and stopping here bounds both.
pub const RANK_WINDOW: usize = 1000;
/// Longer words the last word of a query may stand for: the most used of the first
/// [`PREFIX_SCAN`] (in byte order) that start with it. A short prefix of a large vocabulary
/// matches more; typing on narrows it.
pub const PREFIX_WORDS: usize = 32;
/// Vocabulary entries read per query at most, to choose the [`PREFIX_WORDS`].
const PREFIX_SCAN: usize = 256;

/// What a person typed, as the words to find: each one quoted when it becomes FTS5 syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    words: Vec<String>,
}

impl Terms {
    /// The words of `text` (at most [`MAX_TERMS`]); `None` when nothing searchable is left.
    pub fn parse(text: &str) -> Option<Terms> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(MAX_TERMS)
            .map(str::to_owned)
            .collect();
        (!words.is_empty()).then_some(Terms { words })
    }

    /// The FTS5 expression: every word, the last one or any of `longer` in its place.
    fn expression(&self, longer: &[String]) -> String {
        let mut out = String::new();
        let (last, rest) = self
            .words
            .split_last()
            .expect("parse never makes empty Terms");
        for w in rest {
            push_quoted(&mut out, w);
            // FTS5 joins phrases with an implicit AND, but not a phrase and a group.
            out.push_str(" AND ");
        }
        out.push('(');
        push_quoted(&mut out, last);
        for w in longer {
            out.push_str(" OR ");
            push_quoted(&mut out, w);
        }
        out.push(')');
        out
    }

    /// Indexed words that start with the last word and are longer than it, most used first
    /// (at most [`PREFIX_WORDS`]). The index folds case and Latin diacritics; [`fold`] does the
    /// same here. A word it folds differently finds no longer words, only itself.
    fn longer_words(&self, conn: &Connection) -> rusqlite::Result<Vec<String>> {
        let prefix = fold(self.words.last().expect("parse never makes empty Terms"));
        // fts5vocab serves `term >= ? AND term <= ?` from the index, and reads nothing past
        // the LIMIT. U+10FFFF sorts after every character that can follow the prefix.
        let mut stmt = conn.prepare_cached(
            "SELECT term FROM (
                SELECT term, doc FROM messages_fts_vocab
                 WHERE term > ?1 AND term <= ?2
                 LIMIT ?3)
              ORDER BY doc DESC, term LIMIT ?4",
        )?;
        let words = stmt.query_map(
            params![
                prefix,
                format!("{prefix}\u{10FFFF}"),
                i64::try_from(PREFIX_SCAN).unwrap_or(i64::MAX),
                i64::try_from(PREFIX_WORDS).unwrap_or(i64::MAX),
            ],
            |r| r.get::<_, String>(0),
        )?;
        words.collect()
    }
}

fn push_quoted(out: &mut String, word: &str) {
    out.push('"');
    out.push_str(&word.replace('"', "\"\""));
    out.push('"');
}

/// A word as the index stores it (tokenizer `unicode61 remove_diacritics 2`): lower case,
/// and the Latin-1 and Latin Extended-A letters without their accents.
fn fold(word: &str) -> String {
    word.chars()
        .flat_map(char::to_lowercase)
        .map(base_letter)
        .collect()
}

/// The letter under an accent, for the lower-case letters of Latin-1 and Latin Extended-A
/// that Unicode decomposes into a base letter and a combining mark. Others are unchanged.
fn base_letter(c: char) -> char {
    match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' => 'd',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' => 'h',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò'..='ö' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' => 't',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The words to find (all of them; the last also as the start of a longer word).
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
    terms: &Terms,
    room_id: Option<i64>,
    limit: usize,
) -> Result<Vec<MessageView>, ChatError> {
    let expr = terms.expression(&terms.longer_words(conn)?);
    // The inner query walks the index newest first (FTS5 serves `ORDER BY rowid DESC` itself)
    // and stops after RANK_WINDOW readable matches; only those are ranked.
    let mut stmt = conn.prepare_cached(
        "SELECT id, room_id FROM (
            SELECT m.id AS id, m.room_id AS room_id, f.rank AS rank
              FROM messages_fts f JOIN messages m ON m.id = f.rowid
             WHERE messages_fts MATCH ?1
               AND m.deleted_at IS NULL
               AND (?2 IS NULL OR m.room_id = ?2)
               AND ((?4 AND m.room_id IN (SELECT id FROM rooms WHERE kind = 'room'))
                    OR m.room_id IN (SELECT room_id FROM room_members WHERE user_id = ?3))
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
        (status = 200, description = "Matching messages in rooms the caller is in (admins: all but direct \
         messages, which only their two people read), \
         best first", body = Results),
        (status = 400, description = "`q` missing or without words, or a bad value \
         (`invalid_query`)", body = crate::http::ErrorBody),
    )
)]
pub async fn handler(
    State(app): State<AppState>,
    who: Principal,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Results>, ApiError> {
    let Some(terms) = Terms::parse(&q.q) else {
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
                &terms,
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
            return crate::exit::EXIT_FAILURE;
        }
    };
    runtime.block_on(async {
        let store = match Store::open(&config.db_path(), StoreOptions::new(config.backups_dir())) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("roost: database {}: {e}", config.db_path().display());
                return crate::exit::EXIT_FAILURE;
            }
        };
        let started = std::time::Instant::now();
        let code = match store.write(rebuild).await {
            Ok(n) => {
                println!(
                    "search index rebuilt: {n} messages in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                crate::exit::EXIT_OK
            }
            Err(e) => {
                eprintln!("roost: rebuilding the search index: {e}");
                crate::exit::EXIT_FAILURE
            }
        };
        if let Err(e) = store.close().await {
            eprintln!("roost: closing the database: {e}");
            return crate::exit::EXIT_FAILURE;
        }
        code
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions};

    /// A store in a temporary directory with one public room (id 1) holding `bodies`, oldest
    /// first.
    async fn room_with(bodies: Vec<String>) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("roost.sqlite3"),
            StoreOptions::new(dir.path().join("backups")),
        )
        .unwrap();
        store
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO rooms (id, name, visibility, created_at, updated_at)
                     VALUES (1, 'r', 'public', 0, 0)",
                    [],
                )?;
                let mut post = conn.prepare(
                    "INSERT INTO messages (room_id, body, created_at) VALUES (1, ?1, 0)",
                )?;
                for body in &bodies {
                    post.execute([body])?;
                }
                Ok::<_, ChatError>(())
            })
            .await
            .unwrap();
        (dir, store)
    }

    /// Found by `scripts/robustness/soak.py`: a common word matched every message and all of
    /// them were ranked. Now the best matches among the newest RANK_WINDOW come first.
    #[tokio::test]
    async fn many_matches_are_ranked_among_the_newest() {
        // The best possible match, but older than the window; then the window's worth of
        // weaker matches; then the best match inside the window.
        let mut bodies = vec!["kettle".to_string()];
        bodies.extend(
            (0..RANK_WINDOW + 10)
                .map(|i| format!("the kettle is on, and more words to dilute it {i}")),
        );
        bodies.push("kettle kettle".into());
        let (_dir, store) = room_with(bodies).await;
        let hits = store
            .read(|conn| search(conn, 1, true, &Terms::parse("kettle").unwrap(), None, 5))
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
        let expr = |q: &str, longer: &[&str]| {
            let longer: Vec<String> = longer.iter().map(|w| w.to_string()).collect();
            Terms::parse(q).map(|t| t.expression(&longer))
        };
        assert_eq!(
            expr("hello world", &["worlds"]).as_deref(),
            Some("\"hello\" AND (\"world\" OR \"worlds\")")
        );
        assert_eq!(
            expr("a AND b OR NEAR(c)", &[]).as_deref(),
            Some("\"a\" AND \"AND\" AND \"b\" AND \"OR\" AND \"NEAR\" AND (\"c\")")
        );
        assert_eq!(
            expr("body:x\"y", &[]).as_deref(),
            Some("\"body\" AND \"x\" AND (\"y\")")
        );
        assert_eq!(expr("  ::  ", &[]), None);
        assert_eq!(expr("grüße", &[]).as_deref(), Some("(\"grüße\")"));
        assert_eq!(fold("GRÜßE Ça Žluťoučký"), "gruße ca zlutoucky");
    }

    /// The last word stands for the longer words that start with it, folded as the index
    /// folds them, the most used first, never more than PREFIX_WORDS of them.
    #[tokio::test]
    async fn the_last_word_finds_a_bounded_set_of_longer_words() {
        let mut bodies = vec!["Grüße aus Köln".to_string(), "tea time".into()];
        // `teapot` is the most used of many rare `tea…` words (which sort after it).
        bodies.extend(std::iter::repeat_n("the teapot".to_string(), 3));
        bodies.extend((0..PREFIX_SCAN + 50).map(|i| format!("teaz{i:04}")));
        let (_dir, store) = room_with(bodies).await;
        let find = |q: &'static str| {
            let store = store.clone();
            async move {
                store
                    .read(move |conn| {
                        let terms = Terms::parse(q).unwrap();
                        let longer = terms.longer_words(conn)?;
                        let hits = search(conn, 1, true, &terms, None, MAX_RESULTS)?;
                        let bodies: Vec<String> = hits.into_iter().map(|m| m.body).collect();
                        Ok::<_, ChatError>((longer, bodies))
                    })
                    .await
                    .unwrap()
            }
        };

        let (longer, _) = find("tea").await;
        assert_eq!(longer.len(), PREFIX_WORDS, "{longer:?}");
        assert_eq!(longer[0], "teapot", "most used first: {longer:?}");
        assert!(!longer.contains(&"tea".to_string()), "{longer:?}");

        let (_, bodies) = find("the TEAP").await;
        assert_eq!(bodies.len(), 3, "{bodies:?}");
        assert!(bodies.iter().all(|b| b == "the teapot"));

        let (_, bodies) = find("gru").await;
        assert_eq!(bodies, ["Grüße aus Köln"]);
        let (_, bodies) = find("Grü").await;
        assert_eq!(bodies, ["Grüße aus Köln"]);
        let (_, bodies) = find("koln").await;
        assert_eq!(bodies, ["Grüße aus Köln"]);

        let (longer, bodies) = find("zebra").await;
        assert!(longer.is_empty() && bodies.is_empty());
        store.close().await.unwrap();
    }
}
