//! Chat figures for `scripts/bench/chat.sh`: durable posts per second over HTTPS, fan-out
//! latency to many WebSocket subscribers (Roost's gateway, and mosquitto's MQTT-over-WebSocket
//! as the reference), memory per idle WebSocket, and list/search latency on a big room.
//! A benchmark, not a test: it prints numbers and asserts nothing. What it cannot measure (a
//! refused connection, a failed request) it reports and exits 1, naming the step.
//!
//! Gateway subscribers connect from 127.0.0.2 to 127.0.0.251 in turn, as phones come from
//! their own addresses: from 127.0.0.1 alone, all but `server.max_connections_per_ip` of them
//! would be closed by the per-address cap. The listener must be on 127.0.0.1 (Linux routes all
//! of 127.0.0.0/8 to the loopback interface).
//!
//!   chat_bench posts   URL CA USER PASSWORD ROOM SECONDS CONCURRENCY
//!   chat_bench fanout  URL CA USER PASSWORD ROOM SUBSCRIBERS MESSAGES ROOST_PID
//!   chat_bench mqtt    WS_PORT TCP_PORT SUBSCRIBERS MESSAGES MOSQUITTO_PID
//!   chat_bench seed    DB_PATH MESSAGES
//!   chat_bench reads   URL CA USER PASSWORD ROOM REQUESTS

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn arg(args: &[String], i: usize) -> &str {
    args.get(i).map(String::as_str).unwrap_or_else(|| {
        eprintln!("usage: see the top of examples/chat_bench.rs");
        std::process::exit(64)
    })
}

/// A numeric argument.
fn num<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T> {
    let text = arg(args, i);
    text.parse()
        .ok()
        .with_context(|| format!("{what} must be a number, not '{text}'"))
}

fn client(ca: &str) -> Result<reqwest::Client> {
    let pem = std::fs::read(ca).with_context(|| format!("reading the CA {ca}"))?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).context("the CA's PEM")?)
        .build()
        .context("building the HTTPS client")
}

async fn login(http: &reqwest::Client, url: &str, user: &str, password: &str) -> Result<String> {
    let resp = http
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await
        .context("signing in")?;
    let status = resp.status();
    let v: Value = resp.json().await.context("reading the sign-in answer")?;
    match v["access_token"].as_str() {
        Some(token) => Ok(token.to_owned()),
        None => bail!("signing in as {user}: {status} {v}"),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn posts(args: &[String]) -> Result<()> {
    let (url, ca, user, pw, room) = (
        arg(args, 2),
        arg(args, 3),
        arg(args, 4),
        arg(args, 5),
        arg(args, 6),
    );
    let secs: u64 = num(args, 7, "SECONDS")?;
    let concurrency: usize = num(args, 8, "CONCURRENCY")?;
    let http = client(ca)?;
    let token = Arc::new(login(&http, url, user, pw).await?);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        // A few connections (HTTP/2 multiplexes the rest), like a handful of busy clients.
        let http = if w % 16 == 0 {
            client(ca)?
        } else {
            http.clone()
        };
        let (token, done, failed) = (token.clone(), done.clone(), failed.clone());
        let target = format!("{url}/api/v1/rooms/{room}/messages");
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < until {
                i += 1;
                let r = http
                    .post(&target)
                    .bearer_auth(&*token)
                    .json(&json!({ "body": format!("bench message {w}-{i}") }))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => done.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        t.await.context("a posting task")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "posts: {:.0}/s durable (201 after COMMIT, synchronous=FULL), {n} in {elapsed:.1} s, {} failed, {concurrency} in flight",
        n as f64 / elapsed,
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}

type Wss =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// The TLS settings of the gateway subscribers: trusting only `ca`, HTTP/1.1 (WebSockets).
fn tls_connector(ca: &str) -> Result<tokio_rustls::TlsConnector> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("reading the CA {ca}"))?;
    for cert in certs {
        roots
            .add(cert.context("the CA's PEM")?)
            .context("the CA certificate")?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A gateway WebSocket to `url` (https://localhost:PORT) from the loopback address `from`.
async fn wss(url: &str, tls: &tokio_rustls::TlsConnector, from: Ipv4Addr) -> Result<Wss> {
    let authority = url.trim_start_matches("https://");
    let server: std::net::SocketAddr = authority
        .replace("localhost", "127.0.0.1")
        .parse()
        .with_context(|| format!("{url} is not https://localhost:PORT"))?;
    let socket = tokio::net::TcpSocket::new_v4().context("a socket")?;
    socket
        .bind((from, 0).into())
        .with_context(|| format!("binding to {from}"))?;
    let tcp = socket.connect(server).await.context("TCP connect")?;
    let name = rustls::pki_types::ServerName::try_from("localhost").context("server name")?;
    let tls = tls.connect(name, tcp).await.context("TLS handshake")?;
    let ws_url = format!("wss://{authority}/api/v1/gateway");
    let (ws, _) = tokio_tungstenite::client_async(ws_url, tls)
        .await
        .context("WebSocket upgrade")?;
    Ok(ws)
}

/// The loopback address subscriber `i` connects from: 127.0.0.2 to 127.0.0.251 in turn.
fn subscriber_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8)
}

/// One authenticated gateway connection, once the server said `ready`.
async fn subscribe(
    url: &str,
    tls: &tokio_rustls::TlsConnector,
    from: Ipv4Addr,
    token: &str,
) -> Result<Wss> {
    let mut ws = wss(url, tls, from).await?;
    let auth = json!({ "op": "auth", "token": token }).to_string();
    ws.send(Message::Text(auth.into()))
        .await
        .context("sending the auth frame")?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"op\":\"ready\"") => return Ok(ws),
            Some(Ok(Message::Close(frame))) => bail!("closed before ready: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("waiting for ready"),
            None => bail!("the connection ended before ready"),
        }
    }
}

