//! A stand-in for `livekit-server`, for Roost's tests only (built by `cargo test` as an
//! example; never packaged).
//!
//! It honours the same command line (`--config FILE` or `--config-body YAML`), parses the
//! YAML strictly like LiveKit (an unknown key is fatal), listens on `bind_addresses:port`,
//! answers `GET /` with 200 "OK", echoes on the `/rtc` WebSocket (after a first message that
//! reports the forwarding headers it saw), and signs webhooks like LiveKit on request.
//!
//! Tests steer it through files in `<config dir>/fake-livekit/`:
//! - `starts`: it appends `<pid> <unix ms>` on every start;
//! - `crash`: exit with status 3 right after starting;
//! - `hang`: stop answering `GET /` (checked per request);
//! - `ignore-term`: ignore SIGTERM (only SIGKILL stops it);
//! - `participants`: the first SIGTERM drains until this file goes or a second SIGTERM;
//! - `signals`: it appends one line per SIGTERM received;
//! - `config.json`: the configuration as it parsed it.
//!
//! `POST /fake/webhook` with `{"event","room","identity","sid"}` makes it send a signed
//! webhook to every configured URL and answer `{"status": <code Roost answered>}`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Conf {
    port: u16,
    #[serde(default)]
    bind_addresses: Vec<String>,
    #[serde(default)]
    rtc: Rtc,
    #[serde(default)]
    keys: BTreeMap<String, String>,
    #[serde(default)]
    webhook: Webhook,
    #[serde(default)]
    logging: Logging,
    #[serde(default)]
    turn: Option<Turn>,
    #[serde(default)]
    development: bool,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Rtc {
    tcp_port: Option<u16>,
    udp_port: Option<serde_yaml::Value>,
    port_range_start: Option<u16>,
    port_range_end: Option<u16>,
    use_external_ip: Option<bool>,
    node_ip: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Webhook {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Logging {
    #[serde(default)]
    json: bool,
    #[serde(default)]
    level: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    enabled: bool,
    #[serde(default)]
    domain: String,
    udp_port: Option<u16>,
    tls_port: Option<u16>,
    cert_file: Option<String>,
    key_file: Option<String>,
    #[serde(default)]
    allow_restricted_peer_cidrs: Vec<String>,
}

#[derive(Clone)]
struct App {
    control: PathBuf,
    keys: BTreeMap<String, String>,
    webhook_key: String,
    webhook_urls: Vec<String>,
}

fn log(level: &str, msg: &str) {
    let ts = now_ms() as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({"level": level, "ts": ts, "msg": msg, "pid": std::process::id()})
    );
    let _ = std::io::stdout().flush();
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn append(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

fn usage(msg: &str) -> ! {
    // LiveKit prints its error and exits; so does this.
    println!("{msg}");
    std::process::exit(1);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut file, mut body) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => file = it.next().cloned(),
            "--config-body" => body = it.next().cloned(),
            other => usage(&format!("flag provided but not defined: {other}")),
        }
    }
    let (text, control) = match (file, body) {
        (Some(f), _) => {
            let text = std::fs::read_to_string(&f).unwrap_or_else(|e| usage(&format!("{f}: {e}")));
            let dir = Path::new(&f).parent().unwrap().join("fake-livekit");
            (text, dir)
        }
        (None, Some(b)) => (b, std::env::temp_dir().join("fake-livekit")),
        (None, None) => usage("one of --config or --config-body is required"),
    };
    let conf: Conf = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| usage(&format!("could not parse config: {e}")));
    if conf.keys.is_empty() {
        usage("one of key-file or keys must be provided");
    }
    std::fs::create_dir_all(&control).unwrap();
    // What it understood, for tests to assert on (secrets included: test keys only).
    std::fs::write(
        control.join("config.json"),
        serde_json::to_string_pretty(&conf).unwrap(),
    )
    .unwrap();
    append(
        &control.join("starts"),
        &format!("{} {}", std::process::id(), now_ms()),
    );
    log("info", "starting LiveKit server (fake)");
    if control.join("crash").exists() {
        log("error", "crashing as asked");
        std::process::exit(3);
    }

    let app = App {
        control: control.clone(),
        keys: conf.keys.clone(),
        webhook_key: conf.webhook.api_key.clone(),
        webhook_urls: conf.webhook.urls.clone(),
    };
    let router = Router::new()
        .route("/", get(health))
        .route("/rtc", any(rtc))
        .route("/rtc/v1", any(rtc))
        .route("/rtc/validate", get(|| async { "success" }))
        .route("/twirp/{*rest}", post(twirp))
        .route("/fake/webhook", post(send_webhook))
        .with_state(app);
    let addr = conf
        .bind_addresses
        .first()
        .cloned()
        .unwrap_or_else(|| "0.0.0.0".into());
    let listener = tokio::net::TcpListener::bind((addr.as_str(), conf.port))
        .await
        .unwrap_or_else(|e| usage(&format!("listen on {addr}:{}: {e}", conf.port)));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    log("info", "server listening");

    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let mut terms = 0;
    loop {
        term.recv().await;
        terms += 1;
        append(&control.join("signals"), &format!("SIGTERM {}", now_ms()));
        if control.join("ignore-term").exists() {
            log("info", "ignoring SIGTERM as asked");
            continue;
        }
        if terms >= 2 {
            log("info", "exit requested, shutting down (force)");
            std::process::exit(0);
        }
        log("info", "exit requested, shutting down");
        if !control.join("participants").exists() {
            std::process::exit(0);
        }
        // Drain: wait for participants to leave or a second SIGTERM.
        let control = control.clone();
        tokio::spawn(async move {
            while control.join("participants").exists() {
                log("info", "waiting for participants to exit");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            std::process::exit(0);
        });
    }
}

