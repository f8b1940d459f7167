//! TLS for the public listener: loading a certificate and key from PEM files, the resolver
//! that lets SIGHUP swap the certificate without dropping connections, and the one rustls
//! `ServerConfig` the daemon builds at startup.
//!
//! Reload model: the daemon builds ONE `ServerConfig` whose [`CertResolver`] is swapped in
//! place. Open connections keep their session; new handshakes get the new certificate.
//!
//! This module must not accept sockets, speak HTTP, issue certificates (that is
//! [`super::local_ca`]) or read the configuration struct: callers hand it paths.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, ServerConfig, SupportedProtocolVersion};

/// TLS 1.0 and 1.1 are not implemented by rustls at all; 1.2 stays for older Android phones
/// and embedded clients. Listed newest first, the order rustls prefers.
pub const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// h2 first so browsers multiplex; http/1.1 for WebSocket upgrades and simple clients.
pub const ALPN_PROTOCOLS: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Everything that can go wrong loading or issuing certificates. Every variant names the
/// file involved, because the person reading it is fixing a file on a Pi.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Unwritable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not valid PEM: {source}", path.display())]
    MalformedPem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("no PEM certificate found in {}", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "no PEM private key found in {} (expected PKCS#8, SEC1/EC or PKCS#1/RSA)",
        path.display()
    )]
    NoPrivateKey { path: PathBuf },
    #[error("private key in {} cannot be used: {reason}", path.display())]
    UnusableKey { path: PathBuf, reason: String },
    #[error("certificate in {} cannot be parsed: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error(
        "key in {} does not match the certificate in {}",
        key_path.display(),
        cert_path.display()
    )]
    KeyMismatch {
        cert_path: PathBuf,
        key_path: PathBuf,
    },
    #[error(
        "{} exists but {} is missing; restore it from a backup, or remove {} to create a new \
         local CA (every device that trusted the old one must then import the new ca.crt)",
        present.display(),
        missing.display(),
        present.display()
    )]
    IncompleteCa { present: PathBuf, missing: PathBuf },
    #[error(
        "the local CA in {} expired on {expired_on}, so no server certificate can be issued \
         under it. A CA cannot be renewed, only replaced: stop Roost, move {} and its key \
         somewhere safe, run `roost init` (a new CA and server certificate), start Roost, then \
         import the new /ca.crt on every device",
        path.display(),
        path.display()
    )]
    CaExpired {
        path: PathBuf,
        expired_on: time::Date,
    },
    #[error("the server certificate needs at least one DNS name or IP address")]
    NoServerNames,
    #[error("cannot use {name:?} as a certificate name: {source}")]
    InvalidName {
        name: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot generate {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
}

/// Loads a PEM certificate chain (leaf first) and its private key, and checks that the key
/// belongs to the leaf, so a wrong pair fails at startup or reload instead of at every
/// handshake.
pub fn load_certified_key(cert_pem: &Path, key_pem: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_cert_chain(cert_pem)?;
    let key_der = read_private_key(key_pem)?;

    let signing_key = ring_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|err| TlsError::UnusableKey {
            path: key_pem.to_owned(),
            reason: err.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        // The ring key types always expose their public key, so this does not happen today;
        // if a future key type cannot, a mismatch would still fail the first handshake.
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert_path: cert_pem.to_owned(),
                key_path: key_pem.to_owned(),
            })
        }
        Err(err) => Err(TlsError::BadCertificate {
            path: cert_pem.to_owned(),
            reason: err.to_string(),
        }),
    }
}

/// Every certificate in a PEM file, in file order. Shared with `local_ca`, which reads its own
/// files back the same way a user-supplied chain is read.
pub(crate) fn read_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::MalformedPem {
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn read_private_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path)?;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        source => TlsError::MalformedPem {
            path: path.to_owned(),
            source,
        },
    })
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

/// Hands every handshake the current certificate. SIGHUP calls [`CertResolver::replace`];
/// connections already established are untouched because rustls only asks during a
/// handshake.
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    pub fn new(initial: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(CertResolver {
            current: RwLock::new(initial),
        })
    }

    pub fn replace(&self, new: Arc<CertifiedKey>) {
        // A poisoned lock still holds a whole Arc: the only write is this assignment, which
        // cannot leave it half-done, so recovering the guard is safe.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = new;
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        // See `replace` for why a poisoned lock is still sound to read.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key itself must never reach a log line; the expiry is what a reader wants.
        f.debug_struct("CertResolver")
            .field("leaf_not_after", &leaf_not_after(&self.current()))
            .finish()
    }
}