/// Each subscriber reports the arrival times of `messages` messages into `arrivals`.
async fn fanout(args: &[String]) -> Result<()> {
    let (url, ca, user, pw, room) = (
        arg(args, 2),
        arg(args, 3),
        arg(args, 4),
        arg(args, 5),
        arg(args, 6),
    );
    let subscribers: usize = num(args, 7, "SUBSCRIBERS")?;
    let messages: usize = num(args, 8, "MESSAGES")?;
    let pid = arg(args, 9).to_owned();
    let http = client(ca)?;
    let token = login(&http, url, user, pw).await?;
    let tls = tls_connector(ca)?;
    let rss_before = rss_kib(&pid);
    let mut sockets = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let from = subscriber_address(i);
        let ws = subscribe(url, &tls, from, &token)
            .await
            .with_context(|| format!("subscriber {} of {subscribers} (from {from})", i + 1))?;
        sockets.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // let the server settle its buffers
    let rss_after = rss_kib(&pid);
    println!(
        "idle websocket memory: {:.1} KiB per connection (roost RSS {} -> {} KiB for {subscribers} authenticated idle connections)",
        (rss_after.saturating_sub(rss_before)) as f64 / subscribers as f64,
        rss_before,
        rss_after
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    for mut ws in sockets {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    if t.contains("\"message.created\"") {
                        let _ = tx.send((n, Instant::now()));
                        n += 1;
                        if n == messages {
                            break;
                        }
                    }
                }
            }
            // Keep the socket open until the end of the run.
            std::future::pending::<()>().await;
        });
    }
    drop(tx);
    let mut latencies = Vec::new();
    let mut post_rtt = Vec::new();
    for i in 0..messages {
        let sent = Instant::now();
        let r = http
            .post(format!("{url}/api/v1/rooms/{room}/messages"))
            .bearer_auth(&token)
            .json(&json!({ "body": format!("fan-out {i}") }))
            .send()
            .await
            .with_context(|| format!("posting message {i}"))?;
        if r.status() != 201 {
            bail!("posting message {i}: {}", r.status());
        }
        post_rtt.push(sent.elapsed().as_secs_f64() * 1000.0);
        let mut got = 0;
        while got < subscribers {
            let received = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
            let Ok(Some((idx, at))) = received else {
                bail!("message {i}: {got} of {subscribers} subscribers received it within 30 s");
            };
            if idx != i {
                bail!("a subscriber got message {idx} while message {i} was expected");
            }
            latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
            got += 1;
        }
    }
    latencies.sort_by(f64::total_cmp);
    post_rtt.sort_by(f64::total_cmp);
    println!(
        "roost fan-out to {subscribers} websockets x {messages} messages: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (from POST sent; the POST itself p50 {:.1} ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        percentile(&post_rtt, 0.5),
    );
    Ok(())
}

