//! The local certificate authority for LAN use: `roost init` (and `serve` when files are
//! missing) creates a CA once, and issues from it the server certificate that the HTTPS
//! listener presents at `https://<hostname>.local`. Users import `ca.crt` on their devices.
//!
//! Invariants: the CA key and certificate are never overwritten or regenerated here — devices
//! trust them, so replacing them silently would break every client at once. The server
//! certificate is ours to reissue whenever it is missing, expiring, not covering the current
//! names, or not issued by the current CA.
//!
//! This module is file and crypto code only: it must not know about HTTP, the configuration
//! struct or the wall clock (`now` is passed in, so tests can move time).

use std::fs::{self, DirBuilder, Permissions};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    Ia5String, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::tls::{self, TlsError};
use crate::secret_file::SecretFile;

/// Long enough that nobody re-imports the CA on their phones during the Pi's lifetime.
/// (`roost doctor` warns when less than half a year of it is left.)
pub const CA_VALIDITY: time::Duration = time::Duration::days(3652);
/// Apple platforms cap server certificates at 825 days under a user-installed root and at
/// 398 days under public roots; 397 stays under both, so no phone or browser applying the
/// stricter rule to every root rejects it.
const SERVER_VALIDITY: time::Duration = time::Duration::days(397);
/// A Pi has no real-time clock: until NTP syncs it may run behind, so certificates start a
/// little in the past rather than being "not yet valid" right after a reboot.
const CLOCK_SKEW_ALLOWANCE: time::Duration = time::Duration::hours(1);

const DIR_MODE: u32 = 0o700;
/// Certificates are public; `ca.crt` is even served over plain HTTP for device import.
const CERT_MODE: u32 = 0o644;

/// The names the server certificate must cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNames {
    /// `dns[0]` is the primary name (the certificate's CN); the rest are sorted.
    pub dns: Vec<String>,
    /// Sorted, deduplicated.
    pub ips: Vec<IpAddr>,
}

impl ServerNames {
    /// Every name a device on the LAN may use for this machine: the hostname, its mDNS
    /// `.local` form, localhost, `extra_dns` (IP literals in it are moved to `ips`), this
    /// machine's addresses and both loopback addresses.
    pub fn for_host(hostname: &str, extra_dns: &[String]) -> ServerNames {
        ServerNames::from_parts(hostname, extra_dns, machine_ips())
    }

    /// `for_host` without asking the kernel, so the naming rules are testable anywhere.
    fn from_parts(hostname: &str, extra_dns: &[String], machine_ips: Vec<IpAddr>) -> ServerNames {
        let hostname = normalize_name(hostname);
        let mut dns = vec!["localhost".to_owned()];
        let mut ips = machine_ips;
        ips.extend([
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);

        // A hostname that is an address (`hostname = "10.0.0.2"`) is an IP SAN, not a DNS
        // one, and has no `.local` form.
        let primary = match hostname.parse::<IpAddr>() {
            Ok(ip) => {
                ips.push(ip);
                None
            }
            Err(_) if hostname.is_empty() => None,
            Err(_) => {
                if hostname != "localhost" && !hostname.ends_with(".local") {
                    dns.push(format!("{hostname}.local"));
                }
                Some(hostname)
            }
        };
        for name in extra_dns.iter().map(|name| normalize_name(name)) {
            match name.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) if name.is_empty() => {}
                Err(_) => dns.push(name),
            }
        }

        dns.sort();
        dns.dedup();
        if let Some(primary) = primary {
            dns.retain(|name| *name != primary);
            dns.insert(0, primary);
        }
        ips.sort();
        ips.dedup();
        ServerNames { dns, ips }
    }

    /// The certificate's CN: the hostname if there is one. CN is only what cert viewers
    /// display; clients match against the SANs.
    fn primary(&self) -> Option<String> {
        self.dns
            .first()
            .cloned()
            .or_else(|| self.ips.first().map(IpAddr::to_string))
    }
}

