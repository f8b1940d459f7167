//! The restore drill, with the real binary: populate, back up while the daemon serves and the
//! database is being written, stop, wipe, restore, and find everything as it was; tampered
//! and truncated backups are refused without touching anything.
//!
//! The helpers are generic over the schema: they count and dump every table in
//! `sqlite_master`, so tables added by later migrations (users, rooms, messages...) are
//! covered by this drill as soon as they hold rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

const DEADLINE: Duration = Duration::from_secs(60);

fn read_only(db: &Path) -> Connection {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    conn.pragma_update(None, "query_only", true).unwrap();
    conn
}

fn tables(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name",
        )
        .unwrap();
    let names = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    names
}

/// Every row of every table, as text, sorted: equal dumps mean equal data.
fn dump(db: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = read_only(db);
    let mut out = BTreeMap::new();
    for table in tables(&conn) {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{}\"", table.replace('"', "\"\"")))
            .unwrap();
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut cells = Vec::new();
                for i in 0..columns {
                    cells.push(match r.get_ref(i)? {
                        ValueRef::Null => "NULL".to_owned(),
                        ValueRef::Integer(n) => n.to_string(),
                        ValueRef::Real(f) => f.to_string(),
                        ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
                        ValueRef::Blob(b) => format!("x'{}'", hex::encode(b)),
                    });
                }
                Ok(cells.join("|"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        out.insert(table, rows);
    }
    out
}

