//! Runs `livekit-server` for as long as Roost runs: the only place Roost starts a process.
//!
//! One loop: write the config, spawn, wait until `GET /` answers 200, health-check every
//! `health_check_interval_ms`, and restart when the process exits, never becomes ready, or
//! fails [`UNHEALTHY_AFTER`] checks in a row. Restarts wait an exponential backoff
//! (`restart_backoff_initial_ms` doubling to `restart_backoff_max_ms`), reset once a run stayed
//! healthy for [`STABLE_AFTER`]. A SIGHUP re-reads the keys and restarts LiveKit only if they
//! changed; a pending key drop restarts it when due. On shutdown LiveKit gets SIGTERM, then
//! `drain_grace_secs` to let calls end, a second SIGTERM, then SIGKILL.
//!
//! The state is published through [`LiveKit::set_status`](super::LiveKit) (and the metrics);
//! every failure ends up there and in the log, never as an error out of [`run`]: LiveKit
//! trouble must not stop Roost. All waiting uses `tokio::time`, so tests can pause time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::process::GroupChild;
use super::{keys, yaml, LiveKit, Status};
use crate::config::livekit::DEFAULT_BINARIES;

/// Consecutive failed health checks that count as "prolonged unhealthiness".
pub const UNHEALTHY_AFTER: u32 = 3;
/// A run healthy for this long resets the backoff.
pub const STABLE_AFTER: Duration = Duration::from_secs(300);
/// One health check may take this long.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// From spawn to the first 200; a slow Pi starts LiveKit in a few seconds.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often readiness is polled while starting.
const STARTING_POLL: Duration = Duration::from_millis(100);
/// After the drain grace and the second SIGTERM, how long before SIGKILL.
pub const FORCE_WAIT: Duration = Duration::from_secs(5);
/// A crash-looping or hung LiveKit is stopped quickly; no calls are being served anyway.
const RESTART_STOP_GRACE: Duration = Duration::from_secs(2);
/// After an exit, how long the last output lines may take to arrive through the pipes.
const OUTPUT_DRAIN_WAIT: Duration = Duration::from_millis(500);

/// Exponential restart delay with reset after a stable run.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next start. `healthy_for` is how long the run that just ended
    /// was healthy: a stable run starts the sequence over.
    pub fn next_delay(&mut self, healthy_for: Duration) -> Duration {
        if healthy_for >= STABLE_AFTER {
            self.next = self.initial;
        }
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
}

/// How one run of the process ended.
#[derive(Debug)]
enum RunEnd {
    Shutdown,
    /// Keys changed (rotation, drop due): restart at once, no backoff.
    Reload,
    Failed {
        reason: String,
        healthy_for: Duration,
    },
}

/// The binary to run: configured, or the first default that exists.
pub fn resolve_binary(configured: &str) -> Result<PathBuf, String> {
    if !configured.is_empty() {
        let p = PathBuf::from(configured);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("livekit.binary {configured} does not exist"))
        };
    }
    DEFAULT_BINARIES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "livekit-server is not installed (looked for {})",
                DEFAULT_BINARIES.join(", ")
            )
        })
}

const INSTALL_HINT: &str = "calls are disabled until LiveKit is installed: the roost package carries it as /usr/lib/roost/livekit-server (reinstall the package); elsewhere put the livekit-server release binary for this machine at /usr/local/bin/livekit-server (or set livekit.binary), then `systemctl reload roost`";

