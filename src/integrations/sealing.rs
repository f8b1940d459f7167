//! Outgoing webhook secrets at rest. A hook's secret must stay usable: every delivery is signed
//! with it (HMAC needs the key itself; a hash, as incoming tokens and API keys are stored,
//! could not sign). So the database holds it sealed with ChaCha20-Poly1305, under a key
//! derived from `<data_dir>/secrets/webhook_secrets.key` (`Config::webhook_key_path`), a file
//! made once by `ops::provision` beside the other generated secrets: outside the database,
//! and so out of every backup. A copy of the database or of a backup alone reveals no secret.
//!
//! Rows stored in the clear by versions before migration 17 are sealed by
//! [`seal_clear_secrets`], which the daemon runs at start (before it serves or sends) and
//! `roost webhook` before its command, so no existing hook is lost on upgrade.
//!
//! Never logs; no error carries a secret or key bytes. Knows nothing about HTTP.

use std::fmt;
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf;
use rusqlite::{params, Connection};

use crate::config::Config;
use crate::store::StoreError;

/// The first byte of a sealed secret: the layout (nonce, then ciphertext and tag) and the
/// key derivation, so either can change later without guessing.
const FORMAT: u8 = 1;
/// Bound into every seal: a sealed value is only ever opened as a webhook secret.
const AAD: &[u8] = b"roost webhook secret";
/// HKDF's salt and info: the key file's text is key material, not the key itself.
const KDF_SALT: &[u8] = b"roost webhook secrets";
const KDF_INFO: &[u8] = b"chacha20-poly1305 v1";
/// A key file is a few dozen bytes; more is a wrong path, not a key.
const MAX_KEY_FILE_BYTES: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot read the webhook secrets key {path} (`roost init` makes it): {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the webhook secrets key {0} is empty or too large")]
    BadKeyFile(PathBuf),
    #[error(
        "the webhook's secret cannot be unsealed with this server's secrets/webhook_secrets.key \
         (a data dir restored without its secrets folder?): rotate the hook's secret"
    )]
    Open,
}

/// Seals and opens webhook secrets with this server's key.
pub struct Sealer {
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// HKDF's output length for the AEAD key.
struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        CHACHA20_POLY1305.key_len()
    }
}

impl Sealer {
    /// The sealer of this server: its key file, made by `ops::provision` (`roost init`, and
    /// the daemon at start).
    pub fn load(config: &Config) -> Result<Sealer, SealError> {
        let path = config.webhook_key_path();
        Ok(Sealer::from_key_material(&read_key_file(&path)?))
    }

    /// A sealer whose key is derived from `material` (the key file's text).
    pub fn from_key_material(material: &[u8]) -> Sealer {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, KDF_SALT).extract(material);
        let mut key = [0u8; 32];
        prk.expand(&[KDF_INFO], KeyLen)
            .and_then(|okm| okm.fill(&mut key))
            .expect("HKDF-SHA256 can produce 32 bytes: far below its 255-block limit");
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key)
            .expect("a ChaCha20-Poly1305 key is 32 bytes, as made above");
        Sealer {
            key: LessSafeKey::new(unbound),
        }
    }

    /// `secret` sealed: the format byte, a random nonce, then the ciphertext with its tag.
    /// A random 96-bit nonce is safe here: a server seals a few secrets per hook, ever.
    pub fn seal(&self, secret: &str) -> Vec<u8> {
        let nonce_bytes = crate::auth::crypto::random_bytes::<NONCE_LEN>();
        let mut in_out = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(AAD),
                &mut in_out,
            )
            .expect("sealing fails only for inputs over 256 GiB, and a secret is 70 bytes");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT);
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&in_out);
        sealed
    }

    /// The secret `sealed` holds; [`SealError::Open`] when it was sealed with another key, or
    /// changed.
    pub fn open(&self, sealed: &[u8]) -> Result<String, SealError> {
        let (&format, rest) = sealed.split_first().ok_or(SealError::Open)?;
        if format != FORMAT || rest.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut in_out)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)
    }
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, SealError> {
    use std::io::Read;
    let read_error = |source| SealError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = Vec::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(read_error)?;
    while text.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        text.pop();
    }
    if text.is_empty() || text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(SealError::BadKeyFile(path.to_path_buf()));
    }
    Ok(text)
}

