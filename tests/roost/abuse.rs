//! Slow and abusive clients meet the real daemon: each connection-level deadline and cap holds,
//! configured small so every test finishes in seconds. The load figures are from
//! `scripts/robustness/abuse.py`; these are the deterministic parts.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::support::*;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Longest any test waits for the server to act on a 1-second deadline.
const DEADLINE: Duration = Duration::from_secs(10);

/// A TCP connection to the HTTPS listener from `source` (another loopback address is another
/// client IP).
async fn tcp_from(roost: &Roost, source: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    socket.connect(roost.addrs().https).await.unwrap()
}

async fn tls_from(roost: &Roost, source: IpAddr, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let tcp = tcp_from(roost, source).await;
    TlsConnector::from(client_config(roost, alpn))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Reads until the server closes the connection, or fails after `deadline`. Returns what it
/// read.
async fn read_until_closed(io: &mut (impl AsyncRead + Unpin), deadline: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let result = tokio::time::timeout(deadline, async {
        let mut buf = [0u8; 4096];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(result.is_ok(), "the server kept the connection open");
    got
}

/// The bytes of a real ClientHello for `localhost`.
fn client_hello(roost: &Roost) -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(
        client_config(roost, &[b"http/1.1"]),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

fn no_livekit(setup: Setup) -> Setup {
    setup.toml("[livekit]\nenabled = false")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_dribbled_slowly_is_cut_off_at_the_header_deadline() {
    let roost = no_livekit(Setup::new())
        .toml("[limits]\nheader_read_timeout_secs = 1")
        .start();
    let mut tls = tls_from(&roost, loopback(1), &[b"http/1.1"]).await;
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // The attack: one more header line every 100 ms, each one "progress" on the socket.
    let (mut rd, mut wr) = tokio::io::split(tls);
    let dribble = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if wr.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return;
            }
        }
    });
    let answer = read_until_closed(&mut rd, DEADLINE).await;
    dribble.abort();
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(900),
        "closed too early: {held:?}"
    );
    // hyper answers 408 or just closes; either way no request head was ever accepted.
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_cap_gets_413_without_being_read_to_the_end() {
    let roost = no_livekit(Setup::new())
        .toml("[limits]\nmax_body_bytes = 65536")
        .start();
    let mut tls = tls_from(&roost, loopback(1), &[b"http/1.1"]).await;
    tls.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = vec![b' '; 8192];
    let mut sent = 0usize;
    // Up to 64 MiB: far more than the cap. The server answers (and stops reading) long before.
    for _ in 0..8192 {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if tls.write_all(&frame).await.is_err() {
            break;
        }
        sent += chunk.len();
        let mut first = [0u8; 1024];
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(1), tls.read(&mut first)).await
        {
            let n = read.unwrap_or(0);
            assert!(n > 0, "closed without an answer after {sent} bytes");
            let mut answer = first[..n].to_vec();
            answer.extend(read_until_closed(&mut tls, DEADLINE).await);
            let text = String::from_utf8_lossy(&answer).to_string();
            assert!(text.starts_with("HTTP/1.1 413"), "{text}");
            assert!(text.contains("\"code\":\"payload_too_large\""), "{text}");
            assert!(sent < 4 * 1024 * 1024, "read {sent} bytes before refusing");
            return;
        }
    }
    panic!("no answer after sending {sent} bytes of a chunked body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_that_never_finish_are_closed_at_the_deadline() {
    let roost = no_livekit(Setup::new())
        .toml("[limits]\ntls_handshake_timeout_secs = 1")
        .start();
    // Connects and never says a word.
    let mut silent = tcp_from(&roost, loopback(1)).await;
    // Sends half a ClientHello and stops.
    let hello = client_hello(&roost);
    let mut half = tcp_from(&roost, loopback(1)).await;
    half.write_all(&hello[..hello.len() / 2]).await.unwrap();

    let started = Instant::now();
    let (a, b) = tokio::join!(
        read_until_closed(&mut silent, DEADLINE),
        read_until_closed(&mut half, DEADLINE)
    );
    assert!(
        a.is_empty() && b.is_empty(),
        "the server sent {a:?} / {b:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The server is fine for everyone else.
    assert_eq!(roost.get("/health").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let setup = no_livekit(Setup::new());
    setup.write_config("max_connections = 8\nmax_connections_per_ip = 2");
    let roost = setup.start();
    // 127.0.0.1 takes its two slots with idle TLS connections.
    let _one = tls_from(&roost, loopback(1), &[b"http/1.1"]).await;
    let _two = tls_from(&roost, loopback(1), &[b"http/1.1"]).await;
    // Its third connection is closed before the handshake.
    let mut third = tcp_from(&roost, loopback(1)).await;
    third.write_all(&client_hello(&roost)).await.ok();
    let answer = read_until_closed(&mut third, DEADLINE).await;
    assert!(answer.is_empty(), "a third connection got {answer:?}");
    // Another client is served as usual.
    let mut other = tls_from(&roost, loopback(2), &[b"http/1.1"]).await;
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut other, DEADLINE).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_that_only_pings_is_closed_when_idle() {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

    let roost = no_livekit(Setup::new())
        // The gateway's pings must come within the edge's idle deadline (config check).
        .toml("[limits]\nidle_timeout_secs = 2\n[gateway]\nping_interval_secs = 1")
        .start();
    let tls = tls_from(&roost, loopback(1), &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // Pings every 100 ms keep bytes flowing both ways, which is all a byte-level idle timer sees.
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .handshake::<_, http_body_util::Empty<bytes::Bytes>>(TokioIo::new(tls))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let resp = send
        .send_request(
            http::Request::get("https://localhost/health")
                .body(http_body_util::Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    let started = Instant::now();
    tokio::time::timeout(DEADLINE, conn)
        .await
        .expect("the server kept a connection with no requests open")
        .unwrap()
        .ok();
    assert!(started.elapsed() >= Duration::from_millis(1900));
}

/// Reads server WebSocket frames until a close frame; returns its code (None if the server
/// just dropped the connection).
async fn ws_close_code(io: &mut (impl AsyncRead + Unpin)) -> Option<u16> {
    let bytes = read_until_closed(io, DEADLINE).await;
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    assert!(bytes.starts_with(b"HTTP/1.1 101"), "no upgrade");
    let mut rest = &bytes[head_end..];
    while rest.len() >= 2 {
        let (opcode, len7) = (rest[0] & 0x0f, (rest[1] & 0x7f) as usize);
        let (len, off) = match len7 {
            126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n, 2),
        };
        let payload = &rest[off..off + len];
        if opcode == 0x8 {
            return Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
        rest = &rest[off + len..];
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_frame_over_the_limit_is_refused_from_its_header() {
    let roost = no_livekit(Setup::new()).start();
    let upgrade = b"GET /api/v1/gateway HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    // A text frame declaring 16 MiB (the limit is 64 KiB), masked, then only 1 KiB of it: the
    // server must answer 1009 from the header alone, not wait for (or buffer) the payload.
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(16u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(&[b'a'; 1024]);
    let mut tls = tls_from(&roost, loopback(1), &[b"http/1.1"]).await;
    tls.write_all(upgrade).await.unwrap();
    tls.write_all(&frame).await.unwrap();
    assert_eq!(ws_close_code(&mut tls).await, Some(1009));

    // The same limit for a message cut into fragments that are each small enough.
    let mut tls = tls_from(&roost, loopback(1), &[b"http/1.1"]).await;
    tls.write_all(upgrade).await.unwrap();
    let fragment = |first: bool| {
        let mut f = vec![if first { 0x01 } else { 0x00 }, 0x80 | 126];
        f.extend_from_slice(&40_000u16.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(&[b'a'; 40_000]);
        f
    };
    tls.write_all(&fragment(true)).await.unwrap();
    tls.write_all(&fragment(false)).await.unwrap();
    assert_eq!(ws_close_code(&mut tls).await, Some(1009));
}
