//! `POST /api/v1/attachments?name=<display name>`: the raw file as the request body.
//!
//! The body is streamed: chunks are gathered into batches of [`WRITE_BATCH`] bytes, and each
//! batch is written to the temp file and fed to SHA-256 by a [`Spool`] step on a blocking
//! thread. Memory stays at one batch whatever the size, hashing never runs on the async
//! threads, and a blocking thread is held only while the disk works, never while a slow client
//! is still sending: a few hundred slow uploads cannot take the blocking pool that database
//! reads and password hashing need. The size cap, the quota and the type (from the first
//! [`SNIFF_LEN`](super::sniff::SNIFF_LEN) bytes) are checked while streaming, so a bad upload
//! is refused as soon as it can be told, and its temp file deleted by [`TempFile`] (dropped on
//! a blocking thread).

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::StatusCode;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::sniff::{sniff, Sniffed, SNIFF_LEN};
use super::{content_path, FilesError};
use crate::api::AppState;
use crate::auth::Principal;
use crate::http::{ApiError, Json, Query};

/// Bytes gathered from the request before they are written in one blocking step (plus at most
/// one chunk, typically 16 KiB): the upload waits for the disk, never buffers the body.
const WRITE_BATCH: usize = 64 * 1024;
/// Longest display name kept (characters); longer names are cut.
const MAX_NAME_CHARS: usize = 200;

/// A temp file that is deleted when dropped unless [`TempFile::keep`] was called.
pub struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    pub fn new(dir: &Path) -> TempFile {
        let mut id = [0u8; 12];
        // Uniqueness only; an RNG failure leaves zeros and `create_new` then refuses a clash.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
        TempFile {
            path: dir.join(format!("upload-{}", hex::encode(id))),
            armed: true,
        }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The file was moved away (or is to stay): do not delete it.
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // A single unlink; cheap enough to run where the guard drops.
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "deleting an upload's temp file")
                }
            }
        }
    }
}

