//! Life under systemd: readiness and watchdog notifications, SIGHUP certificate reload,
//! SIGTERM drain and a clean exit.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::*;
use nix::sys::signal::Signal;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A test CA that signs "localhost" leaf certificates, standing in for an operator's PKI.
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        TestCa {
            cert: params.self_signed(&key).unwrap(),
            key,
        }
    }

    /// Writes a fresh leaf certificate and key for localhost; returns the leaf's DER.
    fn issue(&self, cert_path: &std::path::Path, key_path: &std::path::Path) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let leaf = params.signed_by(&key, &self.cert, &self.key).unwrap();
        std::fs::write(cert_path, leaf.pem()).unwrap();
        std::fs::write(key_path, key.serialize_pem()).unwrap();
        leaf.der().to_vec()
    }
}

async fn peer_cert(client: &reqwest::Client, url: &str) -> Vec<u8> {
    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let info = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("tls info");
    info.peer_certificate().expect("peer certificate").to_vec()
}

fn client_for(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .tls_info(true)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_certificates_without_dropping_connections() {
    let ca = TestCa::new();
    let setup = Setup::new();
    let (cert, key) = (
        setup.dir.path().join("cert.pem"),
        setup.dir.path().join("key.pem"),
    );
    let first = ca.issue(&cert, &key);
    let setup = setup.toml(&format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let roost = setup.start();
    let url = roost.https_url("/health");

    // A client whose connection stays open across the reload.
    let long_lived = client_for(&ca.cert.pem());
    assert_eq!(peer_cert(&long_lived, &url).await, first);

    // /ca.crt is not offered when the operator brings certificates.
    let resp = long_lived
        .get(roost.https_url("/ca.crt"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let second = ca.issue(&cert, &key);
    roost.signal(Signal::SIGHUP);
    eventually(
        Duration::from_secs(15),
        "a new connection to see the new certificate",
        || {
            let ca_pem = ca.cert.pem();
            let (url, second) = (url.clone(), second.clone());
            async move { (peer_cert(&client_for(&ca_pem), &url).await == second).then_some(()) }
        },
    )
    .await;
    // The connection made before the reload still works and still has its original session.
    assert_eq!(peer_cert(&long_lived, &url).await, first);

    // A broken file is refused and the previous certificate keeps being served.
    std::fs::write(&cert, "not a certificate").unwrap();
    roost.signal(Signal::SIGHUP);
    let mut roost = roost;
    roost.wait_for_log(
        |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("certificate reload failed"))
        },
        STARTUP_DEADLINE,
    );
    assert_eq!(peer_cert(&client_for(&ca.cert.pem()), &url).await, second);
}

/// Receives datagrams on a temporary NOTIFY_SOCKET.
struct NotifySocket {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    sock: UnixDatagram,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        NotifySocket {
            _dir: dir,
            path,
            sock,
        }
    }

    /// Collects messages until one contains `needle`, or panics after `deadline`.
    fn wait_for(&self, needle: &str, deadline: Duration, seen: &mut Vec<String>) {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < deadline {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.lines().any(|l| l == needle);
                seen.push(msg);
                if hit {
                    return;
                }
            }
        }
        panic!("no {needle:?} within {deadline:?}; got {seen:?}");
    }

    /// Asserts `needle` does not arrive for `window`, after letting through messages for
    /// `settle` (a ping that took the lock just before the change may still land).
    fn expect_quiet(&self, needle: &str, settle: Duration, window: Duration) {
        let mut buf = [0u8; 4096];
        let start = Instant::now();
        while start.elapsed() < settle {
            let _ = self.sock.recv(&mut buf);
        }
        let start = Instant::now();
        while start.elapsed() < window {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]);
                assert!(
                    !msg.lines().any(|l| l == needle),
                    "{needle:?} arrived while it should not have"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_ready_watchdog_and_stopping_then_exits_0() {
    let notify = NotifySocket::new();
    let mut setup = Setup::new()
        .env("NOTIFY_SOCKET", notify.path.to_str().unwrap())
        .env("WATCHDOG_USEC", "400000");
    // systemd sets WATCHDOG_PID to the service's pid; `exec` keeps the shell's pid.
    setup.via_shell = Some("WATCHDOG_PID=$$ exec \"$@\"".into());
    let mut roost = setup.start();
    let mut seen = Vec::new();
    notify.wait_for("READY=1", STARTUP_DEADLINE, &mut seen);
    let ready = seen.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(ready.contains("STATUS=serving https on"), "{ready}");
    // The HTTPS listener is bound by the time READY=1 arrives.
    let resp = roost.get("/health").await;
    assert_eq!(resp.status(), 200);
    for _ in 0..2 {
        notify.wait_for("WATCHDOG=1", Duration::from_secs(5), &mut seen);
    }

    // Another process holds the database's write lock: the writer cannot take it, so the
    // watchdog must go quiet (systemd would restart a writer hung like this) and /ready fails.
    let locker = rusqlite::Connection::open(roost.setup.data_dir().join("roost.sqlite3")).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Pings come every 200 ms; one already past the lock may land in the first interval.
    notify.expect_quiet(
        "WATCHDOG=1",
        Duration::from_millis(300),
        Duration::from_millis(1500),
    );
    let resp = roost.get("/ready").await;
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["database"]["status"], "fail", "{body}");
    locker.execute_batch("ROLLBACK").unwrap();
    notify.wait_for("WATCHDOG=1", Duration::from_secs(15), &mut seen);

    roost.signal(Signal::SIGTERM);
    notify.wait_for("STOPPING=1", Duration::from_secs(10), &mut seen);
    let status = roost.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", roost.raw_logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_checkpoints_the_database() {
    let mut roost = Setup::new().start();
    let resp = roost.get("/ready").await;
    assert_eq!(resp.status(), 200);
    roost.signal(Signal::SIGTERM);
    assert_eq!(
        roost.wait_exit(Duration::from_secs(15)).code(),
        Some(0),
        "{}",
        roost.raw_logs()
    );
    let wal = roost.setup.data_dir().join("roost.sqlite3-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        wal_len, 0,
        "the WAL should be checkpointed and truncated at exit"
    );
    // The database is intact and at the current schema.
    let out = roost.setup.run(&["migrate", "--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Reads from `stream` until `buf` holds a complete response head, and returns the head.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> String {
    use tokio::io::AsyncReadExt;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return head;
        }
        assert!(Instant::now() < deadline, "no response head: {buf:?}");
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut chunk))
            .await
            .expect("the server answers")
            .unwrap();
        assert!(n > 0, "connection closed before a response head: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_slow_in_flight_request() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut roost = Setup::new().start();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&roost.ca_pem()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(roost.addrs().https)
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(tls_config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();

    let body = br#"{"username":"nobody","password":"not the password"}"#;
    let (first, rest) = body.split_at(20);
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    // The server sends 100 Continue when the handler starts reading the body: from here on
    // the request is in flight.
    let mut buf = Vec::new();
    let interim = read_head(&mut tls, &mut buf).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();

    roost.signal(Signal::SIGTERM);
    roost.wait_for_log(
        |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutting down"))
        },
        Duration::from_secs(10),
    );
    tls.write_all(rest).await.unwrap();
    tls.flush().await.unwrap();

    let head = read_head(&mut tls, &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    while buf.len() < length {
        let mut chunk = [0u8; 4096];
        let n = tls.read(&mut chunk).await.unwrap();
        assert!(n > 0, "body cut short");
        buf.extend_from_slice(&chunk[..n]);
    }
    let answer: serde_json::Value = serde_json::from_slice(&buf[..length]).unwrap();
    assert_eq!(answer["error"]["code"], "invalid_credentials", "{answer}");

    let status = roost.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", roost.raw_logs());
}
