//! The `livekit-server` child process: spawned in its own process group with the parent-death
//! signal set, its output forwarded into tracing, and killed and reaped when its handle drops.
//!
//! [`GroupChild`] is the only way Roost starts a process, and only the supervisor makes one.
//! The process gets a minimal environment: LiveKit reads configuration from variables such as
//! `LIVEKIT_CONFIG` (a whole config body that wins over `--config`), `LIVEKIT_KEYS`, `NODE_IP`
//! and `UDP_PORT`, and `NOTIFY_SOCKET` would let it speak to systemd for Roost. Only the
//! generated file decides how LiveKit runs.
//!
//! livekit-server reports a fatal startup error (a port in use, a bad TURN domain, a short key)
//! as one plain line on stdout and then exits with status 0, so the handle keeps the last
//! plain or error-level line ([`GroupChild::last_error`]) for the supervisor to name the cause.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// Environment variables passed through to LiveKit; everything else is dropped.
const PASSED_ENV: [&str; 6] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];
/// Longest forwarded log line; the rest of a longer line is dropped, so a runaway line cannot
/// grow memory.
pub const MAX_LOG_LINE: usize = 8 * 1024;
/// How long a process killed with SIGKILL may take to be reaped on drop (it is near-instant).
const DROP_REAP_WAIT: Duration = Duration::from_secs(2);
/// The longest error line kept for the status message (`/ready` shows it).
pub const MAX_ERROR_LINE: usize = 300;

/// The last line that looked like an error, shared with the output forwarders.
type LastError = Arc<Mutex<Option<String>>>;

/// A child process that is the leader of its own process group. Dropping it SIGKILLs the whole
/// group and reaps the leader, so no path leaves an orphan behind.
pub struct GroupChild {
    child: Child,
    pid: Pid,
    reaped: bool,
    last_error: LastError,
    forwarders: Vec<JoinHandle<()>>,
}

impl GroupChild {
    /// Starts `binary --config <config>`.
    ///
    /// The parent-death signal is tied to the spawning *thread*; this is called from a tokio
    /// worker thread, which lives as long as the runtime, i.e. as long as the daemon.
    pub fn spawn(binary: &Path, config: &Path) -> std::io::Result<GroupChild> {
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(config)
            .env_clear()
            .envs(
                PASSED_ENV
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // Safety net for paths that skip Drop (a panic=abort, a SIGKILLed daemon).
            .kill_on_drop(true);
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
        // system calls (prctl, getppid); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                // The parent may have died between fork and prctl: then nobody would deliver
                // the signal, so stop here.
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::other("parent exited during spawn"));
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = Pid::from_raw(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .ok_or_else(|| std::io::Error::other("spawned child has no pid"))?,
        );
        let last_error = LastError::default();
        let mut forwarders = Vec::new();
        if let Some(out) = child.stdout.take() {
            forwarders.push(tokio::spawn(forward_lines(
                out,
                "stdout",
                last_error.clone(),
            )));
        }
        if let Some(err) = child.stderr.take() {
            forwarders.push(tokio::spawn(forward_lines(
                err,
                "stderr",
                last_error.clone(),
            )));
        }
        Ok(GroupChild {
            child,
            pid,
            reaped: false,
            last_error,
            forwarders,
        })
    }

    /// The last plain (not JSON) or error-level line the process wrote, cut to
    /// [`MAX_ERROR_LINE`] bytes. Call [`GroupChild::drain_output`] first after an exit, so the
    /// final line is not still in the pipe.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits (at most `limit`) until the forwarders have read the pipes to their end, which
    /// happens once every process of the group holding them has exited.
    pub async fn drain_output(&mut self, limit: Duration) {
        let all = futures_util::future::join_all(self.forwarders.drain(..));
        let _ = tokio::time::timeout(limit, all).await;
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Waits for the leader to exit. Cancel-safe.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        self.reaped = true;
        Ok(status)
    }

