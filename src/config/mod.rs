//! Configuration: the typed value every other module is built from.
//!
//! Sources, later ones winning: embedded defaults, the TOML file, `ROOST_<SECTION>_<KEY>`
//! environment variables. Secrets may also come from `<key>_file` or systemd credentials
//! (see [`secrets`]). [`load`] reports *every* problem at once so an operator fixes the file in
//! one pass; nothing here binds sockets or touches the data directory.
//!
//! This module must not read global state after loading: the result is a plain value passed
//! down from `main` (no `static CONFIG`).

pub mod alerts;
pub mod attachments;
mod auth;
pub mod backup;
pub mod chat;
mod env;
pub mod gateway;
pub mod livekit;
pub mod rate_limits;
pub mod retention;
pub mod secrets;
mod validate;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use auth::Auth;
pub use secrets::Secret;
pub use validate::Problem;

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/roost/roost.toml";

/// Which safety rules apply. `Dev` is `serve --dev`: loopback listeners, data under
/// `./roost-dev/`, weak secrets tolerated. Everything else is `Production` and fails closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Production,
    Dev,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub tls: Tls,
    pub storage: Storage,
    pub limits: Limits,
    pub auth: Auth,
    pub backup: backup::Backup,
    pub rate_limits: rate_limits::RateLimits,
    pub alerts: alerts::Alerts,
    pub livekit: livekit::Livekit,
    pub chat: chat::Chat,
    pub gateway: gateway::Gateway,
    pub attachments: attachments::Attachments,
    pub retention: retention::Retention,
    pub webhooks: webhooks::Webhooks,
    #[serde(skip)]
    pub profile: Option<Profile>,
    /// The file this value was read from, if any (for messages and `doctor`).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Used for certificate SANs and URLs. Empty: the system hostname.
    pub hostname: String,
    pub https_addr: String,
    /// Plain HTTP: redirects to HTTPS and serves `/ca.crt`. Empty disables it.
    pub http_addr: String,
    /// Loopback only: `/metrics`, `/status`, webhooks.
    pub internal_addr: String,
    /// Empty: hostname, hostname.local, localhost and this machine's IPs.
    pub allowed_hosts: Vec<String>,
    /// CIDRs whose `X-Forwarded-For` / `Forwarded` headers are believed.
    pub trusted_proxies: Vec<String>,
    /// The origin clients use when Roost is reached through a tunnel.
    pub public_url: String,
    pub shutdown_grace_secs: u64,
    /// Open HTTPS connections at most; at the cap new clients wait in the listen backlog.
    /// The plain-HTTP listener has its own cap of min(this, 256).
    pub max_connections: usize,
    /// Connections one client address (IPv6: one /64, but each address alone on this
    /// machine's own networks) may hold open on a listener; more are closed at once. Trusted
    /// proxies are exempt.
    pub max_connections_per_ip: usize,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            hostname: String::new(),
            https_addr: "[::]:443".into(),
            http_addr: "[::]:80".into(),
            internal_addr: "127.0.0.1:9090".into(),
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            public_url: String::new(),
            shutdown_grace_secs: 10,
            max_connections: 4096,
            max_connections_per_ip: 256,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// PEM chain. Empty (with `key_file` empty): local CA mode.
    pub cert_file: String,
    pub key_file: String,
    pub hsts_max_age_secs: u64,
    /// Local CA mode re-issues the server certificate when fewer days than this remain.
    pub renew_before_days: u32,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            cert_file: String::new(),
            key_file: String::new(),
            hsts_max_age_secs: 63_072_000,
            renew_before_days: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    pub data_dir: PathBuf,
    /// Below this, `/ready` fails and writes are refused with 507.
    pub min_free_disk_mb: u64,
    /// Read connections kept open next to the single writer.
    pub read_connections: usize,
    /// Most write jobs committed in one transaction by the group-commit writer.
    pub max_write_batch: usize,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            data_dir: PathBuf::from("/var/lib/roost"),
            min_free_disk_mb: 256,
            read_connections: 4,
            max_write_batch: 256,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Cap on a JSON request body; larger bodies get 413 before a handler runs.
    pub max_body_bytes: usize,
    /// Time allowed for a client to send a complete request head.
    pub header_read_timeout_secs: u64,
    /// Time allowed for one request, from head to response.
    pub request_timeout_secs: u64,
    /// An open connection with no request in flight is closed after this long.
    pub idle_timeout_secs: u64,
    pub tls_handshake_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
            idle_timeout_secs: 120,
            tls_handshake_timeout_secs: 10,
        }
    }
}

/// How the command line asked for configuration.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub path: Option<PathBuf>,
    pub dev: bool,
}

