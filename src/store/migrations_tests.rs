//! Migration rules on real files in a temp dir.

use rusqlite::OptionalExtension;

use super::*;
use std::collections::BTreeMap;

static TWO_STEPS: &[Migration] = &[
    Migration {
        version: 1,
        name: "notes",
        sql: "CREATE TABLE notes (body TEXT NOT NULL);",
    },
    Migration {
        version: 2,
        name: "tags",
        sql: "CREATE TABLE tags (name TEXT NOT NULL);",
    },
];

static SECOND_STEP_BROKEN: &[Migration] = &[
    Migration {
        version: 1,
        name: "notes",
        sql: "CREATE TABLE notes (body TEXT NOT NULL);",
    },
    Migration {
        version: 2,
        name: "broken",
        sql: "CREATE TABLE tags (name TEXT NOT NULL); INSERT INTO nowhere VALUES (1);",
    },
];

struct Dirs {
    _root: tempfile::TempDir,
    db: PathBuf,
    backups: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    Dirs {
        db: root.path().join("roost.sqlite3"),
        backups: root.path().join("backups"),
        _root: root,
    }
}

fn version_of(path: &Path) -> u32 {
    user_version(&Connection::open(path).unwrap()).unwrap()
}

fn table_exists(path: &Path, table: &str) -> bool {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

#[test]
fn production_migrations_are_numbered_from_one_without_gaps() {
    check_order(MIGRATIONS);
    assert!(MIGRATIONS
        .iter()
        .all(|migration| !migration.name.is_empty()));
}

#[test]
fn a_fresh_database_gets_every_migration_and_no_snapshot() {
    let dirs = dirs();
    let report = apply(&dirs.db, &dirs.backups).unwrap();

    assert_eq!(
        report,
        MigrationReport {
            from: 0,
            to: latest(MIGRATIONS),
            snapshot: None
        }
    );
    assert_eq!(version_of(&dirs.db), latest(MIGRATIONS));
    assert!(table_exists(&dirs.db, "settings"));
    assert!(!dirs.backups.exists());
}

#[test]
fn status_of_a_missing_file_does_not_create_it() {
    let dirs = dirs();
    let status = status(&dirs.db).unwrap();

    assert_eq!(status.current, 0);
    assert_eq!(status.latest, latest(MIGRATIONS));
    let all: Vec<(u32, &str)> = MIGRATIONS.iter().map(|m| (m.version, m.name)).collect();
    assert_eq!(status.pending, all);
    assert_eq!(status.pending[0], (1, "settings"));
    assert!(!dirs.db.exists());
}

#[test]
fn status_lists_what_is_pending_and_changes_nothing() {
    let dirs = dirs();
    apply_with(&dirs.db, &dirs.backups, &TWO_STEPS[..1]).unwrap();

    let status = status_with(&dirs.db, TWO_STEPS).unwrap();

    assert_eq!(
        status,
        MigrationStatus {
            current: 1,
            latest: 2,
            pending: vec![(2, "tags")]
        }
    );
    assert_eq!(version_of(&dirs.db), 1);
}

#[test]
fn a_schema_newer_than_this_binary_is_refused_untouched() {
    let dirs = dirs();
    Connection::open(&dirs.db)
        .unwrap()
        .pragma_update(None, "user_version", 9)
        .unwrap();

    let refused = apply_with(&dirs.db, &dirs.backups, TWO_STEPS).unwrap_err();
    assert!(matches!(
        refused,
        StoreError::SchemaTooNew { found: 9, known: 2 }
    ));
    assert!(matches!(
        status_with(&dirs.db, TWO_STEPS),
        Err(StoreError::SchemaTooNew { found: 9, known: 2 })
    ));
    assert_eq!(version_of(&dirs.db), 9);
    assert!(!dirs.backups.exists(), "no snapshot of a refused database");
}

#[test]
fn a_failing_migration_is_rolled_back_and_stops_the_run() {
    let dirs = dirs();
    apply_with(&dirs.db, &dirs.backups, &SECOND_STEP_BROKEN[..1]).unwrap();

    let failed = apply_with(&dirs.db, &dirs.backups, SECOND_STEP_BROKEN).unwrap_err();

    assert!(matches!(
        failed,
        StoreError::Migration {
            version: 2,
            name: "broken",
            ..
        }
    ));
    assert_eq!(version_of(&dirs.db), 1);
    assert!(!table_exists(&dirs.db, "tags"), "half a migration stayed");
}

#[test]
fn no_snapshot_means_no_migration() {
    let dirs = dirs();
    apply_with(&dirs.db, &dirs.backups, &TWO_STEPS[..1]).unwrap();
    // A file where the backups directory should be: the snapshot cannot be written.
    std::fs::write(&dirs.backups, b"in the way").unwrap();

    let failed = apply_with(&dirs.db, &dirs.backups, TWO_STEPS).unwrap_err();

    assert!(matches!(failed, StoreError::Snapshot { .. }), "{failed:?}");
    assert_eq!(version_of(&dirs.db), 1);
    assert!(!table_exists(&dirs.db, "tags"));
}

#[test]
fn the_backups_dir_is_created_private() {
    use std::os::unix::fs::PermissionsExt;

    let dirs = dirs();
    apply_with(&dirs.db, &dirs.backups, &TWO_STEPS[..1]).unwrap();
    let report = apply_with(&dirs.db, &dirs.backups, TWO_STEPS).unwrap();

    assert!(report.snapshot.is_some());
    let mode = std::fs::metadata(&dirs.backups)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn memberships_from_before_migration_9_count_as_invited_only_where_nobody_enters_alone() {
    let dirs = dirs();
    apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..8]).unwrap();
    let conn = Connection::open(&dirs.db).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, username, display_name, role, password_hash, created_at, updated_at)
         VALUES (1, 'ann', 'ann', 'member', 'x', 0, 0), (2, 'bo', 'bo', 'member', 'x', 0, 0),
                (3, 'gus', 'gus', 'guest', 'x', 0, 0);
         INSERT INTO rooms (id, name, visibility, created_by, created_at, updated_at)
         VALUES (10, 'lobby', 'public', 1, 0, 0), (20, 'secret', 'private', 1, 0, 0);
         INSERT INTO room_members (room_id, user_id, role, joined_at)
         VALUES (10, 1, 'owner', 0), (10, 2, 'member', 0), (10, 3, 'member', 0),
                (20, 1, 'owner', 0), (20, 2, 'member', 0), (20, 3, 'member', 0);",
    )
    .unwrap();
    drop(conn);

    apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..9]).unwrap();

    let conn = Connection::open(&dirs.db).unwrap();
    let invited: Vec<(i64, i64, bool)> = conn
        .prepare("SELECT room_id, user_id, invited FROM room_members ORDER BY room_id, user_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        invited,
        vec![
            // Public: the creator and a member who may have joined alone are not; a guest
            // keeps what it has.
            (10, 1, false),
            (10, 2, false),
            (10, 3, true),
            // Private: everyone but the creator was let in by someone.
            (20, 1, false),
            (20, 2, true),
            (20, 3, true),
        ]
    );
    // New memberships say it themselves; the column takes only 0 and 1.
    let refused = conn
        .execute(
            "INSERT INTO room_members (room_id, user_id, role, invited, joined_at)
             VALUES (20, 4, 'member', 2, 0)",
            [],
        )
        .unwrap_err();
    assert!(
        refused.to_string().contains("CHECK constraint failed"),
        "{refused}"
    );
}

