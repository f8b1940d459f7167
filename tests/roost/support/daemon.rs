//! Starting the real `roost` binary: a temp data dir and a config with every listener on
//! 127.0.0.1 port 0 ([`Setup`]), the running daemon with its JSON log ([`Roost`]), its
//! subcommands, and the waits and process checks the tests build on.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client_trusting;

pub const BIN: &str = env!("CARGO_BIN_EXE_roost");
/// Generous: debug builds on a loaded 2-core CI machine start slowly.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// A temp data dir plus a config file pointing into it, with every listener on port 0.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub extra_toml: String,
    pub env: Vec<(String, String)>,
    /// Wraps the command (e.g. `sh -c 'WATCHDOG_PID=$$ exec "$@"'`), so the pid stays the same.
    pub via_shell: Option<String>,
}

impl Setup {
    pub fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            extra_toml: String::new(),
            env: Vec::new(),
            via_shell: None,
        }
    }

    /// Extra TOML appended to the generated config (sections must not repeat `[server]`'s keys).
    pub fn toml(mut self, extra: &str) -> Setup {
        self.extra_toml.push_str(extra);
        self.extra_toml.push('\n');
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Setup {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("roost.toml")
    }

    /// Writes the config file: `[server]` and `[storage]` are generated, `extra_toml` appended.
    pub fn write_config(&self, server_extra: &str) -> PathBuf {
        let text = format!(
            "[server]\nhostname = \"localhost\"\nhttps_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\ninternal_addr = \"127.0.0.1:0\"\nshutdown_grace_secs = 10\n{server_extra}\n[storage]\ndata_dir = \"{}\"\nmin_free_disk_mb = 1\n{}",
            self.data_dir().display(),
            self.extra_toml
        );
        std::fs::write(self.config_path(), text).unwrap();
        self.config_path()
    }

    /// Runs a `roost` subcommand to completion with this setup's config.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("--config").arg(self.config_path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).output().unwrap()
    }

    /// Starts `roost serve` and waits until it logs its bound addresses.
    pub fn start(self) -> Roost {
        if !self.config_path().exists() {
            self.write_config("");
        }
        let mut cmd = match &self.via_shell {
            Some(script) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(script).arg("sh").arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(["--log-format", "json", "serve", "--config"])
            .arg(self.config_path());
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env("ROOST_LOG", "info,roost=debug");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("ROOST_TEST_ECHO").is_some() {
                    eprintln!("[roost] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut roost = Roost {
            setup: self,
            child,
            logs,
            addrs: None,
        };
        let listening = roost.wait_for_log(|v| v["message"] == "listening", STARTUP_DEADLINE);
        let addr = |k: &str| {
            listening[k]
                .as_str()
                .and_then(|s| s.parse::<SocketAddr>().ok())
        };
        roost.addrs = Some(Addrs {
            https: addr("https").expect("https address"),
            http: addr("http"),
            internal: addr("internal").expect("internal address"),
        });
        roost
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub internal: SocketAddr,
}

/// A running `roost serve`; killed on drop if the test did not stop it.
pub struct Roost {
    pub setup: Setup,
    pub child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    addrs: Option<Addrs>,
}

impl Roost {
    pub fn addrs(&self) -> Addrs {
        self.addrs.expect("started")
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addrs().https.port())
    }

    pub fn http_url(&self, path: &str) -> String {
        format!(
            "http://localhost:{}{path}",
            self.addrs().http.expect("http listener").port()
        )
    }

    pub fn internal_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addrs().internal.port())
    }

    /// `/metrics` from the internal listener, as text.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.internal_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.setup.data_dir().join("tls/ca.crt")).unwrap()
    }

    /// A client that trusts only this Roost's CA and never follows redirects.
    pub fn client(&self) -> reqwest::Client {
        client_trusting(&self.ca_pem())
    }

    /// GET over HTTPS with a client trusting this Roost's CA.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client()
            .get(self.https_url(path))
            .send()
            .await
            .unwrap()
    }

    /// Signs `name` in over HTTPS with `password`; returns the access token.
    pub async fn login(&self, name: &str, password: &str) -> String {
        let resp = self
            .client()
            .post(self.https_url("/api/v1/auth/login"))
            .json(&serde_json::json!({ "username": name, "password": password }))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "login {name}: {body}");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token in {body}"))
            .to_owned()
    }

    /// All log lines so far, parsed (non-JSON lines are skipped).
    pub fn logs(&self) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn raw_logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Waits for a log line matching `pred`, or panics with the log so far.
    pub fn wait_for_log(&mut self, pred: impl Fn(&Value) -> bool, deadline: Duration) -> Value {
        let start = Instant::now();
        loop {
            if let Some(v) = self.logs().into_iter().find(|v| pred(v)) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the reader thread a moment's worth of polling to collect the tail.
                let tail_deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < tail_deadline {
                    if let Some(v) = self.logs().into_iter().find(|v| pred(v)) {
                        return v;
                    }
                    std::thread::yield_now();
                }
                panic!(
                    "roost exited ({status}) before the expected log line:\n{}",
                    self.raw_logs()
                );
            }
            assert!(
                start.elapsed() < deadline,
                "timed out waiting for a log line:\n{}",
                self.raw_logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many log lines so far match `pred`.
    pub fn count_logs(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.logs().iter().filter(|v| pred(v)).count()
    }

    /// Waits until at least `n` log lines match `pred`; returns them all, oldest first.
    pub fn wait_for_logs(
        &mut self,
        n: usize,
        pred: impl Fn(&Value) -> bool,
        deadline: Duration,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let hits: Vec<Value> = self.logs().into_iter().filter(|v| pred(v)).collect();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                start.elapsed() < deadline,
                "timed out waiting for {n} matching log lines:\n{}",
                self.raw_logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for the process to exit, polling against a deadline.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < deadline,
                "roost did not exit within {deadline:?}:\n{}",
                self.raw_logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Roost {
    /// Hands back the setup of a process that has exited, to start it again on the same
    /// data dir and config.
    pub fn into_setup(mut self) -> Setup {
        assert!(
            matches!(self.child.try_wait(), Ok(Some(_))),
            "stop roost before reusing its setup"
        );
        std::mem::replace(&mut self.setup, Setup::new())
    }
}

impl Drop for Roost {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` until it returns `Some`, or panics after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Reads a file if it exists, for assertions about what is on disk.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a `roost` subcommand with `input` piped to its stdin (e.g. a password).
pub fn run_with_stdin(setup: &Setup, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--config").arg(setup.config_path());
    for (k, v) in &setup.env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A port that was free a moment ago (for servers the test does not bind itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Unix time now, in seconds (token and signature timestamps).
pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Unix time in milliseconds `ago` before now: for ageing rows as if time had passed (the
/// daemon's clock is real).
pub fn unix_ms_ago(ago: Duration) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (now - ago).as_millis() as i64
}

/// True while a process with this pid exists, zombies included (`kill(pid, 0)`): a child
/// Roost forgot to reap still counts.
pub fn process_exists(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Waits until no process `pid` exists any more (reaped, not merely exited), or panics after
/// `deadline`.
pub fn wait_gone(pid: i32, deadline: Duration) {
    let start = Instant::now();
    while process_exists(pid) {
        assert!(start.elapsed() < deadline, "process {pid} still exists");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that a command exited with 0, showing what it printed when it did not.
#[track_caller]
pub fn assert_exit_0(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
}

/// A command's standard output, as text.
/// The folder `roost backup` says it wrote.
pub fn backup_dir_from(out: &std::process::Output) -> PathBuf {
    let text = stdout(out);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("backup written to "))
        .unwrap_or_else(|| panic!("no 'backup written to' in:\n{text}"));
    PathBuf::from(line.split(" (").next().unwrap())
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command's standard error, as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether the JSON log line `line` is the message `message`.
pub fn is_message(line: &Value, message: &str) -> bool {
    line["message"] == message
}
