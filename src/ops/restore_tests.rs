use rusqlite::Connection;
use time::macros::datetime;

use super::*;
use crate::ops::backup::{Quiet, Sources};

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    backup: PathBuf,
}

fn settings(db: &Path) -> Vec<(String, String)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT key, value FROM settings ORDER BY key")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

impl Fixture {
    /// A data dir with two settings and two attachments, and a backup of it.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("attachments/ab")).unwrap();
        let conn = Connection::open(data.join(DB_FILE)).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);
             INSERT INTO settings VALUES ('a', '1'), ('b', '2');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);
        std::fs::write(data.join("attachments/ab/abcdef"), b"picture bytes").unwrap();
        std::fs::write(data.join("attachments/other"), b"more").unwrap();
        let sources = Sources {
            db: data.join(DB_FILE),
            attachments: data.join(ATTACHMENTS),
            last_success: data.join("backups").join(backup::LAST_SUCCESS),
        };
        let report = backup::create(
            &sources,
            &dir.path().join("out"),
            0,
            datetime!(2026-11-22 03:00:00 UTC),
            &mut Quiet,
        )
        .unwrap();
        Fixture {
            backup: report.dir,
            data,
            _dir: dir,
        }
    }

    /// Changes the live data after the backup: one more row, one changed attachment.
    fn diverge(&self) {
        let conn = Connection::open(self.data.join(DB_FILE)).unwrap();
        conn.execute("INSERT INTO settings VALUES ('c', '3')", [])
            .unwrap();
        drop(conn);
        std::fs::write(self.data.join("attachments/ab/abcdef"), b"changed").unwrap();
        std::fs::write(self.data.join("attachments/new"), b"new").unwrap();
    }

    fn restore(&self) -> Result<RestoreReport, RestoreError> {
        let v = verify(&self.backup, &mut Quiet)?;
        let lock = DataDirLock::acquire(&self.data).unwrap();
        restore(
            &v,
            &self.data,
            DB_FILE,
            &lock,
            datetime!(2026-11-23 00:00:00 UTC),
            &mut Quiet,
        )
    }

    /// Every file under the data dir with its content, to prove nothing changed.
    fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        // The lock file is not data: a daemon start creates it too.
        for rel in files_on_disk(&self.data).unwrap() {
            if rel == crate::ops::lock::LOCK_FILE {
                continue;
            }
            out.insert(rel.clone(), std::fs::read(self.data.join(&rel)).unwrap());
        }
        out
    }

    fn refused_without_touching(&self, needle: &str) -> String {
        let before = self.snapshot();
        let err = self.restore().unwrap_err();
        let text = err.to_string();
        assert!(text.contains(needle), "{needle:?} not in: {text}");
        assert_eq!(
            self.snapshot(),
            before,
            "a refused restore changed the data dir"
        );
        text
    }
}

#[test]
fn restore_puts_the_backup_in_place_and_keeps_the_replaced_data() {
    let f = Fixture::new();
    f.diverge();
    let report = f.restore().unwrap();

    assert_eq!(
        settings(&f.data.join(DB_FILE)),
        [("a".into(), "1".into()), ("b".into(), "2".into())]
    );
    assert_eq!(
        std::fs::read(f.data.join("attachments/ab/abcdef")).unwrap(),
        b"picture bytes"
    );
    assert!(!f.data.join("attachments/new").exists());
    assert_eq!(report.attachments, 2);
    assert!(!f.data.join(STAGING).exists());

    let replaced = report.replaced.unwrap();
    assert_eq!(replaced, f.data.join("replaced-20261123T000000Z"));
    assert_eq!(settings(&replaced.join(DB_FILE)).len(), 3);
    assert_eq!(
        std::fs::read(replaced.join("attachments/new")).unwrap(),
        b"new"
    );
    let readme = std::fs::read_to_string(replaced.join("README.txt")).unwrap();
    assert!(readme.contains("systemctl stop roost"), "{readme}");
}