/// Every row of every table but `sqlite_sequence`, as text, to compare a database before and
/// after a migration.
fn all_rows(conn: &Connection) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
              AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'messages_fts%' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|table| {
            let rows = conn
                .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1, 2"))
                .unwrap()
                .query_map([], |r| {
                    let n = r.as_ref().column_count();
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .collect::<Result<Vec<String>, _>>()
                .unwrap();
            (table, rows)
        })
        .collect()
}

/// The schema objects (indexes, triggers, views) SQLite keeps, by name, with their SQL.
fn schema_objects(conn: &Connection) -> Vec<(String, String, Option<String>)> {
    conn.prepare(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger', 'view')
         ORDER BY type, name",
    )
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn foreign_keys_to_users(conn: &Connection) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for table in [
        "sessions",
        "invites",
        "api_keys",
        "rooms",
        "room_members",
        "messages",
    ] {
        let mut list = conn
            .prepare(&format!("PRAGMA foreign_key_list(\"{table}\")"))
            .unwrap();
        let rows = list
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (parent, from, on_delete) = row.unwrap();
            if parent == "users" {
                found.push((format!("{table}.{from}"), parent, on_delete));
            }
        }
    }
    found
}

#[test]
fn migration_10_gives_users_autoincrement_keeping_every_row_and_reference() {
    let dirs = dirs();
    apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..9]).unwrap();
    let conn = Connection::open(&dirs.db).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         INSERT INTO users (id, username, display_name, role, password_hash, disabled, created_at, updated_at)
         VALUES (1, 'ann', 'Ann', 'admin', '$argon2id$a', 0, 10, 11),
                (2, 'bo', 'Bo', 'member', '$argon2id$b', 1, 20, 21),
                (7, 'gus', 'Gus', 'guest', '$argon2id$g', 0, 30, 31);
         INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ('s1', 2, 0, 99);
         INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
         VALUES (x'01', 's1', 0, 99);
         INSERT INTO invites (id, code_hash, created_by, max_uses, created_at, expires_at)
         VALUES (1, x'02', 1, 3, 0, 99);
         INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, last_four, scopes, created_at)
         VALUES (1, 7, 'bot', 'abcd', x'03', 'wxyz', 'read', 0);
         INSERT INTO rooms (id, name, visibility, created_by, created_at, updated_at)
         VALUES (10, 'lobby', 'public', 1, 0, 0);
         INSERT INTO room_members (room_id, user_id, role, joined_at, invited)
         VALUES (10, 1, 'owner', 0, 0), (10, 7, 'member', 0, 1);
         INSERT INTO messages (id, room_id, author_id, body, created_at) VALUES (1, 10, 7, 'hi', 0);",
    )
    .unwrap();
    // Before: deleting the newest account frees its id for the next one.
    conn.execute_batch(
        "INSERT INTO users (id, username, display_name, role, password_hash, created_at, updated_at)
         VALUES (8, 'tmp', 'tmp', 'member', 'x', 0, 0);
         DELETE FROM users WHERE id = 8;",
    )
    .unwrap();
    let rows_before = all_rows(&conn);
    let objects_before = schema_objects(&conn);
    let references_before = foreign_keys_to_users(&conn);
    assert_eq!(references_before.len(), 6, "{references_before:?}");
    drop(conn);

    let report = apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..10]).unwrap();
    assert_eq!((report.from, report.to), (9, 10));

    let conn = Connection::open(&dirs.db).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    assert_eq!(all_rows(&conn), rows_before, "every row and id is kept");
    assert_eq!(
        schema_objects(&conn),
        objects_before,
        "indexes and triggers are kept"
    );
    assert_eq!(foreign_keys_to_users(&conn), references_before);
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("AUTOINCREMENT"), "{sql}");
    assert_eq!(first_dangling_reference(&conn).unwrap(), None);

    // After: an id once used is never handed out again.
    conn.execute_batch(
        "INSERT INTO users (username, display_name, role, password_hash, created_at, updated_at)
         VALUES ('tmp', 'tmp', 'member', 'x', 0, 0);",
    )
    .unwrap();
    let newest = conn.last_insert_rowid();
    assert_eq!(
        newest, 8,
        "8 was freed before the migration, which had no sequence"
    );
    conn.execute("DELETE FROM users WHERE id = 8", []).unwrap();
    conn.execute(
        "INSERT INTO users (username, display_name, role, password_hash, created_at, updated_at)
         VALUES ('next', 'next', 'member', 'x', 0, 0)",
        [],
    )
    .unwrap();
    assert_eq!(conn.last_insert_rowid(), 9, "8 is not reused");
    // The constraints came along: UNIQUE usernames, CHECKed roles, foreign keys that hold.
    assert!(conn
        .execute(
            "INSERT INTO users (username, display_name, role, password_hash, created_at, updated_at)
             VALUES ('ann', 'x', 'member', 'x', 0, 0)",
            [],
        )
        .is_err());
    assert!(conn
        .execute(
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ('s2', 404, 0, 9)",
            [],
        )
        .is_err());
    // ON DELETE CASCADE still reaches the sessions and tokens of a deleted account.
    conn.execute("DELETE FROM users WHERE id = 2", []).unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM refresh_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

