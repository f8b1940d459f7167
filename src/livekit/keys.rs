//! LiveKit's API key pairs: where they come from, how `roost init` makes them and how
//! `roost livekit rotate-keys` replaces them without cutting off tokens already handed out.
//!
//! A pair comes either from the configuration (`livekit.api_key` + `api_secret`) or from files
//! in the secrets dir that provisioning generated. Rotation works on generated pairs only: the
//! old pair is saved with the time it may be forgotten (the longest token lifetime later), then
//! the new pair replaces the current files by rename. Until that time both pairs are valid, so
//! LiveKit and the webhook receiver accept either. The pending drop lives on disk, so a
//! restarted daemon still honours it.
//!
//! This module must not spawn or signal anything (that is the supervisor's and the CLI's job)
//! and never logs or prints a secret.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::config::livekit::MAX_TOKEN_TTL_SECS;
use crate::config::{Config, Secret};

/// How long the old pair of a rotation stays valid: no token it signed can outlive this.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(MAX_TOKEN_TTL_SECS);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("LiveKit keys have not been generated yet ({0} is missing); run `roost init`")]
    Missing(PathBuf),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a valid LiveKit key file")]
    Corrupt(PathBuf),
    #[error("the LiveKit key pair comes from the configuration (livekit.api_key); change it there instead of rotating")]
    Configured,
    #[error("a rotation is already in progress; the previous key is dropped at {drop_after} (unix time), rotate again after that")]
    InProgress { drop_after: u64 },
    #[error("the system random generator failed")]
    Random,
}

/// One key pair. `Debug` never shows the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    pub secret: Secret,
}

/// The pairs LiveKit and Roost currently share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    /// Signs new tokens; LiveKit signs webhooks with it.
    pub current: ApiKey,
    /// The pair being rotated out, still accepted until `drop_after`.
    pub previous: Option<(ApiKey, SystemTime)>,
}

impl KeyRing {
    /// Every pair that is valid now, current first.
    pub fn valid(&self) -> impl Iterator<Item = &ApiKey> {
        std::iter::once(&self.current).chain(self.previous.as_ref().map(|(k, _)| k))
    }

    /// The secret for a key id, if the id is one of ours.
    pub fn secret_for(&self, key: &str) -> Option<&Secret> {
        self.valid().find(|k| k.key == key).map(|k| &k.secret)
    }

    /// When the previous pair is to be forgotten, if a rotation is pending.
    pub fn drop_after(&self) -> Option<SystemTime> {
        self.previous.as_ref().map(|(_, t)| *t)
    }
}

/// The saved previous pair of a rotation.
#[derive(Serialize, Deserialize)]
struct PreviousFile {
    key: String,
    secret: String,
    drop_after_unix: u64,
}

pub fn key_path(config: &Config) -> PathBuf {
    config.secrets_dir().join("livekit_api_key")
}

pub fn secret_path(config: &Config) -> PathBuf {
    config.secrets_dir().join("livekit_api_secret")
}

fn previous_path(config: &Config) -> PathBuf {
    config.secrets_dir().join("livekit_previous_key.json")
}

/// True when the pair comes from the configuration rather than generated files.
pub fn configured(config: &Config) -> bool {
    !config.livekit.api_key.is_empty()
}

/// Loads the key ring as of `now`. A previous pair whose time has passed is left out (the
/// file is removed by [`finish_rotation`]).
pub fn load(config: &Config, now: SystemTime) -> Result<KeyRing, KeyError> {
    if configured(config) {
        return Ok(KeyRing {
            current: ApiKey {
                key: config.livekit.api_key.clone(),
                secret: config.livekit.api_secret.clone(),
            },
            previous: None,
        });
    }
    let current = ApiKey {
        key: read_value(&key_path(config))?,
        secret: Secret::new(read_value(&secret_path(config))?),
    };
    let previous = read_previous(config)?
        .filter(|(_, drop_after)| *drop_after > now)
        .filter(|(k, _)| k.key != current.key);
    Ok(KeyRing { current, previous })
}