/// MQTT 3.1.1 packets, just enough for the reference run.
fn mqtt_packet(kind: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = vec![kind];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend(body);
    out
}

fn mqtt_str(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend(s.as_bytes());
    v
}

/// The CONNECT packet: MQTT 3.1.1, clean session, keep-alive off (setting up a thousand
/// websocket subscribers on mosquitto takes longer than 1.5 keep-alive periods).
fn mqtt_connect_packet(id: &str) -> Vec<u8> {
    let mut body = mqtt_str("MQTT");
    body.extend([4, 2, 0, 0]);
    body.extend(mqtt_str(id));
    mqtt_packet(0x10, body)
}

/// How many PUBLISH packets one websocket message holds (a broker may put several MQTT packets
/// in one frame).
fn publishes_in(mut b: &[u8]) -> usize {
    let mut n = 0;
    while let Some(&kind) = b.first() {
        let (mut len, mut shift, mut i) = (0usize, 0, 1);
        loop {
            let Some(&byte) = b.get(i) else { return n };
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            i += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if kind >> 4 == 3 {
            n += 1;
        }
        b = b.get(i + len..).unwrap_or_default();
    }
    n
}

type MqttWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A subscriber over MQTT-over-WebSocket, subscribed to `bench/room` (QoS 0).
async fn mqtt_subscriber(port: &str, id: &str) -> Result<MqttWs> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://127.0.0.1:{port}/").into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        http::HeaderValue::from_static("mqtt"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .context("WebSocket connect")?;
    ws.send(Message::Binary(mqtt_connect_packet(id).into()))
        .await
        .context("CONNECT")?;
    ws.next().await.context("no CONNACK")?.context("CONNACK")?;
    let mut body = vec![0, 1];
    body.extend(mqtt_str("bench/room"));
    body.push(0); // QoS 0
    ws.send(Message::Binary(mqtt_packet(0x82, body).into()))
        .await
        .context("SUBSCRIBE")?;
    ws.next().await.context("no SUBACK")?.context("SUBACK")?;
    Ok(ws)
}