/// Seals every secret still stored in the clear (written before migration 17) and blanks the
/// clear column, in the caller's transaction; returns how many. `secure_delete` is on while
/// the rows change, so SQLite overwrites the old text in the pages it frees instead of leaving
/// it in the file. Cheap when there is nothing to do: one look at a table of at most
/// `outgoing::MAX_WEBHOOKS` rows.
pub fn seal_clear_secrets(conn: &Connection, sealer: &Sealer) -> Result<usize, StoreError> {
    let clear: Vec<(i64, String)> = conn
        .prepare("SELECT id, secret FROM webhooks WHERE secret != ''")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    if clear.is_empty() {
        return Ok(0);
    }
    let before: i64 = conn.pragma_query_value(None, "secure_delete", |r| r.get(0))?;
    conn.pragma_update(None, "secure_delete", true)?;
    let sealed = (|| {
        let mut update =
            conn.prepare("UPDATE webhooks SET secret = '', secret_sealed = ?2 WHERE id = ?1")?;
        for (id, secret) in &clear {
            update.execute(params![id, sealer.seal(secret)])?;
        }
        Ok::<_, StoreError>(clear.len())
    })();
    conn.pragma_update(None, "secure_delete", before)?;
    sealed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations::{apply_with, MIGRATIONS};
    use crate::store::{Store, StoreOptions};

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_unchanged() {
        let sealer = Sealer::from_key_material(b"key one");
        let sealed = sealer.seal("whsec_abc");
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
        assert_eq!(sealer.open(&sealed).unwrap(), "whsec_abc");
        // Two seals of one secret differ (random nonces).
        assert_ne!(sealer.seal("whsec_abc"), sealed);
        let other = Sealer::from_key_material(b"key two");
        assert!(matches!(other.open(&sealed), Err(SealError::Open)));
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(matches!(sealer.open(&changed), Err(SealError::Open)));
        assert!(matches!(sealer.open(&[]), Err(SealError::Open)));
        assert!(matches!(sealer.open(&[2; 40]), Err(SealError::Open)));
    }

    /// An upgrade from a database whose hooks hold their secrets in the clear (schema 16):
    /// after migration 17 and the sealing, the hook keeps its secret, and the file has no
    /// trace of it.
    #[tokio::test]
    async fn secrets_stored_in_the_clear_are_sealed_on_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("roost.sqlite3");
        let backups = dir.path().join("backups");
        let before_sealing = MIGRATIONS
            .iter()
            .position(|m| m.version == 17)
            .expect("migration 17 exists");
        apply_with(&db, &backups, &MIGRATIONS[..before_sealing]).unwrap();
        let secret = format!("whsec_{}", "ab".repeat(32));
        {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.execute(
                "INSERT INTO webhooks (id, url, events, secret, created_at, updated_at)
                 VALUES (7, 'http://ha.lan/', ',message.created,', ?1, 0, 0)",
                [&secret],
            )
            .unwrap();
        }

        let store = Store::open(&db, StoreOptions::new(backups)).unwrap();
        let sealer = std::sync::Arc::new(Sealer::from_key_material(b"the key file"));
        let s = sealer.clone();
        let count = store
            .write(move |conn| seal_clear_secrets(conn, &s))
            .await
            .unwrap();
        assert_eq!(count, 1);
        let s = sealer.clone();
        assert_eq!(
            store
                .write(move |conn| seal_clear_secrets(conn, &s))
                .await
                .unwrap(),
            0
        );
        let (clear, sealed): (String, Vec<u8>) = store
            .read(|conn| {
                Ok::<_, StoreError>(conn.query_row(
                    "SELECT secret, secret_sealed FROM webhooks WHERE id = 7",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(clear, "");
        assert_eq!(sealer.open(&sealed).unwrap(), secret);
        store.close().await.unwrap();
        let bytes = std::fs::read(&db).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the clear secret is still in the database file"
        );
    }
}
