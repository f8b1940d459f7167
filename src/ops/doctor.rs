//! `roost doctor [--json]`: "what is wrong with this Roost?", answered check by check.
//!
//! Each check says OK, WARN or FAIL with one line of explanation and, unless OK, one line that
//! fixes it. The command exits 1 if any check FAILs. Checks look, never repair: doctor writes
//! nothing, uses no network beyond connecting to Roost's own configured addresses, and runs no
//! program except `livekit-server --version` (with a deadline). The judging is done by pure
//! functions over what was read, so the rules are unit-tested without the machine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::livekit::DEFAULT_BINARIES;
use crate::config::{Config, Problems};
use crate::edge::{local_ca, tls};
use crate::ops::backup::{self, LastSuccess};
use crate::ops::pi::{self, SysRoot};
use crate::store::{inspect, migrations, StoreError};

/// LiveKit's recommendation for media: a UDP receive buffer of at least 5 MB.
pub const RMEM_RECOMMENDED: u64 = 5_000_000;
/// A backup older than this is stale.
pub const BACKUP_MAX_AGE: Duration = Duration::from_secs(2 * 86_400);
/// The clock is unset (a Pi without RTC boots in the past) if the year is before this.
const SANE_YEAR: i32 = 2024;
/// systemd's rule (`ntp_synced()`): the kernel clock counts as synchronised while its
/// estimated maximum error is below 16 s.
const MAX_SYNC_ERROR_US: i64 = 16_000_000;
/// An operator certificate this close to expiry is a warning.
const CERT_WARN: time::Duration = time::Duration::days(14);
/// A local-CA server certificate is re-issued by the daemon; this close means it did not.
const LOCAL_CERT_WARN: time::Duration = time::Duration::days(7);
/// Devices must import a new CA when it expires, and nothing renews a CA: warn half a year
/// ahead, so the owner can plan the switch.
const CA_WARN: time::Duration = time::Duration::days(180);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);
/// Temperature above which the Pi's firmware starts to throttle (it caps at 85 °C).
const HOT_CELSIUS: f64 = 80.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Level::Ok,
            message: message.into(),
            fix: None,
        }
    }
    fn warn(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Level::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
    fn fail(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Level::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Runs every check. With an invalid configuration, the checks that need it are skipped
/// (the config check FAILs and says why).
pub fn run(config: &Result<Config, Problems>, now: OffsetDateTime) -> Vec<Check> {
    let mut checks = vec![check_config(config)];
    if let Ok(c) = config {
        checks.extend(check_certificates(c, now));
    }
    checks.push(check_clock(now, clock_synchronized()));
    if let Ok(c) = config {
        let free = crate::files::disk::free_bytes(existing_ancestor(c.data_dir())).ok();
        checks.push(check_disk(free, c.storage.min_free_disk_mb));
        checks.push(check_permissions(c));
        checks.push(check_database(c));
    }
    match config {
        Ok(c) if c.livekit.external_authority().is_some() => checks.push(Check::ok(
            "livekit",
            format!(
                "external LiveKit at {} (nothing to run here)",
                c.livekit.external_url
            ),
        )),
        // The binary the supervisor would run: the configured one, else the usual places.
        Ok(c) if !c.livekit.binary.is_empty() => {
            checks.push(check_livekit(&[PathBuf::from(&c.livekit.binary)]))
        }
        _ => checks.push(check_livekit(&DEFAULT_BINARIES.map(PathBuf::from))),
    }
    if let Ok(c) = config {
        if c.livekit.enabled && c.livekit.external_authority().is_none() {
            checks.push(check_livekit_media(
                &c.livekit,
                &crate::livekit::lan::interface_addresses(),
            ));
        }
    }
    if let Ok(c) = config {
        let running = crate::ops::lock::is_held(c.data_dir()).ok();
        checks.push(check_ports(&listen_addrs(c), running, &|a| {
            TcpStream::connect_timeout(&a, CONNECT_TIMEOUT).is_ok()
        }));
    }
    checks.push(check_udp_buffer(
        read_u64("/proc/sys/net/core/rmem_max"),
        read_u64("/proc/sys/net/core/wmem_max"),
    ));
    if let Ok(c) = config {
        checks.push(check_backup(
            backup::last_success(&c.backups_dir()).as_ref(),
            now,
        ));
    }
    checks.extend(check_pi(&pi::measure(&SysRoot::default())));
    checks
}

pub fn check_config(config: &Result<Config, Problems>) -> Check {
    match config {
        Ok(c) => Check::ok(
            "config",
            match &c.source {
                Some(p) => format!("{} is valid", p.display()),
                None => "valid (no file: embedded defaults)".into(),
            },
        ),
        Err(p) => Check::fail(
            "config",
            p.0.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            "edit the file, then `roost check-config`; other checks need a valid configuration",
        ),
    }
}

/// The server certificate (local CA or operator files) and, in local CA mode, the CA.
pub fn check_certificates(config: &Config, now: OffsetDateTime) -> Vec<Check> {
    if config.local_ca_mode() {
        let files = local_ca::LocalCaFiles::in_dir(&config.tls_dir());
        if !files.ca_cert.exists() {
            return vec![Check::warn(
                "certificates",
                format!("no local CA yet ({} is missing)", files.ca_cert.display()),
                "run `roost init` (the first `roost serve` does it too)",
            )];
        }
        let ca = match first_not_after(&files.ca_cert) {
            Ok(t) => judge_expiry("ca", "the local CA", t, now, CA_WARN, &new_ca_fix(&files)),
            Err(e) => Check::fail("ca", e, "restore tls/ from a backup or re-run `roost init`"),
        };
        let server = match tls::load_certified_key(&files.server_cert, &files.server_key) {
            Ok(key) => match tls::leaf_not_after(&key) {
                Some(t) => judge_expiry(
                    "certificates",
                    "the server certificate",
                    t,
                    now,
                    LOCAL_CERT_WARN,
                    "restart roost: it re-issues its certificate from the local CA",
                ),
                None => Check::fail("certificates", "the server certificate cannot be parsed", "remove tls/server.* and restart roost"),
            },
            Err(e) => Check::fail(
                "certificates",
                e.to_string(),
                "run as root or user roost; if the files are damaged, remove tls/server.* and restart roost",
            ),
        };
        vec![server, ca]
    } else {
        let (cert, key) = (
            PathBuf::from(&config.tls.cert_file),
            PathBuf::from(&config.tls.key_file),
        );
        let check = match tls::load_certified_key(&cert, &key) {
            Ok(k) => match tls::leaf_not_after(&k) {
                Some(t) => judge_expiry(
                    "certificates",
                    &format!("{}", cert.display()),
                    t,
                    now,
                    CERT_WARN,
                    "renew the certificate (e.g. certbot renew), then `systemctl reload roost`",
                ),
                None => Check::fail("certificates", format!("{} cannot be parsed", cert.display()), "install a valid PEM certificate"),
            },
            Err(e) => Check::fail(
                "certificates",
                e.to_string(),
                "fix tls.cert_file / tls.key_file (readable by user roost, key matching the certificate)",
            ),
        };
        vec![check]
    }
}

/// Nothing renews a CA in place (devices trust that very certificate, and `local_ca` never
/// replaces one): the owner makes a new one, which `roost init` does when `ca.crt` and `ca.key`
/// are both gone (with the database closed: init also migrates it), and every device imports it.
fn new_ca_fix(files: &local_ca::LocalCaFiles) -> String {
    format!(
        "a CA cannot be renewed, only replaced: `systemctl stop roost`, move {} and {} \
         somewhere safe, `sudo -u roost roost init` (a new CA and server certificate), \
         `systemctl start roost`, then import the new /ca.crt on every device",
        files.ca_cert.display(),
        files.ca_key.display()
    )
}

fn first_not_after(path: &Path) -> Result<OffsetDateTime, String> {
    let chain = tls::read_cert_chain(path).map_err(|e| e.to_string())?;
    let (_, cert) = x509_parser::parse_x509_certificate(&chain[0])
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(cert.validity().not_after.to_datetime())
}

pub fn judge_expiry(
    name: &'static str,
    what: &str,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
    warn_within: time::Duration,
    fix: &str,
) -> Check {
    let left = not_after - now;
    let day = not_after.date();
    if left <= time::Duration::ZERO {
        Check::fail(name, format!("{what} expired on {day}"), fix)
    } else if left < warn_within {
        Check::warn(
            name,
            format!("{what} expires on {day} ({} days left)", left.whole_days()),
            fix,
        )
    } else {
        Check::ok(
            name,
            format!("{what} is valid until {day} ({} days)", left.whole_days()),
        )
    }
}

/// Whether the clock is synchronised: `/run/systemd/timesync/synchronized` (timesyncd), else
/// the kernel's own estimate (what `timedatectl`'s NTPSynchronized reports, read directly with
/// `adjtimex` rather than over D-Bus). `None` if neither can be read.
pub fn clock_synchronized() -> Option<bool> {
    if Path::new("/run/systemd/timesync/synchronized").exists() {
        return Some(true);
    }
    // SAFETY: adjtimex with `modes = 0` only reads the kernel's clock state into the struct,
    // which is zero-initialised and owned by this frame.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::adjtimex(&mut tx) };
    if r < 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit ARM
    Some((tx.maxerror as i64) < MAX_SYNC_ERROR_US)
}

pub fn check_clock(now: OffsetDateTime, synced: Option<bool>) -> Check {
    let fix = "enable time sync: `timedatectl set-ntp true` (a Pi has no battery clock)";
    if now.year() < SANE_YEAR {
        return Check::fail(
            "clock",
            format!("the clock says {}: it was never set", now.date()),
            fix,
        );
    }
    match synced {
        Some(true) => Check::ok("clock", format!("{} UTC, synchronised", now.date())),
        Some(false) => Check::warn(
            "clock",
            format!("{} UTC, but not synchronised", now.date()),
            fix,
        ),
        None => Check::warn(
            "clock",
            "cannot tell whether the clock is synchronised",
            "check `timedatectl status`",
        ),
    }
}

/// The data dir, or its nearest existing parent (for free space before `roost init`).
fn existing_ancestor(dir: &Path) -> &Path {
    dir.ancestors()
        .find(|p| p.exists() && !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

pub fn check_disk(free: Option<u64>, min_free_mb: u64) -> Check {
    let min = min_free_mb.saturating_mul(1024 * 1024);
    let fix =
        "free space (old backups, logs: `journalctl --vacuum-size=100M`) or use a larger card";
    match free {
        None => Check::warn(
            "disk",
            "cannot read the free space of the data dir",
            "check that storage.data_dir exists",
        ),
        Some(f) if f < min => Check::fail(
            "disk",
            format!(
                "{} free, below storage.min_free_disk_mb ({} MiB): writes are refused",
                backup::human_bytes(f),
                min_free_mb
            ),
            fix,
        ),
        Some(f) if f < min.saturating_mul(2) => Check::warn(
            "disk",
            format!(
                "{} free, close to storage.min_free_disk_mb ({} MiB)",
                backup::human_bytes(f),
                min_free_mb
            ),
            fix,
        ),
        Some(f) => Check::ok("disk", format!("{} free", backup::human_bytes(f))),
    }
}

/// Ownership and modes: everything in the data dir owned by the data dir's owner (the daemon's
/// user), keys 0600, the secrets folder 0700, and the data dir not open to other users.
pub fn check_permissions(config: &Config) -> Check {
    let data = config.data_dir();
    let Ok(meta) = std::fs::metadata(data) else {
        return Check::warn(
            "permissions",
            format!("{} does not exist yet", data.display()),
            "run `roost init`",
        );
    };
    let owner = meta.uid();
    let owner_name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(owner))
        .ok()
        .flatten()
        .map_or_else(|| owner.to_string(), |u| u.name);
    let mut fails = Vec::new();
    let mut fixes = Vec::new();
    let mut look = |path: &Path, private_mode: Option<u32>| {
        let Ok(m) = std::fs::symlink_metadata(path) else {
            return;
        };
        if m.uid() != owner {
            fails.push(format!(
                "{} is owned by uid {}, not {owner_name}",
                path.display(),
                m.uid()
            ));
            fixes.push(format!("chown -R {owner_name}: {}", data.display()));
        }
        if let Some(max) = private_mode {
            let mode = m.permissions().mode() & 0o777;
            if mode & !max != 0 {
                fails.push(format!("{} has mode {mode:04o}", path.display()));
                fixes.push(format!("chmod {max:o} {}", path.display()));
            }
        }
    };
    look(&config.db_path(), None);
    look(&config.secrets_dir(), Some(0o700));
    look(&config.tls_dir(), None);
    for dir in [config.secrets_dir(), config.tls_dir()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let secret =
                dir == config.secrets_dir() || path.extension().is_some_and(|e| e == "key");
            look(&path, secret.then_some(0o600));
        }
    }
    let world = meta.permissions().mode() & 0o007;
    if !fails.is_empty() {
        fixes.dedup();
        return Check::fail("permissions", fails.join("; "), fixes.join(" && "));
    }
    if world != 0 {
        return Check::warn(
            "permissions",
            format!(
                "{} is open to other users (mode {:04o})",
                data.display(),
                meta.permissions().mode() & 0o777
            ),
            format!("chmod 750 {}", data.display()),
        );
    }
    Check::ok(
        "permissions",
        format!("{} owned by {owner_name}, keys private", data.display()),
    )
}

pub fn check_database(config: &Config) -> Check {
    let db = config.db_path();
    if !db.exists() {
        return Check::warn(
            "database",
            format!("{} does not exist yet", db.display()),
            "run `roost init`",
        );
    }
    let status = match migrations::status(&db) {
        Ok(s) => s,
        Err(StoreError::SchemaTooNew { found, known }) => {
            return Check::fail(
                "database",
                format!("schema version {found} is newer than this roost knows ({known})"),
                "install the newer roost again, or restore a backup made by this version",
            )
        }
        Err(e) => {
            return Check::fail(
                "database",
                format!("cannot open {}: {e}", db.display()),
                "run as root or user roost; if damaged, `roost restore` a backup",
            )
        }
    };
    match inspect::check_file(&db, false) {
        Ok(c) if c.problems.is_empty() && status.pending.is_empty() => Check::ok(
            "database",
            format!("quick_check ok, schema version {}", status.current),
        ),
        Ok(c) if c.problems.is_empty() => Check::warn(
            "database",
            format!(
                "schema version {}; {} migration(s) pending",
                status.current,
                status.pending.len()
            ),
            "`roost migrate` (or restart roost: it migrates at start)",
        ),
        Ok(c) => Check::fail(
            "database",
            format!("quick_check found damage: {}", c.problems.join("; ")),
            "stop roost and `roost restore` the newest backup",
        ),
        Err(e) => Check::fail(
            "database",
            format!("cannot check {}: {e}", db.display()),
            "run as root or user roost",
        ),
    }
}

pub fn check_livekit(candidates: &[PathBuf]) -> Check {
    let Some(bin) = candidates.iter().find(|p| p.is_file()) else {
        return Check::warn(
            "livekit",
            format!(
                "livekit-server not found (looked for {}): calls are disabled",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "reinstall the roost package (it carries /usr/lib/roost/livekit-server), or put livekit-server in /usr/local/bin",
        );
    };
    match run_with_deadline(Command::new(bin).arg("--version"), VERSION_TIMEOUT) {
        Some(out) if !out.trim().is_empty() => Check::ok(
            "livekit",
            format!(
                "{}: {}",
                bin.display(),
                out.lines().next().unwrap_or("").trim()
            ),
        ),
        _ => Check::fail(
            "livekit",
            format!("{} does not answer --version", bin.display()),
            "reinstall livekit-server for this architecture",
        ),
    }
}

/// Runs a command and returns its stdout, or `None` if it fails or outlives `deadline`
/// (then it is killed and reaped).
fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Option<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) if start.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    Some(out)
}

/// `(listener, configured address)` for each listener.
pub fn listen_addrs(c: &Config) -> Vec<(&'static str, SocketAddr)> {
    let mut out = vec![("https", c.https_addr())];
    if let Some(h) = c.http_addr() {
        out.push(("http", h));
    }
    out.push(("internal", c.internal_addr()));
    out
}

/// Where to connect to reach a listener bound to `addr` (a wildcard is reached on loopback).
fn reachable_at(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// Listening ports against whether the daemon runs: a running daemon must answer on each; a
/// stopped one must find them free. `running` is `None` when the lock could not be read.
pub fn check_ports(
    addrs: &[(&'static str, SocketAddr)],
    running: Option<bool>,
    connect: &dyn Fn(SocketAddr) -> bool,
) -> Check {
    // Port 0 means "any free port, chosen at start": there is nothing fixed to look at.
    let answering: Vec<(&str, SocketAddr, bool)> = addrs
        .iter()
        .filter(|(_, a)| a.port() != 0)
        .map(|(name, a)| (*name, *a, connect(reachable_at(*a))))
        .collect();
    if answering.is_empty() {
        return Check::ok(
            "ports",
            "no fixed ports configured (port 0: chosen at start)",
        );
    }
    let list = |want: bool| {
        answering
            .iter()
            .filter(|(_, _, up)| *up == want)
            .map(|(n, a, _)| format!("{n} {a}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all_up = answering.iter().all(|(_, _, up)| *up);
    let none_up = answering.iter().all(|(_, _, up)| !*up);
    match running {
        Some(true) if all_up => Check::ok("ports", format!("the daemon answers on {}", list(true))),
        Some(true) => Check::fail(
            "ports",
            format!(
                "the daemon runs but {} does not accept connections",
                list(false)
            ),
            "see `journalctl -u roost` for listener errors",
        ),
        Some(false) if none_up => Check::warn(
            "ports",
            format!("the daemon is not running ({} free)", list(false)),
            "systemctl start roost",
        ),
        Some(false) => Check::fail(
            "ports",
            format!(
                "the daemon is not running, but another program listens on {}",
                list(true)
            ),
            "stop that program or change server.*_addr in roost.toml",
        ),
        None if all_up => Check::ok(
            "ports",
            format!(
                "something answers on {} (cannot read the data dir to tell if it is roost)",
                list(true)
            ),
        ),
        None => Check::warn(
            "ports",
            format!("nothing answers on {}", list(false)),
            "systemctl start roost (run doctor as root or user roost for more)",
        ),
    }
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The receive buffer is judged (LiveKit's advice); the send buffer is shown beside it.
pub fn check_udp_buffer(rmem_max: Option<u64>, wmem_max: Option<u64>) -> Check {
    let fix = format!(
        "echo net.core.rmem_max={RMEM_RECOMMENDED} | sudo tee /etc/sysctl.d/60-roost-media.conf && sudo sysctl --system"
    );
    let send = match wmem_max {
        Some(n) => format!("net.core.wmem_max = {n}"),
        None => "net.core.wmem_max unreadable".to_owned(),
    };
    match rmem_max {
        Some(n) if n >= RMEM_RECOMMENDED => {
            Check::ok("udp buffer", format!("net.core.rmem_max = {n}, {send}"))
        }
        Some(n) => Check::warn(
            "udp buffer",
            format!("net.core.rmem_max = {n}, below the {RMEM_RECOMMENDED} recommended for calls; {send}"),
            fix,
        ),
        None => Check::warn(
            "udp buffer",
            format!("cannot read /proc/sys/net/core/rmem_max; {send}"),
            fix,
        ),
    }
}

pub fn check_backup(last: Option<&LastSuccess>, now: OffsetDateTime) -> Check {
    let fix = "run `roost backup`, and `systemctl enable --now roost-backup.timer` for a daily one";
    match last {
        None => Check::warn("backup", "no backup recorded", fix),
        Some(l) => {
            let age = now.unix_timestamp() - l.created_unix;
            let days = age as f64 / 86_400.0;
            if age > BACKUP_MAX_AGE.as_secs() as i64 {
                Check::warn(
                    "backup",
                    format!(
                        "the last backup is {days:.1} days old ({})",
                        l.path.display()
                    ),
                    fix,
                )
            } else {
                Check::ok(
                    "backup",
                    format!("last backup {} ({})", l.created, l.path.display()),
                )
            }
        }
    }
}

/// Pi power and temperature, only where the machine reports them.
pub fn check_pi(h: &pi::PiHealth) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(t) = &h.throttled {
        out.push(if t.under_voltage_now || t.under_voltage_occurred {
            Check::warn(
                "power",
                format!("under-voltage detected ({})", t.describe()),
                "use the official power supply and a short, thick cable",
            )
        } else if t.throttled_now
            || t.throttled_occurred
            || t.freq_capped_now
            || t.freq_capped_occurred
        {
            Check::warn(
                "power",
                format!("the CPU was throttled ({})", t.describe()),
                "improve cooling (heatsink, fan, case airflow)",
            )
        } else {
            Check::ok("power", "no under-voltage or throttling since boot")
        });
    }
    if let Some(c) = h.cpu_temperature_celsius {
        out.push(if c >= HOT_CELSIUS {
            Check::warn(
                "temperature",
                format!("CPU at {c:.1} °C"),
                "improve cooling (heatsink, fan, case airflow)",
            )
        } else {
            Check::ok("temperature", format!("CPU at {c:.1} °C"))
        });
    }
    out
}

#[derive(Serialize)]
struct Report<'a> {
    status: Level,
    checks: &'a [Check],
}

/// `roost doctor [--json]`: prints every check; exit 1 if any FAILs.
pub fn command(config: Result<Config, Problems>, json: bool) -> u8 {
    let checks = run(&config, OffsetDateTime::now_utc());
    let worst = checks.iter().map(|c| c.status).max().unwrap_or(Level::Ok);
    if json {
        // Plain data always serializes.
        let text = serde_json::to_string_pretty(&Report {
            status: worst,
            checks: &checks,
        })
        .expect("the report serializes");
        println!("{text}");
    } else {
        print!("{}", render(&checks));
    }
    if worst == Level::Fail {
        crate::exit::EXIT_FAILURE
    } else {
        crate::exit::EXIT_OK
    }
}

pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<5} {:<13} {}\n",
            c.status.label(),
            c.name,
            c.message
        ));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("{:<19} fix: {fix}\n", ""));
        }
    }
    let count = |l: Level| checks.iter().filter(|c| c.status == l).count();
    out.push_str(&format!(
        "{} ok, {} warnings, {} failures\n",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    ));
    out
}

#[path = "doctor_media.rs"]
mod media;
pub use media::check_livekit_media;

#[cfg(test)]
#[path = "doctor_tests.rs"]
mod tests;