/// Every problem found, ready to print. Loading stops only after all are collected.
#[derive(Debug)]
pub struct Problems(pub Vec<Problem>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "configuration has {} problem(s):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Loads, merges and validates configuration from the file (if any), the environment and
/// secret files. Returns every problem found, never just the first.
pub fn load(opts: &LoadOptions) -> Result<Config, Problems> {
    load_with_env(opts, &|name| std::env::var(name).ok())
}

/// [`load`] with the environment supplied by the caller, so tests need not mutate the process.
pub fn load_with_env(
    opts: &LoadOptions,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Problems> {
    let profile = if opts.dev {
        Profile::Dev
    } else {
        Profile::Production
    };
    let mut problems = Vec::new();

    let mut base = if opts.dev {
        dev_defaults()
    } else {
        Config::default()
    };
    // Start from the defaults as a TOML tree so the file and env only overlay what they name.
    let defaults = toml::Value::try_from(&base).expect("default config always serializes");
    let mut tree = defaults.clone();

    let path = match (&opts.path, opts.dev) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => None,
        (None, false) => Some(PathBuf::from(DEFAULT_CONFIG_PATH)),
    };
    if let Some(path) = &path {
        match std::fs::read_to_string(path) {
            Ok(text) => match text.parse::<toml::Table>() {
                Ok(file) => overlay(&mut tree, toml::Value::Table(file)),
                Err(e) => problems.push(Problem::file(path, e.to_string().trim_end())),
            },
            // An explicit --config must exist; the default path may be absent (embedded
            // defaults apply, and `check-config` says so).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.path.is_none() => {}
            Err(e) => problems.push(Problem::file(path, &format!("cannot read: {e}"))),
        }
    }
    validate::structure(&defaults, &mut tree, &mut problems);
    env::apply(&mut tree, getenv, &mut problems);

    match serde_path_to_error_deserialize(tree) {
        Ok(c) => base = c,
        Err(p) => {
            problems.push(p);
            return Err(Problems(problems));
        }
    }
    base.profile = Some(profile);
    base.source = path.filter(|p| p.exists());
    secrets::resolve(&mut base, getenv, &mut problems);
    validate::check(&base, &mut problems);
    if problems.is_empty() {
        Ok(base)
    } else {
        Err(Problems(problems))
    }
}

fn serde_path_to_error_deserialize(tree: toml::Value) -> Result<Config, Problem> {
    // toml's error names the offending key ("unknown field `x`, expected one of ...").
    let text = toml::to_string(&tree).map_err(|e| Problem::general(&e.to_string()))?;
    toml::from_str::<Config>(&text).map_err(|e| Problem::general(e.message()))
}

/// Deep-merges `top` into `base`: tables merge key by key, anything else replaces.
fn overlay(base: &mut toml::Value, top: toml::Value) {
    match (base, top) {
        (toml::Value::Table(b), toml::Value::Table(t)) => {
            for (k, v) in t {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_table() && v.is_table() => overlay(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, t) => *b = t,
    }
}

/// The embedded development profile: everything on loopback, data next to the checkout.
pub fn dev_defaults() -> Config {
    let mut c = Config::default();
    c.server.hostname = "localhost".into();
    c.server.https_addr = "127.0.0.1:8443".into();
    c.server.http_addr = "127.0.0.1:8080".into();
    c.server.internal_addr = "127.0.0.1:9090".into();
    c.storage.data_dir = PathBuf::from("roost-dev");
    // A checkout rarely has livekit-server installed; `ROOST_LIVEKIT_ENABLED=true` turns it on.
    c.livekit.enabled = false;
    c
}

impl Config {
    pub fn profile(&self) -> Profile {
        self.profile.unwrap_or(Profile::Production)
    }

    /// The hostname certificates and URLs use: configured, or the system's.
    pub fn hostname(&self) -> String {
        if !self.server.hostname.is_empty() {
            return self.server.hostname.clone();
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }

    pub fn https_addr(&self) -> SocketAddr {
        parse_addr(&self.server.https_addr).expect("validated at load")
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        (!self.server.http_addr.is_empty())
            .then(|| parse_addr(&self.server.http_addr).expect("validated at load"))
    }

    pub fn internal_addr(&self) -> SocketAddr {
        parse_addr(&self.server.internal_addr).expect("validated at load")
    }

    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.server
            .trusted_proxies
            .iter()
            .map(|s| parse_cidr(s).expect("validated at load"))
            .collect()
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_secs)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.request_timeout_secs)
    }

    pub fn data_dir(&self) -> &Path {
        &self.storage.data_dir
    }

    pub fn db_path(&self) -> PathBuf {
        self.storage.data_dir.join("roost.sqlite3")
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.storage.data_dir.join("tls")
    }

    pub fn secrets_dir(&self) -> PathBuf {
        self.storage.data_dir.join("secrets")
    }

    /// The key file outgoing webhook secrets are sealed with in the database
    /// (`integrations::sealing`); made by `ops::provision`, never in a backup.
    pub fn webhook_key_path(&self) -> PathBuf {
        self.secrets_dir().join("webhook_secrets.key")
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.storage.data_dir.join("backups")
    }

    /// The options that load this configuration again (SIGHUP): the same file (or, without
    /// one, the default path, which may have appeared since) and the same profile.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            path: self.source.clone(),
            dev: self.profile() == Profile::Dev,
        }
    }

    /// True when certificates come from the local CA `roost init` made.
    pub fn local_ca_mode(&self) -> bool {
        self.tls.cert_file.is_empty() && self.tls.key_file.is_empty()
    }
}

/// A CIDR block, or one address as its own /32 or /128.
pub(crate) fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

pub(crate) fn parse_addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

#[cfg(test)]
mod tests;
