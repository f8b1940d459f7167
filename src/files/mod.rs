//! Attachments: the content-addressed file store under `<data_dir>/attachments`, uploads and
//! downloads.
//!
//! - [`upload`]: `POST /api/v1/attachments` streams the body into a temp file under
//!   `attachments/tmp` (same filesystem, so the final rename is atomic), hashing it with SHA-256
//!   as it goes, then links it to `attachments/<ab>/<cd>/<sha256>` — one file per content, shared
//!   by every upload of the same bytes (the `attachments` rows are the reference count).
//! - [`download`]: `GET /api/v1/attachments/{id}` for the uploader, members of a room with a
//!   message showing it, and admins; single `Range`s; never sniffable or inline unless a safe
//!   image.
//! - [`sniff`]: the type from magic bytes.
//!
//! Bounds: `[attachments] max_bytes` per upload (also enforced at the edge), `user_quota_mb`
//! per account, the disk's low-water mark (507). A failed or aborted upload leaves nothing: the
//! temp file is owned by a guard that deletes it on every path that does not publish it.
//! Linking a file into the store and deleting unreferenced files (retention) hold the same
//! lock, so a purge can never delete a file an upload has just re-referenced. Blocking file
//! work (writing, hashing, renaming, deleting) runs on blocking threads. This module must not
//! trust client-supplied names or types: names are display metadata only, never paths.

pub mod disk;
pub mod download;
pub mod sniff;
pub mod upload;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::documented;
use axum::extract::FromRef;
use http::StatusCode;

use crate::config::Config;
use crate::http::{ApiError, Routes};
use crate::store::{Store, StoreError};

pub use download::download;
pub use upload::upload;

/// Folder of the store inside the data dir (the backup copies it, minus [`TMP_DIR`]).
pub const ATTACHMENTS_DIR: &str = "attachments";
/// Temp folder for uploads in flight, inside [`ATTACHMENTS_DIR`].
pub const TMP_DIR: &str = "tmp";

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("the file is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("this upload would exceed your storage quota of {0} MiB")]
    QuotaExceeded(u64),
    #[error("this type of file is not accepted ({0})")]
    Unsupported(String),
    #[error("the file is empty")]
    Empty,
    #[error("the server is running out of storage space")]
    InsufficientStorage,
    #[error("no such attachment")]
    NotFound,
    #[error("the requested range is outside the file")]
    RangeNotSatisfiable(u64),
    #[error("the upload was interrupted")]
    Aborted,
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FilesError {
    fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> FilesError {
        move |source| {
            if source.raw_os_error() == Some(libc::ENOSPC) {
                FilesError::InsufficientStorage
            } else {
                FilesError::Io { context, source }
            }
        }
    }
}

impl From<rusqlite::Error> for FilesError {
    fn from(e: rusqlite::Error) -> Self {
        FilesError::Store(StoreError::from(e))
    }
}

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> Self {
        let message = e.to_string();
        match e {
            FilesError::TooLarge(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
            FilesError::QuotaExceeded(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded", message)
            }
            FilesError::Unsupported(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                message,
            ),
            FilesError::Empty => ApiError::bad_request("empty_file", message),
            FilesError::InsufficientStorage => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                message,
            ),
            FilesError::NotFound => ApiError::not_found(),
            FilesError::RangeNotSatisfiable(size) => ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                message,
            )
            .with_header(
                http::header::CONTENT_RANGE,
                http::HeaderValue::from_str(&format!("bytes */{size}"))
                    .expect("a number is a valid header value"),
            ),
            FilesError::Aborted => ApiError::bad_request("upload_aborted", message),
            FilesError::Store(s) => ApiError::from(s),
            FilesError::Io { .. } => ApiError::internal("attachment storage", &e),
        }
    }
}

/// The store on disk, shared by uploads, downloads and retention.
pub struct Files {
    root: PathBuf,
    tmp: PathBuf,
    /// Held while linking an upload into the store and while deleting unreferenced files.
    pub(crate) publish: tokio::sync::Mutex<()>,
    /// `[storage] min_free_disk_mb` in bytes: an upload that leaves less free is refused.
    min_free_bytes: u64,
    /// Whether free disk was below `min_free_bytes` when last measured. Whoever measures the
    /// disk says (the daemon wires `ops::vitals` in), so this module does not depend on it.
    disk_low: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Files {
    /// Creates `attachments/` and `attachments/tmp/` (0700) and empties the temp folder: files
    /// left there by a crash belong to uploads that can never finish. `disk_low` answers
    /// whether free disk was below `[storage] min_free_disk_mb` when last measured.
    pub fn open(
        config: &Config,
        disk_low: impl Fn() -> bool + Send + Sync + 'static,
    ) -> std::io::Result<Files> {
        let root = config.data_dir().join(ATTACHMENTS_DIR);
        let tmp = root.join(TMP_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tmp)?;
        for entry in std::fs::read_dir(&tmp)? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::remove_file(&path)?;
                tracing::info!(path = %path.display(), "removed an unfinished upload");
            }
        }
        Ok(Files {
            root,
            tmp,
            publish: tokio::sync::Mutex::new(()),
            min_free_bytes: config.storage.min_free_disk_mb.saturating_mul(1024 * 1024),
            disk_low: Box::new(disk_low),
        })
    }

    /// Whether free disk was below the low-water mark when last measured: uploads are refused.
    pub fn disk_low(&self) -> bool {
        (self.disk_low)()
    }

    /// The free disk an upload must leave, in bytes.
    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_bytes
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Where the bytes with this SHA-256 (lowercase hex) live.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        content_path(&self.root, sha256)
    }
}