/// DNS names compare case-insensitively and a trailing dot means the same name.
fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// This machine's interface addresses, so `https://192.168.1.20` works as well as the name.
/// Link-local IPv6 is skipped: it needs a zone (`%eth0`) that browsers cannot put in a URL.
/// On failure this logs and returns nothing rather than failing startup: the names and the
/// loopback addresses still work.
pub fn machine_ips() -> Vec<IpAddr> {
    let interfaces = match nix::ifaddrs::getifaddrs() {
        Ok(interfaces) => interfaces,
        Err(err) => {
            tracing::warn!(error = %err, "cannot list network interfaces; the server certificate will cover only names and loopback");
            return Vec::new();
        }
    };
    let mut ips: Vec<IpAddr> = interfaces
        .filter_map(|interface| {
            let address = interface.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .filter(|ip| !is_link_local_v6(ip))
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

// `Ipv6Addr::is_unicast_link_local` is newer than our MSRV (1.80).
fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// Where the local CA keeps its files inside the TLS directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCaFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// Leaf followed by the CA, so clients that trust the CA get a complete chain.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl LocalCaFiles {
    pub fn in_dir(tls_dir: &Path) -> Self {
        LocalCaFiles {
            ca_cert: tls_dir.join("ca.crt"),
            ca_key: tls_dir.join("ca.key"),
            server_cert: tls_dir.join("server.crt"),
            server_key: tls_dir.join("server.key"),
        }
    }
}

/// What `ensure` did to one certificate, for `roost init` to print and `serve` to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    Unchanged,
    Created,
    Renewed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaOutcome {
    pub ca: Issued,
    pub server: Issued,
    /// "AA:BB:.." over the CA certificate's DER, for users to compare on their devices.
    pub ca_fingerprint_sha256: String,
    pub server_not_after: OffsetDateTime,
}

/// Makes sure `tls_dir` holds a CA and a current server certificate for `names`: creates
/// what is missing and reissues the server certificate when it expires within
/// `renew_before` of `now`, does not cover `names`, or was not issued by the current CA.
///
/// A `renew_before` longer than the server validity (397 days) reissues on every call.
pub fn ensure(
    tls_dir: &Path,
    names: &ServerNames,
    renew_before: std::time::Duration,
    now: OffsetDateTime,
) -> Result<CaOutcome, TlsError> {
    let primary = names.primary().ok_or(TlsError::NoServerNames)?;
    let now = certificate_time(now);
    create_private_dir(tls_dir)?;
    let files = LocalCaFiles::in_dir(tls_dir);

    let (ca, ca_issued) = load_or_create_ca(&files, &primary, now)?;
    let (server_issued, server_not_after) =
        match inspect_server(&files, &ca, names, renew_before, now) {
            ServerState::Current { not_after } => (Issued::Unchanged, not_after),
            ServerState::Missing => (Issued::Created, issue_server(&files, &ca, names, now)?),
            ServerState::Stale { reason } => (
                Issued::Renewed { reason },
                issue_server(&files, &ca, names, now)?,
            ),
        };

    Ok(CaOutcome {
        ca: ca_issued,
        server: server_issued,
        ca_fingerprint_sha256: tls::sha256_fingerprint(&ca.cert_der),
        server_not_after,
    })
}

/// Certificates hold whole seconds in UTC; working in that form from the start makes the
/// `server_not_after` we return equal to what a later call reads back from the file.
fn certificate_time(now: OffsetDateTime) -> OffsetDateTime {
    now.to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is always a valid nanosecond")
}

fn create_private_dir(tls_dir: &Path) -> Result<(), TlsError> {
    let unwritable = |source| TlsError::Unwritable {
        path: tls_dir.to_owned(),
        source,
    };
    if tls_dir.is_dir() {
        // An existing directory is the operator's choice; the keys inside are 0600 anyway.
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(tls_dir)
        .map_err(unwritable)?;
    // The umask can only have narrowed the mode, but state it exactly.
    fs::set_permissions(tls_dir, Permissions::from_mode(DIR_MODE)).map_err(unwritable)
}

/// The CA as loaded from (or just written to) disk.
struct LocalCa {
    key: KeyPair,
    /// The bytes on disk: what devices trust and what the fingerprint is computed over.
    cert_der: CertificateDer<'static>,
    /// rcgen needs a `Certificate` value to sign with. For a loaded CA it is rebuilt from the
    /// parsed subject and key identifier, so issued certificates name the on-disk CA exactly,
    /// but its own signature bytes differ and it must never be written out.
    signer: rcgen::Certificate,
    /// The end of the CA's validity: no certificate it issues may outlive it.
    not_after: OffsetDateTime,
}

fn load_or_create_ca(
    files: &LocalCaFiles,
    primary: &str,
    now: OffsetDateTime,
) -> Result<(LocalCa, Issued), TlsError> {
    match (exists(&files.ca_key)?, exists(&files.ca_cert)?) {
        (false, false) => Ok((create_ca(files, primary, now)?, Issued::Created)),
        (true, true) => Ok((load_ca(files)?, Issued::Unchanged)),
        // Half a CA means something went wrong (a partial restore, a deleted file); picking
        // a side could throw away the key devices trust, so the operator decides.
        (true, false) => Err(TlsError::IncompleteCa {
            present: files.ca_key.clone(),
            missing: files.ca_cert.clone(),
        }),
        (false, true) => Err(TlsError::IncompleteCa {
            present: files.ca_cert.clone(),
            missing: files.ca_key.clone(),
        }),
    }
}

fn exists(path: &Path) -> Result<bool, TlsError> {
    path.try_exists().map_err(|source| TlsError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

fn create_ca(
    files: &LocalCaFiles,
    primary: &str,
    now: OffsetDateTime,
) -> Result<LocalCa, TlsError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
        TlsError::Generate {
            what: "the local CA key",
            source,
        }
    })?;

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Roost local CA ({primary})"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Roost");
    // Path length 0: this CA signs server certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - CLOCK_SKEW_ALLOWANCE;
    params.not_after = params.not_before + CA_VALIDITY;
    let not_after = params.not_after;
    let signer = params
        .self_signed(&key)
        .map_err(|source| TlsError::Generate {
            what: "the local CA certificate",
            source,
        })?;

    // Key first: a crash in between leaves an incomplete CA, which `ensure` reports
    // instead of silently replacing.
    // Create-only: fail if the files appeared meanwhile rather than replace what devices trust.
    write_file(
        &files.ca_key,
        key.serialize_pem().as_bytes(),
        SecretFile::create_only(),
    )?;
    write_file(
        &files.ca_cert,
        signer.pem().as_bytes(),
        SecretFile::create_only().mode(CERT_MODE),
    )?;
    Ok(LocalCa {
        key,
        cert_der: signer.der().clone(),
        signer,
        not_after,
    })
}

fn load_ca(files: &LocalCaFiles) -> Result<LocalCa, TlsError> {
    let cert_der = tls::read_cert_chain(&files.ca_cert)?.swap_remove(0);
    let bad_cert = |reason: String| TlsError::BadCertificate {
        path: files.ca_cert.clone(),
        reason,
    };

    let key_pem =
        String::from_utf8(tls::read_file(&files.ca_key)?).map_err(|_| TlsError::NoPrivateKey {
            path: files.ca_key.clone(),
        })?;
    let key = KeyPair::from_pem(&key_pem).map_err(|err| TlsError::UnusableKey {
        path: files.ca_key.clone(),
        reason: err.to_string(),
    })?;

    let parsed = parse_certificate(&cert_der).map_err(bad_cert)?;
    if parsed.public_key().raw != key.public_key_der().as_slice() {
        return Err(TlsError::KeyMismatch {
            cert_path: files.ca_cert.clone(),
            key_path: files.ca_key.clone(),
        });
    }

    let not_after = parsed.validity().not_after.to_datetime();
    let signer = CertificateParams::from_ca_cert_der(&cert_der)
        .and_then(|params| params.self_signed(&key))
        .map_err(|err| bad_cert(err.to_string()))?;
    Ok(LocalCa {
        key,
        cert_der,
        signer,
        not_after,
    })
}

enum ServerState {
    Current { not_after: OffsetDateTime },
    Missing,
    Stale { reason: String },
}

fn inspect_server(
    files: &LocalCaFiles,
    ca: &LocalCa,
    names: &ServerNames,
    renew_before: std::time::Duration,
    now: OffsetDateTime,
) -> ServerState {
    let stale = |reason: String| ServerState::Stale { reason };
    match (files.server_cert.exists(), files.server_key.exists()) {
        (false, false) => return ServerState::Missing,
        (true, false) => return stale(format!("{} is missing", files.server_key.display())),
        (false, true) => return stale(format!("{} is missing", files.server_cert.display())),
        (true, true) => {}
    }

    // The server pair is ours to replace, so anything unreadable is a reason to reissue,
    // not an error: `load_certified_key` also proves the key matches the leaf.
    let certified = match tls::load_certified_key(&files.server_cert, &files.server_key) {
        Ok(certified) => certified,
        Err(err) => return stale(err.to_string()),
    };
    let leaf = match certified
        .end_entity_cert()
        .map(|der| parse_certificate(der))
    {
        Ok(Ok(leaf)) => leaf,
        Ok(Err(reason)) => return stale(format!("{}: {reason}", files.server_cert.display())),
        Err(err) => return stale(format!("{}: {err}", files.server_cert.display())),
    };

    let ca_parsed = match parse_certificate(&ca.cert_der) {
        Ok(parsed) => parsed,
        // `load_ca` parsed these same bytes moments ago.
        Err(reason) => return stale(format!("the local CA cannot be parsed: {reason}")),
    };
    if leaf.verify_signature(Some(ca_parsed.public_key())).is_err() {
        return stale("it was not issued by the current local CA".to_owned());
    }

    let validity = leaf.validity();
    let not_before = validity.not_before.to_datetime();
    let not_after = validity.not_after.to_datetime();
    if now < not_before {
        return stale(format!(
            "it is not valid until {} and the clock says {}",
            format_time(not_before),
            format_time(now)
        ));
    }
    let renew_window = time::Duration::try_from(renew_before).unwrap_or(time::Duration::MAX);
    let renew_at = not_after.checked_sub(renew_window);
    // In the CA's last months the certificate already ends with the CA: a new one could not
    // last longer, so reissuing on every check would only churn keys.
    let ends_with_ca = not_after >= ca.not_after && now < not_after;
    if !ends_with_ca && renew_at.is_none_or(|renew_at| now >= renew_at) {
        let verb = if now >= not_after {
            "expired"
        } else {
            "expires"
        };
        return stale(format!(
            "it {verb} at {}, within the renewal window of {} days",
            format_time(not_after),
            renew_window.whole_days()
        ));
    }

    let uncovered = uncovered_names(&leaf, names);
    if !uncovered.is_empty() {
        return stale(format!("it does not cover {}", uncovered.join(", ")));
    }
    ServerState::Current { not_after }
}

/// Names in `names` that the certificate's SANs lack. Extra SANs (an address the machine no
/// longer has) are tolerated so an interface going down does not churn certificates.
fn uncovered_names(leaf: &X509Certificate<'_>, names: &ServerNames) -> Vec<String> {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns_name) => dns.push(normalize_name(dns_name)),
                GeneralName::IPAddress(octets) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*octets) {
                        ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*octets) {
                        ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    let missing_dns = names
        .dns
        .iter()
        .filter(|name| !dns.contains(&normalize_name(name)))
        .cloned();
    let missing_ips = names
        .ips
        .iter()
        .filter(|ip| !ips.contains(ip))
        .map(IpAddr::to_string);
    missing_dns.chain(missing_ips).collect()
}

fn issue_server(
    files: &LocalCaFiles,
    ca: &LocalCa,
    names: &ServerNames,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, TlsError> {
    // A fresh key each time: nothing pins it, and a reissue after a suspected leak should
    // not keep the old key.
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
        TlsError::Generate {
            what: "the server key",
            source,
        }
    })?;

    let mut params = CertificateParams::default();
    params.subject_alt_names = names
        .dns
        .iter()
        .map(|name| {
            Ia5String::try_from(name.as_str())
                .map(SanType::DnsName)
                .map_err(|source| TlsError::InvalidName {
                    name: name.clone(),
                    source,
                })
        })
        .chain(names.ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
        .collect::<Result<_, _>>()?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        names
            .primary()
            .expect("ensure() refused empty names before issuing"),
    );
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    // Never past the CA's own end: a certificate that outlives its issuer stops verifying
    // before its date, and the renewal window would not see it coming.
    if ca.not_after <= now {
        return Err(TlsError::CaExpired {
            path: files.ca_cert.clone(),
            expired_on: ca.not_after.date(),
        });
    }
    params.not_before = now - CLOCK_SKEW_ALLOWANCE;
    params.not_after = (params.not_before + SERVER_VALIDITY).min(ca.not_after);
    let not_after = params.not_after;
    // The serial is left to rcgen, which derives it from the (fresh) public key, so every
    // issued certificate has a distinct serial under this CA.
    let leaf = params
        .signed_by(&key, &ca.signer, &ca.key)
        .map_err(|source| TlsError::Generate {
            what: "the server certificate",
            source,
        })?;

    let chain = format!("{}{}", leaf.pem(), certificate_pem(&ca.cert_der));
    // Key first: if we stop in between, the next run sees a key that does not match the
    // certificate and reissues both.
    write_file(
        &files.server_key,
        key.serialize_pem().as_bytes(),
        SecretFile::replacing(),
    )?;
    write_file(
        &files.server_cert,
        chain.as_bytes(),
        SecretFile::replacing().mode(CERT_MODE),
    )?;
    Ok(not_after)
}