    /// Sends `signal` to the whole group, unless the leader was already reaped (its pid, and
    /// so the group id, may then belong to someone else).
    pub fn signal_group(&self, signal: Signal) {
        if self.reaped {
            return;
        }
        if let Err(e) = killpg(self.pid, signal) {
            if e != nix::errno::Errno::ESRCH {
                tracing::warn!(pid = self.pid.as_raw(), %signal, error = %e, "cannot signal livekit");
            }
        }
    }

    /// LiveKit's stop sequence: SIGTERM starts its drain (it waits for participants to leave,
    /// with no limit of its own), so after `drain_grace` a second SIGTERM forces it; after
    /// `force_wait` more, SIGKILL. Returns once the leader is reaped.
    pub async fn stop(
        &mut self,
        drain_grace: Duration,
        force_wait: Duration,
    ) -> Option<ExitStatus> {
        if self.reaped {
            return None;
        }
        self.signal_group(Signal::SIGTERM);
        if let Ok(Ok(s)) = tokio::time::timeout(drain_grace, self.wait()).await {
            return Some(s);
        }
        tracing::warn!(
            grace_secs = drain_grace.as_secs(),
            "livekit still draining; forcing it to stop"
        );
        self.signal_group(Signal::SIGTERM);
        if let Ok(Ok(s)) = tokio::time::timeout(force_wait, self.wait()).await {
            return Some(s);
        }
        tracing::warn!("livekit ignored the stop request; killing it");
        self.signal_group(Signal::SIGKILL);
        match tokio::time::timeout(force_wait, self.wait()).await {
            Ok(Ok(s)) => Some(s),
            _ => {
                tracing::error!(
                    pid = self.pid.as_raw(),
                    "livekit did not exit after SIGKILL"
                );
                None
            }
        }
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        self.signal_group(Signal::SIGKILL);
        // Reap synchronously so the pid is not left as a zombie or reused under a stale group
        // id. SIGKILL takes effect at once; the loop is bounded by DROP_REAP_WAIT.
        let deadline = std::time::Instant::now() + DROP_REAP_WAIT;
        while std::time::Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => {
                    self.reaped = true;
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        tracing::error!(pid = self.pid.as_raw(), "livekit not reaped after SIGKILL");
    }
}

/// Forwards a pipe into tracing (target `livekit`), one event per line. LiveKit writes JSON
/// lines (the generated config asks for them): their level and message are kept; anything
/// else is logged as-is at info.
async fn forward_lines<R: AsyncRead + Unpin>(pipe: R, stream: &'static str, last_error: LastError) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        match read_bounded_line(&mut reader, &mut line, MAX_LOG_LINE).await {
            Ok(0) => return,
            Ok(_) => {
                if let Some(error) = emit(stream, &String::from_utf8_lossy(&line)) {
                    *last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                }
            }
            Err(_) => return,
        }
    }
}

/// `line` cut to at most [`MAX_ERROR_LINE`] bytes on a character boundary.
fn error_excerpt(line: &str) -> String {
    let mut end = line.len().min(MAX_ERROR_LINE);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_owned()
}

/// Reads one line into `buf`, keeping at most `max` bytes and discarding the rest of the line.
/// Returns the bytes consumed (0 at end of input).
pub async fn read_bounded_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(consumed);
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(available.len());
        reader.consume(used);
        consumed += used;
        if done.is_some() {
            return Ok(consumed);
        }
    }
}