/// `<root>/<ab>/<cd>/<sha256>` for a 64-character hex digest.
pub fn content_path(root: &Path, sha256: &str) -> PathBuf {
    let (a, b) = (
        &sha256[..2.min(sha256.len())],
        sha256.get(2..4).unwrap_or("00"),
    );
    root.join(a).join(b).join(sha256)
}

/// Deletes the files of `hashes` that no `attachments` row names any more; the caller holds
/// [`Files::publish`]. Returns how many files were deleted.
pub fn delete_unreferenced_files(
    conn: &rusqlite::Connection,
    root: &Path,
    hashes: &[String],
) -> Result<usize, FilesError> {
    let mut deleted = 0;
    for sha in hashes {
        let still: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM attachments WHERE sha256 = ?1)")?
            .query_row([sha], |r| r.get(0))?;
        if still {
            continue;
        }
        match std::fs::remove_file(content_path(root, sha)) {
            Ok(()) => deleted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(FilesError::io("deleting an attachment")(e)),
        }
    }
    Ok(deleted)
}

/// Attachment upload and download.
pub fn routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    Arc<Files>: FromRef<S>,
    Arc<Config>: FromRef<S>,
{
    Routes::new()
        .api(documented!(upload::upload))
        .api(documented!(download::download))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::{Credential, Principal, Role, Scopes};
    use crate::store::StoreOptions;

    /// A state that is not the daemon's: the routes ask only for the parts they use.
    #[derive(Clone)]
    struct Parts {
        store: Store,
        files: Arc<Files>,
        config: Arc<Config>,
    }

    impl FromRef<Parts> for Store {
        fn from_ref(parts: &Parts) -> Store {
            parts.store.clone()
        }
    }

    impl FromRef<Parts> for Arc<Files> {
        fn from_ref(parts: &Parts) -> Arc<Files> {
            parts.files.clone()
        }
    }

    impl FromRef<Parts> for Arc<Config> {
        fn from_ref(parts: &Parts) -> Arc<Config> {
            parts.config.clone()
        }
    }

    fn upload_as_user_1(text: &'static str) -> Request<Body> {
        let mut req = Request::post("/api/v1/attachments?name=note.txt")
            .body(Body::from(text))
            .unwrap();
        // What `auth::authenticate` leaves for the `Principal` extractor.
        req.extensions_mut().insert(Principal {
            user_id: 1,
            username: "ana".into(),
            role: Role::Member,
            credential: Credential::Session("s".into()),
            scopes: Scopes::ALL,
        });
        req
    }

    #[tokio::test]
    async fn uploads_get_507_while_the_disk_is_reported_low_and_are_stored_after() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.storage.min_free_disk_mb = 0;
        let store =
            Store::open(&config.db_path(), StoreOptions::new(config.backups_dir())).unwrap();
        store
            .write(|conn| {
                conn.execute(
                    "INSERT INTO users (id, username, display_name, role, password_hash, created_at, updated_at)
                     VALUES (1, 'ana', 'Ana', 'member', 'x', 0, 0)",
                    [],
                )?;
                Ok::<_, FilesError>(())
            })
            .await
            .unwrap();
        let low = Arc::new(AtomicBool::new(true));
        let reported = low.clone();
        let files = Files::open(&config, move || reported.load(Ordering::Relaxed)).unwrap();
        let parts = Parts {
            store,
            files: Arc::new(files),
            config: Arc::new(config),
        };
        let (router, _) = routes::<Parts>().finish(parts.clone());

        let refused = router
            .clone()
            .oneshot(upload_as_user_1("hello"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::INSUFFICIENT_STORAGE);
        let body = axum::body::to_bytes(refused.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "insufficient_storage");
        let left = std::fs::read_dir(parts.files.tmp_dir()).unwrap().count();
        assert_eq!(left, 0, "a refused upload leaves no temp file");

        low.store(false, Ordering::Relaxed);
        let stored = router.oneshot(upload_as_user_1("hello")).await.unwrap();
        assert_eq!(stored.status(), StatusCode::CREATED);
    }

    #[test]
    fn content_paths_fan_out_by_the_first_four_hex_digits() {
        let sha = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
        assert_eq!(
            content_path(Path::new("/d/attachments"), sha),
            PathBuf::from(format!("/d/attachments/ab/cd/{sha}"))
        );
    }
}