#[test]
fn restore_into_an_empty_data_dir_replaces_nothing() {
    let f = Fixture::new();
    std::fs::remove_dir_all(&f.data).unwrap();
    std::fs::create_dir(&f.data).unwrap();
    let report = f.restore().unwrap();
    assert!(report.replaced.is_none());
    assert_eq!(settings(&f.data.join(DB_FILE)).len(), 2);
}

#[test]
fn an_altered_attachment_is_refused_by_name() {
    let f = Fixture::new();
    std::fs::write(f.backup.join("attachments/ab/abcdef"), b"picture bytez").unwrap();
    f.refused_without_touching("attachments/ab/abcdef: does not match its SHA-256");
}

#[test]
fn a_truncated_database_is_refused_by_name() {
    let f = Fixture::new();
    let db = f.backup.join(DB_FILE);
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    f.refused_without_touching("roost.sqlite3: is");
}

#[test]
fn missing_extra_and_unsafe_files_are_refused() {
    let f = Fixture::new();
    std::fs::write(f.backup.join("attachments/planted"), b"x").unwrap();
    f.refused_without_touching("attachments/planted: is not listed in SHA256SUMS");
    std::fs::remove_file(f.backup.join("attachments/planted")).unwrap();

    std::fs::remove_file(f.backup.join("attachments/other")).unwrap();
    f.refused_without_touching("attachments/other: is missing from the backup");

    let sums = f.backup.join(SUMS);
    let hex = "0".repeat(64);
    std::fs::write(&sums, format!("{hex}  ../../etc/passwd\n")).unwrap();
    f.refused_without_touching("is not a file a Roost backup holds");
}

/// Rewrites the manifest and its checksum consistently, as a newer roost would have.
fn rewrite_manifest(f: &Fixture, edit: impl FnOnce(&mut Manifest)) {
    let path = f.backup.join(MANIFEST);
    let mut m: Manifest = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
    let hex = checksum::hash_file(&path, &mut |_| {}).unwrap().hex;
    let sums = f.backup.join(SUMS);
    let text: String = std::fs::read_to_string(&sums)
        .unwrap()
        .lines()
        .map(|l| {
            if l.ends_with("  manifest.json") {
                checksum::sums_line(&hex, MANIFEST)
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&sums, text).unwrap();
}

#[test]
fn a_schema_newer_than_this_binary_is_refused() {
    let f = Fixture::new();
    rewrite_manifest(&f, |m| m.schema_version = 999);
    let text = f.refused_without_touching("schema version 999");
    assert!(text.contains("newer than this roost"), "{text}");
}

#[test]
fn row_counts_that_disagree_with_the_manifest_are_refused() {
    let f = Fixture::new();
    rewrite_manifest(&f, |m| {
        m.tables.insert("settings".into(), 5);
    });
    f.refused_without_touching("row counts differ from the manifest");
}

#[test]
fn a_dry_run_checks_everything_and_changes_nothing() {
    let f = Fixture::new();
    f.diverge();
    let backup_before: Vec<_> = files_on_disk(&f.backup).unwrap().into_iter().collect();
    let data_before = f.snapshot();
    let v = verify(&f.backup, &mut Quiet).unwrap();
    let r = dry_run(&v, &mut Quiet).unwrap();
    assert_eq!(r.schema_version, 1);
    assert_eq!(r.row_counts, BTreeMap::from([("settings".into(), 2)]));
    assert_eq!(r.attachments, 2);
    assert_eq!(f.snapshot(), data_before);
    let backup_after: Vec<_> = files_on_disk(&f.backup).unwrap().into_iter().collect();
    assert_eq!(backup_after, backup_before);
}

#[test]
fn paths_a_backup_may_hold() {
    for ok in ["roost.sqlite3", "manifest.json", "attachments/ab/cd"] {
        assert!(safe_relative(ok), "{ok}");
    }
    for bad in [
        "/etc/passwd",
        "../x",
        "attachments/../x",
        "attachments",
        "attachments//x",
        "./roost.sqlite3",
        "other.txt",
        "attachmentsx/y",
    ] {
        assert!(!safe_relative(bad), "{bad}");
    }
}