/// Logs one line; returns it (cut) when it reads as an error: a plain line (LiveKit prints
/// its fatal errors that way) or a JSON line at error level or above.
fn emit(stream: &'static str, line: &str) -> Option<String> {
    let line = line.trim_end();
    if line.is_empty() {
        return None;
    }
    let parsed: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(line).ok();
    let Some(mut fields) = parsed else {
        tracing::info!(target: "livekit", stream, "{line}");
        return Some(error_excerpt(line));
    };
    let msg = fields
        .remove("msg")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let level = fields
        .remove("level")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    fields.remove("ts");
    let rest = serde_json::Value::Object(fields).to_string();
    match level.as_str() {
        "debug" => tracing::debug!(target: "livekit", fields = %rest, "{msg}"),
        "warn" => tracing::warn!(target: "livekit", fields = %rest, "{msg}"),
        "error" | "dpanic" | "panic" | "fatal" => {
            tracing::error!(target: "livekit", fields = %rest, "{msg}");
            return Some(error_excerpt(&msg));
        }
        _ => tracing::info!(target: "livekit", fields = %rest, "{msg}"),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_and_the_rest_of_the_line_skipped() {
        let input = format!("{}\nshort\n", "x".repeat(100));
        let mut r = BufReader::with_capacity(16, input.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_bounded_line(&mut r, &mut buf, 10).await.unwrap(), 101);
        assert_eq!(buf, b"xxxxxxxxxx");
        buf.clear();
        assert_eq!(read_bounded_line(&mut r, &mut buf, 10).await.unwrap(), 6);
        assert_eq!(buf, b"short");
        buf.clear();
        assert_eq!(read_bounded_line(&mut r, &mut buf, 10).await.unwrap(), 0);
    }

    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("server.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        path
    }

    #[tokio::test]
    async fn the_last_plain_line_is_kept_as_the_reason_for_an_exit() {
        let dir = tempfile::tempdir().unwrap();
        // What livekit-server does with a port in use: JSON logs, one plain line, status 0.
        let server = script(
            dir.path(),
            "echo '{\"level\":\"info\",\"msg\":\"starting\"}'\necho 'listen tcp :7881: bind: address already in use'\necho '{\"level\":\"info\",\"msg\":\"bye\"}'\nexit 0",
        );
        let mut child = GroupChild::spawn(&server, Path::new("/dev/null")).unwrap();
        assert!(child.wait().await.unwrap().success());
        child.drain_output(Duration::from_secs(10)).await;
        assert_eq!(
            child.last_error().as_deref(),
            Some("listen tcp :7881: bind: address already in use")
        );
        assert_eq!(error_excerpt(&"é".repeat(200)).len(), MAX_ERROR_LINE);
    }

    #[tokio::test]
    async fn stop_sends_term_twice_then_kills_a_process_that_ignores_them() {
        use std::os::unix::process::ExitStatusExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("terms");
        let server = script(
            dir.path(),
            &format!(
                "trap 'echo term >> {}' TERM\ntouch {}/up\nwhile :; do sleep 0.05; done",
                log.display(),
                dir.path().display()
            ),
        );
        let mut child = GroupChild::spawn(&server, Path::new("/dev/null")).unwrap();
        let start = std::time::Instant::now();
        while !dir.path().join("up").exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "script did not start"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = child
            .stop(Duration::from_millis(300), Duration::from_millis(300))
            .await
            .expect("reaped");
        assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
        let terms = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(terms.lines().count(), 2, "{terms:?}");
        assert!(nix::sys::signal::kill(Pid::from_raw(child.pid() as i32), None).is_err());
    }

    #[tokio::test]
    async fn dropping_the_handle_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        // A "server" that starts a grandchild in its group and then waits forever.
        let script = script(
            dir.path(),
            &format!(
                "sleep 300 &\necho $! > {}/grandchild\nwait",
                dir.path().display()
            ),
        );
        let child = GroupChild::spawn(&script, Path::new("/dev/null")).unwrap();
        let leader = Pid::from_raw(child.pid() as i32);
        let grandchild_file = dir.path().join("grandchild");
        let start = std::time::Instant::now();
        let grandchild = loop {
            if let Ok(t) = std::fs::read_to_string(&grandchild_file) {
                if let Ok(pid) = t.trim().parse::<i32>() {
                    break Pid::from_raw(pid);
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "script did not start"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(nix::unistd::getpgid(Some(leader)).unwrap(), leader);
        drop(child);
        assert!(
            nix::sys::signal::kill(leader, None).is_err(),
            "leader still exists"
        );
        // The grandchild is not ours to reap: dead means gone or a zombie awaiting its reaper.
        let alive = |pid: Pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_owned()))
                .is_some_and(|rest| !rest.starts_with('Z'))
        };
        let start = std::time::Instant::now();
        while alive(grandchild) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "grandchild survived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
