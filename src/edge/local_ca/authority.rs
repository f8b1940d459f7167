//! The local CA itself: created once, then only loaded to sign server certificates. Never
//! overwritten or regenerated here: devices trust it.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;

use super::files::{exists, write_file, LocalCaFiles, CERT_MODE};
use super::{parse_certificate, Issued, CLOCK_SKEW_ALLOWANCE};
use crate::edge::tls::{self, TlsError};
use crate::secret_file::SecretFile;

/// Long enough that nobody re-imports the CA on their phones during the Pi's lifetime.
/// (`roost doctor` warns when less than half a year of it is left.)
pub const CA_VALIDITY: time::Duration = time::Duration::days(3652);

/// The CA as loaded from (or just written to) disk.
pub(super) struct LocalCa {
    pub(super) key: KeyPair,
    /// The bytes on disk: what devices trust and what the fingerprint is computed over.
    pub(super) cert_der: CertificateDer<'static>,
    /// rcgen needs a `Certificate` value to sign with. For a loaded CA it is rebuilt from the
    /// parsed subject and key identifier, so issued certificates name the on-disk CA exactly,
    /// but its own signature bytes differ and it must never be written out.
    pub(super) signer: rcgen::Certificate,
    /// The end of the CA's validity: no certificate it issues may outlive it.
    pub(super) not_after: OffsetDateTime,
}

pub(super) fn load_or_create_ca(
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