fn read_value(path: &Path) -> Result<String, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let v = text.trim().to_owned();
            if v.is_empty() || v.contains(char::is_whitespace) {
                return Err(KeyError::Corrupt(path.to_path_buf()));
            }
            Ok(v)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(KeyError::Missing(path.to_path_buf()))
        }
        Err(source) => Err(KeyError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read_previous(config: &Config) -> Result<Option<(ApiKey, SystemTime)>, KeyError> {
    let path = previous_path(config);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KeyError::Io { path, source }),
    };
    let saved: PreviousFile =
        serde_json::from_str(&text).map_err(|_| KeyError::Corrupt(path.clone()))?;
    Ok(Some((
        ApiKey {
            key: saved.key,
            secret: Secret::new(saved.secret),
        },
        UNIX_EPOCH + Duration::from_secs(saved.drop_after_unix),
    )))
}

/// Generates the key pair files unless the configuration supplies a pair or they exist.
/// Never overwrites. Returns the files it created.
pub fn provision(config: &Config) -> Result<Vec<PathBuf>, KeyError> {
    if !config.livekit.enabled || configured(config) {
        return Ok(Vec::new());
    }
    let err = |path: &Path, source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut created = Vec::new();
    let (key, secret) = (key_path(config), secret_path(config));
    // The secret first: a key file without its secret would look like a complete pair.
    let new_secret = generate_secret().map_err(|_| err(&secret, random_failed()))?;
    if write_new(&secret, new_secret.expose()).map_err(|e| err(&secret, e))? {
        created.push(secret);
    }
    let new_key = generate_key_id().map_err(|_| err(&key, random_failed()))?;
    if write_new(&key, &new_key).map_err(|e| err(&key, e))? {
        created.push(key);
    }
    Ok(created)
}

fn random_failed() -> std::io::Error {
    std::io::Error::other("the system random generator failed")
}

/// What a rotation did, for the CLI to print (no secrets).
#[derive(Debug)]
pub struct Rotated {
    pub old_key: String,
    pub new_key: String,
    pub drop_after: SystemTime,
}

/// Replaces the generated pair with a new one, keeping the old pair valid for
/// [`ROTATION_OVERLAP`]. The caller then asks the daemon to restart LiveKit.
pub fn rotate(config: &Config, now: SystemTime) -> Result<Rotated, KeyError> {
    if configured(config) {
        return Err(KeyError::Configured);
    }
    finish_rotation(config, now)?;
    if let Some((_, drop_after)) = read_previous(config)? {
        return Err(KeyError::InProgress {
            drop_after: unix_secs(drop_after),
        });
    }
    let old = load(config, now)?;
    let drop_after = now + ROTATION_OVERLAP;
    let owner = std::fs::metadata(config.secrets_dir()).ok();
    let saved = serde_json::to_string(&PreviousFile {
        key: old.current.key.clone(),
        secret: old.current.secret.expose().to_owned(),
        drop_after_unix: unix_secs(drop_after),
    })
    .expect("a struct of strings and integers always serializes");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    let prev = previous_path(config);
    write_new(&prev, &saved).map_err(io(&prev))?;
    chown_like(&prev, owner.as_ref()).map_err(io(&prev))?;

    let new_key = generate_key_id()?;
    let new_secret = generate_secret()?;
    // Secret before key: the pair is complete once the key id (the name LiveKit and tokens
    // use) switches, and a crash in between leaves the old key with a secret no one uses,
    // which the next rotation fixes; the saved previous pair keeps old tokens valid.
    for (path, value) in [
        (secret_path(config), new_secret.expose()),
        (key_path(config), new_key.as_str()),
    ] {
        replace(&path, value, owner.as_ref()).map_err(io(&path))?;
    }
    Ok(Rotated {
        old_key: old.current.key,
        new_key,
        drop_after,
    })
}

/// Forgets the previous pair once its time has passed. True if it removed one.
pub fn finish_rotation(config: &Config, now: SystemTime) -> Result<bool, KeyError> {
    let path = previous_path(config);
    match read_previous(config) {
        Ok(Some((_, drop_after))) if drop_after <= now => {}
        Ok(_) => return Ok(false),
        // A corrupt file can only be dropped: it cannot be trusted to hold a valid pair.
        Err(KeyError::Corrupt(_)) => {}
        Err(e) => return Err(e),
    }
    std::fs::remove_file(&path).map_err(|source| KeyError::Io { path, source })?;
    Ok(true)
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An API key id in LiveKit's usual shape: `API` and 12 letters or digits.
fn generate_key_id() -> Result<String, KeyError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 12];
    fill_random(&mut bytes)?;
    // 256 is not a multiple of the alphabet's size; the slight bias does not matter for an id.
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    Ok(format!("API{tail}"))
}

