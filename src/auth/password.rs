//! Password hashing with argon2id, off the async threads and bounded.
//!
//! At most one hash per CPU core runs at a time (a semaphore), each on `spawn_blocking`; so a
//! login flood costs at most `cores x argon2_memory_kib` of memory and cannot starve the
//! async workers. Up to [`MAX_WAITING`] requests queue for a permit; beyond that callers get
//! [`HashError::Busy`] (503) at once instead of piling up. Logins for unknown users verify
//! against a dummy hash with the same parameters, so they take as long as a wrong password.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`): the parameters travel
//! with each hash, so changing `[auth]` costs only affects new hashes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::Config;

/// Requests allowed to wait for a hashing permit; the next one is told the server is busy.
pub const MAX_WAITING: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks are waiting; retry shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashParams {
    pub fn from_config(config: &Config) -> HashParams {
        HashParams {
            memory_kib: config.auth.argon2_memory_kib,
            iterations: config.auth.argon2_iterations,
            parallelism: config.auth.argon2_parallelism,
        }
    }

    fn argon2(self) -> Result<Argon2<'static>, HashError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hashes and verifies passwords; shared by every request (cheap to share behind `Arc`).
pub struct Hasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    dummy_hash: Arc<str>,
}

impl Hasher {
    /// Builds the hasher with one permit per core and computes the dummy hash (one full hash,
    /// on a blocking thread).
    pub async fn new(params: HashParams) -> Result<Hasher, HashError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Hasher::with_permits(params, cores).await
    }

    pub async fn with_permits(params: HashParams, permits: usize) -> Result<Hasher, HashError> {
        let argon2 = params.argon2()?;
        let for_dummy = argon2.clone();
        let dummy_password = crate::auth::crypto::token_256();
        let dummy_hash = tokio::task::spawn_blocking(move || hash_now(&for_dummy, &dummy_password))
            .await
            .map_err(|e| HashError::Failed(e.to_string()))??;
        Ok(Hasher {
            argon2,
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: AtomicUsize::new(0),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// A new PHC hash of `password` with the configured parameters and a random salt.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let argon2 = self.argon2.clone();
        self.run(move || hash_now(&argon2, &password)).await?
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no user, so
    /// both take the same time. `false` for a wrong password, no user or an unreadable hash.
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: String,
    ) -> Result<bool, HashError> {
        let is_real = stored.is_some();
        let stored: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let argon2 = self.argon2.clone();
        let matched = self
            .run(move || {
                let Ok(parsed) = PasswordHash::new(&stored) else {
                    return false;
                };
                // Verification uses the parameters stored in the hash, not `argon2`'s.
                argon2.verify_password(password.as_bytes(), &parsed).is_ok()
            })
            .await?;
        Ok(matched && is_real)
    }

    /// Runs `f` on a blocking thread once a permit is free; `Busy` if too many already wait.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let queued = Waiting::enter(&self.waiting);
        if queued.position > MAX_WAITING {
            return Err(HashError::Busy);
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the hashing semaphore is never closed");
        drop(queued);
        // The permit moves into the blocking task: if the request is dropped meanwhile, the
        // hash still finishes before another one may start, so the bound holds.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// Requests currently waiting for a hashing permit (for tests and status).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

fn hash_now(argon2: &Argon2<'_>, password: &str) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(&crate::auth::crypto::random_bytes::<16>())
        .map_err(|e| HashError::Failed(e.to_string()))?;
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

/// Counts a caller as waiting until dropped (also when its future is cancelled).
struct Waiting<'a> {
    counter: &'a AtomicUsize,
    position: usize,
}

impl<'a> Waiting<'a> {
    fn enter(counter: &'a AtomicUsize) -> Waiting<'a> {
        let position = counter.fetch_add(1, Ordering::AcqRel) + 1;
        Waiting { counter, position }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so the tests stay fast; the code paths are the same.
    const CHEAP: HashParams = HashParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test]
    async fn hashes_verify_and_carry_their_parameters() {
        let hasher = Hasher::with_permits(CHEAP, 2).await.unwrap();
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(hasher
            .verify(Some(hash.clone()), "correct horse".into())
            .await
            .unwrap());
        assert!(!hasher
            .verify(Some(hash.clone()), "wrong horse".into())
            .await
            .unwrap());
        // No user: the dummy hash is checked and the answer is always no.
        assert!(!hasher.verify(None, "anything".into()).await.unwrap());
        // A hasher with other parameters still verifies the old hash.
        let other = Hasher::with_permits(
            HashParams {
                memory_kib: 128,
                ..CHEAP
            },
            1,
        )
        .await
        .unwrap();
        assert!(other
            .verify(Some(hash), "correct horse".into())
            .await
            .unwrap());
        assert!(!other
            .verify(Some("garbage".into()), "x".into())
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn too_many_waiting_callers_are_told_busy() {
        let hasher = Arc::new(Hasher::with_permits(CHEAP, 1).await.unwrap());
        // Hold the only permit so everyone else queues.
        let held = hasher.permits.clone().acquire_owned().await.unwrap();
        let mut queued = Vec::new();
        for _ in 0..MAX_WAITING {
            let h = hasher.clone();
            queued.push(tokio::spawn(async move { h.hash("pw".into()).await }));
        }
        // Wait (bounded) until all of them are queued.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while hasher.waiting() < MAX_WAITING {
            assert!(
                tokio::time::Instant::now() < deadline,
                "callers did not queue"
            );
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            hasher.hash("one too many".into()).await,
            Err(HashError::Busy)
        ));
        drop(held);
        for q in queued {
            assert!(q.await.unwrap().is_ok());
        }
        assert_eq!(hasher.waiting(), 0);
    }
}