async fn health(State(app): State<App>) -> impl IntoResponse {
    if app.control.join("hang").exists() {
        std::future::pending::<()>().await;
    }
    (StatusCode::OK, "OK")
}

async fn rtc(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
    ws: WebSocketUpgrade,
) -> impl IntoResponse {
    let hello = serde_json::json!({
        "x_forwarded_for": headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
        "x_real_ip": headers.get("x-real-ip").and_then(|v| v.to_str().ok()),
        "has_token": q.contains_key("access_token"),
        "protocol": headers.get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
    });
    let _ = app;
    ws.on_upgrade(move |socket| echo(socket, hello.to_string()))
}

async fn echo(mut socket: WebSocket, hello: String) {
    if socket.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    while let Some(Ok(msg)) = socket.recv().await {
        let echo = matches!(msg, Message::Text(_) | Message::Binary(_));
        if matches!(msg, Message::Close(_)) || (echo && socket.send(msg).await.is_err()) {
            return;
        }
    }
}

async fn twirp(headers: HeaderMap) -> impl IntoResponse {
    if headers.get("authorization").is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"code": "unauthenticated"})),
        );
    }
    (StatusCode::OK, Json(serde_json::json!({"rooms": []})))
}

#[derive(Deserialize)]
struct WebhookRequest {
    event: String,
    #[serde(default)]
    room: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    sid: String,
}

async fn send_webhook(
    State(app): State<App>,
    Json(req): Json<WebhookRequest>,
) -> impl IntoResponse {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The shape LiveKit's protobuf JSON has: camelCase names, int64 values as strings.
    let mut event = serde_json::json!({
        "event": req.event,
        "room": {"sid": "RM_fake", "name": req.room, "creationTime": now.to_string()},
        "id": format!("EV_{}", now_ms()),
        "createdAt": now.to_string(),
    });
    if !req.identity.is_empty() {
        event["participant"] = serde_json::json!({
            "sid": req.sid, "identity": req.identity, "name": req.identity.to_uppercase(),
            "state": "ACTIVE", "joinedAt": now.to_string(), "joinedAtMs": (now * 1000).to_string(),
            "permission": {"canSubscribe": true}, "kindDetails": [],
        });
    }
    let body = event.to_string();
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    let secret = app.keys.get(&app.webhook_key).cloned().unwrap_or_default();
    let claims = serde_json::json!({
        "iss": app.webhook_key, "nbf": now, "exp": now + 300,
        "sha256": base64::engine::general_purpose::STANDARD.encode(digest.as_ref()),
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let mut status = 0;
    for url in &app.webhook_urls {
        status = match client
            .post(url)
            .header("authorization", &token)
            .header("content-type", "application/webhook+json")
            .header("user-agent", "LiveKit")
            .body(body.clone())
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        };
    }
    Json(serde_json::json!({"status": status}))
}