/// Supervises LiveKit until the shutdown signal, then stops it. `internal` is Roost's bound
/// internal listener (webhooks go there).
pub async fn run(lk: Arc<LiveKit>, internal: SocketAddr) {
    if !lk.config().livekit.enabled {
        return;
    }
    if lk.config().livekit.external_authority().is_some() {
        return watch_external(lk).await;
    }
    let shutdown = lk.shutdown.clone();
    let l = &lk.config().livekit;
    let mut backoff = Backoff::new(
        Duration::from_millis(l.restart_backoff_initial_ms),
        Duration::from_millis(l.restart_backoff_max_ms),
    );
    let mut last_reason = String::new();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        // Keys and binary: without either, wait for a SIGHUP (or shutdown) and look again.
        let ready_to_spawn = match refresh_keys(&lk) {
            Err(why) => Err((why, "calls are disabled until the keys exist")),
            Ok(()) => resolve_binary(&l.binary).map_err(|why| (why, INSTALL_HINT)),
        };
        let binary = match ready_to_spawn {
            Ok(b) => b,
            Err((why, hint)) => {
                // One line per distinct reason, not one per SIGHUP.
                if why != last_reason {
                    tracing::warn!(reason = %why, "{hint}");
                    last_reason.clone_from(&why);
                }
                lk.set_status(Status::Disabled(why));
                tokio::select! {
                    _ = lk.reload.notified() => continue,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        last_reason.clear();
        let end = run_once(&lk, &binary, internal).await;
        lk.calls.clear();
        match end {
            RunEnd::Shutdown => break,
            RunEnd::Reload => {
                lk.metrics.restarts.inc();
                tracing::info!("restarting livekit with the current keys");
            }
            RunEnd::Failed {
                reason,
                healthy_for,
            } => {
                let delay = backoff.next_delay(healthy_for);
                lk.metrics.restarts.inc();
                tracing::warn!(
                    reason = %reason,
                    backoff_ms = delay.as_millis() as u64,
                    "livekit restarting"
                );
                lk.set_status(Status::Down(format!(
                    "{reason}; restarting in {} ms",
                    delay.as_millis()
                )));
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }
    lk.set_status(Status::Stopped);
    tracing::info!("livekit supervisor stopped");
}

/// With `livekit.external_url` nothing is spawned: the external server gets the same health
/// check as a co-located one, and its state is published until shutdown.
async fn watch_external(lk: Arc<LiveKit>) {
    let shutdown = lk.shutdown.clone();
    let authority = lk.config().livekit.upstream_authority();
    let interval = Duration::from_millis(lk.config().livekit.health_check_interval_ms);
    if let Err(why) = refresh_keys(&lk) {
        tracing::warn!(reason = %why, "calls are disabled: the external LiveKit's keys cannot be loaded");
        lk.set_status(Status::Disabled(why));
    } else {
        tracing::info!(%authority, "using an external livekit");
        loop {
            let status = match probe_at(&authority).await {
                Ok(()) => Status::Up,
                Err(e) => Status::Down(format!("external livekit at {authority}: {e}")),
            };
            if status != lk.status() {
                match &status {
                    Status::Up => tracing::info!(%authority, "livekit ready"),
                    other => tracing::warn!(status = ?other, "external livekit not healthy"),
                }
                lk.set_status(status);
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = lk.reload.notified() => {
                    if let Err(e) = refresh_keys(&lk) {
                        tracing::warn!(error = %e, "reloading LiveKit keys failed; keeping the loaded ones");
                    }
                }
                _ = shutdown.cancelled() => break,
            }
        }
    }
    shutdown.cancelled().await;
    lk.set_status(Status::Stopped);
}

/// Loads the key ring (dropping a rotated-out pair whose time has come) and publishes it.
fn refresh_keys(lk: &LiveKit) -> Result<(), String> {
    let now = SystemTime::now();
    if let Err(e) = keys::finish_rotation(lk.config(), now) {
        tracing::warn!(error = %e, "cannot drop the previous LiveKit key");
    }
    let ring = keys::load(lk.config(), now).map_err(|e| e.to_string())?;
    if lk.keys().as_deref() != Some(&ring) {
        lk.set_keys(Arc::new(ring));
    }
    Ok(())
}

async fn run_once(lk: &Arc<LiveKit>, binary: &std::path::Path, internal: SocketAddr) -> RunEnd {
    let shutdown = lk.shutdown.clone();
    let failed = |reason: String| RunEnd::Failed {
        reason,
        healthy_for: Duration::ZERO,
    };
    let config_path = lk.config_path();
    let ring = lk.keys().expect("refresh_keys succeeded before every run");
    let text = yaml::render(
        &yaml::Inputs {
            config: lk.config(),
            keys: Some(&ring),
            internal_addr: internal,
            interfaces: &super::lan::interface_addresses(),
        },
        yaml::Secrets::Include,
    );
    if let Err(e) =
        std::fs::create_dir_all(lk.runtime_dir()).and_then(|()| yaml::write(&config_path, &text))
    {
        return failed(format!("cannot write {}: {e}", config_path.display()));
    }
    let mut child = match GroupChild::spawn(binary, &config_path) {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start {}: {e}", binary.display())),
    };
    tracing::info!(pid = child.pid(), binary = %binary.display(), "livekit started");
    lk.set_status(Status::Starting);

    let l = &lk.config().livekit;
    let port = l.http_port;
    let interval = Duration::from_millis(l.health_check_interval_ms);
    let drain = Duration::from_secs(l.drain_grace_secs);
    let started = Instant::now();
    let mut healthy_since: Option<Instant> = None;
    let mut failures = 0u32;
    let mut next_check = Instant::now() + STARTING_POLL;
    let drop_due = ring.drop_after().map(|t| {
        Instant::now()
            + t.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
    });
    let healthy_for = |since: Option<Instant>| since.map(|s| s.elapsed()).unwrap_or_default();

    loop {
        let end = tokio::select! {
            status = child.wait() => {
                let why = match status {
                    Ok(s) => format!("livekit exited ({s})"),
                    Err(e) => format!("waiting for livekit failed: {e}"),
                };
                // LiveKit prints why it stopped as its last line (and exits 0 even then).
                child.drain_output(OUTPUT_DRAIN_WAIT).await;
                let why = match child.last_error() {
                    Some(line) => format!("{why}: {line}{}", port_hint(l, &line)),
                    None => why,
                };
                Some(RunEnd::Failed { reason: why, healthy_for: healthy_for(healthy_since) })
            }
            _ = shutdown.cancelled() => Some(RunEnd::Shutdown),
            _ = lk.reload.notified() => {
                let before = lk.keys();
                match refresh_keys(lk) {
                    Ok(()) if lk.keys() != before => Some(RunEnd::Reload),
                    Ok(()) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "reloading LiveKit keys failed; keeping the running ones");
                        None
                    }
                }
            }
            _ = sleep_until_opt(drop_due) => {
                match refresh_keys(lk) {
                    Ok(()) => Some(RunEnd::Reload),
                    Err(e) => Some(RunEnd::Failed { reason: e, healthy_for: healthy_for(healthy_since) }),
                }
            }
            _ = tokio::time::sleep_until(next_check) => {
                let probe = tokio::select! {
                    r = probe(port) => r,
                    _ = shutdown.cancelled() => continue,
                };
                match (probe, healthy_since) {
                    (Ok(()), None) => {
                        tracing::info!(
                            pid = child.pid(),
                            startup_ms = started.elapsed().as_millis() as u64,
                            "livekit ready"
                        );
                        healthy_since = Some(Instant::now());
                        failures = 0;
                        lk.set_status(Status::Up);
                        next_check = Instant::now() + interval;
                        None
                    }
                    (Ok(()), Some(_)) => {
                        if failures > 0 {
                            tracing::info!("livekit healthy again");
                        }
                        failures = 0;
                        lk.set_status(Status::Up);
                        next_check = Instant::now() + interval;
                        None
                    }
                    (Err(e), None) if started.elapsed() >= START_TIMEOUT => {
                        Some(failed(format!("livekit did not become ready within {} s: {e}", START_TIMEOUT.as_secs())))
                    }
                    (Err(_), None) => {
                        next_check = Instant::now() + STARTING_POLL;
                        None
                    }
                    (Err(e), Some(_)) => {
                        failures += 1;
                        tracing::warn!(failures, error = %e, "livekit health check failed");
                        next_check = Instant::now() + interval;
                        if failures >= UNHEALTHY_AFTER {
                            Some(RunEnd::Failed {
                                reason: format!("livekit failed {failures} health checks in a row: {e}"),
                                healthy_for: healthy_for(healthy_since),
                            })
                        } else {
                            lk.set_status(Status::Down(format!("health check failed: {e}")));
                            None
                        }
                    }
                }
            }
        };
        let Some(end) = end else { continue };
        match &end {
            RunEnd::Shutdown => {
                lk.set_status(Status::Stopped);
                tracing::info!(grace_secs = drain.as_secs(), "stopping livekit");
                let status = child.stop(drain, FORCE_WAIT).await;
                tracing::info!(status = ?status, "livekit stopped");
            }
            RunEnd::Reload => {
                child.stop(drain, FORCE_WAIT).await;
            }
            RunEnd::Failed { .. } => {
                lk.set_status(Status::Down("restarting".into()));
                child.stop(RESTART_STOP_GRACE, RESTART_STOP_GRACE).await;
            }
        }
        return end;
    }
}

/// When LiveKit could not bind a port, which `[livekit]` key holds that port (LiveKit's line
/// reads e.g. "listen tcp 127.0.0.1:7880: bind: address already in use").
fn port_hint(l: &crate::config::livekit::Livekit, line: &str) -> String {
    if !line.contains("address already in use") {
        return String::new();
    }
    let mut ports = vec![
        ("livekit.http_port", l.http_port),
        ("livekit.rtc_tcp_port", l.rtc_tcp_port),
    ];
    if !l.uses_port_range() {
        ports.push(("livekit.rtc_udp_port", l.rtc_udp_port));
    }
    if l.turn_enabled {
        ports.push(("livekit.turn_udp_port", l.turn_udp_port));
        ports.push(("livekit.turn_tls_port", l.turn_tls_port));
    }
    ports
        .into_iter()
        .find(|(_, port)| *port != 0 && line.contains(&format!(":{port}:")))
        .map(|(key, port)| {
            format!(
                " (port {port} is {key}: another program holds it; stop it or choose another port)"
            )
        })
        .unwrap_or_default()
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `GET http://127.0.0.1:<port>/` must answer 200 within [`HEALTH_TIMEOUT`] (LiveKit answers
/// 406 while its node stats are stale).
pub async fn probe(port: u16) -> Result<(), String> {
    probe_within(&format!("127.0.0.1:{port}"), HEALTH_TIMEOUT).await
}

/// [`probe`] for a server at `authority` (`host:port`).
pub async fn probe_at(authority: &str) -> Result<(), String> {
    probe_within(authority, HEALTH_TIMEOUT).await
}

async fn probe_within(authority: &str, timeout: Duration) -> Result<(), String> {
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let conn = tokio::spawn(conn);
        let req = http::Request::get("/")
            .header(http::header::HOST, authority)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("a constant request is valid");
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"));
        conn.abort();
        let status = resp?.status();
        if status == http::StatusCode::OK {
            Ok(())
        } else {
            Err(format!("GET / answered {status}"))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_stable_run() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<u64> = (0..8)
            .map(|_| b.next_delay(Duration::from_secs(3)).as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.next_delay(STABLE_AFTER).as_secs(), 1);
        assert_eq!(b.next_delay(Duration::ZERO).as_secs(), 2);
    }

    #[test]
    fn a_missing_binary_says_where_it_looked() {
        let e = resolve_binary("/nonexistent/livekit-server").unwrap_err();
        assert!(e.contains("/nonexistent/livekit-server"), "{e}");
    }

    #[test]
    fn a_port_in_use_is_named_by_its_key() {
        let l = crate::config::livekit::Livekit::default();
        assert_eq!(
            port_hint(&l, "listen tcp :7881: bind: address already in use"),
            " (port 7881 is livekit.rtc_tcp_port: another program holds it; stop it or choose another port)"
        );
        assert!(port_hint(
            &l,
            "listen tcp 127.0.0.1:7880: bind: address already in use"
        )
        .contains("livekit.http_port"));
        assert_eq!(port_hint(&l, "TURN domain is not correct"), "");
    }

    #[tokio::test]
    async fn probe_needs_a_200_within_the_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            // 1st: OK; 2nd: 406 like LiveKit with stale stats; 3rd: silence.
            for answer in ["200 OK", "406 Not Acceptable", ""] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await.unwrap();
                if answer.is_empty() {
                    std::future::pending::<()>().await;
                }
                s.write_all(format!("HTTP/1.1 {answer}\r\ncontent-length: 2\r\n\r\nOK").as_bytes())
                    .await
                    .unwrap();
            }
        });
        let t = Duration::from_secs(10);
        let at = format!("127.0.0.1:{port}");
        assert_eq!(probe_within(&at, t).await, Ok(()));
        assert!(probe_within(&at, t).await.unwrap_err().contains("406"));
        let silent = probe_within(&at, Duration::from_millis(200)).await;
        assert!(silent.unwrap_err().contains("no answer"));
        server.abort();
    }
}