impl ResolvesServerCert for CertResolver {
    // SNI is ignored on purpose: one certificate covers every name the appliance answers to,
    // and clients connecting by IP address send no SNI at all.
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The config for the public HTTPS listener. Build it once; reload by swapping the resolver's
/// key, never by building a new config (that would drop the session cache).
pub fn server_config(resolver: Arc<CertResolver>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring_provider()))
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .expect("the ring provider has cipher suites for both TLS 1.2 and TLS 1.3")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    // The server's suite order wins, so an old client cannot steer the handshake to its
    // weakest common choice; the order itself is set in `ring_provider`.
    config.ignore_client_order = true;
    Arc::new(config)
}

/// Named once so the listener and the key loader cannot disagree on the crypto backend;
/// ring is chosen because it cross-compiles to ARM with only a C compiler.
fn ring_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    // The Pi 3 and 4 have no AES instructions, where ChaCha20-Poly1305 is several times faster
    // than AES-GCM; on ARM it goes first. Elsewhere ring's order (AES-GCM first) stands.
    if cfg!(any(target_arch = "arm", target_arch = "aarch64")) {
        provider.cipher_suites.sort_by_key(|suite| {
            !matches!(
                suite.suite(),
                rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            )
        });
    }
    provider
}

/// When the leaf certificate stops being valid, for `doctor` and the metrics. `None` if the
/// leaf cannot be parsed, which `load_certified_key` has already ruled out for keys it made.
pub fn leaf_not_after(key: &CertifiedKey) -> Option<time::OffsetDateTime> {
    let leaf = key.end_entity_cert().ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).ok()?;
    Some(parsed.validity().not_after.to_datetime())
}