fn parse_certificate<'a>(der: &'a [u8]) -> Result<X509Certificate<'a>, String> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, parsed)| parsed)
        .map_err(|err| err.to_string())
}

/// PEM of the CA exactly as it is on disk (rcgen's `signer.pem()` would carry a different
/// signature for a loaded CA).
fn certificate_pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    // Base64 output is ASCII, so splitting at any byte offset stays on char boundaries.
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 output is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

fn format_time(at: OffsetDateTime) -> String {
    // Formatting fails only for years outside 0..=9999, which a certificate cannot hold.
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// Writes one of the CA's files through [`SecretFile`], so a reader (or a crash) never sees a
/// half-written key, and a key never exists on disk, even empty, with wider permissions.
fn write_file(path: &Path, contents: &[u8], how: SecretFile) -> Result<(), TlsError> {
    how.write(path, contents)
        .map_err(|source| TlsError::Unwritable {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::RootCertStore;

    use super::*;

    const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

    fn names() -> ServerNames {
        ServerNames::from_parts(
            "roost",
            &["chat.example.org".to_owned()],
            vec!["192.168.1.20".parse().unwrap()],
        )
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn snapshot(files: &LocalCaFiles) -> Vec<Vec<u8>> {
        [
            &files.ca_cert,
            &files.ca_key,
            &files.server_cert,
            &files.server_key,
        ]
        .iter()
        .map(|path| fs::read(path).unwrap())
        .collect()
    }

    fn renewal_reason(issued: &Issued) -> &str {
        match issued {
            Issued::Renewed { reason } => reason,
            other => panic!("expected Renewed, got {other:?}"),
        }
    }

    #[test]
    fn for_host_lists_hostname_mdns_localhost_extras_and_loopback() {
        let names = ServerNames::from_parts(
            "Roost.",
            &[
                "chat.example.org".to_owned(),
                "10.0.0.5".to_owned(),
                "localhost".to_owned(),
            ],
            vec!["192.168.1.20".parse().unwrap()],
        );
        assert_eq!(
            names.dns,
            ["roost", "chat.example.org", "localhost", "roost.local"]
        );
        let ips: Vec<String> = names.ips.iter().map(IpAddr::to_string).collect();
        assert_eq!(ips, ["10.0.0.5", "127.0.0.1", "192.168.1.20", "::1"]);

        let already_mdns = ServerNames::from_parts("pi.local", &[], Vec::new());
        assert_eq!(already_mdns.dns, ["pi.local", "localhost"]);
        let only_localhost = ServerNames::from_parts("localhost", &[], Vec::new());
        assert_eq!(only_localhost.dns, ["localhost"]);
        let address = ServerNames::from_parts("10.0.0.2", &[], Vec::new());
        assert_eq!(address.dns, ["localhost"]);
        assert!(address.ips.contains(&"10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn machine_ips_have_no_link_local_v6() {
        let names = ServerNames::for_host("roost", &[]);
        assert!(names.ips.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(names.ips.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(!machine_ips().iter().any(is_link_local_v6));
        assert!(is_link_local_v6(&"fe80::1".parse().unwrap()));
        assert!(!is_link_local_v6(&"fd00::1".parse().unwrap()));
    }

    #[test]
    fn empty_dir_gets_four_files_with_private_keys() {
        let temp = tempfile::tempdir().unwrap();
        let tls_dir = temp.path().join("tls");
        let outcome = ensure(&tls_dir, &names(), RENEW_BEFORE, now()).unwrap();

        assert_eq!(outcome.ca, Issued::Created);
        assert_eq!(outcome.server, Issued::Created);
        let files = LocalCaFiles::in_dir(&tls_dir);
        assert_eq!(mode(&tls_dir), 0o700);
        assert_eq!(mode(&files.ca_key), 0o600);
        assert_eq!(mode(&files.server_key), 0o600);
        assert_eq!(mode(&files.ca_cert), 0o644);
        assert_eq!(mode(&files.server_cert), 0o644);
        let mut entries: Vec<_> = fs::read_dir(&tls_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        assert_eq!(entries, ["ca.crt", "ca.key", "server.crt", "server.key"]);

        let ca_der = tls::read_cert_chain(&files.ca_cert).unwrap().remove(0);
        assert_eq!(
            outcome.ca_fingerprint_sha256,
            tls::sha256_fingerprint(&ca_der)
        );
        let ca = parse_certificate(&ca_der).unwrap();
        assert!(ca.subject().to_string().contains("Roost local CA (roost)"));
        let constraints = ca.basic_constraints().unwrap().unwrap().value;
        assert!(constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));

        let chain = tls::read_cert_chain(&files.server_cert).unwrap();
        assert_eq!(chain.len(), 2, "server.crt holds leaf and CA");
        assert_eq!(chain[1], ca_der);
        let leaf = parse_certificate(&chain[0]).unwrap();
        assert_eq!(
            leaf.validity().not_after.to_datetime(),
            outcome.server_not_after
        );
        let lifetime =
            leaf.validity().not_after.to_datetime() - leaf.validity().not_before.to_datetime();
        assert_eq!(lifetime, time::Duration::days(397));
        let usage = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(usage.server_auth);
        assert!(!leaf.is_ca());
    }

    #[test]
    fn second_run_changes_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let first = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
        let files = LocalCaFiles::in_dir(temp.path());
        let before = snapshot(&files);

        let second = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
        assert_eq!(second.ca, Issued::Unchanged);
        assert_eq!(second.server, Issued::Unchanged);
        assert_eq!(second.ca_fingerprint_sha256, first.ca_fingerprint_sha256);
        assert_eq!(second.server_not_after, first.server_not_after);
        assert_eq!(snapshot(&files), before);
    }

    #[test]
    fn server_cert_is_renewed_near_expiry_and_ca_is_kept() {
        let temp = tempfile::tempdir().unwrap();
        let start = now();
        let first = ensure(temp.path(), &names(), RENEW_BEFORE, start).unwrap();
        let files = LocalCaFiles::in_dir(temp.path());
        let ca_before = fs::read(&files.ca_cert).unwrap();

        // 380 days in, the cert still has 17 days left: outside a zero window, inside 30 days.
        let later = start + time::Duration::days(380);
        let outside_window = ensure(temp.path(), &names(), Duration::ZERO, later).unwrap();
        assert_eq!(outside_window.server, Issued::Unchanged);

        let renewed = ensure(temp.path(), &names(), RENEW_BEFORE, later).unwrap();
        assert_eq!(renewed.ca, Issued::Unchanged);
        assert!(renewal_reason(&renewed.server).contains("renewal window"));
        assert!(renewed.server_not_after > first.server_not_after);
        assert_eq!(fs::read(&files.ca_cert).unwrap(), ca_before);
        assert_eq!(renewed.ca_fingerprint_sha256, first.ca_fingerprint_sha256);
    }

    #[test]
    fn server_certs_never_outlive_the_ca_and_an_expired_ca_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let start = now();
        ensure(temp.path(), &names(), RENEW_BEFORE, start).unwrap();
        let files = LocalCaFiles::in_dir(temp.path());
        let ca_end = first_not_after(&files.ca_cert);

        // 100 days before the CA ends, a new certificate stops with the CA, not 397 days on.
        let late = ca_end - time::Duration::days(100);
        let reissued = ensure(temp.path(), &names(), RENEW_BEFORE, late).unwrap();
        assert!(matches!(reissued.server, Issued::Renewed { .. }));
        assert_eq!(reissued.server_not_after, ca_end);
        assert_eq!(first_not_after(&files.server_cert), ca_end);

        // Inside the renewal window of a certificate that already ends with the CA: kept.
        let last_days = ca_end - time::Duration::days(10);
        let kept = ensure(temp.path(), &names(), RENEW_BEFORE, last_days).unwrap();
        assert_eq!(kept.server, Issued::Unchanged);

        // Once the CA has expired nothing can be issued, and the error says what to do.
        let after = ca_end + time::Duration::days(1);
        let err = ensure(temp.path(), &names(), RENEW_BEFORE, after).unwrap_err();
        assert!(matches!(err, TlsError::CaExpired { .. }), "{err}");
        assert!(err.to_string().contains("roost init"), "{err}");
    }

    fn first_not_after(path: &Path) -> OffsetDateTime {
        let chain = tls::read_cert_chain(path).unwrap();
        parse_certificate(&chain[0])
            .unwrap()
            .validity()
            .not_after
            .to_datetime()
    }

    #[test]
    fn server_cert_is_renewed_for_a_new_address() {
        let temp = tempfile::tempdir().unwrap();
        ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();

        let mut moved = names();
        moved.ips.push("192.168.1.77".parse().unwrap());
        let outcome = ensure(temp.path(), &moved, RENEW_BEFORE, now()).unwrap();
        assert_eq!(outcome.ca, Issued::Unchanged);
        assert!(renewal_reason(&outcome.server).contains("192.168.1.77"));

        // Dropping a name is not a reason to reissue.
        let fewer = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
        assert_eq!(fewer.server, Issued::Unchanged);
    }

    #[test]
    fn server_cert_from_another_ca_is_reissued() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        ensure(ours.path(), &names(), RENEW_BEFORE, now()).unwrap();
        ensure(theirs.path(), &names(), RENEW_BEFORE, now()).unwrap();
        for file in ["server.crt", "server.key"] {
            fs::copy(theirs.path().join(file), ours.path().join(file)).unwrap();
        }

        let outcome = ensure(ours.path(), &names(), RENEW_BEFORE, now()).unwrap();
        assert!(renewal_reason(&outcome.server).contains("not issued by the current local CA"));
    }

    #[test]
    fn damaged_server_files_are_reissued() {
        let temp = tempfile::tempdir().unwrap();
        ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
        let files = LocalCaFiles::in_dir(temp.path());

        fs::remove_file(&files.server_key).unwrap();
        let outcome = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
        assert!(renewal_reason(&outcome.server).contains("server.key is missing"));

        fs::write(&files.server_cert, "garbage").unwrap();
        let outcome = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
        assert!(renewal_reason(&outcome.server).contains("no PEM certificate found"));
        assert_eq!(mode(&files.server_cert), 0o644);
    }

    #[test]
    fn half_a_ca_is_an_error_and_is_left_alone() {
        let temp = tempfile::tempdir().unwrap();
        ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
        let files = LocalCaFiles::in_dir(temp.path());
        let key_before = fs::read(&files.ca_key).unwrap();

        fs::remove_file(&files.ca_cert).unwrap();
        let err = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap_err();
        assert!(matches!(err, TlsError::IncompleteCa { .. }), "{err}");
        assert!(err.to_string().contains("ca.crt is missing"), "{err}");
        assert_eq!(fs::read(&files.ca_key).unwrap(), key_before);
        assert!(!files.ca_cert.exists());

        let other = tempfile::tempdir().unwrap();
        ensure(other.path(), &names(), RENEW_BEFORE, now()).unwrap();
        fs::remove_file(other.path().join("ca.key")).unwrap();
        let err = ensure(other.path(), &names(), RENEW_BEFORE, now()).unwrap_err();
        assert!(err.to_string().contains("ca.key is missing"), "{err}");
    }

    #[test]
    fn ca_key_not_matching_ca_cert_is_an_error() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        ensure(ours.path(), &names(), RENEW_BEFORE, now()).unwrap();
        ensure(theirs.path(), &names(), RENEW_BEFORE, now()).unwrap();
        fs::copy(theirs.path().join("ca.key"), ours.path().join("ca.key")).unwrap();

        let err = ensure(ours.path(), &names(), RENEW_BEFORE, now()).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn no_names_is_an_error() {
        let temp = tempfile::tempdir().unwrap();
        let empty = ServerNames {
            dns: Vec::new(),
            ips: Vec::new(),
        };
        let err = ensure(temp.path(), &empty, RENEW_BEFORE, now()).unwrap_err();
        assert!(matches!(err, TlsError::NoServerNames));
    }

    /// Checks the chain in `tls_dir` the way a client trusting only `ca.crt` would.
    fn verify_for_every_name(tls_dir: &Path, at: OffsetDateTime) {
        let files = LocalCaFiles::in_dir(tls_dir);
        let mut roots = RootCertStore::empty();
        for ca in tls::read_cert_chain(&files.ca_cert).unwrap() {
            roots.add(ca).unwrap();
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let chain = tls::read_cert_chain(&files.server_cert).unwrap();
        let verify_at = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(at.unix_timestamp()).unwrap(),
        ));
        let verify = |name: &str| {
            let server_name = ServerName::try_from(name.to_owned()).unwrap();
            verifier.verify_server_cert(&chain[0], &chain[1..], &server_name, &[], verify_at)
        };

        for name in [
            "localhost",
            "roost",
            "roost.local",
            "chat.example.org",
            "127.0.0.1",
            "::1",
            "192.168.1.20",
        ] {
            verify(name).unwrap_or_else(|err| panic!("{name}: {err}"));
        }
        assert!(verify("example.com").is_err());
        assert!(verify("192.168.1.21").is_err());
    }

    #[test]
    fn server_cert_verifies_against_the_ca_for_every_name() {
        let temp = tempfile::tempdir().unwrap();
        let at = now();
        let created = ensure(temp.path(), &names(), RENEW_BEFORE, at).unwrap();
        assert_eq!(created.ca, Issued::Created);
        verify_for_every_name(temp.path(), at);

        // Issued by a CA loaded back from disk, which signs through a rebuilt rcgen value.
        let files = LocalCaFiles::in_dir(temp.path());
        fs::remove_file(&files.server_cert).unwrap();
        fs::remove_file(&files.server_key).unwrap();
        let reissued = ensure(temp.path(), &names(), RENEW_BEFORE, at).unwrap();
        assert_eq!(reissued.ca, Issued::Unchanged);
        assert_eq!(reissued.server, Issued::Created);
        verify_for_every_name(temp.path(), at);
    }
}