static LEAVES_A_DANGLING_REFERENCE: &[Migration] = &[
    Migration {
        version: 1,
        name: "parents",
        sql: "CREATE TABLE parents (id INTEGER PRIMARY KEY);
              CREATE TABLE children (parent INTEGER REFERENCES parents (id));
              INSERT INTO parents VALUES (1); INSERT INTO children VALUES (1);",
    },
    Migration {
        version: 2,
        name: "drops_a_parent",
        sql: "DELETE FROM parents;",
    },
];

#[test]
fn a_migration_that_breaks_a_foreign_key_is_rolled_back() {
    let dirs = dirs();
    let err = apply_with(&dirs.db, &dirs.backups, LEAVES_A_DANGLING_REFERENCE).unwrap_err();
    assert_eq!(err.to_string(), "migration 2 (drops_a_parent) failed");
    let cause = std::error::Error::source(&err).map(|e| e.to_string());
    assert!(
        cause
            .as_deref()
            .is_some_and(|c| c.contains("rowid 1 of children refers to a missing row of parents")),
        "{cause:?}"
    );
    assert_eq!(version_of(&dirs.db), 1);
    let conn = Connection::open(&dirs.db).unwrap();
    let parents: i64 = conn
        .query_row("SELECT count(*) FROM parents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(parents, 1, "the step was rolled back");
}

#[test]
fn migration_11_keeps_the_oldest_claim_to_a_look_alike_name_and_demotes_guest_moderators() {
    let dirs = dirs();
    apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..10]).unwrap();
    let conn = Connection::open(&dirs.db).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, username, display_name, role, password_hash, created_at, updated_at)
         VALUES (1, 'alice', 'Alice', 'member', 'x', 0, 0),
                -- Looks like alice once case-folded: the older account keeps it.
                (2, 'mallory', 'ALICE', 'member', 'x', 0, 0),
                -- A direction override: refused by the new rule.
                (3, 'bob', 'bob' || char(8238) || 'gpj', 'member', 'x', 0, 0),
                -- Fullwidth letters: stored in NFKC.
                (4, 'carol', 'Ｃａｒｏｌ', 'member', 'x', 0, 0),
                -- A username like an older one (1 for l): kept, without a claim.
                (5, 'a1ice', 'a1ice', 'guest', 'x', 0, 0),
                -- A display name like a newer account's username: the username wins.
                (6, 'dave', 'Erin', 'member', 'x', 0, 0),
                (7, 'erin', 'erin', 'member', 'x', 0, 0);
         INSERT INTO rooms (id, name, visibility, created_by, created_at, updated_at)
         VALUES (10, 'porch', 'private', 1, 0, 0);
         INSERT INTO room_members (room_id, user_id, role, joined_at)
         VALUES (10, 1, 'owner', 0), (10, 5, 'moderator', 0), (10, 2, 'moderator', 0);",
    )
    .unwrap();
    drop(conn);

    apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..11]).unwrap();

    let conn = Connection::open(&dirs.db).unwrap();
    let names: Vec<(i64, String)> = conn
        .prepare("SELECT id, display_name FROM users ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let names: Vec<(i64, &str)> = names.iter().map(|(i, n)| (*i, n.as_str())).collect();
    assert_eq!(
        names,
        vec![
            (1, "Alice"),
            (2, "mallory"),
            (3, "bob"),
            (4, "Carol"),
            (5, "a1ice"),
            (6, "dave"),
            (7, "erin"),
        ]
    );
    let holder = |name: &str| -> Option<i64> {
        conn.query_row(
            "SELECT user_id FROM name_keys WHERE key = ?1",
            [crate::names::key(name)],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
    };
    assert_eq!(holder("ALICE"), Some(1));
    assert_eq!(holder("a1ice"), Some(1), "the older account keeps the look");
    assert_eq!(holder("Mallory"), Some(2));
    assert_eq!(holder("carol"), Some(4));
    assert_eq!(holder("erin"), Some(7));
    // One account per key, enforced by the table itself.
    let refused = conn
        .execute(
            "INSERT INTO name_keys (key, user_id) VALUES (?1, 2)",
            [crate::names::key("alice")],
        )
        .unwrap_err();
    assert!(refused.to_string().contains("UNIQUE"), "{refused}");

    let roles: Vec<(i64, String)> = conn
        .prepare("SELECT user_id, role FROM room_members ORDER BY user_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        roles,
        vec![
            (1, "owner".to_owned()),
            (2, "moderator".to_owned()),
            (5, "member".to_owned()),
        ]
    );
}

#[test]
fn migration_12_numbers_kept_messages_and_counts_everything_before_it_as_read() {
    let dirs = dirs();
    apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..11]).unwrap();
    let conn = Connection::open(&dirs.db).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, username, display_name, role, password_hash, created_at, updated_at)
         VALUES (1, 'ann', 'ann', 'member', 'x', 0, 0), (2, 'bo', 'bo', 'member', 'x', 0, 0);
         INSERT INTO rooms (id, name, visibility, created_by, created_at, updated_at, last_seq)
         VALUES (10, 'lobby', 'public', 1, 0, 5, 4);
         INSERT INTO room_members (room_id, user_id, role, joined_at)
         VALUES (10, 1, 'owner', 0), (10, 2, 'member', 0);
         INSERT INTO messages (id, room_id, author_id, body, created_at)
         VALUES (100, 10, 1, 'pruned', 0), (101, 10, 2, 'kept', 0);
         -- The event of message 100 was pruned; 101's is kept.
         INSERT INTO events (room_id, seq, type, at, data)
         VALUES (10, 3, 'message.created', 0, '{\"id\":101,\"room_id\":10}'),
                (10, 4, 'member.joined', 0, '{\"user_id\":2}');",
    )
    .unwrap();
    drop(conn);

    apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..12]).unwrap();

    let conn = Connection::open(&dirs.db).unwrap();
    let seqs: Vec<(i64, Option<i64>)> = conn
        .prepare("SELECT id, seq FROM messages ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seqs, vec![(100, None), (101, Some(3))]);
    let reads: Vec<(i64, i64, i64)> = conn
        .prepare("SELECT user_id, room_id, seq FROM room_reads ORDER BY user_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(reads, vec![(1, 10, 4), (2, 10, 4)]);
}

#[test]
fn migration_13_makes_every_room_a_room_and_one_dm_per_pair() {
    let dirs = dirs();
    apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..12]).unwrap();
    let conn = Connection::open(&dirs.db).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, username, display_name, role, password_hash, created_at, updated_at)
         VALUES (1, 'ann', 'ann', 'member', 'x', 0, 0), (2, 'bo', 'bo', 'member', 'x', 0, 0);
         INSERT INTO rooms (id, name, visibility, created_by, created_at, updated_at)
         VALUES (10, 'lobby', 'public', 1, 0, 0);",
    )
    .unwrap();
    drop(conn);

    apply_with(&dirs.db, &dirs.backups, &MIGRATIONS[..13]).unwrap();

    let conn = Connection::open(&dirs.db).unwrap();
    let kind: (String, Option<String>) = conn
        .query_row("SELECT kind, dm_pair FROM rooms WHERE id = 10", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(kind, ("room".to_owned(), None));
    let dm = "INSERT INTO rooms (name, visibility, created_at, updated_at, kind, dm_pair)
              VALUES ('', 'private', 0, 0, ?1, ?2)";
    conn.execute(dm, ["dm", "1:2"]).unwrap();
    for (kind, pair, refusal) in [
        ("dm", Some("1:2"), "UNIQUE constraint failed"),
        ("dm", None, "CHECK constraint failed"),
        ("room", Some("1:3"), "CHECK constraint failed"),
        ("group", None, "CHECK constraint failed"),
    ] {
        let err = conn.execute(dm, rusqlite::params![kind, pair]).unwrap_err();
        assert!(err.to_string().contains(refusal), "{kind} {pair:?}: {err}");
    }
}
