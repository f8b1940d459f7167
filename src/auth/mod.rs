//! Who is calling and what they may do: accounts, passwords, sessions (access JWT + rotating
//! refresh tokens), API keys, invites, the first-admin setup code, and the failed-login
//! backoff (per username and address, with a per-username ceiling).
//!
//! Requests are authenticated in exactly one place, the [`authenticate`] step of every
//! request, which turns an `Authorization: Bearer` header into a [`Principal`]; handlers ask for
//! a [`Principal`], [`RequireAdmin`], [`RequireMember`] or [`RequireSession`] extractor and
//! never check roles themselves. Blocking work (argon2, SQLite) runs off the async threads:
//! hashing through [`password::Hasher`], the database through `store`.
//!
//! Its handlers take the parts of the state they use (`Store`, `Arc<AuthState>`), and it knows
//! nothing of rooms: an account change that also moves rooms (a member made a guest) is
//! `admin::users`, and a person's own new name, which the people sharing a room with them hear
//! of, is `account` (`PATCH /api/v1/me`, which also mounts [`me`]); both call
//! [`users::update`] inside chat's transaction.
//!
//! This module must not build HTTP responses itself (errors become `ApiError` in
//! [`error`]), must not keep secrets in the clear anywhere but in the response that hands them
//! out once, and must not log tokens, passwords, codes or keys — the one exception is the
//! first-admin setup code, which is logged once at WARN so the operator can read it from the
//! journal (that is its purpose, and it only exists while no admin does).

pub mod api_keys;
pub mod backoff;
pub mod browser;
pub mod cli;
pub(crate) mod crypto;
pub mod error;
pub mod invites;
pub mod password;
mod principal;
pub mod refresh_grace;
pub mod session;
pub mod session_cache;
pub mod setup;
pub(crate) mod sign_in;
pub mod token;
pub mod username;
pub mod users;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::documented;
use axum::extract::FromRef;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::config::Config;
use crate::http::Routes;
use crate::metrics::Metrics;
use crate::store::Store;

pub use error::AuthError;
pub use principal::{
    authenticate, carries_credentials, credential_is_live, resolve_credential, still_valid,
    CallerIp, Credential, Principal, RequireAdmin, RequireMember, RequireSession, Scopes,
};
pub use sign_in::{change_password, login, logout, me, refresh, register};
pub use users::Role;

// The request bodies, for the fuzz targets (fuzz/) that feed them arbitrary JSON.
pub use sign_in::{LoginRequest, PasswordRequest, RefreshRequest, RegisterRequest};

/// How often sign-ins also delete long-ended sessions and expired refresh tokens.
pub const PRUNE_INTERVAL_SECS: i64 = 3600;

/// Where time comes from, so expiry and backoff can be tested with a fake clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Seconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A clock tests move by hand.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<Mutex<SystemTime>>);

impl FakeClock {
    pub fn at_unix(secs: u64) -> FakeClock {
        FakeClock(Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(secs))))
    }
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("fake clock lock is never poisoned");
        *t += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().expect("fake clock lock is never poisoned")
    }
}

/// Labels of `roost_auth_failures_total`: a fixed set of reasons (see [`error::reason`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub reason: &'static str,
}

/// Labels of `roost_auth_login_backoff_refusals_total`: which backoff refused a sign-in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackoffLabels {
    /// `address` (this name from this address) or `username` (the name's ceiling).
    pub scope: &'static str,
}

/// Settings derived from `[auth]` that handlers need at request time.
#[derive(Debug, Clone)]
pub struct Settings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub min_password_length: usize,
    pub max_password_length: usize,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            access_ttl: Duration::from_secs(config.auth.access_token_ttl_secs),
            refresh_ttl: Duration::from_secs(config.auth.refresh_token_ttl_days * 86_400),
            min_password_length: config.auth.min_password_length,
            max_password_length: config.auth.max_password_length,
        }
    }
}

/// Everything authentication shares across requests; one per daemon, in `AppState`.
pub struct AuthState {
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    pub keys: token::Keys,
    pub hasher: password::Hasher,
    pub backoff: backoff::LoginBackoff,
    /// Refresh exchanges of the last 10 s, so a retried refresh is not taken for reuse.
    pub(crate) refresh_grace: refresh_grace::RefreshGrace<sign_in::RecentExchange>,
    pub api_key_usage: api_keys::UsageThrottle,
    failures: Family<FailureLabels, Counter>,
    backoff_refusals: Family<BackoffLabels, Counter>,
    setup: Mutex<Option<setup::PendingSetup>>,
    /// Where the pending setup code is written for root (`setup::code_file`).
    setup_code_file: std::path::PathBuf,
    /// Sessions the database confirmed recently (`session_cache`).
    pub sessions: session_cache::SessionCache,
    /// When ended sessions were last pruned (Unix seconds).
    last_prune: AtomicI64,
    /// Where rejections are also reported (security alerts); unset in tests without alerts.
    alerts: std::sync::OnceLock<crate::limits::alerts::AlertSink>,
}

