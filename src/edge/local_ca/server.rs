//! The server certificate the HTTPS listener presents: whether the one on disk is still good
//! (issued by the current CA, covering the current names, outside the renewal window) and
//! issuing a new one with a fresh key.

use std::net::IpAddr;

use base64::Engine as _;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Ia5String, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::authority::LocalCa;
use super::files::{write_file, LocalCaFiles, CERT_MODE};
use super::names::{normalize_name, ServerNames};
use super::{parse_certificate, CLOCK_SKEW_ALLOWANCE};
use crate::edge::tls::{self, TlsError};
use crate::secret_file::SecretFile;

/// Apple platforms cap server certificates at 825 days under a user-installed root and at
/// 398 days under public roots; 397 stays under both, so no phone or browser applying the
/// stricter rule to every root rejects it.
const SERVER_VALIDITY: time::Duration = time::Duration::days(397);

pub(super) enum ServerState {
    Current { not_after: OffsetDateTime },
    Missing,
    Stale { reason: String },
}

pub(super) fn inspect_server(
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

pub(super) fn issue_server(
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