/// The reference: `SUBSCRIBERS` MQTT-over-WebSocket subscribers on mosquitto's websockets
/// listener, one publisher on its plain MQTT listener (the counterpart of Roost's HTTPS POST).
async fn mqtt(args: &[String]) -> Result<()> {
    use futures_util::stream::{self, StreamExt as _};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ws_port = arg(args, 2).to_owned();
    let tcp_port = arg(args, 3).to_owned();
    let subscribers: usize = num(args, 4, "SUBSCRIBERS")?;
    let messages: usize = num(args, 5, "MESSAGES")?;
    let pid = arg(args, 6).to_owned();
    let rss_before = rss_kib(&pid);
    let started = Instant::now();
    // Concurrently: mosquitto 2.0 services websockets on a 100 ms poll tick and accepts one
    // websocket connection per tick, so one at a time would take minutes.
    let sockets: Vec<MqttWs> = stream::iter(0..subscribers)
        .map(|i| {
            let port = ws_port.clone();
            async move {
                mqtt_subscriber(&port, &format!("sub{i}"))
                    .await
                    .with_context(|| format!("mosquitto subscriber {}", i + 1))
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let setup = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(&pid);
    println!(
        "mosquitto idle websocket memory: {:.1} KiB per connection (RSS {} -> {} KiB, plain ws, no TLS; {subscribers} subscribers set up in {setup:.0} s)",
        (rss_after.saturating_sub(rss_before)) as f64 / subscribers as f64,
        rss_before,
        rss_after
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    for mut ws in sockets {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Binary(b) = m {
                    for _ in 0..publishes_in(&b) {
                        let _ = tx.send(Instant::now());
                    }
                }
            }
        });
    }
    let mut publisher = tokio::net::TcpStream::connect(format!("127.0.0.1:{tcp_port}"))
        .await
        .context("connecting the MQTT publisher")?;
    publisher.set_nodelay(true)?;
    publisher
        .write_all(&mqtt_connect_packet("publisher"))
        .await
        .context("the publisher's CONNECT")?;
    let mut connack = [0u8; 4];
    publisher
        .read_exact(&mut connack)
        .await
        .context("the publisher's CONNACK")?;
    let mut latencies = Vec::new();
    for i in 0..messages {
        let mut body = mqtt_str("bench/room");
        body.extend(format!("{{\"body\":\"fan-out {i}\"}}").as_bytes());
        let sent = Instant::now();
        publisher
            .write_all(&mqtt_packet(0x30, body))
            .await
            .context("PUBLISH")?;
        for got in 0..subscribers {
            let received = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
            let Ok(Some(at)) = received else {
                bail!("message {i}: {got} of {subscribers} subscribers received it within 30 s");
            };
            latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "mosquitto fan-out to {subscribers} websockets x {messages} messages: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (QoS 0, publisher on plain MQTT, nothing written to disk)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    Ok(())
}

/// Fills room 1 (owned by user 1) with `n` messages straight into the database file (the
/// daemon must be stopped); the FTS triggers index them as they go.
fn seed(args: &[String]) -> Result<()> {
    let db = arg(args, 2);
    let n: i64 = num(args, 3, "MESSAGES")?;
    let mut conn = rusqlite::Connection::open(db).with_context(|| format!("opening {db}"))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let words = [
        "apple", "banana", "garden", "meeting", "tomorrow", "photo", "dinner", "train", "music",
        "weekend", "school", "holiday", "kitchen", "bicycle", "rain", "coffee",
    ];
    let started = Instant::now();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO messages (room_id, author_id, body, created_at) VALUES (1, 1, ?1, ?2)",
        )?;
        let mut x: u64 = 88172645463325252;
        for i in 0..n {
            let mut body = String::new();
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                body.push_str(words[(x % words.len() as u64) as usize]);
                body.push(' ');
            }
            body.push_str(&format!("#{i}"));
            stmt.execute(rusqlite::params![body, now_ms - (n - i)])
                .context("inserting a message")?;
        }
    }
    tx.commit()?;
    println!(
        "seeded {n} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn reads(args: &[String]) -> Result<()> {
    let (url, ca, user, pw, room) = (
        arg(args, 2),
        arg(args, 3),
        arg(args, 4),
        arg(args, 5),
        arg(args, 6),
    );
    let requests: usize = num(args, 7, "REQUESTS")?;
    let http = client(ca)?;
    let token = login(&http, url, user, pw).await?;
    let time = |path: String| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let t = Instant::now();
            let r = http.get(&path).bearer_auth(token).send().await?;
            if r.status() != 200 {
                bail!("GET {path}: {}", r.status());
            }
            r.bytes().await?;
            Ok(t.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let words = [
        "apple",
        "garden meeting",
        "coffee train",
        "holid",
        "bicycle rain kitchen",
    ];
    for (name, make) in [
        (
            "list newest 50",
            Box::new(|_: usize| format!("{url}/api/v1/rooms/{room}/messages?limit=50"))
                as Box<dyn Fn(usize) -> String>,
        ),
        (
            "list page deep in history (before=500000, 100)",
            Box::new(|_| format!("{url}/api/v1/rooms/{room}/messages?before=500000&limit=100")),
        ),
        (
            "search (20 best of ~1M)",
            Box::new(move |i| {
                format!(
                    "{url}/api/v1/search?q={}&limit=20",
                    words[i % words.len()].replace(' ', "+")
                )
            }),
        ),
    ] {
        let mut lat = Vec::new();
        for i in 0..requests {
            lat.push(time(make(i)).await?);
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "{name}: p50 {:.1} ms, p99 {:.1} ms over {requests} requests",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = arg(&args, 1);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chat_bench: no async runtime: {e}");
            std::process::exit(1)
        }
    };
    let result = match case {
        "posts" => runtime.block_on(posts(&args)),
        "fanout" => runtime.block_on(fanout(&args)),
        "mqtt" => runtime.block_on(mqtt(&args)),
        "seed" => seed(&args),
        "reads" => runtime.block_on(reads(&args)),
        other => {
            eprintln!("unknown case {other}");
            std::process::exit(64)
        }
    };
    if let Err(e) = result {
        eprintln!("chat_bench {case}: not measured: {e:#}");
        std::process::exit(1)
    }
}