/// SHA-256 of a DER certificate as "AA:BB:..": the form browsers and phones show, so a user
/// can compare what `roost init` printed with what their device displays.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use rustls::client::Resumption;
    use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;
    use crate::edge::local_ca::{self, LocalCaFiles, ServerNames};

    const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

    fn names(extra: &[&str]) -> ServerNames {
        let extra: Vec<String> = extra.iter().map(|name| name.to_string()).collect();
        ServerNames {
            dns: [
                &["roost".to_owned(), "localhost".to_owned()],
                extra.as_slice(),
            ]
            .concat(),
            ips: vec!["127.0.0.1".parse().unwrap()],
        }
    }

    /// A local CA with a server certificate in a fresh temp dir.
    fn issue(dir: &Path, extra: &[&str]) -> LocalCaFiles {
        local_ca::ensure(
            dir,
            &names(extra),
            RENEW_BEFORE,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        LocalCaFiles::in_dir(dir)
    }

    fn load(files: &LocalCaFiles) -> Arc<CertifiedKey> {
        load_certified_key(&files.server_cert, &files.server_key).unwrap()
    }

    /// Accepts TLS connections and echoes every byte back, until the test's runtime ends.
    async fn start_echo_server(config: Arc<ServerConfig>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = [0u8; 256];
                    loop {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if tls.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    /// A client that trusts only the local CA. Resumption is off so every connection does a
    /// full handshake and shows the certificate the server presents now.
    fn client_config(
        files: &LocalCaFiles,
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for ca in read_cert_chain(&files.ca_cert).unwrap() {
            roots.add(ca).unwrap();
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(ring_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.resumption = Resumption::disabled();
        Arc::new(config)
    }

    async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        TlsConnector::from(config).connect(name, tcp).await.unwrap()
    }

    async fn assert_echoes(stream: &mut TlsStream<TcpStream>, message: &[u8]) {
        stream.write_all(message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, message);
    }

    fn presented_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
        stream.get_ref().1.peer_certificates().unwrap()[0].clone()
    }

    #[tokio::test]
    async fn handshake_negotiates_tls13_and_h2() {
        let temp = tempfile::tempdir().unwrap();
        let files = issue(temp.path(), &[]);
        let addr = start_echo_server(server_config(CertResolver::new(load(&files)))).await;

        let both = client_config(&files, PROTOCOL_VERSIONS, &[b"h2", b"http/1.1"]);
        let mut stream = connect(addr, both).await;
        let connection = stream.get_ref().1;
        assert_eq!(connection.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(
            connection.protocol_version(),
            Some(ProtocolVersion::TLSv1_3)
        );
        assert_echoes(&mut stream, b"hello").await;

        let http1 = client_config(&files, PROTOCOL_VERSIONS, &[b"http/1.1"]);
        let stream = connect(addr, http1).await;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    }

    #[tokio::test]
    async fn tls12_clients_are_still_served() {
        let temp = tempfile::tempdir().unwrap();
        let files = issue(temp.path(), &[]);
        let addr = start_echo_server(server_config(CertResolver::new(load(&files)))).await;

        let tls12_only = client_config(&files, &[&rustls::version::TLS12], &[b"h2"]);
        let mut stream = connect(addr, tls12_only).await;
        let connection = stream.get_ref().1;
        assert_eq!(
            connection.protocol_version(),
            Some(ProtocolVersion::TLSv1_2)
        );
        assert_eq!(connection.alpn_protocol(), Some(&b"h2"[..]));
        assert_echoes(&mut stream, b"hello").await;
    }

    #[test]
    fn only_tls12_and_tls13_are_enabled() {
        // rustls cannot speak TLS 1.0/1.1 at all, so a handshake cannot test their absence;
        // the list the config is built from is the contract.
        let versions: Vec<ProtocolVersion> = PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
        assert_eq!(
            versions,
            [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2]
        );
        let alpn: Vec<&[u8]> = ALPN_PROTOCOLS.to_vec();
        assert_eq!(alpn, [&b"h2"[..], &b"http/1.1"[..]]);
    }

    #[tokio::test]
    async fn replaced_certificate_serves_new_handshakes_and_keeps_open_connections() {
        let temp = tempfile::tempdir().unwrap();
        let files = issue(temp.path(), &[]);
        let old_key = load(&files);
        let resolver = CertResolver::new(Arc::clone(&old_key));
        let addr = start_echo_server(server_config(Arc::clone(&resolver))).await;
        let client = client_config(&files, PROTOCOL_VERSIONS, &[b"h2"]);

        let mut first = connect(addr, Arc::clone(&client)).await;
        assert_eq!(presented_leaf(&first), old_key.cert[0]);
        assert_echoes(&mut first, b"before reload").await;

        // A new name forces the local CA to reissue the server certificate in place.
        issue(temp.path(), &["new.example.org"]);
        let new_key = load(&files);
        assert_ne!(new_key.cert[0], old_key.cert[0]);
        resolver.replace(Arc::clone(&new_key));
        assert!(Arc::ptr_eq(&resolver.current(), &new_key));

        let mut second = connect(addr, client).await;
        assert_eq!(presented_leaf(&second), new_key.cert[0]);
        assert_echoes(&mut second, b"new connection").await;

        assert_eq!(presented_leaf(&first), old_key.cert[0]);
        assert_echoes(&mut first, b"still open after reload").await;
    }

    #[test]
    fn loads_what_the_local_ca_wrote() {
        let temp = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let outcome = local_ca::ensure(temp.path(), &names(&[]), RENEW_BEFORE, now).unwrap();
        let key = load(&LocalCaFiles::in_dir(temp.path()));
        assert_eq!(key.cert.len(), 2);
        assert_eq!(leaf_not_after(&key), Some(outcome.server_not_after));
    }

    #[test]
    fn load_errors_name_the_file() {
        let temp = tempfile::tempdir().unwrap();
        let files = issue(&temp.path().join("ours"), &[]);
        let other = issue(&temp.path().join("theirs"), &[]);
        let missing = temp.path().join("missing.pem");
        let garbage = temp.path().join("garbage.pem");
        fs::write(&garbage, "this is not PEM\n").unwrap();
        let bad_base64 = temp.path().join("bad-base64.pem");
        fs::write(
            &bad_base64,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();

        let error = |cert: &Path, key: &Path| load_certified_key(cert, key).unwrap_err();
        let cases = [
            (error(&missing, &files.server_key), &missing, "cannot read"),
            (error(&files.server_cert, &missing), &missing, "cannot read"),
            (
                error(&garbage, &files.server_key),
                &garbage,
                "no PEM certificate found",
            ),
            (
                error(&files.server_cert, &garbage),
                &garbage,
                "no PEM private key found",
            ),
            (
                error(&bad_base64, &files.server_key),
                &bad_base64,
                "is not valid PEM",
            ),
            (
                error(&files.server_cert, &other.server_key),
                &other.server_key,
                "does not match the certificate in",
            ),
        ];
        for (err, path, what) in cases {
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(what), "{message}");
        }
        let mismatch = error(&files.server_cert, &other.server_key).to_string();
        assert!(mismatch.contains(&files.server_cert.display().to_string()));
    }

    #[test]
    fn fingerprint_is_colon_separated_uppercase_sha256() {
        assert_eq!(
            sha256_fingerprint(b""),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:\
             27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }
}