/// Every file under `dir` with its bytes (empty if `dir` does not exist).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// The data dir as a restore must leave it when it refuses: every file and its bytes, minus
/// the lock file (a daemon start creates it too) and SQLite's shared-memory index.
fn data_state(data: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut t = tree(data);
    t.retain(|p, _| {
        let name = p.to_string_lossy();
        name != "roost.lock" && !name.ends_with("-shm")
    });
    t
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for (rel, bytes) in tree(from) {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

/// Attachments of several sizes and nesting levels, content-addressed like the store will be.
fn populate_attachments(dir: &Path) {
    for (i, size) in [0usize, 1, 4096, 300_000, 1_500_000]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..size).map(|n| (n * 31 + i * 7) as u8).collect();
        let digest = ring_hex(&bytes);
        let path = dir.join(&digest[..2]).join(&digest);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn ring_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

fn insert_setting(conn: &Connection, key: &str, value: &str) {
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, unixepoch())",
        (key, value),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_drill_under_write_load() {
    let setup = Setup::new();
    setup.write_config("");
    let init = setup.run(&["init"]);
    assert_exit_0(&init);
    let data = setup.data_dir();
    let db = data.join("roost.sqlite3");

    // Data written through a second, migration-free path (the settings table).
    {
        let conn = Connection::open(&db).unwrap();
        for i in 0..200 {
            insert_setting(&conn, &format!("drill.{i:03}"), &"v".repeat(i % 50));
        }
    }
    populate_attachments(&data.join("attachments"));
    // An account made before the backup must still sign in after the restore.
    let added = run_with_stdin(
        &setup,
        &["user", "add", "drill", "--role", "admin"],
        b"drill-password-1234\n",
    );
    assert_exit_0(&added);
    let roost = setup.start();
    let chat = ChatData::create(&roost).await;

    // Write load from this process while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let load = {
        let (db, stop, written) = (db.clone(), stop.clone(), written.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&db).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                insert_setting(&conn, &format!("load.{i:06}"), "x");
                i += 1;
                written.store(i, Ordering::Relaxed);
            }
            i
        })
    };
    let start = Instant::now();
    while written.load(Ordering::Relaxed) < 20 {
        assert!(start.elapsed() < DEADLINE, "the write load never got going");
        std::thread::yield_now();
    }

    let before_backup = written.load(Ordering::Relaxed);
    let out = roost.setup.run(&["backup"]);
    let during = written.load(Ordering::Relaxed);
    assert_exit_0(&out);
    stop.store(true, Ordering::Relaxed);
    let total_load = load.join().unwrap();
    assert!(
        during >= 20 && total_load >= during,
        "the load ran during the backup"
    );
    let backup = backup_dir_from(&out);
    assert!(
        backup.starts_with(data.join("backups")),
        "{}",
        backup.display()
    );
    let sums = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&backup)
        .output();
    if let Ok(sums) = sums {
        assert!(sums.status.success(), "sha256sum -c: {}", stdout(&sums));
    }

    // The daemon reports it: /metrics and /status.
    let metrics = roost.metrics().await;
    let stamp = metrics
        .lines()
        .find_map(|l| l.strip_prefix("roost_backup_last_success_timestamp_seconds "))
        .unwrap_or_else(|| panic!("no backup metric in:\n{metrics}"));
    assert!(stamp.parse::<i64>().unwrap() > 1_700_000_000, "{stamp}");
    let status: serde_json::Value = reqwest::get(roost.internal_url("/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["last_backup"]["path"],
        backup.display().to_string(),
        "{status}"
    );

    // A dry run is allowed while the daemon runs; a real restore is not.
    let dry = roost
        .setup
        .run(&["restore", backup.to_str().unwrap(), "--dry-run"]);
    assert_exit_0(&dry);
    assert!(
        stdout(&dry).contains("integrity_check ok"),
        "{}",
        stdout(&dry)
    );
    let refused = roost.setup.run(&["restore", backup.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("stop it first"),
        "{}",
        stderr(&refused)
    );

    // What the data looked like, then stop and wipe.
    let live = dump(&db);
    let live_attachments = tree(&data.join("attachments"));
    let mut roost = roost;
    roost.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(roost.wait_exit(DEADLINE).success());
    let setup = roost.into_setup();
    for name in ["roost.sqlite3", "roost.sqlite3-wal", "roost.sqlite3-shm"] {
        let _ = std::fs::remove_file(data.join(name));
    }
    std::fs::remove_dir_all(data.join("attachments")).unwrap();

    // Tampered and truncated copies of the backup are refused by name; nothing changes.
    let before = data_state(&data);
    let tampered = setup.dir.path().join("tampered");
    copy_dir(&backup, &tampered);
    let victim = tree(&tampered.join("attachments"))
        .into_iter()
        .find(|(_, b)| b.len() > 1000)
        .unwrap()
        .0;
    let victim_path = tampered.join("attachments").join(&victim);
    let mut bytes = std::fs::read(&victim_path).unwrap();
    bytes[500] ^= 0x01;
    std::fs::write(&victim_path, bytes).unwrap();
    let out = setup.run(&["restore", tampered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&victim.display().to_string()) && stderr(&out).contains("SHA-256"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("nothing was changed"));
    assert_eq!(
        data_state(&data),
        before,
        "a tampered backup changed the data dir"
    );

    let truncated = setup.dir.path().join("truncated");
    copy_dir(&backup, &truncated);
    let tdb = truncated.join("roost.sqlite3");
    let len = std::fs::metadata(&tdb).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tdb)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    let out = setup.run(&["restore", truncated.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("roost.sqlite3") && stderr(&out).contains("truncated"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        data_state(&data),
        before,
        "a truncated backup changed the data dir"
    );

    // The real restore.
    let out = setup.run(&["restore", backup.to_str().unwrap()]);
    assert_exit_0(&out);

    // Attachments byte-identical; every row as it was, except load rows written after the
    // snapshot: those present are exactly the first ones, as many as the manifest counted.
    assert_eq!(tree(&data.join("attachments")), live_attachments);
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&backup.join("manifest.json"))).unwrap();
    let restored = dump(&db);
    let is_load = |row: &String| row.starts_with("\"load.");
    for (table, rows) in &live {
        let keep = |rs: &Vec<String>| {
            rs.iter()
                .filter(|r| !is_load(r))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(keep(&restored[table]), keep(rows), "table {table}");
        assert_eq!(
            restored[table].len() as u64,
            manifest["tables"][table].as_u64().unwrap(),
            "table {table} against the manifest"
        );
    }
    let load_rows: Vec<&String> = restored["settings"].iter().filter(|r| is_load(r)).collect();
    for (i, row) in load_rows.iter().enumerate() {
        assert!(
            row.starts_with(&format!("\"load.{i:06}\"")),
            "load rows are not a prefix: {row} at {i}"
        );
    }
    assert!(
        (before_backup..=total_load).contains(&(load_rows.len() as u64)),
        "{} load rows restored; {before_backup} were written before the backup started, {total_load} in all",
        load_rows.len()
    );

    // The daemon starts on the restored data and is ready; the data survived its start.
    let roost = setup.start();
    let resp = roost.get("/ready").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(dump(&db)["settings"], restored["settings"]);
    // Rooms, messages and an uploaded attachment read back through the API as they were.
    chat.check(&roost).await;
    ChatData::token(&roost).await;
}

/// A room with messages, one carrying an uploaded attachment, made through the API by the
/// admin `drill`, and read back the same way after the restore.
struct ChatData {
    room: i64,
    attachment: String,
    png: Vec<u8>,
    messages: serde_json::Value,
}

impl ChatData {
    async fn token(roost: &Roost) -> String {
        roost.login("drill", "drill-password-1234").await
    }

    async fn create(roost: &Roost) -> ChatData {
        let token = Self::token(roost).await;
        let client = roost.client();
        let post = |path: &str, body: serde_json::Value| {
            client
                .post(roost.https_url(path))
                .bearer_auth(&token)
                .json(&body)
                .send()
        };
        let room: serde_json::Value = post(
            "/api/v1/rooms",
            serde_json::json!({"name": "drill", "private": true}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let room = room["id"].as_i64().expect("room id");
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend((0..40_000u32).map(|i| (i % 251) as u8));
        let upload: serde_json::Value = client
            .post(roost.https_url("/api/v1/attachments?name=drill.png"))
            .bearer_auth(&token)
            .body(png.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let attachment = upload["id"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| upload["id"].to_string());
        let with_file = post(
            &format!("/api/v1/rooms/{room}/messages"),
            serde_json::json!({"body": "the picture", "attachment_ids": [upload["id"]]}),
        )
        .await
        .unwrap();
        assert_eq!(
            with_file.status(),
            201,
            "{}",
            with_file.text().await.unwrap()
        );
        for body in ["first words", "and more"] {
            let r = post(
                &format!("/api/v1/rooms/{room}/messages"),
                serde_json::json!({"body": body}),
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 201);
        }
        let messages = Self::messages(roost, &token, room).await;
        assert_eq!(
            messages["messages"].as_array().map(Vec::len),
            Some(3),
            "{messages}"
        );
        ChatData {
            room,
            attachment,
            png,
            messages,
        }
    }

    async fn messages(roost: &Roost, token: &str, room: i64) -> serde_json::Value {
        roost
            .client()
            .get(roost.https_url(&format!("/api/v1/rooms/{room}/messages")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn check(&self, roost: &Roost) {
        let token = Self::token(roost).await;
        assert_eq!(
            Self::messages(roost, &token, self.room).await,
            self.messages
        );
        let file = roost
            .client()
            .get(roost.https_url(&format!("/api/v1/attachments/{}", self.attachment)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(file.status(), 200);
        assert_eq!(file.bytes().await.unwrap().as_ref(), self.png.as_slice());
    }
}