/// 32 random bytes as unpadded base64url: 43 characters, above LiveKit's 32-character minimum.
fn generate_secret() -> Result<Secret, KeyError> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes)?;
    Ok(Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

fn fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf)
        .map_err(|_| KeyError::Random)
}

/// Creates `path` (0600) with `value` unless it exists. True if written.
fn write_new(path: &Path, value: &str) -> std::io::Result<bool> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(value.as_bytes())?;
            f.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Atomically replaces `path` (0600) with `value`: a temp file beside it, then rename.
fn replace(path: &Path, value: &str, owner: Option<&std::fs::Metadata>) -> std::io::Result<()> {
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, value)?;
    chown_like(&tmp, owner)?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `rotate-keys` usually runs as root while the daemon runs as `roost`: files it writes get the
/// secrets dir's owner, or the daemon could not read them.
fn chown_like(path: &Path, owner: Option<&std::fs::Metadata>) -> std::io::Result<()> {
    let Some(owner) = owner else { return Ok(()) };
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(owner.uid())),
        Some(nix::unistd::Gid::from_raw(owner.gid())),
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let mut c = Config::default();
        c.storage.data_dir = dir.to_path_buf();
        std::fs::create_dir_all(c.secrets_dir()).unwrap();
        c
    }

    #[test]
    fn provisioning_generates_a_pair_once_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let created = provision(&c).unwrap();
        assert_eq!(created.len(), 2);
        let ring = load(&c, SystemTime::now()).unwrap();
        assert!(ring.current.key.starts_with("API") && ring.current.key.len() == 15);
        assert!(ring.current.secret.expose().len() >= 32);
        let mode = std::fs::metadata(secret_path(&c)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(provision(&c).unwrap().is_empty());
        assert_eq!(load(&c, SystemTime::now()).unwrap(), ring);
    }

    #[test]
    fn configured_pairs_are_used_as_is_and_not_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.livekit.api_key = "APIconfigured".into();
        c.livekit.api_secret = Secret::new("s".repeat(40));
        assert!(provision(&c).unwrap().is_empty());
        assert_eq!(
            load(&c, SystemTime::now()).unwrap().current.key,
            "APIconfigured"
        );
        assert!(matches!(
            rotate(&c, SystemTime::now()),
            Err(KeyError::Configured)
        ));
    }

    #[test]
    fn missing_files_say_to_run_init() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let e = load(&c, SystemTime::now()).unwrap_err();
        assert!(e.to_string().contains("roost init"), "{e}");
    }

    #[test]
    fn rotation_keeps_the_old_pair_for_the_token_lifetime_then_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        provision(&c).unwrap();
        let t0 = SystemTime::now();
        let before = load(&c, t0).unwrap();
        let r = rotate(&c, t0).unwrap();
        assert_eq!(r.old_key, before.current.key);
        assert_eq!(r.drop_after, t0 + ROTATION_OVERLAP);

        let during = load(&c, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(during.current.key, r.new_key);
        assert_ne!(during.current.secret, before.current.secret);
        assert_eq!(
            during.secret_for(&before.current.key),
            Some(&before.current.secret)
        );
        // A second rotation while the first is pending is refused.
        assert!(matches!(
            rotate(&c, t0 + Duration::from_secs(10)),
            Err(KeyError::InProgress { .. })
        ));
        assert!(!finish_rotation(&c, t0 + Duration::from_secs(10)).unwrap());

        let after = t0 + ROTATION_OVERLAP + Duration::from_secs(1);
        assert!(load(&c, after).unwrap().previous.is_none());
        assert!(finish_rotation(&c, after).unwrap());
        assert!(!previous_path(&c).exists());
        // Now a new rotation may start.
        rotate(&c, after).unwrap();
    }
}
