//! Clients that trust only the CA a Roost generated: reqwest for HTTPS, and raw TLS streams
//! for what reqwest cannot do (WebSockets, a chosen source address, bytes on the wire).

use std::sync::Arc;
use std::time::Duration;

use super::Roost;

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
/// A rustls client configuration that trusts only `roost`'s CA and offers the ALPN `protocols`
/// (none: the server picks HTTP/1.1).
pub fn client_config(roost: &Roost, protocols: &[&[u8]]) -> Arc<rustls::ClientConfig> {
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
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
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
    let tcp = socket.connect(roost.addrs().https).await?;
    tokio_rustls::TlsConnector::from(client_config(roost, &[b"http/1.1"]))
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