/// Characters that change how the text after them is displayed: bidi embeddings, overrides,
/// isolates and marks, line and paragraph separators. In a name, "photo\u{202e}gpj.exe"
/// shows as "photoexe.jpg" (Trojan Source, CVE-2021-42574).
fn reorders_display(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// A display name: the last path component, control characters and characters that reorder
/// the display dropped, at most [`MAX_NAME_CHARS`]. Never used as a path.
pub fn display_name(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or("");
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = last
        .chars()
        .filter(|c| !c.is_control() && !reorders_display(*c))
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "file".to_owned()
    } else {
        name.to_owned()
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, shown to others (display text only, never a path).
    pub name: Option<String>,
}

/// An attachment as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Attachment)]
pub struct AttachmentView {
    pub id: i64,
    pub name: String,
    /// Recognised from the content, not from what the client said.
    #[schema(example = "image/png")]
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// Bytes `user_id` has uploaded (all rows, shared content counted per upload).
fn usage(conn: &rusqlite::Connection, user_id: i64) -> Result<u64, FilesError> {
    let n: i64 = conn
        .prepare_cached("SELECT coalesce(sum(size), 0) FROM attachments WHERE uploader_id = ?1")?
        .query_row([user_id], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// An upload's temp file while it is written: the file and the hash of what is in it. Every
/// method blocks (file I/O, hashing): the handler runs each step with [`blocking`], handing the
/// spool over and getting it back, so no thread holds it between steps.
struct Spool {
    file: std::fs::File,
    hash: ring::digest::Context,
}

impl Spool {
    fn create(path: &Path) -> Result<Spool, FilesError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(FilesError::io("creating the upload's temp file"))?;
        Ok(Spool {
            file,
            hash: ring::digest::Context::new(&ring::digest::SHA256),
        })
    }

    fn append(&mut self, chunks: &[bytes::Bytes]) -> Result<(), FilesError> {
        for chunk in chunks {
            self.hash.update(chunk);
            self.file
                .write_all(chunk)
                .map_err(FilesError::io("writing the upload"))?;
        }
        Ok(())
    }

    /// Syncs the complete upload; returns its lowercase hex SHA-256. Only a complete upload is
    /// synced: a refused one (too large, over quota, wrong type, cut off) is deleted unsynced,
    /// so an oversized upload does not cost the disk a flush of up to `max_bytes`. Once the file
    /// is on disk, free space is measured again: an upload that took the disk below `min_free`
    /// bytes (the low-disk flag is only refreshed every few seconds, and several large uploads
    /// can run at once) is refused like one that found the disk low, so the database keeps its
    /// room to write.
    fn finish(self, dir: &Path, min_free: u64) -> Result<String, FilesError> {
        self.file
            .sync_all()
            .map_err(FilesError::io("syncing the upload"))?;
        if crate::files::disk::free_bytes(dir).is_ok_and(|free| free < min_free) {
            return Err(FilesError::InsufficientStorage);
        }
        Ok(hex::encode(self.hash.finish()))
    }
}

/// Runs `step` on a blocking thread.
async fn blocking<T: Send + 'static>(
    context: &'static str,
    step: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, FilesError> {
    tokio::task::spawn_blocking(step)
        .await
        .map_err(|e| FilesError::Io {
            context,
            source: std::io::Error::other(e.to_string()),
        })?
}

/// What a fully received upload was: its hash (the temp file is synced), size and type.
struct Received {
    sha256: String,
    size: u64,
    content_type: &'static str,
}

/// Streams `body` into the temp file at `path`, checking the size cap, the quota (`used` bytes
/// so far of `quota`) and the type on the way. On an error the temp file may be left for the
/// caller to delete.
async fn receive(
    app: &AppState,
    path: PathBuf,
    body: Body,
    used: u64,
    quota: u64,
) -> Result<Received, FilesError> {
    let cfg = &app.config.attachments;
    let max = cfg.max_bytes;
    let allowed = |t: &'static str| cfg.allowed_types.iter().any(|a| a == t);
    let create = path.clone();
    let mut spool = blocking("creating the upload's temp file", move || {
        Spool::create(&create)
    })
    .await?;

    let mut stream = body.into_data_stream();
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
    let mut content_type: Option<&'static str> = None;
    let mut size: u64 = 0;
    let mut batch: Vec<bytes::Bytes> = Vec::new();
    let mut batched = 0;
    loop {
        let chunk = match stream.next().await {
            Some(chunk) => chunk.map_err(|e| {
                // The edge's cap wraps the body in `Limited`; its error means "too large".
                if std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                    || e.to_string().contains("length limit exceeded")
                {
                    FilesError::TooLarge(max)
                } else {
                    FilesError::Aborted
                }
            })?,
            None => break,
        };
        size += chunk.len() as u64;
        if size > max {
            return Err(FilesError::TooLarge(max));
        }
        if used + size > quota {
            return Err(FilesError::QuotaExceeded(cfg.user_quota_mb));
        }
        if content_type.is_none() {
            let take = (SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            // Judged as cut off only once more bytes follow: a file of exactly SNIFF_LEN bytes
            // ends there, and is judged (as complete) at the end.
            if head.len() >= SNIFF_LEN && size > SNIFF_LEN as u64 {
                content_type = Some(judge(&head, false, &allowed)?);
            }
        }
        batched += chunk.len();
        batch.push(chunk);
        if batched >= WRITE_BATCH {
            let chunks = std::mem::take(&mut batch);
            spool = blocking("writing the upload", move || {
                spool.append(&chunks)?;
                Ok(spool)
            })
            .await?;
            batched = 0;
        }
    }
    if size == 0 {
        return Err(FilesError::Empty);
    }
    let content_type = match content_type {
        Some(t) => t,
        None => judge(&head, true, &allowed)?,
    };
    let (dir, min_free) = (
        path.parent().unwrap_or(&path).to_path_buf(),
        app.vitals.min_free_bytes(),
    );
    let sha256 = blocking("syncing the upload", move || {
        spool.append(&batch)?;
        spool.finish(&dir, min_free)
    })
    .await?;
    Ok(Received {
        sha256,
        size,
        content_type,
    })
}

/// `POST /api/v1/attachments`: 201 with the attachment.
#[utoipa::path(
    post,
    path = "/api/v1/attachments",
    operation_id = "uploadAttachment",
    summary = "Upload a file",
    tag = "attachments",
    params(UploadQuery),
    request_body(content(("application/octet-stream")),
        description = "The raw file. Any `Content-Type` is accepted: the type is recognised \
        from the content."),
    responses(
        (status = 201, description = "Stored", body = AttachmentView),
        (status = 400, description = "An empty file (`empty_file`), an interrupted upload \
         (`upload_aborted`) or a bad query (`invalid_query`)", body = crate::http::ErrorBody),
        (status = 413, description = "Larger than `[attachments] max_bytes` (`too_large`), or \
         over the account's quota (`quota_exceeded`)", body = crate::http::ErrorBody),
        (status = 415, description = "A type that is not accepted (`unsupported_type`)",
         body = crate::http::ErrorBody),
        (status = 507, description = "The disk is nearly full (`insufficient_storage`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn upload(
    State(app): State<AppState>,
    who: Principal,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let view = store_upload(&app, &who, display_name(q.name.as_deref()), body).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Receives an upload (see [`receive`]), then stores it: linked into the content store, and
/// its row recorded, under the publish lock.
async fn store_upload(
    app: &AppState,
    who: &Principal,
    name: String,
    body: Body,
) -> Result<AttachmentView, FilesError> {
    let cfg = &app.config.attachments;
    let quota = cfg.user_quota_bytes();
    if app.vitals.disk_low() {
        return Err(FilesError::InsufficientStorage);
    }
    let user_id = who.user_id;
    let used = app.store.read(move |conn| usage(conn, user_id)).await?;
    if used >= quota {
        return Err(FilesError::QuotaExceeded(cfg.user_quota_mb));
    }

    let files = app.files.clone();
    let temp = TempFile::new(files.tmp_dir());
    let received = receive(app, temp.path().to_path_buf(), body, used, quota).await;
    let Received {
        sha256,
        size,
        content_type,
    } = match received {
        Ok(r) => r,
        Err(e) => {
            // The unlink of a large file can take tens of milliseconds (ext4 with `discard`, an
            // SD card): not on an async worker.
            let _ = tokio::task::spawn_blocking(move || drop(temp)).await;
            return Err(e);
        }
    };

    // Link into the store and record the row under the publish lock (see the module docs).
    let _publish = files.publish.lock().await;
    let final_path = content_path(files.root(), &sha256);
    let src = temp.path().to_path_buf();
    let linked = tokio::task::spawn_blocking(move || link(&src, &final_path))
        .await
        .map_err(|e| FilesError::Io {
            context: "linking an upload",
            source: std::io::Error::other(e.to_string()),
        })??;
    // The temp file is gone (renamed, or deleted as a duplicate).
    temp.keep();
    let (n, sha, t, quota_mb) = (
        name.clone(),
        sha256.clone(),
        content_type,
        cfg.user_quota_mb,
    );
    let now = crate::chat::now_ms();
    let inserted = app
        .store
        .write(move |conn| {
            // Re-checked here: concurrent uploads of one user all passed the first check.
            if usage(conn, user_id)? + size > quota {
                return Err(FilesError::QuotaExceeded(quota_mb));
            }
            let id: i64 = conn.query_row(
                "INSERT INTO attachments (uploader_id, sha256, size, content_type, name, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                params![user_id, sha, size as i64, t, n, now],
                |r| r.get(0),
            )?;
            Ok(id)
        })
        .await;
    let id = match inserted {
        Ok(id) => id,
        Err(e) => {
            if linked == Linked::New {
                // Nobody else references the content we just added: take it back out.
                let (root, hashes) = (files.root().to_path_buf(), vec![sha256.clone()]);
                let cleanup = app
                    .store
                    .read(move |conn| super::delete_unreferenced_files(conn, &root, &hashes))
                    .await;
                if let Err(c) = cleanup {
                    tracing::warn!(error = %c, "removing the file of a refused upload");
                }
            }
            return Err(e);
        }
    };
    Ok(AttachmentView {
        id,
        name,
        content_type: content_type.to_owned(),
        size,
        sha256,
        created_at: crate::http::time::rfc3339_ms(now),
    })
}

/// The type of an upload from its first bytes, if `allowed`. Public for the `attachment_meta`
/// fuzz target only.
#[doc(hidden)]
pub fn judge(
    head: &[u8],
    complete: bool,
    allowed: &dyn Fn(&'static str) -> bool,
) -> Result<&'static str, FilesError> {
    match sniff(head, complete) {
        Sniffed::Type(t) if allowed(t) => Ok(t),
        Sniffed::Type(t) => Err(FilesError::Unsupported(t.to_owned())),
        Sniffed::Unknown if head.is_empty() => Err(FilesError::Empty),
        Sniffed::Unknown => Err(FilesError::Unsupported("unrecognised content".to_owned())),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Linked {
    /// The content was new: the temp file became the stored file.
    New,
    /// The content was already stored: the temp file was deleted.
    Existing,
}

/// Moves `temp` to `dest` (creating the fan-out folders), or deletes it if `dest` exists.
fn link(temp: &Path, dest: &Path) -> Result<Linked, FilesError> {
    if dest.exists() {
        std::fs::remove_file(temp).map_err(FilesError::io("deleting a duplicate upload"))?;
        return Ok(Linked::Existing);
    }
    let parent = dest
        .parent()
        .expect("content paths have two parent folders");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(FilesError::io("creating an attachment folder"))?;
    }
    std::fs::rename(temp, dest).map_err(FilesError::io("storing an upload"))?;
    // The rename is durable once the folder is synced.
    if let Ok(dir) = std::fs::File::open(parent) {
        let _ = dir.sync_all();
    }
    Ok(Linked::New)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_never_paths() {
        assert_eq!(display_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(display_name(Some("C:\\Users\\me\\photo.jpg")), "photo.jpg");
        assert_eq!(display_name(Some("a\u{0}b\nc.txt")), "abc.txt");
        assert_eq!(display_name(Some("..")), "file");
        assert_eq!(display_name(None), "file");
        assert_eq!(display_name(Some(&"x".repeat(500))).len(), MAX_NAME_CHARS);
    }

    /// Found by the `attachment_meta` fuzz target (an Arabic letter mark, U+061C, kept in a
    /// name): characters that reorder how the rest of a name displays are dropped.
    #[test]
    fn display_names_cannot_disguise_their_extension() {
        assert_eq!(display_name(Some("photo\u{202e}gpj.exe")), "photogpj.exe");
        assert_eq!(
            display_name(Some("a\u{061c}b\u{2066}c\u{2069}.pdf")),
            "abc.pdf"
        );
        assert_eq!(display_name(Some("one\u{2028}two.txt")), "onetwo.txt");
        assert_eq!(display_name(Some("\u{200f}")), "file");
        assert_eq!(
            display_name(Some("שלום.txt")),
            "שלום.txt",
            "right-to-left text stays"
        );
    }

    /// The spool hashes what it writes, in batches, and a complete upload is on disk. (A
    /// refused one is deleted unsynced: `scripts/robustness/abuse.py` oversized_upload found
    /// every refused 26 MiB upload synced before its unlink, which ran on an async worker, and
    /// the normal client's p99 rose from 7 ms to 208 ms.)
    #[test]
    fn the_spool_writes_and_hashes_every_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        let mut spool = Spool::create(&path).unwrap();
        spool
            .append(&[bytes::Bytes::from_static(b"hello ")])
            .unwrap();
        spool
            .append(&[
                bytes::Bytes::from_static(b"wor"),
                bytes::Bytes::from_static(b"ld"),
            ])
            .unwrap();
        assert_eq!(
            spool.finish(dir.path(), 0).unwrap(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert!(Spool::create(&path).is_err(), "a temp file is never reused");
    }

    #[test]
    fn a_full_disk_is_507() {
        let full = FilesError::io("writing")(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(full, FilesError::InsufficientStorage));
        let e = ApiError::from(full);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
        );
    }

    #[test]
    fn an_upload_that_leaves_too_little_free_space_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::create(&dir.path().join("upload")).unwrap();
        assert!(matches!(
            spool.finish(dir.path(), u64::MAX),
            Err(FilesError::InsufficientStorage)
        ));
        let spool = Spool::create(&dir.path().join("upload-2")).unwrap();
        assert!(spool.finish(dir.path(), 0).is_ok());
    }

    #[test]
    fn a_temp_file_is_deleted_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let t = TempFile::new(dir.path());
        std::fs::write(t.path(), b"partial").unwrap();
        let path = t.path().to_path_buf();
        drop(t);
        assert!(!path.exists());
        let t = TempFile::new(dir.path());
        std::fs::write(t.path(), b"done").unwrap();
        let path = t.path().to_path_buf();
        t.keep();
        assert!(path.exists());
    }
}
