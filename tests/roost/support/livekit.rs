//! LiveKit for the tests: the stand-in `examples/fake_livekit.rs` (steered through files, for
//! faults on demand), the real pinned `livekit-server`, and webhooks signed as LiveKit signs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use super::{free_port, read, unix_secs, Api, Setup};

/// The stand-in LiveKit (`examples/fake_livekit.rs`). `cargo test` builds examples before
/// running tests; a run limited to the test crate (`--test roost`) does not, so it is built
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

/// `setup` with the stand-in LiveKit (`fake_livekit`) enabled, and `livekit_keys` (TOML lines)
/// added to its `[livekit]` section; returns the port of the stand-in's HTTP API (`/fake/*`
/// drives it). Wait for the log's "livekit ready" before posting webhooks: until then
/// `/livekit/webhook` answers 503.
pub fn with_fake_livekit(setup: Setup, livekit_keys: &str) -> (Setup, u16) {
    let port = free_port();
    let setup = setup.env("RUNTIME_DIRECTORY", "").toml(&format!(
        "[livekit]\nenabled = true\nbinary = \"{}\"\nhttp_port = {port}\ndrain_grace_secs = 1\n{livekit_keys}",
        fake_livekit().display()
    ));
    std::fs::create_dir_all(fake_livekit_control_dir(&setup)).unwrap();
    (setup, port)
}

/// Where the stand-in LiveKit of `setup` reads the files that steer it and records its starts.
pub fn fake_livekit_control_dir(setup: &Setup) -> PathBuf {
    setup.data_dir().join("run/fake-livekit")
}

/// Has the stand-in LiveKit listening on `port` sign and deliver `event` to Roost's webhook
/// as the real one would; returns what the stand-in reports (Roost's `status`).
pub async fn fake_livekit_webhook(port: u16, event: Value) -> Value {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/fake/webhook"))
        .json(&event)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The LiveKit API key and secret Roost generated in `setup`'s data dir.
pub fn livekit_key_pair(setup: &Setup) -> (String, String) {
    let secrets = setup.data_dir().join("secrets");
    (
        read(&secrets.join("livekit_api_key")),
        read(&secrets.join("livekit_api_secret")),
    )
}

/// Posts `body` to the internal listener's `/livekit/webhook`, signed as LiveKit signs it
/// with Roost's own LiveKit key; returns the answer's status.
pub async fn post_livekit_webhook(api: &Api, body: &Value) -> reqwest::StatusCode {
    let (key, secret) = livekit_key_pair(&api.roost.setup);
    let body = body.to_string();
    let exp = unix_secs() + 300;
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

/// A LiveKit webhook about `identity`'s session `sid` in Roost room `room`'s call, whose
/// LiveKit session is `room_sid`.
pub fn livekit_event(event: &str, room: i64, room_sid: &str, identity: &str, sid: &str) -> Value {
    serde_json::json!({
        "event": event,
        "room": { "name": format!("roost-room-{room}"), "sid": room_sid },
        "participant": { "identity": identity, "sid": sid, "name": identity, "joinedAt": "1765084200" },
    })
}
