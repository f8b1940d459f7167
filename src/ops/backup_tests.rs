use std::os::unix::fs::PermissionsExt;

use rusqlite::Connection;
use time::macros::datetime;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    out: PathBuf,
}

impl Fixture {
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
        std::fs::write(data.join("attachments/ab/abcdef"), b"picture bytes").unwrap();
        std::fs::write(data.join("attachments/top"), vec![7u8; 300_000]).unwrap();
        Fixture {
            out: dir.path().join("out"),
            data,
            _dir: dir,
        }
    }

    fn sources(&self) -> Sources {
        Sources {
            db: self.data.join(DB_FILE),
            attachments: self.data.join(ATTACHMENTS),
            last_success: self.data.join("backups").join(LAST_SUCCESS),
        }
    }

    fn backup(&self, keep: usize, now: OffsetDateTime) -> BackupReport {
        create(&self.sources(), &self.out, keep, now, &mut Quiet).unwrap()
    }
}

/// Asks to stop once the database is copied, as the daemon's shutdown would.
struct StopAfterDatabase;

impl Progress for StopAfterDatabase {
    fn begin(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
    fn stop_requested(&self) -> bool {
        true
    }
}

#[test]
fn a_stopped_backup_leaves_nothing_behind() {
    let f = Fixture::new();
    let now = datetime!(2026-11-22 03:51:51 UTC);
    let err = create(&f.sources(), &f.out, 7, now, &mut StopAfterDatabase).unwrap_err();
    assert!(matches!(err, BackupError::Stopped), "{err}");
    let left: Vec<_> = std::fs::read_dir(&f.out).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(last_success(&f.data.join("backups")).is_none());
}

#[test]
fn a_backup_holds_the_database_the_attachments_a_manifest_and_checksums() {
    let f = Fixture::new();
    let r = f.backup(7, datetime!(2026-11-22 03:51:51 UTC));
    assert_eq!(r.dir, f.out.join("roost-20261122T035151Z"));
    assert_eq!(r.manifest.schema_version, 1);
    assert_eq!(r.manifest.tables, BTreeMap::from([("settings".into(), 2)]));
    assert_eq!(r.manifest.created, "2026-11-22T03:51:51Z");
    let paths: Vec<&str> = r.manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["attachments/ab/abcdef", "attachments/top", "roost.sqlite3"]
    );
    assert_eq!(
        std::fs::read(r.dir.join("attachments/ab/abcdef")).unwrap(),
        b"picture bytes"
    );

    // sha256sum -c accepts the checksum file (when the tool is there).
    if let Ok(out) = std::process::Command::new("sha256sum")
        .args(["-c", "--strict", SUMS])
        .current_dir(&r.dir)
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let sums = std::fs::read_to_string(r.dir.join(SUMS)).unwrap();
    assert_eq!(sums.lines().count(), 4, "{sums}");
    assert!(sums.contains("  manifest.json\n"));

    // Private, complete, nothing partial left behind, and recorded for the daemon.
    let mode = std::fs::metadata(&r.dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let names: Vec<String> = std::fs::read_dir(&f.out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["roost-20261122T035151Z"]);
    let last = last_success(&f.data.join("backups")).unwrap();
    assert_eq!(last.created_unix, r.manifest.created_unix);
    assert_eq!(last.path, r.dir);
}

#[test]
fn a_missing_attachment_store_is_an_empty_one_and_a_missing_database_an_error() {
    let f = Fixture::new();
    std::fs::remove_dir_all(f.data.join(ATTACHMENTS)).unwrap();
    let r = f.backup(0, datetime!(2026-01-01 00:00:00 UTC));
    assert_eq!(r.manifest.files.len(), 1);

    std::fs::remove_file(f.data.join(DB_FILE)).unwrap();
    let err = create(
        &f.sources(),
        &f.out,
        0,
        OffsetDateTime::now_utc(),
        &mut Quiet,
    )
    .unwrap_err();
    assert!(matches!(err, BackupError::NoDatabase(_)), "{err}");
    assert!(err.to_string().contains("roost init"));
}

#[test]
fn two_backups_in_one_second_get_distinct_names() {
    let f = Fixture::new();
    let now = datetime!(2026-11-22 03:51:51 UTC);
    let a = f.backup(0, now);
    let b = f.backup(0, now);
    assert_ne!(a.dir, b.dir);
    assert_eq!(b.dir, f.out.join("roost-20261122T035151Z-1"));
}

#[test]
fn keep_prunes_only_the_oldest_complete_backups() {
    let f = Fixture::new();
    let t = |h: u8| datetime!(2026-11-01 00:00:00 UTC) + time::Duration::hours(h.into());
    for h in 0..3 {
        f.backup(0, t(h));
    }
    // Things that are not complete backups must survive any pruning.
    std::fs::write(
        f.out.join("pre-migrate-1-20261101T000000Z.sqlite3"),
        b"snap",
    )
    .unwrap();
    std::fs::create_dir(f.out.join(".roost-20261101T000000Z.partial")).unwrap();
    std::fs::create_dir(f.out.join("roost-19990101T000000Z")).unwrap(); // no manifest
    std::fs::write(f.out.join("notes.txt"), b"mine").unwrap();

    let r = f.backup(2, t(3));
    assert_eq!(
        r.pruned,
        [
            f.out.join("roost-20261101T010000Z"),
            f.out.join("roost-20261101T000000Z")
        ]
    );
    let mut names: Vec<String> = std::fs::read_dir(&f.out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".roost-20261101T000000Z.partial",
            "notes.txt",
            "pre-migrate-1-20261101T000000Z.sqlite3",
            "roost-19990101T000000Z",
            "roost-20261101T020000Z",
            "roost-20261101T030000Z",
        ]
    );
}

#[test]
fn a_failed_backup_leaves_nothing_behind() {
    let f = Fixture::new();
    // A name sha256sum would have to escape: refused, and the partial folder removed.
    std::fs::write(f.data.join("attachments/bad\\name"), b"x").unwrap();
    let err = create(
        &f.sources(),
        &f.out,
        0,
        OffsetDateTime::now_utc(),
        &mut Quiet,
    )
    .unwrap_err();
    assert!(matches!(err, BackupError::Name(_)), "{err}");
    assert_eq!(std::fs::read_dir(&f.out).unwrap().count(), 0);
    assert!(last_success(&f.data.join("backups")).is_none());
}

#[test]
fn human_sizes() {
    assert_eq!(human_bytes(10), "10 bytes");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
}