impl AuthState {
    /// Loads the signing keys, prepares the hasher, and — when no admin exists — issues a
    /// fresh setup code, logs it once and writes it to the 0600 code file (removed when an
    /// admin exists). Called by `daemon::run` after the store is open, before READY, so the
    /// console helper finds the file once the service is up.
    pub async fn start(
        config: &Config,
        store: &Store,
        metrics: &Metrics,
    ) -> anyhow::Result<Arc<AuthState>> {
        let state = Arc::new(AuthState::new(config, metrics, Arc::new(SystemClock)).await?);
        let Some(pending) = setup::issue_if_no_admin(&state, store).await? else {
            state.clear_pending_setup().await;
            return Ok(state);
        };
        tracing::warn!(
            setup_code = %pending.code,
            expires_in_hours = 24,
            "no admin account exists: create the first one with POST /api/v1/setup \
             {{\"setup_code\", \"username\", \"password\"}} using this one-time setup code, \
             or run `roost user add NAME --role admin`; `sudo roost status` shows the code \
             too, and a new one is issued at each start until an admin exists"
        );
        let (path, code) = (state.setup_code_file.clone(), pending.code.clone());
        let written =
            tokio::task::spawn_blocking(move || setup::write_code_file(&path, &code)).await;
        // The journal still has the code: a missing file costs `roost status` only.
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                path = %state.setup_code_file.display(), error = %e,
                "cannot write the setup code file; `roost status` will not show the code"
            ),
            Err(e) => tracing::warn!(error = %e, "writing the setup code file"),
        }
        state.set_pending_setup(Some(pending));
        Ok(state)
    }

    /// The state without touching the database (tests, and [`start`](Self::start)).
    pub async fn new(
        config: &Config,
        metrics: &Metrics,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<AuthState> {
        let keys = token::Keys::load(config, clock.now())?;
        let hasher = password::Hasher::new(password::HashParams::from_config(config)).await?;
        let failures = Family::<FailureLabels, Counter>::default();
        metrics.register(
            "auth_failures",
            "Rejected credentials (tokens, API keys, logins, refresh tokens, setup codes), by reason",
            failures.clone(),
        );
        let backoff_refusals = Family::<BackoffLabels, Counter>::default();
        metrics.register(
            "auth_login_backoff_refusals",
            "Sign-ins refused by the login backoff without checking the password, by scope \
             (address: this username from this address; username: the username's ceiling)",
            backoff_refusals.clone(),
        );
        Ok(AuthState {
            settings: Settings::from_config(config),
            backoff: backoff::LoginBackoff::new(
                backoff::Policy::default(),
                backoff::Ceiling::policy(),
                clock.clone(),
            ),
            backoff_refusals,
            refresh_grace: refresh_grace::RefreshGrace::default(),
            clock,
            keys,
            hasher,
            api_key_usage: api_keys::UsageThrottle::default(),
            failures,
            sessions: session_cache::SessionCache::default(),
            setup: Mutex::new(None),
            setup_code_file: setup::code_file(config),
            last_prune: AtomicI64::new(0),
            alerts: std::sync::OnceLock::new(),
        })
    }

    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub fn now_secs(&self) -> i64 {
        unix_secs(self.clock.now())
    }

    pub fn now_ms(&self) -> i64 {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// True at most once per [`PRUNE_INTERVAL_SECS`]: the caller prunes ended sessions.
    pub fn prune_due(&self, now: i64) -> bool {
        let last = self.last_prune.load(Ordering::Relaxed);
        now - last >= PRUNE_INTERVAL_SECS
            && self
                .last_prune
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Counts one rejection in `roost_auth_failures_total{reason}` and reports it to the
    /// security alerts (a non-blocking signal).
    pub fn count_failure(&self, reason: &'static str) {
        self.failures.get_or_create(&FailureLabels { reason }).inc();
        if let Some(alerts) = self.alerts.get() {
            alerts.auth_failure();
        }
    }

    /// Counts a sign-in the backoff refused, by scope (and as a `login_backoff` failure).
    pub fn count_backoff_refusal(&self, scope: backoff::Scope) {
        self.backoff_refusals
            .get_or_create(&BackoffLabels {
                scope: scope.as_str(),
            })
            .inc();
        self.count_failure("login_backoff");
    }

    /// Connects failures to the security-alert sink; set once by the daemon at startup.
    pub fn report_failures_to(&self, alerts: crate::limits::alerts::AlertSink) {
        let _ = self.alerts.set(alerts);
    }

    /// The setup code this daemon issued, if it can still be used: not expired, and no
    /// enabled admin exists (one may have been made with `roost user add` meanwhile). For
    /// `/status` (which says only whether one is pending). Only the running daemon and its code
    /// file know the plaintext; the database holds its hash.
    pub async fn pending_setup(
        &self,
        store: &Store,
    ) -> Result<Option<setup::PendingSetup>, AuthError> {
        let pending = self
            .setup
            .lock()
            .expect("setup lock is never poisoned: nothing panics while holding it")
            .clone()
            .filter(|p| p.expires_at > self.now_secs());
        let Some(pending) = pending else {
            return Ok(None);
        };
        if store.read(users::admin_exists).await? {
            self.clear_pending_setup().await;
            return Ok(None);
        }
        Ok(Some(pending))
    }

    /// An admin exists: forgets the code and removes its file (a failure is logged only: the
    /// code itself no longer works, its hash is gone from the database).
    pub(crate) async fn clear_pending_setup(&self) {
        self.set_pending_setup(None);
        let path = self.setup_code_file.clone();
        let removed = tokio::task::spawn_blocking(move || setup::remove_code_file(&path)).await;
        if let Ok(Err(e)) = removed {
            tracing::warn!(path = %self.setup_code_file.display(), error = %e,
                "cannot remove the used setup code file");
        }
    }

    fn set_pending_setup(&self, value: Option<setup::PendingSetup>) {
        *self
            .setup
            .lock()
            .expect("setup lock is never poisoned: nothing panics while holding it") = value;
    }
}

/// The accounts, sessions, invites and API keys routes of the HTTPS surface.
pub fn routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    Routes::new()
        .api(documented!(setup::status, setup::complete))
        .api(documented!(sign_in::login))
        .api(documented!(sign_in::refresh))
        .api(documented!(sign_in::logout))
        .api(documented!(sign_in::register))
        .api(documented!(sign_in::change_password))
        .api(documented!(users::list))
        .api(documented!(invites::create, invites::list))
        .api(documented!(invites::revoke))
        .api(documented!(api_keys::create, api_keys::list))
        .api(documented!(api_keys::revoke))
        .api(documented!(api_keys::start_rotation))
        .api(documented!(api_keys::confirm_rotation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[tokio::test]
    async fn a_setup_code_is_pending_only_while_no_admin_exists() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.auth.argon2_memory_kib = 64;
        config.auth.argon2_iterations = 1;
        std::fs::create_dir_all(config.secrets_dir()).unwrap();
        std::fs::write(token::key_path(&config), "k".repeat(43)).unwrap();
        let store =
            Store::open(&config.db_path(), StoreOptions::new(config.backups_dir())).unwrap();

        let auth = AuthState::start(&config, &store, &Metrics::new())
            .await
            .unwrap();
        let pending = auth.pending_setup(&store).await.unwrap().expect("a code");
        assert_eq!(pending.code.len(), 24);
        assert!(pending.expires_at > auth.now_secs() + 23 * 3600);
        // Another start issues a different code (the old one is replaced in the database).
        let again = AuthState::start(&config, &store, &Metrics::new())
            .await
            .unwrap();
        let second = again.pending_setup(&store).await.unwrap().expect("a code");
        assert_ne!(second.code, pending.code);
        // The code file holds the newest code, for root and the daemon's user only.
        let file = setup::code_file(&config);
        assert_eq!(
            setup::read_code_file(&file).unwrap().as_deref(),
            Some(second.code.as_str())
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let hash = auth.hasher.hash("admin password".into()).await.unwrap();
        store
            .write(move |conn| {
                users::insert(
                    conn,
                    &users::NewUser {
                        username: "root".into(),
                        display_name: "root".into(),
                        role: Role::Admin,
                        password_hash: hash,
                    },
                    0,
                )
            })
            .await
            .unwrap();
        assert_eq!(again.pending_setup(&store).await.unwrap(), None);
        assert!(!file.exists(), "an admin exists: the code file is gone");
        std::fs::write(&file, "stale\n").unwrap();
        let third = AuthState::start(&config, &store, &Metrics::new())
            .await
            .unwrap();
        assert_eq!(third.pending_setup(&store).await.unwrap(), None);
        assert!(
            !file.exists(),
            "a start with an admin removes a stale code file"
        );
        store.close().await.unwrap();
    }
}
