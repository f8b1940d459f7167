//! Test support: start the real `roost` binary on 127.0.0.1 with ephemeral ports and a temp
//! data dir, and talk to it over TLS like a client would (trusting the CA it generated).
//!
//! Nothing here sleeps to let things settle: every wait polls a condition against a deadline.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

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

pub fn client_trusting(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
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

/// The stand-in LiveKit (`examples/fake_livekit.rs`). `cargo test` builds examples before
/// running tests; a run limited to one test target (`--test livekit`) does not, so it is built
/// here once if missing.
pub fn fake_livekit() -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/examples/fake_livekit
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/fake_livekit");
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "fake_livekit"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the fake LiveKit failed");
    }
    assert!(path.exists(), "{} missing", path.display());
    path
}

/// The real `livekit-server` at the version `scripts/build-livekit.sh` pins, for the host.
///
/// The script prints the cached binary at once when it exists; otherwise it builds it from the
/// Go module first (minutes, once per machine: the cache is outside the checkout, see README
/// "Test it"). A machine without `go`, or a module download the proxy refuses, fails every test
/// that needs the server with the script's own message: never a silent skip.
pub fn real_livekit() -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-livekit.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("host")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = PathBuf::from(stdout.trim());
        if out.status.success() && path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "scripts/build-livekit.sh host failed ({}); these tests need the real \
                 livekit-server: install Go >= 1.26 and run `scripts/build-livekit.sh host`\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    match built {
        Ok(path) => path.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// An `Authorization` value for a LiveKit webhook as LiveKit signs it: a bare HS256 JWT from
/// `key` whose `sha256` claim is the body's digest (or `sha`, to forge one), valid until `exp`.
pub fn sign_webhook(key: &str, secret: &str, body: &str, exp: u64, sha: Option<&str>) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    let sha = sha
        .map(str::to_owned)
        .unwrap_or_else(|| base64::engine::general_purpose::STANDARD.encode(digest.as_ref()));
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"iss": key, "nbf": exp - 300, "exp": exp, "sha256": sha}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// `setup` with the stand-in LiveKit (`fake_livekit`) enabled; returns the port of the
/// stand-in's HTTP API (`/fake/*` drives it). Wait for the log's "livekit ready" before
/// posting webhooks: until then `/livekit/webhook` answers 503.
pub fn with_fake_livekit(setup: Setup) -> (Setup, u16) {
    let port = free_port();
    let setup = setup.env("RUNTIME_DIRECTORY", "").toml(&format!(
        "[livekit]\nenabled = true\nbinary = \"{}\"\nhttp_port = {port}\ndrain_grace_secs = 1\n",
        fake_livekit().display()
    ));
    std::fs::create_dir_all(setup.data_dir().join("run/fake-livekit")).unwrap();
    (setup, port)
}

/// Posts `body` to the internal listener's `/livekit/webhook`, signed as LiveKit signs it
/// with Roost's own LiveKit key; returns the answer's status.
pub async fn post_livekit_webhook(api: &Api, body: &Value) -> reqwest::StatusCode {
    let data = api.roost.setup.data_dir();
    let key = read(&data.join("secrets/livekit_api_key"));
    let secret = read(&data.join("secrets/livekit_api_secret"));
    let body = body.to_string();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    reqwest::Client::new()
        .post(api.roost.internal_url("/livekit/webhook"))
        .header(
            "authorization",
            sign_webhook(&key, &secret, &body, exp, None),
        )
        .header("content-type", "application/webhook+json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// A port that was free a moment ago (for servers the test does not bind itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True while a process with this pid exists, zombies included (`kill(pid, 0)`): a child
/// Roost forgot to reap still counts.
/// Unix time in milliseconds `ago` before now: for ageing rows as if time had passed (the
/// daemon's clock is real).
pub fn unix_ms_ago(ago: Duration) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (now - ago).as_millis() as i64
}

pub fn process_exists(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

// ---------------------------------------------------------------------------------------------
// A signed-in API client and gateway WebSockets: chat, gateway and files tests build on these.

pub const ADMIN_PASSWORD: &str = "admin password 1";
pub const MEMBER_PASSWORD: &str = "member password 1";

/// A running Roost and an HTTPS client for its API. Tests sign in and connect far more often
/// than people do, so loopback is exempt from the rate limits (tested in tests/limits.rs; the
/// per-username login backoff in tests/auth.rs).
pub struct Api {
    pub roost: Roost,
    pub http: reqwest::Client,
}

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub token: String,
}

/// Who a request is sent as: a signed-in [`User`], a bare bearer token (an access token or an
/// API key, as `&str` or `&String`), or nobody (`None`).
pub trait Caller {
    fn bearer(&self) -> Option<&str>;
}

impl Caller for User {
    fn bearer(&self) -> Option<&str> {
        Some(&self.token)
    }
}

impl Caller for str {
    fn bearer(&self) -> Option<&str> {
        Some(self)
    }
}

impl Caller for String {
    fn bearer(&self) -> Option<&str> {
        Some(self)
    }
}

impl Caller for Option<&str> {
    fn bearer(&self) -> Option<&str> {
        *self
    }
}

impl<T: Caller + ?Sized> Caller for &T {
    fn bearer(&self) -> Option<&str> {
        (**self).bearer()
    }
}

impl Api {
    pub fn start(setup: Setup) -> Api {
        let roost = setup
            .toml("[rate_limits]\nexempt_cidrs = [\"127.0.0.1/32\"]\n")
            .start();
        let http = roost.client();
        Api { roost, http }
    }

    /// One request; the body is JSON (`Value::Null` when empty, a string when not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, self.roost.https_url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value, headers)
    }

    pub async fn post(
        &self,
        path: &str,
        who: impl Caller,
        body: Value,
    ) -> (reqwest::StatusCode, Value) {
        let (s, v, _) = self
            .call(reqwest::Method::POST, path, who.bearer(), Some(body))
            .await;
        (s, v)
    }

    pub async fn get(&self, path: &str, who: impl Caller) -> (reqwest::StatusCode, Value) {
        let (s, v, _) = self
            .call(reqwest::Method::GET, path, who.bearer(), None)
            .await;
        (s, v)
    }

    pub async fn put(
        &self,
        path: &str,
        who: impl Caller,
        body: Value,
    ) -> (reqwest::StatusCode, Value) {
        let (s, v, _) = self
            .call(reqwest::Method::PUT, path, who.bearer(), Some(body))
            .await;
        (s, v)
    }

    /// `POST /api/v1/auth/login`: the status and the token pair (or the error).
    pub async fn login(&self, name: &str, password: &str) -> (reqwest::StatusCode, Value) {
        self.post(
            "/api/v1/auth/login",
            None,
            serde_json::json!({ "username": name, "password": password }),
        )
        .await
    }

    /// The setup code, read from the log (logged once at WARN: its one allowed appearance).
    pub fn setup_code(&mut self) -> String {
        let line = self
            .roost
            .wait_for_log(|v| v["setup_code"].is_string(), STARTUP_DEADLINE);
        assert_eq!(line["level"], "WARN", "{line}");
        line["setup_code"].as_str().unwrap().to_owned()
    }

    /// Reads the setup code from the log (logged at WARN: its one allowed appearance) and
    /// creates the admin `username` with `ADMIN_PASSWORD`; returns the setup answer (tokens and
    /// user).
    pub async fn setup_admin(&mut self, username: &str) -> Value {
        let code = self.setup_code();
        let (status, body) = self
            .post(
                "/api/v1/setup",
                None,
                serde_json::json!({ "setup_code": code, "username": username, "password": ADMIN_PASSWORD }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        body
    }

    /// Creates the admin `root` through the setup code, signed in.
    pub async fn admin(&mut self) -> User {
        self.setup_admin("root").await;
        self.signed_in("root", ADMIN_PASSWORD).await
    }

    /// Creates a one-use invite as `admin` and registers `name` with it; returns the register
    /// answer (tokens and user).
    pub async fn register(&self, admin: impl Caller, name: &str, password: &str) -> Value {
        let (status, invite) = self
            .post(
                "/api/v1/invites",
                admin,
                serde_json::json!({ "max_uses": 1 }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{invite}");
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                None,
                serde_json::json!({ "invite_code": invite["code"], "username": name, "password": password }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        body
    }

    /// Invites and registers the member `name` (as `admin`), signed in.
    pub async fn member(&self, admin: &User, name: &str) -> User {
        self.register(admin, name, MEMBER_PASSWORD).await;
        self.signed_in(name, MEMBER_PASSWORD).await
    }

    pub async fn signed_in(&self, name: &str, password: &str) -> User {
        let (status, body) = self.login(name, password).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let (status, me) = self.get("/api/v1/me", &token).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{me}");
        User {
            id: me["user"]["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("no id in {me}")),
            name: name.to_owned(),
            token,
        }
    }

    /// `GET /api/v1/audit?{query}` as `admin`: the events, newest first.
    pub async fn audit(&self, admin: impl Caller, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v1/audit?{query}"), admin).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body["events"].as_array().unwrap().clone()
    }

    /// The daemon's database, opened beside it (WAL). A write waits up to 10 s for the
    /// daemon's writer to let go of the lock.
    pub fn db(&self) -> rusqlite::Connection {
        let db =
            rusqlite::Connection::open(self.roost.setup.data_dir().join("roost.sqlite3")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db
    }

    /// Creates a room owned by `owner`; returns its id.
    pub async fn room(&self, owner: &User, name: &str, private: bool) -> i64 {
        let (status, room) = self
            .post(
                "/api/v1/rooms",
                owner,
                serde_json::json!({ "name": name, "private": private }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{room}");
        room["id"].as_i64().unwrap()
    }

    /// Adds `who` to room `room` as `by`.
    pub async fn add(&self, by: &User, room: i64, who: &User) {
        let (status, body) = self
            .put(
                &format!("/api/v1/rooms/{room}/members/{}", who.id),
                by,
                serde_json::json!({}),
            )
            .await;
        assert!(status.is_success(), "{status} {body}");
    }

    /// Posts `body` to `room` as `who`; returns the message.
    pub async fn say(&self, who: &User, room: i64, body: &str) -> Value {
        let (status, msg) = self
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                who,
                serde_json::json!({ "body": body }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{msg}");
        msg
    }

    /// `admin` gives `user` the account role `role` (it applies to live tokens at once).
    pub async fn set_role(&self, admin: &User, user: &User, role: &str) {
        let (s, body, _) = self
            .call(
                reqwest::Method::PATCH,
                &format!("/api/v1/users/{}", user.id),
                Some(&admin.token),
                Some(serde_json::json!({ "role": role })),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{body}");
        assert_eq!(body["role"], role, "{body}");
    }

    /// The member `name`, then made a guest by `admin`.
    pub async fn guest(&self, admin: &User, name: &str) -> User {
        let user = self.member(admin, name).await;
        self.set_role(admin, &user, "guest").await;
        user
    }

    /// `POST /api/v1/attachments?name={name}` with `bytes` as `who`: the status and answer.
    pub async fn upload(
        &self,
        who: &User,
        name: &str,
        bytes: Vec<u8>,
    ) -> (reqwest::StatusCode, Value) {
        let r = self
            .http
            .post(
                self.roost
                    .https_url(&format!("/api/v1/attachments?name={name}")),
            )
            .bearer_auth(&who.token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// The value of the first metric line starting with `prefix` (e.g. `roost_ws_connections`).
    pub async fn metric(&self, prefix: &str) -> Option<f64> {
        let text = self
            .http
            .get(self.roost.internal_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Creates an API key of `who` (a signed-in session) with `scopes`; returns its id and
    /// the key itself.
    pub async fn api_key(&self, who: &User, scopes: &[&str]) -> (i64, String) {
        let (status, created) = self
            .post(
                "/api/v1/api-keys",
                who,
                serde_json::json!({ "name": "bot", "scopes": scopes }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
        (
            created["id"].as_i64().unwrap(),
            created["key"].as_str().unwrap().to_owned(),
        )
    }

    /// A gateway WebSocket (not yet authenticated).
    pub async fn ws(&self) -> Ws {
        let url = self
            .roost
            .https_url("/api/v1/gateway")
            .replace("https", "wss");
        let tls = tls_connect(&self.roost, None).await;
        let (inner, resp) = tokio_tungstenite::client_async(url, tls).await.unwrap();
        assert_eq!(resp.status(), 101);
        Ws { inner }
    }

    /// A gateway WebSocket signed in as `who` (with resume `cursors` if given), after `ready`.
    pub async fn ws_ready(&self, who: &User, cursors: Option<Value>) -> (Ws, Value) {
        let mut ws = self.ws().await;
        let mut hello = serde_json::json!({ "op": "auth", "token": who.token });
        if let Some(c) = cursors {
            hello["cursors"] = c;
        }
        ws.send(hello).await;
        let ready = ws.next_json(Duration::from_secs(20)).await;
        assert_eq!(ready["op"], "ready", "{ready}");
        (ws, ready)
    }
}

/// TLS to Roost's HTTPS port trusting only its CA, speaking HTTP/1.1 (as browsers do for
/// WebSockets). `recv_buffer` shrinks the socket's receive buffer (slow-reader tests).
pub async fn tls_connect(
    roost: &Roost,
    recv_buffer: Option<u32>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    tls_connect_with(roost, socket).await.unwrap()
}

/// TLS over `socket` (bound where the caller wants, e.g. to another loopback address) as
/// [`tls_connect`] does it; an error instead of a panic, for tests that count failures.
pub async fn tls_connect_with(
    roost: &Roost,
    socket: tokio::net::TcpSocket,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&roost.ca_pem()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = socket.connect(roost.addrs().https).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
}

/// Sends `request` (raw HTTP/1.1 text, which should ask for `Connection: close`) over `io` and
/// returns the status code and the body of the answer, read to the end of the connection.
pub async fn raw_http1<S>(mut io: S, request: &str) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    io.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // A TLS peer may close without close_notify after `Connection: close`: what came is enough.
    let _ = tokio::time::timeout(Duration::from_secs(20), io.read_to_end(&mut answer))
        .await
        .expect("the answer within 20 s");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A gateway client.
pub struct Ws {
    pub inner: WsStream,
}

/// How a gateway connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Closed { code: u16, reason: String },
    Dropped(String),
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        use futures_util::SinkExt;
        self.inner
            .send(tokio_tungstenite::tungstenite::Message::Text(
                v.to_string().into(),
            ))
            .await
            .unwrap();
    }

    /// The next JSON text frame (pings skipped); panics on close or after `deadline`.
    pub async fn next_json(&mut self, deadline: Duration) -> Value {
        match self.next_or_end(deadline).await {
            Ok(v) => v,
            Err(e) => panic!("expected a frame, got {e:?}"),
        }
    }

    /// The next JSON text frame, or how the connection ended.
    pub async fn next_or_end(&mut self, deadline: Duration) -> Result<Value, Ended> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let next = tokio::time::timeout_at(until, self.inner.next())
                .await
                .expect("timed out waiting for a gateway frame");
            match next {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map_or(
                        Ended::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f| Ended::Closed {
                            code: f.code.into(),
                            reason: f.reason.to_string(),
                        },
                    ))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Ended::Dropped(e.to_string())),
                None => return Err(Ended::Dropped("stream ended".into())),
            }
        }
    }

    /// Reads until the connection ends; returns the close code (panics if there was none).
    pub async fn close_code(&mut self, deadline: Duration) -> (u16, String) {
        loop {
            match self.next_or_end(deadline).await {
                Ok(_) => continue,
                Err(Ended::Closed { code, reason }) => return (code, reason),
                Err(e) => panic!("the connection ended without a close frame: {e:?}"),
            }
        }
    }

    /// The frames received until the connection closes, and its close code and reason
    /// (panics if it ended without a close frame, or after `deadline`).
    pub async fn frames_until_close(&mut self, deadline: Duration) -> (Vec<Value>, u16, String) {
        let until = tokio::time::Instant::now() + deadline;
        let mut frames = Vec::new();
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.next_or_end(left).await {
                Ok(v) => frames.push(v),
                Err(Ended::Closed { code, reason }) => return (frames, code, reason),
                Err(e) => panic!("the connection ended without a close frame: {e:?}"),
            }
        }
    }

    /// The next `event` frame (presence, typing and call frames skipped).
    pub async fn next_event(&mut self, deadline: Duration) -> Value {
        loop {
            let v = self.next_json(deadline).await;
            if v["op"] == "event" {
                return v;
            }
        }
    }
}
